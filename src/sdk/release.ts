import { type KeyObject, X509Certificate, constants, createDecipheriv, createPrivateKey, createSecretKey, privateDecrypt, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { b64url } from '../core/bytes.js';
import { fail, isConclaveError } from '../core/errors.js';
import { verificationTime } from '../core/time.js';
import { ASYMMETRIC_ALGS, type JwsAlg, decodeJws, verifyJwsSignature } from '../core/jwt.js';
import { type Certificate, isIssuedBy, parseCertificate, pemToDer, publicKeyOf, verifyChain } from '../core/x509.js';
import { type Credential, getAccessToken } from './credential.js';
import { type CaInput, exchangeJson } from './http.js';
import { type LogReceipt, logReceiptOf } from './log.js';

/** The `enc` values of a release (skr-maa-protocol.md §2.2) and their OAEP (= MGF1) hash (§2.4). */
export const RELEASE_ENC_HASH = {
  CKM_RSA_AES_KEY_WRAP: 'sha1',
  RSA_AES_KEY_WRAP_256: 'sha256',
  RSA_AES_KEY_WRAP_384: 'sha384',
} as const;
export type ReleaseEnc = keyof typeof RELEASE_ENC_HASH;

/** Unset `request.enc`: AKV wraps with SHA-1 (§2.3). */
const DEFAULT_ENC: ReleaseEnc = 'CKM_RSA_AES_KEY_WRAP';
/** RFC 5649 alternative initial value. */
const KWP_AIV = Buffer.from('A65959A6', 'hex');

/** The release JWS payload (§2.3); only what the client reads is typed. */
export interface ReleasePayload {
  readonly request: { readonly 'api-version'?: string; readonly enc?: string; readonly kid?: string; readonly nonce?: string };
  readonly response: {
    readonly key: {
      readonly attributes?: Record<string, unknown>;
      readonly key: { readonly kid?: string; readonly kty: string; readonly key_ops?: string[]; readonly key_hsm: string; readonly [k: string]: unknown };
      readonly release_policy?: Record<string, unknown>;
    };
  };
}

export interface ReleaseTrustOptions {
  /** PEM CA certificates (self-signed anchors) the x5c chain must end in. */
  readonly trustStore?: string | readonly string[];
  /**
   * Without a trust store, accept a single self-signed x5c[0] (what Conclave data dirs from before the
   * local CA issued release certificates sign with). This trusts whoever answered the HTTPS request: use
   * only with a pinned `ca`; a current Conclave's chain ends in its local CA, so give that as `trustStore`.
   */
  readonly allowSelfSignedReleaseCert?: boolean;
  /** Verification time (default now). */
  readonly at?: Date;
  /**
   * The vault host the release was asked of: x5c[0] must name it (subjectAltName DNS name or IP
   * address), as AKV's release certificates do. releaseKey fills it from the vault URL.
   */
  readonly vaultHost?: string;
}

/** Whether a certificate's subjectAltName covers a host name or IP address (RFC 6125 via OpenSSL). */
function certificateNamesHost(der: Uint8Array, host: string): boolean {
  const cert = new X509Certificate(Buffer.from(der));
  const bare = host.replace(/^\[|\]$/g, '');
  return isIP(bare) ? cert.checkIP(bare) !== undefined : cert.checkHost(bare, { subject: 'never' }) !== undefined;
}

function invalid(message: string, detail?: Record<string, unknown>, cause?: unknown) {
  return fail('sdk.release_jws_invalid', message, detail, cause);
}

function anchorsOf(trustStore: string | readonly string[]): Certificate[] {
  const pems = typeof trustStore === 'string' ? [trustStore] : trustStore;
  return pems.flatMap((p) => pemToDer(p)).map((der) => parseCertificate(der));
}

/**
 * Verifies a release `value` as the SKR sidecar does (akv.go `_releaseKey`): signature by x5c[0] under
 * the header alg, then the x5c chain to a trust anchor, every certificate valid at `at`. Returns the payload.
 */
export function verifyReleaseJws(jws: string, opts: ReleaseTrustOptions = {}): ReleasePayload {
  let decoded: ReturnType<typeof decodeJws>;
  try {
    decoded = decodeJws(jws);
  } catch (e) {
    throw invalid('the release value is not a compact JWS with JSON header and payload', undefined, e);
  }
  const alg = decoded.header.alg;
  if (typeof alg !== 'string' || !ASYMMETRIC_ALGS.includes(alg as JwsAlg)) throw invalid(`release JWS alg ${String(alg)} is not allowed`, { alg });
  const x5c = decoded.header.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0 || !x5c.every((c) => typeof c === 'string')) throw invalid('release JWS header has no x5c chain');
  let chain: Certificate[];
  try {
    chain = (x5c as string[]).map((c) => parseCertificate(new Uint8Array(Buffer.from(c, 'base64'))));
  } catch (e) {
    throw invalid('release JWS x5c holds a certificate that cannot be parsed', undefined, e);
  }
  const leaf = chain[0]!;
  if (!verifyJwsSignature(decoded, publicKeyOf(leaf))) throw invalid('release JWS signature does not verify with x5c[0]', { subject: leaf.subjectCN });
  const at = opts.at ?? new Date();
  const atMs = verificationTime(at);
  if (opts.trustStore !== undefined) {
    const anchors = anchorsOf(opts.trustStore);
    if (anchors.length === 0) throw invalid('the release trust store holds no certificates');
    let last: unknown;
    for (const anchor of anchors) {
      try {
        verifyChain(chain, anchor, { at, code: 'sdk.release_jws_invalid', expiredCode: 'sdk.release_jws_invalid' });
        last = undefined;
        break;
      } catch (e) {
        last = e;
      }
    }
    if (last !== undefined) {
      if (isConclaveError(last) && /not valid at/.test(last.message)) throw last;
      throw invalid('release JWS certificate chain does not end in the trust store', { subject: leaf.subjectCN, issuer: chain[chain.length - 1]!.issuerCN }, last);
    }
  } else {
    if (!opts.allowSelfSignedReleaseCert) throw invalid('no trust store for the release JWS chain (give trustStore, or allowSelfSignedReleaseCert for a self-signed Conclave signer)');
    if (chain.length !== 1 || !isIssuedBy(leaf, leaf)) throw invalid('allowSelfSignedReleaseCert accepts only a single self-signed x5c certificate', { length: chain.length });
    if (!(atMs >= leaf.notBefore.getTime() && atMs <= leaf.notAfter.getTime())) {
      throw invalid(`release signing certificate is not valid at ${at.toISOString()}`, { notBefore: leaf.notBefore.toISOString(), notAfter: leaf.notAfter.toISOString() });
    }
  }
  if (opts.vaultHost !== undefined && !certificateNamesHost(leaf.der, opts.vaultHost)) {
    throw invalid(`the release signing certificate is not valid for the vault host ${opts.vaultHost}`, { subject: leaf.subjectCN, host: opts.vaultHost });
  }
  const p = decoded.payload as Partial<ReleasePayload>;
  const key = p.response?.key?.key;
  if (!p.request || typeof p.request !== 'object' || !key || typeof key.key_hsm !== 'string' || typeof key.kty !== 'string') {
    throw invalid('release JWS payload lacks request or response.key.key.key_hsm');
  }
  return p as ReleasePayload;
}

