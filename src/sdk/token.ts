import { type KeyObject, createPublicKey } from 'node:crypto';
import { fail } from '../core/errors.js';
import { ASYMMETRIC_ALGS, type JwsAlg, decodeJws, verifyJwsSignature } from '../core/jwt.js';
import { type CaInput, exchangeJson } from './http.js';

export interface DecodedToken {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

/** Header and claims of a JWT, verifying nothing. */
export function decodeToken(token: string): DecodedToken {
  const d = decodeJws(token.trim());
  return { header: d.header, claims: d.payload };
}

export interface VerifyTokenOptions {
  /** The issuer URL (`iss`); its `/.well-known/openid-configuration` names the JWKS. */
  readonly issuer: string;
  readonly ca?: CaInput;
  readonly at?: Date;
  /** Allowed clock skew for exp/nbf, seconds (default 60). */
  readonly skewSeconds?: number;
}

function keyOfJwk(jwk: Record<string, unknown>): KeyObject {
  if (Array.isArray(jwk.x5c) && typeof jwk.x5c[0] === 'string') {
    return createPublicKey({ key: `-----BEGIN CERTIFICATE-----\n${jwk.x5c[0]}\n-----END CERTIFICATE-----\n`, format: 'pem' });
  }
  return createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
}

/**
 * Verifies an attestation token against its issuer's OpenID metadata: the key named by `kid` in the
 * issuer's JWKS, the signature, `iss`, and `exp`/`nbf`. Throws `sdk.token_invalid`.
 */
export async function verifyAttestationToken(token: string, opts: VerifyTokenOptions): Promise<DecodedToken> {
  const d = decodeJws(token.trim());
  const issuer = opts.issuer.replace(/\/+$/, '');
  const alg = d.header.alg;
  if (typeof alg !== 'string' || !ASYMMETRIC_ALGS.includes(alg as JwsAlg)) throw fail('sdk.token_invalid', `token alg ${String(alg)} is not allowed`, { alg });
  const meta = await exchangeJson(`${issuer}/.well-known/openid-configuration`, { ca: opts.ca, what: 'reading the issuer metadata' });
  const jwksUri = typeof meta.jwks_uri === 'string' ? meta.jwks_uri : `${issuer}/certs`;
  const jwks = await exchangeJson(jwksUri, { ca: opts.ca, what: 'reading the issuer JWKS', headers: { accept: 'application/jwk+json, application/json' } });
  const keys = Array.isArray(jwks.keys) ? (jwks.keys as Record<string, unknown>[]) : [];
  const jwk = keys.find((k) => k.kid === d.header.kid);
  if (!jwk) throw fail('sdk.token_invalid', `the issuer publishes no key with kid ${String(d.header.kid)}`, { kid: d.header.kid });
  let key: KeyObject;
  try {
    key = keyOfJwk(jwk);
  } catch (e) {
    throw fail('sdk.token_invalid', 'the issuer key cannot be read', { kid: d.header.kid }, e);
  }
  if (!verifyJwsSignature(d, key)) throw fail('sdk.token_invalid', 'token signature does not verify with the issuer key', { kid: d.header.kid });
  const iss = typeof d.payload.iss === 'string' ? d.payload.iss.replace(/\/+$/, '') : undefined;
  if (iss !== issuer) throw fail('sdk.token_invalid', `token issuer ${String(d.payload.iss)} is not ${issuer}`, { iss: d.payload.iss });
  const now = Math.floor((opts.at ?? new Date()).getTime() / 1000);
  const skew = opts.skewSeconds ?? 60;
  if (typeof d.payload.exp === 'number' && now > d.payload.exp + skew) throw fail('sdk.token_invalid', 'token has expired', { exp: d.payload.exp });
  if (typeof d.payload.nbf === 'number' && now + skew < d.payload.nbf) throw fail('sdk.token_invalid', 'token is not yet valid', { nbf: d.payload.nbf });
  return { header: d.header, claims: d.payload };
}
