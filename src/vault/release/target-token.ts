/**
 * Verification of the release `target`: an attestation token ("Environment Assertion") from an
 * authority the vault trusts, checked against the keys that authority publishes through its OpenID
 * metadata (GRAM §"Key Vault and Managed HSM Attestation Token Requirements"; skr-maa-protocol.md §1.5).
 * The token's own `jku`/`x5c`/`jwk` headers are never used to find a key: anyone can name their own.
 */
import { createHash, createPublicKey, type KeyObject, verify as verifySignature, X509Certificate, constants } from 'node:crypto';
import { fail, isConclaveError } from '../../core/errors.js';
import { decodeJws as decodeCompactJws } from '../../core/jwt.js';
import { markVerified, type Verified } from '../../core/verified.js';
import { normalizeAuthority } from './policy.js';
import type { GetJwks, Jwk } from './ports.js';

/** Asymmetric algorithms only: never `none`, never HMAC (a public key must not double as a MAC secret). */
export const TARGET_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384'] as const;
export type TargetTokenAlgorithm = (typeof TARGET_TOKEN_ALGORITHMS)[number];

/**
 * Default tolerance for `exp`/`nbf`. Small on purpose: MAA tokens live 8 h, so the skew only has to
 * absorb clock drift between the authority and the vault, and a long skew widens the replay window.
 */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;

export type TargetTokenFailure = 'untrusted_issuer' | 'bad_signature' | 'alg_not_allowed' | 'unknown_kid' | 'expired' | 'not_yet_valid' | 'malformed';

export interface JwsHeader {
  readonly alg: string;
  readonly kid?: string;
  readonly typ?: string;
  readonly [name: string]: unknown;
}

export interface TargetToken {
  readonly header: JwsHeader;
  readonly claims: Readonly<Record<string, unknown>>;
  /** The token's `iss` as written. */
  readonly issuer: string;
  /** The trusted authority (as configured) that `iss` matched. */
  readonly authority: string;
}

export interface VerifyTargetTokenOptions {
  readonly trustedAuthorities: readonly string[];
  readonly getJwks: GetJwks;
  readonly at: Date;
  readonly clockSkewSeconds?: number;
}

function invalid(reason: TargetTokenFailure, message: string, extra?: Record<string, unknown>): never {
  throw fail('release.token_invalid', `target attestation token rejected: ${message}`, { reason, ...extra });
}

/** Splits and decodes a compact JWS without checking anything but its shape (core/jwt.ts), as a token failure. */
export function decodeJws(jws: string): { header: JwsHeader; payload: Record<string, unknown>; signingInput: Uint8Array; signature: Uint8Array } {
  let d: ReturnType<typeof decodeCompactJws>;
  try {
    d = decodeCompactJws(jws);
  } catch (e) {
    return invalid('malformed', isConclaveError(e) ? e.message : 'not a compact JWS');
  }
  if (typeof d.header.alg !== 'string') invalid('malformed', 'JWS header has no alg');
  return { header: d.header as JwsHeader, payload: d.payload, signingInput: Buffer.from(d.signingInput, 'ascii'), signature: d.signature };
}

interface AlgParams {
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly keyType: 'rsa' | 'ec';
  readonly pss?: true;
  readonly curve?: 'prime256v1' | 'secp384r1';
}

const ALG_PARAMS: Record<TargetTokenAlgorithm, AlgParams> = {
  RS256: { hash: 'sha256', keyType: 'rsa' },
  RS384: { hash: 'sha384', keyType: 'rsa' },
  RS512: { hash: 'sha512', keyType: 'rsa' },
  PS256: { hash: 'sha256', keyType: 'rsa', pss: true },
  ES256: { hash: 'sha256', keyType: 'ec', curve: 'prime256v1' },
  ES384: { hash: 'sha384', keyType: 'ec', curve: 'secp384r1' },
};

function isAllowedAlg(alg: string): alg is TargetTokenAlgorithm {
  return (TARGET_TOKEN_ALGORITHMS as readonly string[]).includes(alg);
}

// Immutable derived values keyed by the content they derive from (issuer, kid, JWK bytes).
const keyCache = new Map<string, KeyObject | null>();
const KEY_CACHE_LIMIT = 4096;

/**
 * The public key of a JWK: from its own parameters, or from `x5c[0]` when it carries only a
 * certificate (MAA `/certs` publishes `{kid, kty, x5c}`). The certificate is not chain-validated: trust
 * comes from the authority's metadata, not from the certificate. Null for a key node cannot read.
 */
export function importJwk(jwk: Jwk): KeyObject | null {
  try {
    if ((jwk.kty === 'RSA' && jwk.n && jwk.e) || (jwk.kty === 'EC' && jwk.x && jwk.y)) {
      const { kty, n, e, crv, x, y } = jwk;
      return createPublicKey({ key: { kty, n, e, crv, x, y } as import('node:crypto').JsonWebKey, format: 'jwk' });
    }
    if (Array.isArray(jwk.x5c) && typeof jwk.x5c[0] === 'string') return new X509Certificate(Buffer.from(jwk.x5c[0], 'base64')).publicKey;
  } catch {
    // unreadable key material: the caller treats it as absent
  }
  return null;
}