/**
 * `key_hsm` as sent (§2.4): a JSON transfer blob `{schema_version, header, ciphertext}`, parsed (`blob`
 * undefined, with the parser's `error`, when it does not parse), or the bare ciphertext.
 */
function readKeyHsm(keyHsm: string): { json: true; blob: unknown; error?: unknown } | { json: false; ciphertext: Buffer } {
  const outer = Buffer.from(keyHsm, 'base64url');
  if (outer[0] !== 0x7b) return { json: false, ciphertext: outer };
  try {
    return { json: true, blob: JSON.parse(outer.toString('utf8')) };
  } catch (error) {
    return { json: true, blob: undefined, error };
  }
}

/**
 * Unwraps `key_hsm` (§2.4): base64url JSON `{schema_version, header, ciphertext}` (or the bare ciphertext),
 * ciphertext = RSA-OAEP(KEK) ‖ AES-KWP(KEK, material). Returns the key material.
 */
export function unwrapKeyHsm(keyHsm: string, enc: string | undefined, privateKey: KeyObject): Uint8Array {
  const e = (enc ?? DEFAULT_ENC) as ReleaseEnc;
  const hash = RELEASE_ENC_HASH[e];
  if (!hash) throw fail('sdk.unwrap_failed', `unknown release enc ${String(enc)}`, { enc });
  let ciphertext: Buffer;
  const k = readKeyHsm(keyHsm);
  if (k.json) {
    const c = typeof k.blob === 'object' && k.blob !== null ? (k.blob as { ciphertext?: unknown }).ciphertext : undefined;
    if (typeof c !== 'string') throw fail('sdk.unwrap_failed', 'key_hsm is not a transfer blob with a ciphertext', undefined, k.error);
    ciphertext = Buffer.from(c, 'base64url');
  } else {
    ciphertext = k.ciphertext;
  }
  const bits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (privateKey.asymmetricKeyType !== 'rsa' || privateKey.type !== 'private' || !bits) throw fail('sdk.unwrap_failed', 'the workload key is not an RSA private key');
  const n = Math.ceil(bits / 8);
  if (ciphertext.length <= n + 8) throw fail('sdk.unwrap_failed', 'key_hsm ciphertext is too short for the wrapping key', { length: ciphertext.length, modulusBytes: n });
  let kek: Buffer;
  try {
    kek = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, ciphertext.subarray(0, n));
  } catch (err) {
    throw fail('sdk.unwrap_failed', `RSA-OAEP (${hash}) decryption of the KEK failed: wrong wrapping key or enc`, { enc: e }, err);
  }
  try {
    const cipher = kek.length === 16 ? 'id-aes128-wrap-pad' : kek.length === 24 ? 'id-aes192-wrap-pad' : 'id-aes256-wrap-pad';
    const d = createDecipheriv(cipher, kek, KWP_AIV);
    return new Uint8Array(Buffer.concat([d.update(ciphertext.subarray(n)), d.final()]));
  } catch (err) {
    throw fail('sdk.unwrap_failed', 'AES key unwrap (RFC 5649) of the key material failed', { enc: e }, err);
  } finally {
    kek.fill(0);
  }
}

