/**
 * RSA padding as both key protectors use it (RFC 8017): the DER DigestInfo prefixes of RSASSA-PKCS1-v1_5
 * over a precomputed digest (the software protector and PKCS#11's CKM_RSA_PKCS), EMSA-PSS encoding and
 * verification with salt length = hash length (JWA §3.5; node:crypto signs PSS only over a message, not
 * a digest), and EME-PKCS1-v1_5 decoding (Node 20 refuses RSA_PKCS1_PADDING decryption). OAEP decoding
 * and MGF1 are in oaep.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fail } from '../core/errors.js';
import { isZero, mgf1 } from './oaep.js';

export type PssHash = 'sha256' | 'sha384' | 'sha512';

/**
 * The signature algorithms over a digest both key protectors take (JWA §3.1 and ES256K, RFC 8812): RS, PS
 * and ES with 256/384/512, and ES256K only (no RS256K or PS256K: they name no DigestInfo or PSS hash).
 */
export const DIGEST_SIGNATURE_ALG = /^(?:(?:RS|PS|ES)(?:256|384|512)|ES256K)$/;

/** The digest each size suffix of those algorithms signs, in bytes. */
const DIGEST_LEN: Readonly<Record<string, number>> = { '256': 32, '384': 48, '512': 64, '256K': 32 };

/**
 * The size suffix ('256', '384', '512', '256K') of `alg`, once it is one of {@link DIGEST_SIGNATURE_ALG} (checked
 * by name before the table is read) and `digest` has its size; key.invalid otherwise.
 */
export function digestBits(alg: string, digest: Uint8Array): string {
  if (!DIGEST_SIGNATURE_ALG.test(alg)) throw fail('key.invalid', `Unsupported signature algorithm ${alg}`, { field: 'alg' });
  const bits = alg.slice(2);
  const want = DIGEST_LEN[bits]!;
  if (digest.length !== want) throw fail('key.invalid', `${alg} signs a ${want}-byte digest, got ${digest.length} bytes`, { field: 'value' });
  return bits;
}

/** RFC 8017 §9.2 note 1: DER DigestInfo prefixes. */
export const DIGEST_INFO: Record<string, Buffer> = {
  '256': Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  '384': Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  '512': Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** RFC 8017 §9.1.1 EMSA-PSS-ENCODE of a message hash, salt length = hash length (JWA §3.5). */
export function pssEncode(mHash: Uint8Array, modBits: number, hash: PssHash): Buffer {
  const hLen = mHash.length;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const salt = randomBytes(hLen);
  const hh = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Uint8Array.of(1), salt]);
  const mask = mgf1(hh, emLen - hLen - 1, hash);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const em = Buffer.concat([db, hh, Uint8Array.of(0xbc)]);
  const k = Math.ceil(modBits / 8);
  return em.length < k ? Buffer.concat([Buffer.alloc(k - em.length), em]) : em;
}

/** RFC 8017 §9.1.2 EMSA-PSS-VERIFY (salt length = hash length). */
export function pssVerify(mHash: Uint8Array, encoded: Buffer, modBits: number, hash: PssHash): boolean {
  const hLen = mHash.length;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const em = encoded.subarray(encoded.length - emLen);
  if (encoded.length > emLen && encoded[0] !== 0) return false;
  if (emLen < 2 * hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const masked = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const hh = em.subarray(emLen - hLen - 1, emLen - 1);
  if ((masked[0]! & ~(0xff >> (8 * emLen - emBits)) & 0xff) !== 0) return false;
  const mask = mgf1(hh, masked.length, hash);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i]!;
  masked[0]! &= 0xff >> (8 * emLen - emBits);
  const psLen = emLen - 2 * hLen - 2;
  for (let i = 0; i < psLen; i++) if (masked[i] !== 0) return false;
  if (masked[psLen] !== 1) return false;
  const salt = masked.subarray(masked.length - hLen);
  return createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest().equals(hh);
}

/**
 * RFC 8017 §7.2.2 EME-PKCS1-v1_5 decoding, done by hand because Node 20 refuses RSA_PKCS1_PADDING
 * decryption (CVE-2023-46809; its OpenSSL 3.0 has no implicit rejection). Written as `oaepDecode` is: every
 * octet visited with the same arithmetic, no early exit on the decrypted bytes, one branch on the
 * aggregated verdict and one error for every failure. Whether decryption succeeded is still what the
 * caller learns: RSA1_5 decryption is a padding oracle to whoever may call it (docs/security.md).
 */
export function pkcs1v15Unpad(em: Buffer): Buffer {
  const k = em.length;
  // The length is public (the modulus size), so this check may exit early.
  if (k < 11) throw fail('key.crypto_failed', 'decryption failed');
  // EM = 0x00 ‖ 0x02 ‖ PS (at least 8 non-zero octets) ‖ 0x00 ‖ M: the first zero after the block type.
  let bad = em[0]! | (em[1]! ^ 2);
  let found = 0;
  let separator = 0;
  for (let i = 2; i < k; i++) {
    const first = isZero(em[i]!) & (found ^ 1);
    separator |= i & -first;
    found |= first;
  }
  bad |= found ^ 1;
  // PS shorter than 8 octets: the separator before index 10.
  bad |= ((separator - 10) >>> 31) & 1;
  if (bad !== 0) throw fail('key.crypto_failed', 'decryption failed');
  return em.subarray(separator + 1);
}
