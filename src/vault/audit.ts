/**
 * The audit chain: append-only records, each bound to its predecessor by hash so that a changed,
 * deleted or reordered record breaks verification. hash(n) = SHA-256(prev_hash(n) ‖ canonical JSON of
 * record n), prev_hash(1) = 64 zeros. Records hold no key material and no secrets.
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditResult = 'success' | 'denied' | 'failed';

export interface AuditRecord {
  readonly seq: number;
  /** ISO 8601 time of the operation. */
  readonly time: string;
  readonly principal: string;
  readonly operation: string;
  readonly key?: string;
  readonly version?: string;
  readonly result: AuditResult;
  readonly status: number;
  /** The catalogue code of a failure. */
  readonly code?: string;
  readonly message?: string;
  /** Operation-specific facts (for a release: issuer, jti, claimsSha256, policyHash, trace). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** JSON with object keys sorted at every level (RFC 8785-like for the values audit records hold). */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
}

export function auditHash(prevHash: string, recordJson: string): string {
  return createHash('sha256').update(prevHash).update(recordJson).digest('hex');
}

export interface StoredAuditRow {
  readonly seq: number;
  readonly record: string;
  readonly prevHash: string;
  readonly hash: string;
}

export type AuditVerification = { readonly ok: true; readonly count: number; readonly head: string } | { readonly ok: false; readonly count: number; readonly badSeq: number; readonly reason: string };

/**
 * Walks the chain in stored order. The first row whose sequence, predecessor link, record or hash does
 * not fit is reported. (Truncating the newest records leaves a valid shorter chain: compare the head
 * hash with one kept elsewhere to detect that.)
 */
export function verifyAuditChain(rows: Iterable<StoredAuditRow>): AuditVerification {
  let prev = GENESIS_HASH;
  let expected = 1;
  let count = 0;
  for (const row of rows) {
    const fail = (reason: string): AuditVerification => ({ ok: false, count, badSeq: row.seq, reason });
    if (row.seq !== expected) return { ok: false, count, badSeq: expected, reason: `sequence ${expected} is missing (next stored is ${row.seq})` };
    if (row.prevHash !== prev) return fail('the record does not link to its predecessor (a record before it was changed, removed or moved)');
    let rec: AuditRecord;
    try {
      rec = JSON.parse(row.record) as AuditRecord;
    } catch {
      return fail('the record is not JSON');
    }
    if (rec.seq !== row.seq) return fail(`the record carries sequence ${rec.seq} (moved)`);
    if (canonicalJson(rec) !== row.record || auditHash(prev, row.record) !== row.hash) return fail('the record hash does not match its content (changed)');
    prev = row.hash;
    expected++;
    count++;
  }
  return { ok: true, count, head: prev };
}