export interface ReleasedKey {
  readonly keyObject: KeyObject;
  /** Private JWK (RSA/EC) or `{kty:'oct', k}`, with the vault's `kid` and `key_ops`. */
  readonly jwk: JsonWebKey & { kid?: string };
  /** The release's transparency-log entry and leaf hash, when the vault keeps a log (Conclave does; AKV does not). */
  readonly log?: LogReceipt;
}

/** Turns unwrapped material into a key: PKCS#8 DER for RSA/EC, raw bytes for oct (§2.4). */
export function releasedKeyOf(material: Uint8Array, released: ReleasePayload['response']['key']['key']): ReleasedKey {
  const kty = released.kty.replace(/-HSM$/, '');
  const extra = { ...(released.kid ? { kid: released.kid } : {}), ...(Array.isArray(released.key_ops) ? { key_ops: released.key_ops } : {}) };
  if (kty === 'oct') {
    return { keyObject: createSecretKey(Buffer.from(material)), jwk: { kty: 'oct', k: b64url(material), ...extra } };
  }
  if (kty !== 'RSA' && kty !== 'EC') throw fail('sdk.unwrap_failed', `released key type ${released.kty} is not RSA, EC or oct`, { kty: released.kty });
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw fail('sdk.unwrap_failed', `the released ${kty} key material is not PKCS#8`, { kty }, err);
  }
  const expected = kty === 'RSA' ? 'rsa' : 'ec';
  if (keyObject.asymmetricKeyType !== expected) throw fail('sdk.unwrap_failed', `the released key material is ${keyObject.asymmetricKeyType}, not ${kty}`, { kty });
  return { keyObject, jwk: { ...(keyObject.export({ format: 'jwk' }) as JsonWebKey), ...extra } };
}

/** The `header.enc` of a JSON transfer blob (§2.4), or undefined for a bare ciphertext, a blob that is not JSON, or no header enc. */
function transferBlobHeaderEnc(keyHsm: string): unknown {
  const k = readKeyHsm(keyHsm);
  // A blob that is not JSON has no header: unwrapKeyHsm refuses it (sdk.unwrap_failed).
  if (!k.json) return undefined;
  const header = typeof k.blob === 'object' && k.blob !== null ? (k.blob as { header?: unknown }).header : undefined;
  return typeof header === 'object' && header !== null ? (header as { enc?: unknown }).enc : undefined;
}

/** What a release was asked for; the signed response must say the same. */
export interface ReleaseRequestFacts {
  readonly keyName: string;
  readonly version?: string | undefined;
  readonly nonce?: string | undefined;
  readonly enc?: string | undefined;
}

/**
 * Checks that a verified release payload answers this request: the nonce echoed, the key named by
 * name (and version, when one was asked), the `enc` asked for (left out only when the default,
 * CKM_RSA_AES_KEY_WRAP, was asked). A response replayed from another release, or for another key or
 * enc, is `sdk.release_jws_invalid`, before anything is unwrapped.
 */
