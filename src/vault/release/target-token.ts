/**
 * Verification of the release `target`: an attestation token ("Environment Assertion") from an
 * authority the vault trusts, checked against the keys that authority publishes through its OpenID
 * metadata (GRAM §"Key Vault and Managed HSM Attestation Token Requirements"; skr-maa-protocol.md §1.5).
 * The token's own `jku`/`x5c`/`jwk` headers are never used to find a key: anyone can name their own.
 */
import { fail, isConclaveError } from '../../core/errors.js';
import { decodeJws as decodeCompactJws, type JwtFailure, type JwtUse, jwksCandidates, verifyJwt } from '../../core/jwt.js';
import type { Verified } from '../../core/verified.js';
import { normalizeAuthority } from './policy.js';
import type { GetJwks } from './ports.js';

export { DEFAULT_CLOCK_SKEW_SECONDS, importJwk, publicKeyOfJwk } from '../../core/jwt.js';

/** Asymmetric algorithms only: never `none`, never HMAC (a public key must not double as a MAC secret). */
export const TARGET_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384'] as const;
export type TargetTokenAlgorithm = (typeof TARGET_TOKEN_ALGORITHMS)[number];

export type TargetTokenFailure = JwtFailure;

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

/**
 * The release use of the one token verifier (core/jwt.ts): an MAA-style token, RS/PS/ES algorithms,
 * `iss` one of the trusted authorities (normalised as release policies name them), its keys from the
 * authority's JWKS (one forced refresh on an unknown kid), `typ` JWT or absent, no audience (MAA sets
 * none: the vault is not named in an attestation token), `exp` required.
 */
export function targetTokenUse(opts: Omit<VerifyTargetTokenOptions, 'at'>): JwtUse {
  const trusted = new Map(opts.trustedAuthorities.map((a) => [normalizeAuthority(a), a]));
  return {
    what: 'target attestation token',
    errorCode: 'release.token_invalid',
    algorithms: TARGET_TOKEN_ALGORITHMS,
    issuerRole: 'attestation authority',
    issuer: (iss) => trusted.get(normalizeAuthority(iss)),
    audience: null,
    types: [undefined, 'JWT'],
    keys: async ({ alg, kid, issuer, refresh }) => jwksCandidates((await opts.getJwks(issuer, { forceRefresh: refresh })).keys, kid, alg, issuer),
    ...(opts.clockSkewSeconds !== undefined ? { clockSkewSeconds: opts.clockSkewSeconds } : {}),
  };
}

/**
 * Verifies a release target token. Throws `release.token_invalid` with `{reason}` ∈ {@link TargetTokenFailure}.
 */
export async function verifyTargetToken(jwt: string, opts: VerifyTargetTokenOptions): Promise<Verified<TargetToken>> {
  const v = await verifyJwt(jwt, targetTokenUse(opts), opts.at);
  return { ...v, header: v.header as JwsHeader, issuer: v.iss, authority: v.issuer } as Verified<TargetToken>;
}
