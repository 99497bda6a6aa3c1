/**
 * The release response: `{"value": <JWS>}` whose payload holds the request echo and the key bundle with
 * `key_hsm` (skr-maa-protocol.md §2.3). Header `alg`, `kid`, `x5c`, `x5t#S256` as the SKR sidecar
 * parses them [SIDECAR akv.go jwsHeader]; unpadded base64url segments.
 */
import { createHash } from 'node:crypto';
import { b64url as b64u } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import type { KeyTransferEnc, ReleaseSigner } from './ports.js';
import { decodeJws, type JwsHeader } from './target-token.js';

/** The key as released: public JWK members plus `key_hsm`. */
export interface ReleasedKeyJwk {
  readonly kid: string;
  readonly kty: string;
  readonly key_ops?: readonly string[];
  readonly key_hsm: string;
  readonly [member: string]: unknown;
}

/** `release_policy` of the key bundle [SPEC74 KeyReleasePolicy]. */
export interface ReleasePolicyBundle {
  readonly contentType?: string;
  readonly data?: string;
  readonly immutable?: boolean;
}

export interface ReleaseResponseInput {
  readonly apiVersion: string;
  readonly enc: KeyTransferEnc;
  /** The key identifier as requested (`request.kid`). */
  readonly kid: string;
  readonly nonce?: string;
  readonly keyJwk: ReleasedKeyJwk;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly releasePolicy: ReleasePolicyBundle;
}

export interface ReleaseResponsePayload {
  readonly request: { readonly 'api-version': string; readonly enc: KeyTransferEnc; readonly kid: string; readonly nonce?: string };
  readonly response: {
    readonly key: {
      readonly attributes: Readonly<Record<string, unknown>>;
      readonly key: ReleasedKeyJwk;
      readonly release_policy: ReleasePolicyBundle;
    };
  };
}

/** What the payload's `request` echoes. */
export type ReleaseRequestInput = Pick<ReleaseResponseInput, 'apiVersion' | 'enc' | 'kid' | 'nonce'>;

function releaseRequest(input: ReleaseRequestInput): ReleaseResponsePayload['request'] {
  return input.nonce === undefined
    ? { 'api-version': input.apiVersion, enc: input.enc, kid: input.kid }
    : { 'api-version': input.apiVersion, enc: input.enc, kid: input.kid, nonce: input.nonce };
}

/** The release payload, key order as in the swagger example and the sidecar structs. */
export function releaseResponsePayload(input: ReleaseResponseInput): ReleaseResponsePayload {
  return { request: releaseRequest(input), response: { key: { attributes: input.attributes, key: input.keyJwk, release_policy: input.releasePolicy } } };
}

/**
 * The release payload's JSON text (`JSON.stringify(releaseResponsePayload(input))`) before and after the
 * JSON string of `key_hsm`, for a key JWK given without it: `before + key_hsm + after` is that text for
 * the key JWK `{...keyJwk, key_hsm}` and any base64url `key_hsm` (nothing to escape), so the payload can
 * be written where the key is wrapped (the wrap worker) without its members being walked again there.
 */
export function releasePayloadAround(input: Omit<ReleaseResponseInput, 'keyJwk'> & { readonly keyJwk: Omit<ReleasedKeyJwk, 'key_hsm'> }): readonly [string, string] {
  return releasePayloadAroundKey(input, releaseKeyAround(input));
}

/** {@link releasePayloadAround} from the request and the key's part, {@link releaseKeyAround} (which a caller may keep). */
export function releasePayloadAroundKey(request: ReleaseRequestInput, [before, after]: readonly [string, string]): readonly [string, string] {
  return [`{"request":${JSON.stringify(releaseRequest(request))},${before}`, after];
}

/**
 * The part of {@link releasePayloadAround} after the request member (`"response":{…`), around key_hsm:
 * it depends on the key and how it is shown (attributes, public JWK, policy), not on the request, so a
 * caller may keep it for a key version that does not change.
 */