export function checkReleaseAnswersRequest(payload: ReleasePayload, asked: ReleaseRequestFacts): void {
  if (asked.nonce !== undefined && payload.request.nonce !== asked.nonce) {
    throw invalid('the release response does not echo the request nonce (a replayed or foreign response)', { expected: asked.nonce, actual: payload.request.nonce ?? null });
  }
  // Nothing asked is the default asked. A response may leave `enc` out only when the default was asked
  // (AKV's default, §2.3): otherwise `key_hsm` would be unwrapped with an enc the caller did not ask for.
  const expectedEnc = asked.enc ?? DEFAULT_ENC;
  if ((payload.request.enc ?? DEFAULT_ENC) !== expectedEnc) {
    throw invalid(`the release response is for enc ${payload.request.enc ?? `(none: the default ${DEFAULT_ENC})`}, not ${expectedEnc}`, { expected: expectedEnc, actual: payload.request.enc ?? null });
  }
  // key_hsm's transfer blob names its enc in its own header too (a reader that unwraps with the header's
  // enc, as the CLI does, would otherwise use an enc nobody asked for): it must be the one asked, or absent.
  const headerEnc = transferBlobHeaderEnc(payload.response.key.key.key_hsm);
  if (headerEnc !== undefined && headerEnc !== expectedEnc) {
    throw invalid(`the release response's key_hsm is wrapped for enc ${String(headerEnc)}, not ${expectedEnc}`, { expected: expectedEnc, actual: typeof headerEnc === 'string' ? headerEnc : null });
  }
  if (payload.response.key.key.kid === undefined) throw invalid('the release response names no key (kid)');
  for (const kid of [payload.response.key.key.kid, payload.request.kid]) {
    if (kid === undefined) continue;
    let path: string;
    try {
      path = new URL(kid).pathname;
    } catch {
      throw invalid(`the release response names key ${kid}, which is not a key URL`, { kid });
    }
    const m = /^\/keys\/([^/]+)(?:\/([^/]+))?\/?$/.exec(path);
    let name: string | undefined;
    let version: string | undefined;
    try {
      name = m ? decodeURIComponent(m[1]!) : undefined;
      version = m?.[2] ? decodeURIComponent(m[2]) : undefined;
    } catch {
      throw invalid(`the release response names key ${kid}, whose path holds a malformed % escape`, { kid });
    }
    // Key names are case-insensitive in Key Vault; versions are opaque identifiers.
    if (name === undefined || name.toLowerCase() !== asked.keyName.toLowerCase() || (asked.version !== undefined && version !== undefined && version !== asked.version)) {
      throw invalid(`the release response is for key ${kid}, not ${asked.keyName}${asked.version ? `/${asked.version}` : ''}`, { kid, expected: asked.keyName });
    }
  }
}

export interface ReleaseKeyOptions extends ReleaseTrustOptions {
  /** Vault base URL, e.g. https://127.0.0.1:8443 or https://myvault.vault.azure.net. */
  readonly vaultUrl: string;
  readonly keyName: string;
  readonly version?: string;
  /** The attestation token (`target`). */
  readonly token: string;
  readonly credential: Credential;
  /** The workload's RSA private key whose public half is in the token's x-ms-runtime.keys. */
  readonly privateKey: KeyObject;
  readonly ca?: CaInput;
  /** Echoed in the signed response and checked; a random one is sent when none is given. */
  readonly nonce?: string;
  readonly enc?: ReleaseEnc;
  /** Defaults to 7.4, what the SKR sidecar sends. */
  readonly apiVersion?: string;
}

/**
 * POST /keys/{name}[/{version}]/release with the token, verify the release JWS, unwrap `key_hsm` with
 * the workload key.
 */
export async function releaseKey(opts: ReleaseKeyOptions): Promise<ReleasedKey> {
  const accessToken = await getAccessToken(opts.credential, opts.ca);
  const base = opts.vaultUrl.replace(/\/+$/, '');
  const path = `/keys/${encodeURIComponent(opts.keyName)}${opts.version ? `/${encodeURIComponent(opts.version)}` : ''}/release`;
  // A fresh nonce binds the signed response to this request (AKV echoes it in the payload).
  const nonce = opts.nonce ?? randomBytes(16).toString('hex');
  const body: Record<string, string> = { target: opts.token, nonce };
  if (opts.enc !== undefined) body.enc = opts.enc;
  const res = await exchangeJson(`${base}${path}?api-version=${opts.apiVersion ?? '7.4'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify(body),
    ca: opts.ca,
    what: `releasing key ${opts.keyName}`,
  });
  if (typeof res.value !== 'string') throw invalid('the release response has no value');
  const payload = verifyReleaseJws(res.value, { ...opts, vaultHost: opts.vaultHost ?? new URL(base).hostname });
  checkReleaseAnswersRequest(payload, { keyName: opts.keyName, version: opts.version, nonce, enc: opts.enc });
  const log = logReceiptOf(res['x-conclave-log']);
  const released = payload.response.key.key;
  const material = unwrapKeyHsm(released.key_hsm, payload.request.enc, opts.privateKey);
  try {
    return { ...releasedKeyOf(material, released), ...(log ? { log } : {}) };
  } finally {
    material.fill(0);
  }
}
