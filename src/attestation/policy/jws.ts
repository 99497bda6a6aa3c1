import { constants, type KeyObject, verify as cryptoVerify } from 'node:crypto';
import { b64url, sha256 } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { parseCertificate, publicKeyOf } from '../../core/x509.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../../core/json.js';

/** The protected header of a policy JWS as far as MAA reads it. */
export interface PolicyJwsHeader {
  readonly alg: string;
  readonly x5c?: readonly string[];
  readonly [name: string]: unknown;
}

export interface DecodedPolicyJws {
  readonly policyText: string;
  readonly header: PolicyJwsHeader;
  /** True when the JWS carried a signature that verified with its `x5c[0]`. */
  readonly signed: boolean;
  /** DER of `x5c[0]`, the signer; whether it is an allowed policy-management certificate is the caller's decision. */
  readonly signingCertificateDer?: Uint8Array;
  /** DER of every `x5c` entry, signer first. */
  readonly certificateChainDer?: readonly Uint8Array[];
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * JWS algorithms accepted for signed policies. `RSA256` and `ECDH256` are not JOSE names, but Microsoft's
 * own published signed-policy sample (policy-examples, "Signed Policy for an SGX enclave") uses `RSA256` for
 * RS256, and the Python SDK (azure-security-attestation 1.0) signs with `RSA256`, or `ECDH256` for ECDSA
 * P-256 with SHA-256 and its signature in DER (as Python's cryptography makes it), not JOSE's r ‖ s.
 */
const ALGORITHMS: Record<string, { hash: string; padding?: number; saltLength?: number; ec?: 'ieee-p1363' | 'der' }> = {
  RS256: { hash: 'sha256', padding: constants.RSA_PKCS1_PADDING },
  RSA256: { hash: 'sha256', padding: constants.RSA_PKCS1_PADDING },
  ECDH256: { hash: 'sha256', ec: 'der' },
  RS384: { hash: 'sha384', padding: constants.RSA_PKCS1_PADDING },
  RS512: { hash: 'sha512', padding: constants.RSA_PKCS1_PADDING },
  PS256: { hash: 'sha256', padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
  PS384: { hash: 'sha384', padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
  PS512: { hash: 'sha512', padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 },
  ES256: { hash: 'sha256', ec: 'ieee-p1363' },
  ES384: { hash: 'sha384', ec: 'ieee-p1363' },
  ES512: { hash: 'sha512', ec: 'ieee-p1363' },
};

function invalid(message: string, detail?: Record<string, unknown>): never {
  throw fail('attestation.policy_invalid', message, detail);
}

function decodeJsonPart(part: string, what: string): unknown {
  if (!B64URL.test(part)) invalid(`the JWS ${what} is not base64url`);
  const text = Buffer.from(part, 'base64url').toString('utf8');
  if (jsonTextTooDeep(text)) invalid(`the JWS ${what} nests deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text);
  } catch {
    return invalid(`the JWS ${what} is not JSON`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a string has the shape of a compact JWS (three base64url parts) rather than policy text. */
export function looksLikeJws(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(s.trim());
}

/**
 * The signer's certificate chain of a signed JWS: the header's `x5c` (RFC 7515 §4.1.6), or, as the Python SDK
 * sends it, the `x5c` of the header's `jwk`; where both are there they must name the same chain.
 */
function x5cOf(header: Record<string, unknown>): string[] {
  const chainOf = (v: unknown): string[] | undefined => (Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === 'string') ? (v as string[]) : undefined);
  const top = Object.hasOwn(header, 'x5c') ? header.x5c : undefined;
  const jwk = Object.hasOwn(header, 'jwk') ? header.jwk : undefined;
  const inJwk = isObject(jwk) && Object.hasOwn(jwk, 'x5c') ? jwk.x5c : undefined;
  if (top !== undefined && inJwk !== undefined && JSON.stringify(top) !== JSON.stringify(inJwk)) invalid('the JWS header names two certificate chains (x5c and jwk.x5c)');
  const chain = chainOf(top ?? inJwk);
  if (!chain) invalid('a signed JWS needs an x5c certificate (in its header, or in its jwk)');
  return chain;
}

/** A policy-management JWS (policy set or reset, certificate add or remove) after its signature check. */
export interface ManagementJws {
  readonly header: PolicyJwsHeader;
  /** The base64url payload part as sent ('' for a reset, as `@azure/attestation` sends it). */
  readonly payloadPart: string;
  /** True when the JWS carried a signature that verified with its `x5c[0]`. */
  readonly signed: boolean;
  readonly signingCertificateDer?: Uint8Array;
  readonly certificateChainDer?: readonly Uint8Array[];
}

/**
 * Checks the shape and signature of any policy-management JWS: the header must be a JSON object with
 * `alg`; `alg: none` must carry no signature; any other alg must verify with `x5c[0]` (RFC 7515 §5.2),
 * whatever the payload. Whether the signer is a registered management certificate is the caller's call.
 */
export function verifyManagementJws(jws: string): ManagementJws {
  if (typeof jws !== 'string') invalid('the JWS must be a string');
  const parts = jws.trim().split('.');
  if (parts.length !== 3) invalid('the body is not a compact JWS (three dot-separated parts)', { parts: parts.length });
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJsonPart(h, 'header');
  if (!isObject(header) || typeof header.alg !== 'string') invalid('the JWS header has no alg');
  if (!B64URL.test(p)) invalid('the JWS payload is not base64url');
  // A payload, where there is one (a reset sends none), is JSON within the depth limit even where its
  // content is not used: a malformed JWS is refused whole.
  if (p !== '') decodeJsonPart(p, 'payload');
  const typedHeader = header as PolicyJwsHeader;
  if (header.alg === 'none') {
    if (s !== '') invalid('an alg "none" JWS must have an empty signature');
    return { header: typedHeader, payloadPart: p, signed: false };
  }
  // Own members only: a name such as toString or __proto__ must not find Object.prototype's.
  const alg = Object.hasOwn(ALGORITHMS, header.alg) ? ALGORITHMS[header.alg] : undefined;
  if (!alg) invalid(`unsupported JWS alg ${header.alg}`, { alg: header.alg });
  const x5c = x5cOf(header);
  const chain = x5c.map((c) => {
    // x5c is standard base64 (RFC 7515 §4.1.6).
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(c)) invalid('an x5c entry is not base64');
    return new Uint8Array(Buffer.from(c, 'base64'));
  });
  let key: KeyObject;
  try {
    key = publicKeyOf(parseCertificate(chain[0]!));
  } catch (e) {
    throw fail('attestation.policy_invalid', 'x5c[0] is not a usable certificate', undefined, e);
  }
  if (!B64URL.test(s) || s === '') invalid('the JWS signature is not base64url');
  const signature = Buffer.from(s, 'base64url');
  const input = Buffer.from(`${h}.${p}`, 'ascii');
  let ok: boolean;
  try {
    ok = alg.ec
      ? key.asymmetricKeyType === 'ec' && cryptoVerify(alg.hash, input, { key, dsaEncoding: alg.ec }, signature)
      : key.asymmetricKeyType !== 'ec' && cryptoVerify(alg.hash, input, { key, padding: alg.padding, saltLength: alg.saltLength }, signature);
  } catch {
    ok = false;
  }
  if (!ok) invalid('the JWS signature does not verify with x5c[0]', { alg: header.alg });
  return { header: typedHeader, payloadPart: p, signed: true, signingCertificateDer: chain[0]!, certificateChainDer: chain };
}

/** The JSON object payload of a management JWS. */
export function managementPayload(m: ManagementJws): Record<string, unknown> {
  if (m.payloadPart === '') invalid('the JWS has an empty payload');
  const payload = decodeJsonPart(m.payloadPart, 'payload');
  if (!isObject(payload)) invalid('the JWS payload is not a JSON object');
  return payload;
}

/**
 * Decodes a policy JWS as `@azure/attestation` and MAA's author-sign-policy page form it: payload
 * `{"AttestationPolicy": Base64Url(UTF-8 policy)}`, header `{"alg":"none"}` or a signing algorithm with
 * `x5c`. A signed JWS must verify with `x5c[0]` (RFC 7515 §5.2) or `attestation.policy_invalid` is thrown.
 * The older published sample carries the policy text itself rather than its base64url in `AttestationPolicy`;
 * a value with characters outside the base64url alphabet is taken as text (policy text always has `=`/`;`).
 */
export function decodePolicyJws(jws: string): DecodedPolicyJws {
  const m = verifyManagementJws(jws);
  if (m.payloadPart === '') invalid('the JWS has an empty payload (no AttestationPolicy)');
  const payload = managementPayload(m);
  if (typeof payload.AttestationPolicy !== 'string') invalid('the JWS payload has no AttestationPolicy string');
  const encoded = payload.AttestationPolicy;
  const policyText = B64URL.test(encoded) ? Buffer.from(encoded, 'base64url').toString('utf8') : encoded;
  if (!m.signed) return { policyText, header: m.header, signed: false };
  return { policyText, header: m.header, signed: true, signingCertificateDer: m.signingCertificateDer!, certificateChainDer: m.certificateChainDer! };
}

/** The unsigned JWS `@azure/attestation` sends for setPolicy: `eyJhbGciOiJub25lIn0.<payload>.` */
export function encodePolicyJws(text: string): string {
  return `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify({ AttestationPolicy: b64url(text) }))}.`;
}

/**
 * `x-ms-policy-hash`: BASE64URL(SHA256(UTF8(BASE64URL(UTF8(policy text))))) (claim-sets, "Outgoing
 * claims"). The inner BASE64URL(UTF8(text)) is exactly the JWS `AttestationPolicy` value, so the hash is
 * of the policy, not of the JWS that carried it. A JWS argument is decoded (and, if signed, verified) first.
 */
export function policyHash(policyTextOrJws: string): string {
  const text = looksLikeJws(policyTextOrJws) ? decodePolicyJws(policyTextOrJws).policyText : policyTextOrJws;
  return b64url(sha256(new TextEncoder().encode(b64url(text))));
}

/** `x-ms-policy-token-hash` of a setPolicy result: BASE64URL(SHA256(the JWS string as sent)) (@azure/attestation README). */
export function policyTokenHash(jws: string): string {
  return b64url(sha256(new TextEncoder().encode(jws)));
}
