/**
 * ECDSA over a precomputed digest (AKV `sign`/`verify` take the digest, and node:crypto always hashes
 * its input). SEC 1 §4.1.3/§4.1.4 with the deterministic nonce of RFC 6979 §3.2, so signing needs no
 * randomness. BigInt arithmetic is not constant-time: this serves the software key protector only;
 * hardware providers sign inside the HSM.
 */
import { createHmac } from 'node:crypto';
import type { CurveName } from './ports.js';

interface Curve {
  readonly p: bigint;
  readonly a: bigint;
  readonly n: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  /** Bytes of a scalar / coordinate. */
  readonly size: number;
}

const h = (s: string) => BigInt(`0x${s}`);

/** SEC 2 v2 §2.4.1 (secp256k1), FIPS 186-4 D.1.2.3–5 (P-256, P-384, P-521). */
const CURVE_PARAMS: Record<CurveName, Curve> = {
  'P-256': {
    p: h('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff'),
    a: h('ffffffff00000001000000000000000000000000fffffffffffffffffffffffc'),
    n: h('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
    gx: h('6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296'),
    gy: h('4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5'),
    size: 32,
  },
  'P-384': {
    p: h('fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff'),
    a: h('fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc'),
    n: h('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
    gx: h('aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7'),
    gy: h('3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f'),
    size: 48,
  },
  'P-521': {
    p: (1n << 521n) - 1n,
    a: (1n << 521n) - 4n,
    n: h('01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409'),
    gx: h('00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66'),
    gy: h('011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650'),
    size: 66,
  },
  'P-256K': {
    p: h('fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f'),
    a: 0n,
    n: h('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141'),
    gx: h('79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798'),
    gy: h('483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8'),
    size: 32,
  },
};

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function inv(a: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

/** Jacobian point (X, Y, Z); Z = 0 is the point at infinity. */
type Point = readonly [bigint, bigint, bigint];
const INFINITY: Point = [0n, 1n, 0n];

function double(c: Curve, [x, y, z]: Point): Point {
  if (z === 0n || y === 0n) return INFINITY;
  const { p } = c;
  const y2 = (y * y) % p;
  const s = (4n * x * y2) % p;
  const z2 = (z * z) % p;
  const m = mod(3n * x * x + c.a * z2 * z2, p);
  const x3 = mod(m * m - 2n * s, p);
  const y3 = mod(m * (s - x3) - 8n * y2 * y2, p);
  const z3 = (2n * y * z) % p;
  return [x3, y3, z3];
}

function add(c: Curve, a: Point, b: Point): Point {
  if (a[2] === 0n) return b;
  if (b[2] === 0n) return a;
  const { p } = c;
  const z1z1 = (a[2] * a[2]) % p;
  const z2z2 = (b[2] * b[2]) % p;
  const u1 = (a[0] * z2z2) % p;
  const u2 = (b[0] * z1z1) % p;
  const s1 = (a[1] * b[2] * z2z2) % p;
  const s2 = (b[1] * a[2] * z1z1) % p;
  if (u1 === u2) return s1 === s2 ? double(c, a) : INFINITY;
  const hh = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const h2 = (hh * hh) % p;
  const h3 = (h2 * hh) % p;
  const x3 = mod(r * r - h3 - 2n * u1 * h2, p);
  const y3 = mod(r * (u1 * h2 - x3) - s1 * h3, p);
  const z3 = (hh * a[2] * b[2]) % p;
  return [x3, y3, z3];
}

function multiply(c: Curve, k: bigint, pt: Point): Point {
  let r: Point = INFINITY;
  let q = pt;
  while (k > 0n) {
    if (k & 1n) r = add(c, r, q);
    q = double(c, q);
    k >>= 1n;
  }
  return r;
}

function affineX(c: Curve, pt: Point): bigint {
  const zi = inv(pt[2], c.p);
  return (pt[0] * zi * zi) % c.p;
}

function toBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`);
}

function toBytes(v: bigint, len: number): Buffer {
  return Buffer.from(v.toString(16).padStart(len * 2, '0'), 'hex');
}

function bitLength(v: bigint): number {
  return v.toString(2).length;
}

/** RFC 6979 §2.3.2 bits2int. */
function bits2int(c: Curve, b: Uint8Array): bigint {
  const v = toBig(b);
  const excess = b.length * 8 - bitLength(c.n);
  return excess > 0 ? v >> BigInt(excess) : v;
}

function hashOfDigest(digest: Uint8Array): 'sha256' | 'sha384' | 'sha512' {
  return digest.length <= 32 ? 'sha256' : digest.length <= 48 ? 'sha384' : 'sha512';
}

/** RFC 6979 §3.2 deterministic nonce. */
function nonce(c: Curve, d: bigint, digest: Uint8Array): bigint {
  const alg = hashOfDigest(digest);
  const hlen = alg === 'sha256' ? 32 : alg === 'sha384' ? 48 : 64;
  const x = toBytes(d, c.size);
  const h1 = toBytes(mod(bits2int(c, digest), c.n), c.size);
  let v = Buffer.alloc(hlen, 1);
  let k = Buffer.alloc(hlen, 0);
  const mac = (key: Buffer, ...parts: Uint8Array[]) => {
    const m = createHmac(alg, key);
    for (const p of parts) m.update(p);
    return m.digest();
  };
  k = mac(k, v, Uint8Array.of(0), x, h1);
  v = mac(k, v);
  k = mac(k, v, Uint8Array.of(1), x, h1);
  v = mac(k, v);
  const qbytes = Math.ceil(bitLength(c.n) / 8);
  for (;;) {
    let t = Buffer.alloc(0);
    while (t.length < qbytes) {
      v = mac(k, v);
      t = Buffer.concat([t, v]);
    }
    const cand = bits2int(c, t);
    if (cand >= 1n && cand < c.n) return cand;
    k = mac(k, v, Uint8Array.of(0));
    v = mac(k, v);
  }
}

/** Signs `digest` with the private scalar `d`; returns r‖s (JWA §3.4 / IEEE P1363 form). */
export function signDigestEcdsa(crv: CurveName, d: Uint8Array, digest: Uint8Array): Uint8Array {
  const c = CURVE_PARAMS[crv];
  const dn = toBig(d);
  const e = bits2int(c, digest);
  for (let extra = 0; ; extra++) {
    const k = nonce(c, dn, extra === 0 ? digest : Buffer.concat([digest, Buffer.alloc(extra)]));
    const r = mod(affineX(c, multiply(c, k, [c.gx, c.gy, 1n])), c.n);
    if (r === 0n) continue;
    const s = mod(inv(k, c.n) * (e + r * dn), c.n);
    if (s === 0n) continue;
    return new Uint8Array(Buffer.concat([toBytes(r, c.size), toBytes(s, c.size)]));
  }
}

/** Verifies r‖s over `digest` with the public point (x, y). */
export function verifyDigestEcdsa(crv: CurveName, x: Uint8Array, y: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  const c = CURVE_PARAMS[crv];
  if (signature.length !== 2 * c.size) return false;
  const r = toBig(signature.subarray(0, c.size));
  const s = toBig(signature.subarray(c.size));
  if (r <= 0n || r >= c.n || s <= 0n || s >= c.n) return false;
  const w = inv(s, c.n);
  const e = bits2int(c, digest);
  const u1 = mod(e * w, c.n);
  const u2 = mod(r * w, c.n);
  const pt = add(c, multiply(c, u1, [c.gx, c.gy, 1n]), multiply(c, u2, [toBig(x), toBig(y), 1n]));
  if (pt[2] === 0n) return false;
  return mod(affineX(c, pt), c.n) === r;
}
