/**
 * ECDSA over a precomputed digest. AKV's `sign`/`verify` take the digest, and node:crypto always hashes
 * its input, so the software key protector signs with @noble/curves (audited, constant-time scalar
 * multiplication, RFC 6979 §3.2 deterministic nonces with HMAC over the curve's own hash: SHA-256 for
 * P-256 and P-256K, SHA-384 for P-384, SHA-512 for P-521, which is the hash each JWA algorithm binds to
 * its curve). `prehash: false` because the input already is the digest; `lowS: false` because AKV and
 * OpenSSL neither produce nor require low-S signatures. Hardware providers sign inside the HSM.
 */
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type { CurveName } from './ports.js';

const CURVES = { 'P-256': p256, 'P-384': p384, 'P-521': p521, 'P-256K': secp256k1 } as const;

/** Scalar and coordinate size in bytes, the length of r and of s in the JWA §3.4 (IEEE P1363) form. */
const SIZE: Record<CurveName, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66, 'P-256K': 32 };

function fixed(bytes: Uint8Array, len: number): Uint8Array {
  if (bytes.length === len) return bytes;
  if (bytes.length > len) throw new RangeError('value longer than the curve size');
  const out = new Uint8Array(len);
  out.set(bytes, len - bytes.length);
  return out;
}

/** Signs `digest` with the private scalar `d`; returns r‖s (JWA §3.4 / IEEE P1363 form). */
export function signDigestEcdsa(crv: CurveName, d: Uint8Array, digest: Uint8Array): Uint8Array {
  return CURVES[crv].sign(digest, fixed(d, SIZE[crv]), { prehash: false, lowS: false, format: 'compact' });
}

/** Verifies r‖s over `digest` with the public point (x, y); false for any malformed input. */
export function verifyDigestEcdsa(crv: CurveName, x: Uint8Array, y: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  const size = SIZE[crv];
  if (signature.length !== 2 * size || x.length > size || y.length > size) return false;
  const point = new Uint8Array(1 + 2 * size);
  point[0] = 4;
  point.set(fixed(x, size), 1);
  point.set(fixed(y, size), 1 + size);
  try {
    return CURVES[crv].verify(signature, digest, point, { prehash: false, lowS: false, format: 'compact' });
  } catch {
    return false;
  }
}

/**
 * Whether `d` is the private scalar of the point (x, y): the public point computed from d (constant-time
 * scalar multiplication) is that point. False for a scalar out of range or members longer than the curve size.
 */
export function isEcdsaKeyPair(crv: CurveName, d: Uint8Array, x: Uint8Array, y: Uint8Array): boolean {
  const size = SIZE[crv];
  if (d.length > size || x.length > size || y.length > size) return false;
  let point: Uint8Array;
  try {
    point = CURVES[crv].getPublicKey(fixed(d, size), false);
  } catch {
    return false;
  }
  return Buffer.from(point).equals(Buffer.concat([Uint8Array.of(4), fixed(x, size), fixed(y, size)]));
}
