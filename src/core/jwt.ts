import { signAsync } from './async-crypto.js';
import { type JsonWebKey, type KeyObject, X509Certificate, constants, createHash, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { b64url } from './bytes.js';
import { type ErrorCode, fail } from './errors.js';
import { jsonTextTooDeep, MAX_JSON_DEPTH } from './json.js';
import { verificationTime } from './time.js';
import { markVerified, type Verified } from './verified.js';

/**
 * Compact JWS/JWT with node:crypto directly: the one signer and the one verifier ({@link verifyJwt}) of
 * every token Conclave reads or writes: synchronous, no threadpool hop, and a closed list of
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
  return `${input}.${b64url(cryptoSign(hash, Buffer.from(input, 'latin1'), opts))}`;
}

/** A JWS protected header encoded once (base64url of its JSON), for a signer that reuses the same header. */
export class EncodedJwsHeader {
  readonly alg: JwsAlg;
  readonly encoded: string;
  constructor(header: Record<string, unknown>) {
    const alg = header.alg as JwsAlg;
    if (!ASYMMETRIC_ALGS.includes(alg)) throw fail('internal', `cannot sign with alg ${String(alg)}`);
    this.alg = alg;
    this.encoded = b64url(JSON.stringify(header));
  }
}

/**
 * Like {@link signJws}, but the private-key operation runs on the libuv threadpool (node:crypto's
 * callback form), so RSA signing of a busy server uses the other cores while the event loop serves TLS.
 * The header may come encoded already ({@link EncodedJwsHeader}); the payload is JSON-serialised once.
 */
export function signJwsAsync(header: Record<string, unknown> | EncodedJwsHeader, payload: unknown, key: KeyObject): Promise<string> {
  let h: EncodedJwsHeader;
  try {
    h = header instanceof EncodedJwsHeader ? header : new EncodedJwsHeader(header);
  } catch (e) {
    return Promise.reject(e);
  }
  // The signing input is base64url and dots: ASCII, so latin1 encodes it byte for byte.
  const input = `${h.encoded}.${typeof payload === 'string' ? b64url(payload) : b64url(JSON.stringify(payload))}`;
  const { hash, opts } = params(h.alg, key);
  return signAsync(hash, Buffer.from(input, 'latin1'), opts).then((sig) => `${input}.${sig.toString('base64url')}`);
}

export interface DecodedJws {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly signingInput: string;
  readonly signature: Uint8Array;
}

const B64URL = /^[A-Za-z0-9_-]*$/;
// Fatal: a token whose JSON is not valid UTF-8 is malformed, not silently repaired with U+FFFD.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Base64url as RFC 7515 §2 writes it: no padding, no characters outside the alphabet, no stray bits. */
function base64urlPart(part: string, what: string): Buffer {
  const bytes = B64URL.test(part) && part.length % 4 !== 1 ? Buffer.from(part, 'base64url') : undefined;
  if (bytes === undefined || bytes.toString('base64url') !== part) throw fail('request.invalid', `the ${what} is not base64url`, { part: what });
  return bytes;
}

function jsonPart(part: string, what: string): Record<string, unknown> {
  const bytes = base64urlPart(part, what);
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw fail('request.invalid', `the ${what} is not JSON in UTF-8`, { part: what });
  }
  // Claims are walked, copied and serialised recursively after this: a deep part would overflow the stack there.
  if (jsonTextTooDeep(text)) throw fail('request.invalid', `the ${what} nests deeper than ${MAX_JSON_DEPTH} levels`, { part: what });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw fail('request.invalid', `the ${what} is not JSON in UTF-8`, { part: what });
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
  return { header, payload, signingInput: `${h}.${p}`, signature: new Uint8Array(base64urlPart(sig, 'JWS signature')) };
}

/** Key type and curve each algorithm binds (RFC 7518 §3.1): a key of another type never verifies. */
const KEY_OF_ALG: Record<JwsAlg, { readonly type: 'rsa' | 'ec'; readonly curve?: string }> = {
  RS256: { type: 'rsa' },
  RS384: { type: 'rsa' },
  RS512: { type: 'rsa' },
  PS256: { type: 'rsa' },
  PS384: { type: 'rsa' },
  PS512: { type: 'rsa' },
  ES256: { type: 'ec', curve: 'prime256v1' },
  ES384: { type: 'ec', curve: 'secp384r1' },
  ES512: { type: 'ec', curve: 'secp521r1' },
};

/** Whether `key` is of the type (and, for ECDSA, on the curve) that `alg` requires. */
export function keyFitsAlg(key: KeyObject, alg: JwsAlg): boolean {
  const want = KEY_OF_ALG[alg];
  if (key.type !== 'public' && key.type !== 'private') return false;
  if (want.type === 'rsa') return key.asymmetricKeyType === 'rsa' || (alg.startsWith('PS') && key.asymmetricKeyType === 'rsa-pss');
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === want.curve;
}

