/**
 * The TEE side of the transparency log (docs/audit.md): proof that a key release was logged. The vault
 * returns the release's log entry and its leaf hash; the SDK checks that the entry describes this very
 * release (key, version, token issuer, jti and claims hash), asks for the inclusion proof, and checks
 * it against a signed tree head whose signature verifies with the log key.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { fail, isConclaveError } from '../core/errors.js';
import { canonicalJson, parseJsonText } from '../core/json.js';
import { decodeJws } from '../core/jwt.js';
import { hashLeaf, verifyInclusion } from '../log/merkle.js';
import { checkTreeHead, parseHashList, parseTreeHeadWire, type TreeHeadWire, treeHeadToWire } from '../log/tree-head.js';
import { type CaInput, exchangeJson } from './http.js';

/** What the vault returns with a release (`x-conclave-log`): the stored entry and its RFC 9162 leaf hash. */
export interface LogReceipt {
  readonly leafHash: string;
  readonly entry: string;
}

/** A verified inclusion: the entry is leaf `leafIndex` of the tree the signed head `sth` commits to. */
export interface LogInclusion {
  readonly leafHash: string;
  readonly leafIndex: number;
  readonly sth: TreeHeadWire;
  readonly inclusionPath: string[];
}

export interface InclusionOptions {
  readonly vaultUrl: string;
  readonly ca?: CaInput;
  /**
   * The log key (PEM SubjectPublicKeyInfo or a KeyObject) heads must be signed by: pin the key the vault
   * published when its log started. Without it the key is fetched from GET /log/key, which only proves
   * the head comes from the vault that answered.
   */
  readonly logKey?: string | KeyObject;
  /** How long to wait for the entry to be sequenced (default 5000 ms; the vault's batch interval is far shorter). */
  readonly timeoutMs?: number;
}

function proofInvalid(message: string, detail?: Record<string, unknown>): never {
  throw fail('log.proof_invalid', message, detail);
}

/** Parses a receipt from a release response; undefined when the vault returned none. */
export function logReceiptOf(v: unknown): LogReceipt | undefined {
  if (v === undefined) return undefined;
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || typeof o.leafHash !== 'string' || !/^[0-9a-f]{64}$/.test(o.leafHash) || typeof o.entry !== 'string') {
    throw fail('log.head_malformed', 'the release response carries a malformed log receipt', { field: 'x-conclave-log' });
  }
  return { leafHash: o.leafHash, entry: o.entry };
}

/**
 * Checks that the logged entry is the granted release of `keyName` at `version` for the attestation
 * `token` (its issuer, jti and claims hash, as the vault records them), and that it hashes to the leaf.
 */
export function checkReleaseEntry(receipt: LogReceipt, expected: { keyName: string; version?: string; token: string }): void {
  if (!hashLeaf(Buffer.from(receipt.entry, 'utf8')).equals(Buffer.from(receipt.leafHash, 'hex'))) proofInvalid('the logged entry does not hash to its leaf hash');
  const e = parseJsonText(receipt.entry, 'the logged entry', 'log.head_malformed') as Record<string, unknown>;
  const detail = (e.detail ?? {}) as Record<string, unknown>;
  const claims = decodeJws(expected.token).payload as Record<string, unknown>;
  const want: [string, unknown, unknown][] = [
    ['operation', e.operation, 'release'],
    ['result', e.result, 'success'],
    ['key', typeof e.key === 'string' ? e.key.toLowerCase() : e.key, expected.keyName.toLowerCase()],
    ['detail.issuer', detail.issuer, claims.iss],
    ['detail.claimsSha256', detail.claimsSha256, createHash('sha256').update(canonicalJson(claims)).digest('hex')],
  ];
  if (expected.version !== undefined) want.push(['version', e.version, expected.version]);
  if (typeof claims.jti === 'string') want.push(['detail.jti', detail.jti, claims.jti]);
  for (const [field, actual, wanted] of want) {
    if (actual !== wanted) proofInvalid(`the logged entry does not describe this release: ${field} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`, { field, expected: wanted, actual });
  }
}

async function logKeyOf(opts: InclusionOptions): Promise<KeyObject> {
  if (opts.logKey !== undefined) return typeof opts.logKey === 'string' ? createPublicKey(opts.logKey) : opts.logKey;
  const r = await exchangeJson(`${opts.vaultUrl.replace(/\/+$/, '')}/log/key`, { ca: opts.ca, what: 'fetching the log key' });
  if (typeof r.publicKey !== 'string') throw fail('log.head_malformed', 'GET /log/key returned no publicKey', { field: 'publicKey' });
  return createPublicKey(r.publicKey);
}

/**
 * Fetches the inclusion proof of `leafHash` (waiting while the entry is not yet sequenced) and checks it
 * against the signed head that comes with it. Throws `log.proof_invalid`, `log.signature_invalid` or
 * `log.head_malformed`; `sdk.http_error` when the log cannot be asked.
 */
export async function verifyLogInclusion(leafHash: string, opts: InclusionOptions): Promise<LogInclusion> {
  const key = await logKeyOf(opts);
  const url = `${opts.vaultUrl.replace(/\/+$/, '')}/log/proof/inclusion?leaf=${leafHash}`;
  const until = Date.now() + (opts.timeoutMs ?? 5000);
  let body: Record<string, unknown>;
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    try {
      body = await exchangeJson(url, { ca: opts.ca, what: 'fetching the inclusion proof' });
      break;
    } catch (e) {
      // 404: not sequenced yet (or never logged): ask again until the deadline.
      if (!isConclaveError(e, 'sdk.http_error') || (e.detail as { status?: number } | undefined)?.status !== 404) throw e;
      if (Date.now() >= until) proofInvalid(`the log did not include the release entry within ${opts.timeoutMs ?? 5000} ms`, { leafHash });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  const sth = parseTreeHeadWire(body.sth);
  const path = parseHashList(body.inclusionPath, 'inclusionPath');
  const leafIndex = body.leafIndex;
  if (typeof leafIndex !== 'number' || !Number.isSafeInteger(leafIndex) || body.treeSize !== sth.treeSize) throw fail('log.head_malformed', 'the inclusion proof names no leaf index or another tree size than its head', { field: 'leafIndex' });
  checkTreeHead(sth, key);
  if (!verifyInclusion(Buffer.from(leafHash, 'hex'), leafIndex, sth.treeSize, path, sth.rootHash)) {
    proofInvalid(`the inclusion proof of leaf ${leafIndex} does not lead to the root of the signed tree head of size ${sth.treeSize}`, { leafIndex, treeSize: sth.treeSize });
  }
  return { leafHash, leafIndex, sth: treeHeadToWire(sth), inclusionPath: path.map((p) => p.toString('hex')) };
}
