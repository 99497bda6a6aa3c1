/**
 * Audit records: one per vault operation (granted, denied or failed) and per release decision. Each is
 * stored as an entry of the transparency log (src/log/, docs/audit.md) as its canonical JSON; records
 * hold no key material and no secrets.
 */

export type AuditResult = 'success' | 'denied' | 'failed';

export interface AuditRecord {
  /** Records of the hash chain that preceded the log carry their chain sequence number (log index + 1). */
  readonly seq?: number;
  /** 128 random bits (hex) that make every entry, and so its leaf hash, unique. */
  readonly entryId?: string;
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
  /** Operation-specific facts (for a release: issuer, jti, claimsSha256, policyHash, trace, enc; a denial adds explanation and claims). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** The one canonical JSON of audit records (and of the token claims a release record hashes). */
export { canonicalJson } from '../core/json.js';