/**
 * Verifies a decoded JWS signature with `key`: false unless `alg` is asymmetric and the key is of the
 * type and curve `alg` binds. Callers that check claims use {@link verifyJwt} instead.
 */
export function verifyJwsSignature(decoded: DecodedJws, key: KeyObject): boolean {
  const alg = decoded.header.alg as JwsAlg;
  if (!ASYMMETRIC_ALGS.includes(alg) || !keyFitsAlg(key, alg)) return false;
  const { hash, opts } = params(alg, key);
  try {
    return cryptoVerify(hash, Buffer.from(decoded.signingInput), opts, decoded.signature);
  } catch {
    return false;
  }
}

// ── JWKs ─────────────────────────────────────────────────────────────────────

/** A JSON Web Key as an issuer publishes it (RFC 7517 §4), read loosely: unknown members are ignored. */
export interface PublicJwk {
  readonly kty: string;
  readonly kid?: string;
  readonly use?: string;
  readonly alg?: string;
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly x5c?: readonly string[];
  readonly [extra: string]: unknown;
}

/**
 * The public key of a JWK published by an issuer the caller trusts: from its own parameters, or from
 * `x5c[0]` when it carries only a certificate (MAA `/certs` publishes `{kid, kty, x5c}`). The certificate
 * is not chain-validated: trust comes from the issuer's metadata, not from the certificate. Null for a
 * key node cannot read. Never for a token's own `jwk`/`x5c` header.
 */
export function importJwk(jwk: PublicJwk): KeyObject | null {
  try {
    if ((jwk.kty === 'RSA' && jwk.n && jwk.e) || (jwk.kty === 'EC' && jwk.x && jwk.y)) {
      const { kty, n, e, crv, x, y } = jwk;
      return createPublicKey({ key: { kty, n, e, crv, x, y } as JsonWebKey, format: 'jwk' });
    }
    if (Array.isArray(jwk.x5c) && typeof jwk.x5c[0] === 'string') return new X509Certificate(Buffer.from(jwk.x5c[0], 'base64')).publicKey;
  } catch {
    // unreadable key material: the caller treats it as absent
  }
  return null;
}

// Immutable derived values keyed by the content they derive from (issuer, kid, JWK bytes).
const keyCache = new Map<string, KeyObject | null>();
const KEY_CACHE_LIMIT = 4096;

/**
 * The key a JWK object gave, with the members {@link importJwk} reads as they were then: a JWKS held by
 * its fetcher's cache is the same objects on every token, so its keys are found without serialising and
 * hashing each JWK again; an object whose members changed since is looked up by content again.
 */
interface JwkMemo {
  readonly issuer: string;
  readonly kty: unknown;
  readonly n: unknown;
  readonly e: unknown;
  readonly crv: unknown;
  readonly x: unknown;
  readonly y: unknown;
  readonly x5c: unknown;
  readonly x5c0: unknown;
  readonly key: KeyObject | null;
}
const jwkMemo = new WeakMap<PublicJwk, JwkMemo>();

function sameMaterial(m: JwkMemo, jwk: PublicJwk, issuer: string): boolean {
  return (
    m.issuer === issuer &&
    m.kty === jwk.kty &&
    m.n === jwk.n &&
    m.e === jwk.e &&
    m.crv === jwk.crv &&
    m.x === jwk.x &&
    m.y === jwk.y &&
    m.x5c === jwk.x5c &&
    m.x5c0 === (Array.isArray(jwk.x5c) ? jwk.x5c[0] : undefined)
  );
}

/** {@link importJwk}, cached per (issuer, kid, JWK content) for an issuer's long-lived signing keys. */
export function publicKeyOfJwk(jwk: PublicJwk, issuer = ''): KeyObject | null {
  if (typeof jwk !== 'object' || jwk === null) return null;
  const memo = jwkMemo.get(jwk);
  if (memo !== undefined && sameMaterial(memo, jwk, issuer)) return memo.key;
  const id = createHash('sha256').update(`${issuer}\n${jwk.kid ?? ''}\n${JSON.stringify(jwk)}`).digest('base64url');
  let key = keyCache.get(id);
  if (key === undefined) {
    key = importJwk(jwk);
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear();
    keyCache.set(id, key);
  }
  const x5c0 = Array.isArray(jwk.x5c) ? jwk.x5c[0] : undefined;
  jwkMemo.set(jwk, { issuer, kty: jwk.kty, n: jwk.n, e: jwk.e, crv: jwk.crv, x: jwk.x, y: jwk.y, x5c: jwk.x5c, x5c0, key });
  return key;
}

