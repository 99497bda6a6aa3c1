/**
 * RFC 8017 §7.1.2 EME-OAEP decoding (empty label) of a raw RSA decryption done inside a PKCS#11 token,
 * for tokens that lack OAEP with SHA-2 (SoftHSM2 2.6 has OAEP-SHA-1 only). The private-key operation never
 * leaves the token; only the padding is removed here. Neither node:crypto nor an audited JS library
 * exposes an OAEP decoder over raw bytes, so this is the one padding routine Conclave writes itself, held
 * to RFC 8017's note on §7.1.2: the checks do not exit early, the separator search does not branch on the
 * decrypted bytes, and every failure is one error with one message (no Manger-style oracle). JavaScript
 * gives no hard constant-time guarantee; the code keeps the data-dependent work to arithmetic on every
 * byte, and tokens that can do OAEP themselves are always asked first.
 */
import { createHash } from 'node:crypto';
import { fail } from '../core/errors.js';

export type OaepHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';
const HASH_LEN: Record<OaepHash, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** RFC 8017 §B.2.1 MGF1. Its running time depends on lengths only. */
export function mgf1(seed: Uint8Array, length: number, hash: OaepHash): Buffer {
  const out: Buffer[] = [];
  for (let i = 0, len = 0; len < length; i++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(i);
    const d = createHash(hash).update(seed).update(c).digest();
    out.push(d);
    len += d.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** 1 when the byte `b` (0..255) is zero, else 0, without a branch. */
export const isZero = (b: number): number => ((b - 1) >>> 31) & 1;

function decryptionFailed(): never {
  throw fail('key.crypto_failed', 'decryption failed');
}

/** Decodes EM (k octets, the token's raw RSA output left-padded to k) into the message, or fails with the one error. */
export function oaepDecode(em: Buffer, hash: OaepHash): Buffer {
  const hLen = HASH_LEN[hash];
  const k = em.length;
  // Lengths are public (the modulus size), so this check may exit early.
  if (k < 2 * hLen + 2) decryptionFailed();
  const maskedSeed = em.subarray(1, 1 + hLen);
  const maskedDb = em.subarray(1 + hLen);
  const seedMask = mgf1(maskedDb, hLen, hash);
  const seed = Buffer.alloc(hLen);
  for (let i = 0; i < hLen; i++) seed[i] = maskedSeed[i]! ^ seedMask[i]!;
  const dbMask = mgf1(seed, k - hLen - 1, hash);
  const db = Buffer.alloc(k - hLen - 1);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ dbMask[i]!;
  const lHash = createHash(hash).digest();
  let bad = em[0]!;
  for (let i = 0; i < hLen; i++) bad |= db[i]! ^ lHash[i]!;
  // DB = lHash' ‖ PS (zeros) ‖ 0x01 ‖ M: find the first 0x01 and refuse any other non-zero octet before it,
  // visiting every octet with the same arithmetic whatever its value.
  let found = 0;
  let separator = 0;
  let stray = 0;
  for (let i = hLen; i < db.length; i++) {
    const b = db[i]!;
    const one = isZero(b ^ 1);
    const before = found ^ 1;
    separator |= i & -(one & before);
    stray |= before & (isZero(b) ^ 1) & (one ^ 1);
    found |= one;
  }
  bad |= stray | (found ^ 1);
  // One branch on the aggregated verdict: whether decryption succeeded is the one fact the caller learns.
  if (bad !== 0) decryptionFailed();
  return db.subarray(separator + 1);
}
