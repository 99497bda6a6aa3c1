import { type KeyObject, constants, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { b64url } from './bytes.js';
import { fail } from './errors.js';

/**
 * Compact JWS/JWT with node:crypto directly: synchronous, no threadpool hop, and a closed list of
 * algorithms (never `none`, never HMAC with a public key). Hot paths (attestation tokens, access tokens,
 * release responses) sign here.
 */
export type JwsAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';

export const ASYMMETRIC_ALGS: readonly JwsAlg[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

function params(alg: JwsAlg, key: KeyObject) {
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('RS')) return { hash, opts: { key, padding: constants.RSA_PKCS1_PADDING } };
  if (alg.startsWith('PS')) return { hash, opts: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 } };
  return { hash, opts: { key, dsaEncoding: 'ieee-p1363' as const } };
}

export function signJws(header: Record<string, unknown>, payload: unknown, key: KeyObject): string {
  const alg = header.alg as JwsAlg;
  if (!ASYMMETRIC_ALGS.includes(alg)) throw fail('internal', `cannot sign with alg ${String(alg)}`);
  const input = `${b64url(JSON.stringify(header))}.${typeof payload === 'string' ? b64url(payload) : b64url(JSON.stringify(payload))}`;
  const { hash, opts } = params(alg, key);
  return `${input}.${b64url(cryptoSign(hash, Buffer.from(input), opts))}`;
}

/**
 * Like {@link signJws}, but the private-key operation runs on the libuv threadpool (node:crypto's
 * callback form), so RSA signing of a busy server uses the other cores while the event loop serves TLS.
 */
export function signJwsAsync(header: Record<string, unknown>, payload: unknown, key: KeyObject): Promise<string> {
  const alg = header.alg as JwsAlg;
  if (!ASYMMETRIC_ALGS.includes(alg)) return Promise.reject(fail('internal', `cannot sign with alg ${String(alg)}`));
  const input = `${b64url(JSON.stringify(header))}.${typeof payload === 'string' ? b64url(payload) : b64url(JSON.stringify(payload))}`;
  const { hash, opts } = params(alg, key);
  return new Promise((resolve, reject) => {
    cryptoSign(hash, Buffer.from(input), opts, (err, sig) => (err ? reject(err) : resolve(`${input}.${b64url(sig)}`)));
  });
}

export interface DecodedJws {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly signingInput: string;
  readonly signature: Uint8Array;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function jsonPart(part: string, what: string): Record<string, unknown> {
  if (!B64URL.test(part)) throw fail('request.invalid', `the ${what} is not base64url`, { part: what });
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw fail('request.invalid', `the ${what} is not JSON`, { part: what });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail('request.invalid', `the ${what} is not a JSON object`, { part: what });
  return v as Record<string, unknown>;
}

/**
 * Splits and decodes a compact JWS with a JSON payload; verifies nothing. Fails with `request.invalid`
 * naming the part that is malformed (`detail.part`); callers rewrap that in their own error code.
 */
export function decodeJws(token: string): DecodedJws {
  const parts = token.trim().split('.');
  if (parts.length !== 3) throw fail('request.invalid', 'not a compact JWS (header.payload.signature)', { part: 'token' });
  const [h, p, sig] = parts as [string, string, string];
  const header = jsonPart(h, 'JWS header');
  const payload = jsonPart(p, 'JWS payload');
  if (!B64URL.test(sig)) throw fail('request.invalid', 'the JWS signature is not base64url', { part: 'JWS signature' });
  return { header, payload, signingInput: `${h}.${p}`, signature: new Uint8Array(Buffer.from(sig, 'base64url')) };
}

/** Verifies a decoded JWS signature with `key`; the caller has already checked `alg` is one it allows. */
export function verifyJwsSignature(decoded: DecodedJws, key: KeyObject): boolean {
  const alg = decoded.header.alg as JwsAlg;
  if (!ASYMMETRIC_ALGS.includes(alg)) return false;
  const { hash, opts } = params(alg, key);
  try {
    return cryptoVerify(hash, Buffer.from(decoded.signingInput), opts, decoded.signature);
  } catch {
    return false;
  }
}