/**
 * The keys of a JWKS that may verify a token with `kid` and `alg`: same kid (any, when the token names
 * none), `use` absent or `sig`, `alg` absent or equal. Keys of the wrong type stay in: {@link verifyJwt}
 * reports them as a key that does not fit the algorithm.
 */
export function jwksCandidates(keys: readonly PublicJwk[], kid: string | undefined, alg: JwsAlg, issuer: string): KeyObject[] {
  const out: KeyObject[] = [];
  for (const k of keys) {
    // An issuer's JWKS is read as published: an entry that is no object is no key (and no WeakMap key).
    if (typeof k !== 'object' || k === null) continue;
    if (kid !== undefined && k.kid !== kid) continue;
    if ((k.use !== undefined && k.use !== 'sig') || (k.alg !== undefined && k.alg !== alg)) continue;
    const key = publicKeyOfJwk(k, issuer);
    if (key !== null) out.push(key);
  }
  return out;
}

// ── The one token verifier ───────────────────────────────────────────────────

/** Why a token was refused (`detail.reason` of the use's error code). */
export type JwtFailure =
  | 'malformed'
  | 'alg_not_allowed'
  | 'crit_not_understood'
  | 'wrong_type'
  | 'untrusted_issuer'
  | 'unknown_kid'
  | 'key_alg_mismatch'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'issued_in_future'
  | 'wrong_audience';

export interface JwtKeyQuery {
  readonly alg: JwsAlg;
  readonly kid: string | undefined;
  /** The configured issuer that the token's `iss` matched. */
  readonly issuer: string;
  /** The token's protected header: a use that pins a chain may read its `x5c` here; no other use may. */
  readonly header: Readonly<Record<string, unknown>>;
  /** Second call after the first found no key: the issuer may have rotated (fetch anew, rate-limited). */
  readonly refresh: boolean;
}

/** What one kind of token must satisfy. Every field is a decision of that use, not a default. */
export interface JwtUse {
  /** Words for messages: "target attestation token", "bearer token". */
  readonly what: string;
  /** The error every refusal carries (its `detail.reason` says which check failed). */
  readonly errorCode: ErrorCode;
  /** Algorithms this use accepts (asymmetric only; never `none`, never HMAC). */
  readonly algorithms: readonly JwsAlg[];
  /** What an issuer is to this use, for messages ("attestation authority"); default "issuer". */
  readonly issuerRole?: string;
  /** The configured issuer `iss` names, or undefined when it names none this use trusts. */
  readonly issuer: (iss: string) => string | undefined;
  /** `aud` must be or contain this; `null` where the issuer sets no audience (MAA attestation tokens). */
  readonly audience: string | null;
  /** Allowed `typ` header values, compared case-insensitively (RFC 7515 §4.1.9); undefined: `typ` may be absent. */
  readonly types: readonly (string | undefined)[];
  /** Header parameters this use understands when listed in `crit` (RFC 7515 §4.1.11); none by default. */
  readonly understoodCritical?: readonly string[];
  /** The issuer's keys for `alg`/`kid`; never from the token's `jku`/`x5u`/`jwk`/`x5c` unless the use pins a chain. */
  readonly keys: (q: JwtKeyQuery) => Promise<readonly KeyObject[]> | readonly KeyObject[];
  /** Tolerance for `exp`/`nbf`/`iat`, seconds; default 60, at most {@link MAX_CLOCK_SKEW_SECONDS}. */
  readonly clockSkewSeconds?: number;
}

export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
/** A larger skew is an extended lifetime in disguise. */
export const MAX_CLOCK_SKEW_SECONDS = 300;

export interface VerifiedJwt {
  readonly header: Readonly<Record<string, unknown>>;
  readonly claims: Readonly<Record<string, unknown>>;
  /** The token's `iss` as written. */
  readonly iss: string;
  /** The configured issuer it matched. */
  readonly issuer: string;
  readonly alg: JwsAlg;
}

function numericDate(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) return Number.NaN;
  return v;
}

function typOf(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.toLowerCase();
  return t.startsWith('application/') ? t.slice('application/'.length) : t;
}

/**
 * Verifies a compact JWS/JWT for one use. Authenticity checks stop at the first failure, in this order:
 * shape, algorithm, `crit`, `typ`, issuer, key, signature; then `exp` (required), `nbf`, `iat`, `aud`.
 * Throws `use.errorCode` with `detail.reason` ∈ {@link JwtFailure}.
 */
