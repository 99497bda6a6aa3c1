/**
 * Signed tree heads. The signed bytes are RFC 9162 §4.9's TreeHeadDataV2 (TLS encoding):
 * uint64 timestamp (ms since the epoch) ‖ uint64 tree_size ‖ opaque root_hash<32..2^8-1> ‖
 * Extension sth_extensions<0..2^16-1> (empty), 51 bytes in all. The log key is ECDSA P-256 with SHA-256
 * (signature r ‖ s, 64 bytes) in software, or the RSA-2048 PKCS#1 v1.5 SHA-256 service key of the HSM
 * token with --hsm; the verifier takes the algorithm from the key it was given, never from the head.
 * The key id is the hex SHA-256 of the key's SubjectPublicKeyInfo (DER), as RFC 6962 named logs.
 */
import { createHash, type KeyObject, verify } from 'node:crypto';
import { fail } from '../core/errors.js';
import { HASH_SIZE } from './merkle.js';

export interface TreeHead {
  readonly treeSize: number;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  readonly rootHash: Buffer;
}

export interface SignedTreeHead extends TreeHead {
  readonly keyId: string;
  readonly signature: Buffer;
}

/** The log key as the sequencer uses it: in software or in the HSM token. */
export interface LogSigner {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** How a signed tree head travels as JSON (GET /log/sth, proofs, the SDK, the monitor's state). */
export interface TreeHeadWire {
  readonly treeSize: number;
  readonly timestamp: number;
  /** Hex. */
  readonly rootHash: string;
  readonly keyId: string;
  /** Base64. */
  readonly signature: string;
}

export function encodeTreeHead(head: TreeHead): Buffer {
  if (head.rootHash.length !== HASH_SIZE) throw new RangeError('a root hash has 32 bytes');
  const out = Buffer.alloc(8 + 8 + 1 + HASH_SIZE + 2);
  out.writeBigUInt64BE(BigInt(head.timestamp), 0);
  out.writeBigUInt64BE(BigInt(head.treeSize), 8);
  out.writeUInt8(HASH_SIZE, 16);
  head.rootHash.copy(out, 17);
  out.writeUInt16BE(0, 17 + HASH_SIZE);
  return out;
}

export function logKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export async function signTreeHead(head: TreeHead, signer: LogSigner): Promise<SignedTreeHead> {
  return { ...head, keyId: signer.keyId, signature: Buffer.from(await signer.sign(encodeTreeHead(head))) };
}

/** Whether `publicKey` (P-256, or RSA of 2048 bits or more) signed this head. */
export function treeHeadSignedBy(head: SignedTreeHead, publicKey: KeyObject): boolean {
  const data = encodeTreeHead(head);
  const details = publicKey.asymmetricKeyDetails;
  try {
    if (publicKey.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') {
      return head.signature.length === 64 && verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, head.signature);
    }
    if (publicKey.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return verify('sha256', data, publicKey, head.signature);
  } catch {
    return false;
  }
  return false;
}

/** Throws `log.signature_invalid` unless the log key `publicKey` signed `head`. */
export function checkTreeHead(head: SignedTreeHead, publicKey: KeyObject): void {
  const expected = logKeyId(publicKey);
  if (head.keyId !== expected) throw fail('log.signature_invalid', `the tree head of size ${head.treeSize} names log key ${head.keyId}, not the trusted log key ${expected}`, { treeSize: head.treeSize, expected, actual: head.keyId });
  if (!treeHeadSignedBy(head, publicKey)) throw fail('log.signature_invalid', `the signature of the tree head of size ${head.treeSize} does not verify with the log key ${expected}`, { treeSize: head.treeSize, keyId: expected });
}

export function treeHeadToWire(h: SignedTreeHead): TreeHeadWire {
  return { treeSize: h.treeSize, timestamp: h.timestamp, rootHash: h.rootHash.toString('hex'), keyId: h.keyId, signature: h.signature.toString('base64') };
}

const HEX_HASH = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict parse of a head from JSON; `log.head_malformed` names the field. */
export function parseTreeHeadWire(v: unknown): SignedTreeHead {
  const bad = (field: string) => fail('log.head_malformed', `the signed tree head has no valid ${field}`, { field });
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('object');
  const o = v as Record<string, unknown>;
  const int = (field: string) => {
    const n = o[field];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw bad(field);
    return n;
  };
  const treeSize = int('treeSize');
  const timestamp = int('timestamp');
  if (typeof o.rootHash !== 'string' || !HEX_HASH.test(o.rootHash)) throw bad('rootHash');
  if (typeof o.keyId !== 'string' || !HEX_HASH.test(o.keyId)) throw bad('keyId');
  if (typeof o.signature !== 'string' || !BASE64.test(o.signature) || o.signature.length % 4 !== 0 || o.signature.length === 0) throw bad('signature');
  return { treeSize, timestamp, rootHash: Buffer.from(o.rootHash, 'hex'), keyId: o.keyId, signature: Buffer.from(o.signature, 'base64') };
}

/** Strict parse of a list of hex hashes (a proof); `log.head_malformed` names the field. */
export function parseHashList(v: unknown, field: string, max = 128): Buffer[] {
  if (!Array.isArray(v) || v.length > max || v.some((h) => typeof h !== 'string' || !HEX_HASH.test(h))) throw fail('log.head_malformed', `${field} is not a list of hex SHA-256 hashes`, { field });
  return v.map((h: string) => Buffer.from(h, 'hex'));
}