/** {@link importJwk}, cached per (issuer, kid, JWK content) for an authority's long-lived signing keys. */
export function publicKeyOfJwk(jwk: Jwk, issuer = ''): KeyObject | null {
  const id = createHash('sha256').update(`${issuer}\n${jwk.kid ?? ''}\n${JSON.stringify(jwk)}`).digest('base64url');
  const hit = keyCache.get(id);
  if (hit !== undefined) return hit;
  const key = importJwk(jwk);
  if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear();
  keyCache.set(id, key);
  return key;
}

function keyFits(key: KeyObject, p: AlgParams): boolean {
  if (p.keyType === 'rsa') return key.asymmetricKeyType === 'rsa' || (p.pss === true && key.asymmetricKeyType === 'rsa-pss');
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === p.curve;
}

function checkSignature(p: AlgParams, key: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (p.keyType === 'ec') return verifySignature(p.hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    if (p.pss) return verifySignature(p.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
    return verifySignature(p.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
  } catch {
    return false;
  }
}

function candidatesOf(keys: readonly Jwk[], kid: string | undefined, alg: TargetTokenAlgorithm): Jwk[] {
  return keys.filter(
    (k) =>
      (kid === undefined || k.kid === kid) &&
      (k.use === undefined || k.use === 'sig') &&
      (k.alg === undefined || k.alg === alg),
  );
}

function numericDate(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid('malformed', `${name} is not a NumericDate`);
  return v;
}

/**
 * Verifies a release target token. Authenticity checks stop at the first failure, in this order: shape,
 * algorithm, issuer, key, signature, validity period. Throws `release.token_invalid` with
 * `{reason}` ∈ {@link TargetTokenFailure}.
 */
export async function verifyTargetToken(jwt: string, opts: VerifyTargetTokenOptions): Promise<Verified<TargetToken>> {
  const { header, payload, signingInput, signature } = decodeJws(jwt);
  if (!isAllowedAlg(header.alg)) invalid('alg_not_allowed', `algorithm '${header.alg}' is not allowed`, { alg: header.alg });
  const alg = header.alg;
  // RFC 7515 §4.1.11: a recipient must reject critical extensions it does not understand (all of them here).
  if (header.crit !== undefined) invalid('malformed', 'JWS header names critical extensions this vault does not support');
  if (header.kid !== undefined && typeof header.kid !== 'string') invalid('malformed', 'JWS header kid is not a string');

  const iss = payload.iss;
  if (typeof iss !== 'string' || iss.length === 0) invalid('untrusted_issuer', 'token has no iss');
  const normalizedIss = normalizeAuthority(iss);
  const authority = opts.trustedAuthorities.find((a) => normalizeAuthority(a) === normalizedIss);
  if (authority === undefined) invalid('untrusted_issuer', `issuer ${iss} is not a trusted attestation authority`, { issuer: iss });

  const params = ALG_PARAMS[alg];
  const kid = header.kid;
  let candidates = candidatesOf((await opts.getJwks(authority, { forceRefresh: false })).keys, kid, alg);
  if (candidates.length === 0) {
    // The authority may have rotated its keys since the cached JWKS: refresh once, then give up.
    candidates = candidatesOf((await opts.getJwks(authority, { forceRefresh: true })).keys, kid, alg);
    if (candidates.length === 0) invalid('unknown_kid', `issuer ${iss} publishes no signing key with kid ${JSON.stringify(kid ?? null)}`, { issuer: iss, kid });
  }
  const verified = candidates.some((jwk) => {
    const key = publicKeyOfJwk(jwk, authority);
    return key !== null && keyFits(key, params) && checkSignature(params, key, signingInput, signature);
  });
  if (!verified) invalid('bad_signature', `signature does not verify with the key ${JSON.stringify(kid ?? null)} of ${iss}`, { issuer: iss, kid });

  const skew = opts.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const now = opts.at.getTime() / 1000;
  const exp = numericDate(payload.exp, 'exp');
  const nbf = numericDate(payload.nbf, 'nbf');
  // MAA always sets exp (iat + 8 h); a token without one would never expire.
  if (exp === undefined) invalid('malformed', 'token has no exp');
  if (now > exp + skew) invalid('expired', `token expired at ${new Date(exp * 1000).toISOString()}`, { exp });
  if (nbf !== undefined && now < nbf - skew) invalid('not_yet_valid', `token is not valid before ${new Date(nbf * 1000).toISOString()}`, { nbf });

  return markVerified({ header, claims: payload, issuer: iss, authority });
}