export function releaseKeyAround(input: Pick<ReleaseResponseInput, 'attributes' | 'releasePolicy'> & { readonly keyJwk: Omit<ReleasedKeyJwk, 'key_hsm'> }): readonly [string, string] {
  if (Object.hasOwn(input.keyJwk, 'key_hsm')) throw fail('internal', 'the released key JWK already holds key_hsm');
  const jwk = JSON.stringify(input.keyJwk);
  // `{...keyJwk, key_hsm}` puts key_hsm last: the JWK's text without its closing brace, then the member.
  const open = jwk === '{}' ? '{"key_hsm":"' : `${jwk.slice(0, -1)},"key_hsm":"`;
  return [`"response":{"key":{"attributes":${JSON.stringify(input.attributes)},"key":${open}`, `"},"release_policy":${JSON.stringify(input.releasePolicy)}}}}`];
}

/** The encoded JWS header of each signer: it depends on the signer alone (its certificates hold ~2 KiB). */
const encodedHeaders = new WeakMap<ReleaseSigner, string>();

export function encodedHeader(signer: ReleaseSigner): string {
  let h = encodedHeaders.get(signer);
  if (h === undefined) {
    const leaf = signer.certificateChainDer[0];
    if (leaf === undefined) throw fail('config.invalid', 'the release signing certificate chain is empty');
    const thumbprint = createHash('sha256').update(leaf).digest('base64url');
    const header = {
      alg: signer.alg ?? 'RS256',
      kid: signer.kid ?? thumbprint,
      x5c: signer.certificateChainDer.map((der) => Buffer.from(der).toString('base64')),
      'x5t#S256': thumbprint,
    };
    h = b64u(JSON.stringify(header));
    encodedHeaders.set(signer, h);
  }
  return h;
}

/**
 * A compact JWS as {@link buildReleaseResponse} makes it: three base64url segments and two dots, so
 * nothing in it needs escaping in JSON (the type is only ever given to what that function returns).
 */
export type CompactJws = string & { readonly __compactJws: true };

/** Builds the compact JWS AKV returns as `value` of a release (the signer's alg, RS256 by default, over header.payload). */
export async function buildReleaseResponse(input: ReleaseResponseInput, signer: ReleaseSigner): Promise<CompactJws> {
  const signingInput = `${encodedHeader(signer)}.${b64u(JSON.stringify(releaseResponsePayload(input)))}`;
  const signature = await signer.sign(Buffer.from(signingInput, 'ascii'));
  return `${signingInput}.${b64u(signature)}` as CompactJws;
}

/** A release's answer: the JWS, and the receipt of its audit entry in the transparency log (docs/audit.md). */
export interface ReleaseAnswer {
  readonly value: CompactJws;
  readonly 'x-conclave-log': { readonly leafHash: string; readonly entry: string };
}

/**
 * The answer's JSON text, the same bytes JSON.stringify gives, written around the JWS (≈ 6 KiB of
 * base64url that needs no escaping) instead of scanning it again; only the audit entry is escaped.
 */
export function releaseAnswerJson(a: ReleaseAnswer): string {
  const log = a['x-conclave-log'];
  return `{"value":"${a.value}","x-conclave-log":{"leafHash":${JSON.stringify(log.leafHash)},"entry":${JSON.stringify(log.entry)}}}`;
}

/**
 * Decodes a release `value` without verifying it (the SDK verifies the signature against `x5c` and the
 * chain against the vault host separately).
 */
export function decodeReleaseResponse(value: string): { header: JwsHeader; payload: ReleaseResponsePayload } {
  const { header, payload } = decodeJws(value);
  const p = payload as Partial<ReleaseResponsePayload>;
  if (typeof p.request !== 'object' || typeof p.response?.key?.key !== 'object') {
    throw fail('request.invalid', 'the release response payload lacks request or response.key.key');
  }
  return { header, payload: payload as unknown as ReleaseResponsePayload };
}