export async function verifyJwt(token: string, use: JwtUse, at: Date): Promise<Verified<VerifiedJwt>> {
  const refuse = (reason: JwtFailure, message: string, extra?: Record<string, unknown>): never => {
    throw fail(use.errorCode, `${use.what} rejected: ${message}`, { reason, ...extra });
  };
  // An invalid `at` would pass every lifetime check below (NaN compares false); it is the caller's fault, not the token's.
  const now = verificationTime(at) / 1000;
  let d: DecodedJws;
  try {
    d = decodeJws(token);
  } catch (e) {
    return refuse('malformed', (e as Error).message);
  }
  const { header, payload } = d;
  const alg = header.alg;
  if (typeof alg !== 'string') return refuse('malformed', 'the JWS header has no alg');
  if (!use.algorithms.includes(alg as JwsAlg) || !ASYMMETRIC_ALGS.includes(alg as JwsAlg)) return refuse('alg_not_allowed', `algorithm '${alg}' is not allowed`, { alg });
  const jwsAlg = alg as JwsAlg;
  if (header.crit !== undefined) {
    const crit = header.crit;
    const understood = use.understoodCritical ?? [];
    const ok = Array.isArray(crit) && crit.length > 0 && crit.every((c) => typeof c === 'string' && understood.includes(c) && c in header);
    if (!ok) return refuse('crit_not_understood', 'the JWS header names critical extensions this verifier does not understand', { crit: Array.isArray(crit) ? crit.filter((c) => typeof c === 'string') : null });
  }
  if (header.kid !== undefined && typeof header.kid !== 'string') return refuse('malformed', 'the JWS header kid is not a string');
  if (header.typ !== undefined && typeof header.typ !== 'string') return refuse('malformed', 'the JWS header typ is not a string');
  const typ = typOf(header.typ);
  if (!use.types.some((t) => (t === undefined ? header.typ === undefined : t.toLowerCase() === typ))) return refuse('wrong_type', `typ ${JSON.stringify(header.typ ?? null)} is not one this use accepts`, { typ: header.typ ?? null });

  const iss = payload.iss;
  if (typeof iss !== 'string' || iss.length === 0) return refuse('untrusted_issuer', 'the token has no iss');
  const issuer = use.issuer(iss);
  if (issuer === undefined) return refuse('untrusted_issuer', `issuer ${iss} is not a trusted ${use.issuerRole ?? 'issuer'}`, { issuer: iss });

  const kid = header.kid as string | undefined;
  let keys = await use.keys({ alg: jwsAlg, kid, issuer, header, refresh: false });
  if (keys.length === 0) keys = await use.keys({ alg: jwsAlg, kid, issuer, header, refresh: true });
  if (keys.length === 0) return refuse('unknown_kid', `issuer ${iss} publishes no signing key with kid ${JSON.stringify(kid ?? null)}`, { issuer: iss, kid });
  const fitting = keys.filter((k) => keyFitsAlg(k, jwsAlg));
  if (fitting.length === 0) return refuse('key_alg_mismatch', `the key ${JSON.stringify(kid ?? null)} of ${iss} is not a key for ${alg}`, { issuer: iss, kid, alg });
  if (!fitting.some((k) => verifyJwsSignature(d, k))) return refuse('bad_signature', `the signature does not verify with the key ${JSON.stringify(kid ?? null)} of ${iss}`, { issuer: iss, kid });

  // A NaN skew would make every lifetime comparison below false (never expired), like an invalid `at`.
  const asked = use.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (typeof asked !== 'number' || Number.isNaN(asked)) throw fail('request.invalid', 'the allowed clock skew is not a number of seconds', { clockSkewSeconds: String(asked) });
  const skew = Math.min(Math.max(asked, 0), MAX_CLOCK_SKEW_SECONDS);
  const exp = numericDate(payload.exp);
  const nbf = numericDate(payload.nbf);
  const iat = numericDate(payload.iat);
  // A token without exp would never expire.
  if (exp === undefined) return refuse('malformed', 'the token has no exp');
  if (Number.isNaN(exp) || Number.isNaN(nbf ?? 0) || Number.isNaN(iat ?? 0)) return refuse('malformed', 'exp, nbf and iat must be NumericDates');
  if (now > exp + skew) return refuse('expired', `the token expired at ${new Date(exp * 1000).toISOString()}`, { exp });
  if (nbf !== undefined && now < nbf - skew) return refuse('not_yet_valid', `the token is not valid before ${new Date(nbf * 1000).toISOString()}`, { nbf });
  if (iat !== undefined && iat > now + skew) return refuse('issued_in_future', `the token claims to be issued at ${new Date(iat * 1000).toISOString()}, in the future`, { iat });

  if (use.audience !== null) {
    const aud = payload.aud;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(use.audience)) return refuse('wrong_audience', `the token is not meant for this recipient (aud must contain ${use.audience})`, { expected: use.audience, actual: aud ?? null });
  }
  return markVerified({ header, claims: payload, iss, issuer, alg: jwsAlg });
}
