import { fail } from '../core/errors.js';
import { ASYMMETRIC_ALGS, decodeJws, jwksCandidates, type PublicJwk, verifyJwt } from '../core/jwt.js';
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
  /** When set, `aud` must be or contain it. MAA attestation tokens carry no `aud`, so none by default. */
  readonly audience?: string;
  /** The issuer's JWKS when the caller already holds it (offline verification); else fetched over HTTPS. */
  readonly jwks?: { readonly keys: readonly PublicJwk[] };
  readonly ca?: CaInput;
  readonly at?: Date;
  /** Allowed clock skew for exp/nbf/iat, seconds (default 60, at most 300). */
  readonly skewSeconds?: number;
  /**
   * Accept a token minted from the simulated TEE (it carries `x-conclave-simulated`, whatever its value):
   * development only. Refused by default, as a vault without `--simulate` refuses it.
   */
  readonly allowSimulated?: boolean;
}

/** `jwks_uri` when it lies on the issuer's own origin (MAA and Conclave publish `{issuer}/certs`). */
function jwksUriOf(meta: Record<string, unknown>, issuer: string): string {
  const uri = typeof meta.jwks_uri === 'string' ? meta.jwks_uri : `${issuer}/certs`;
  let origin: string | undefined;
  try {
    origin = new URL(uri).origin;
  } catch {
    origin = undefined;
  }
  // Trust in the keys comes from the issuer's origin (its TLS name and the caller's CA); another origin,
  // or plain http to a loopback listener, would be a key source the caller never configured.
  if (origin !== new URL(issuer).origin) {
    throw fail('sdk.token_invalid', `attestation token rejected: the issuer metadata names a JWKS outside ${new URL(issuer).origin}`, { reason: 'untrusted_jwks_uri', issuer, jwksUri: uri.slice(0, 200) });
  }
  return uri;
}

async function fetchJwks(issuer: string, ca: CaInput | undefined): Promise<readonly PublicJwk[]> {
  const meta = await exchangeJson(`${issuer}/.well-known/openid-configuration`, { ca, what: 'reading the issuer metadata' });
  const jwksUri = jwksUriOf(meta, issuer);
  const jwks = await exchangeJson(jwksUri, { ca, what: 'reading the issuer JWKS', headers: { accept: 'application/jwk+json, application/json' } });
  return Array.isArray(jwks.keys) ? (jwks.keys as PublicJwk[]) : [];
}

/**
 * Verifies an attestation token with the one token verifier (core/jwt.ts): an asymmetric algorithm, the
 * key named by `kid` in the issuer's JWKS (on the issuer's own origin) of the type and curve the algorithm binds (never a key from the
 * token's own headers), `crit` refused, `typ` JWT or absent, `iss` the issuer, `exp` required, `nbf`/`iat`
 * within the skew, `aud` when asked for, and no `x-conclave-simulated` unless `allowSimulated`. Throws
 * `sdk.token_invalid` with `detail.reason`.
 */
export async function verifyAttestationToken(token: string, opts: VerifyTokenOptions): Promise<DecodedToken> {
  const issuer = opts.issuer.replace(/\/+$/, '');
  let jwks: readonly PublicJwk[] | undefined = opts.jwks?.keys;
  const v = await verifyJwt(
    token.trim(),
    {
      what: 'attestation token',
      errorCode: 'sdk.token_invalid',
      algorithms: ASYMMETRIC_ALGS,
      issuer: (iss) => (iss.replace(/\/+$/, '') === issuer ? issuer : undefined),
      audience: opts.audience ?? null,
      types: [undefined, 'JWT'],
      keys: async ({ alg, kid, refresh }) => {
        if (jwks === undefined || (refresh && opts.jwks === undefined)) jwks = await fetchJwks(issuer, opts.ca);
        return jwksCandidates(jwks, kid, alg, issuer);
      },
      ...(opts.skewSeconds !== undefined ? { clockSkewSeconds: opts.skewSeconds } : {}),
    },
    opts.at ?? new Date(),
  );
  // A `--simulate` attestation service signs tokens for evidence no vendor root vouches for; they say so.
  if (v.claims['x-conclave-simulated'] !== undefined && opts.allowSimulated !== true) {
    throw fail('sdk.token_invalid', 'attestation token rejected: it comes from simulated evidence (x-conclave-simulated); pass allowSimulated for development', {
      reason: 'simulated',
      issuer: v.iss,
    });
  }
  return { header: v.header, claims: v.claims };
}
