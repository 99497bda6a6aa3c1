import { randomFillSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { b64url } from '../core/bytes.js';
import { EncodedJwsHeader, signJwsAsync } from '../core/jwt.js';
import type { EvidenceClaims } from './claims.js';

/** The service's token-signing identity: what `/certs` publishes and tokens name in `kid`. */
export interface TokenSigner {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly certDer: Uint8Array;
}

export interface TokenTimes {
  readonly now: Date;
  readonly lifetimeSeconds: number;
}

/**
 * Issues an MAA-shaped attestation token: RS256, header `{alg, jku, kid, typ}`, and the registered claims
 * MAA sets (`iss`, `iat`, `nbf` = `iat`, `exp`, `jti` as 64 hex, `x-ms-ver`). Only claims established by
 * verification are accepted (`EvidenceClaims`). A draft-policy evaluation yields an unsigned token
 * (`alg: none`), as MAA says such tokens "cannot be validated".
 */
export function issueToken(claims: EvidenceClaims, issuer: string, signer: TokenSigner | 'unsigned', times: TokenTimes): Promise<string> {
  return issue(claims, issuer, signer, times);
}

/** A service-signed token over a management result (policy get/set/reset, certificates), as MAA answers those. */
export function issueResultToken(result: Record<string, unknown>, issuer: string, signer: TokenSigner, times: TokenTimes): Promise<string> {
  return issue(result, issuer, signer, times);
}

/** The header of an unsigned (draft policy) token. */
const UNSIGNED_HEADER = b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));

/** The protected header of the service's tokens per issuer and key: encoded once, not per token. */
const headers = new Map<string, EncodedJwsHeader>();

function headerFor(issuer: string, kid: string): EncodedJwsHeader {
  const key = `${kid}\u0000${issuer}`;
  let h = headers.get(key);
  if (!h) {
    if (headers.size >= 64) headers.clear();
    h = new EncodedJwsHeader({ alg: 'RS256', jku: `${issuer}/certs`, kid, typ: 'JWT' });
    headers.set(key, h);
  }
  return h;
}

/**
 * `jti` values: 32 random bytes each, hex, drawn from a buffer refilled from the CSPRNG every
 * {@link JTI_BATCH} tokens (one call into OpenSSL per batch instead of per token); each byte is used once.
 */
const JTI_BATCH = 64;
const jtiPool = Buffer.alloc(32 * JTI_BATCH);
let jtiNext = JTI_BATCH;

function newJti(): string {
  if (jtiNext === JTI_BATCH) {
    randomFillSync(jtiPool);
    jtiNext = 0;
  }
  const at = 32 * jtiNext++;
  return jtiPool.toString('hex', at, at + 32);
}

/** The registered claims the service sets on every token, after (and over) the claims it is given. */
const REGISTERED = ['iss', 'iat', 'nbf', 'exp', 'jti', 'x-ms-ver'];

/**
 * The payload's JSON text: what `JSON.stringify({ ...claims, iss, iat, nbf, exp, jti, 'x-ms-ver' })` gives,
 * written as the claims' JSON with the registered claims appended, so the claims (a few dozen, some
 * kilobytes of runtime data) are neither copied into a second object nor walked twice. Claims that
 * already carry a registered name take the spread (its value is replaced where the name stands), as do
 * times that are not whole seconds.
 */
function payloadJson(claims: Record<string, unknown>, issuer: string, iat: number, lifetimeSeconds: number): string {
  const jti = newJti();
  let plain = Number.isSafeInteger(iat) && Number.isSafeInteger(lifetimeSeconds);
  for (const name of REGISTERED) if (Object.hasOwn(claims, name)) plain = false;
  if (!plain) return JSON.stringify({ ...claims, iss: issuer, iat, nbf: iat, exp: iat + lifetimeSeconds, jti, 'x-ms-ver': '1.0' });
  const registered = `"iss":${JSON.stringify(issuer)},"iat":${iat},"nbf":${iat},"exp":${iat + lifetimeSeconds},"jti":"${jti}","x-ms-ver":"1.0"}`;
  const text = JSON.stringify(claims);
  return text === '{}' ? `{${registered}` : `${text.slice(0, -1)},${registered}`;
}

/** The token, or the error of building it, as a promise (no async wrapper around signJwsAsync's own promise). */
function issue(claims: Record<string, unknown>, issuer: string, signer: TokenSigner | 'unsigned', times: TokenTimes): Promise<string> {
  try {
    const iat = Math.floor(times.now.getTime() / 1000);
    const payload = payloadJson(claims, issuer, iat, times.lifetimeSeconds);
    if (signer === 'unsigned') return Promise.resolve(`${UNSIGNED_HEADER}.${b64url(payload)}.`);
    // A string payload is the JSON text itself (signJwsAsync encodes it as it is).
    return signJwsAsync(headerFor(issuer, signer.kid), payload, signer.privateKey);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** `GET /certs`: the JWKS with `x5c`, as MAA publishes its signing certificates. */
export function signingKeySet(signers: readonly TokenSigner[]): { keys: Record<string, unknown>[] } {
  return {
    keys: signers.map((s) => {
      const jwk = s.privateKey.type === 'private' ? (s.privateKey.export({ format: 'jwk' }) as Record<string, unknown>) : {};
      return { alg: 'RS256', kid: s.kid, kty: 'RSA', use: 'sig', n: jwk.n, e: jwk.e, x5c: [Buffer.from(s.certDer).toString('base64')] };
    }),
  };
}

/**
 * `GET /.well-known/openid-configuration`, as MAA serves it, listing only endpoints Conclave serves (MAA's
 * `revocation_endpoint` is left out: there is no revocation route).
 */
export function openIdMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: `${issuer}/certs`,
    response_types_supported: ['token', 'none'],
    id_token_signing_alg_values_supported: ['RS256'],
    claims_supported: [
      'iss', 'iat', 'nbf', 'exp', 'jti', 'nonce', 'x-ms-ver', 'x-ms-attestation-type', 'x-ms-policy-hash', 'x-ms-runtime', 'x-ms-inittime',
      'x-ms-sgx-is-debuggable', 'x-ms-sgx-mrenclave', 'x-ms-sgx-mrsigner', 'x-ms-sgx-product-id', 'x-ms-sgx-svn', 'x-ms-sgx-ehd', 'x-ms-sgx-collateral',
      'x-ms-sevsnpvm-launchmeasurement', 'x-ms-sevsnpvm-hostdata', 'x-ms-sevsnpvm-is-debuggable', 'x-ms-isolation-tee',
      'tdx_mrtd', 'tdx_rtmr0', 'tdx_rtmr1', 'tdx_rtmr2', 'tdx_rtmr3', 'tdx_report_data', 'attester_tcb_status', 'x-conclave-simulated',
    ],
  };
}
