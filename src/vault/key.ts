/**
 * The AKV keys domain (keys 7.4–2025-07-01 swagger, skr-maa-protocol.md §2): key types, parameters of
 * create/import/update, attributes, the release-policy rules of exportable keys, and the wire shapes
 * KeyBundle, KeyItem, DeletedKeyBundle. Pure: the clock arrives as `nowSeconds`.
 */
import { fail } from '../core/errors.js';
import type { CurveName, KeyFamily, KeySpec, PrivateJwk, PublicJwk } from './ports.js';
import type { ApiVersion } from './api-version.js';
import { canonicalReleasePolicyJson, parseReleasePolicyData } from './release/index.js';
import { b64url } from '../core/bytes.js';
import { isEcdsaKeyPair } from './ecdsa.js';

export const KEY_TYPES = ['RSA', 'RSA-HSM', 'EC', 'EC-HSM', 'oct', 'oct-HSM'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const CURVES: readonly CurveName[] = ['P-256', 'P-384', 'P-521', 'P-256K'];
export const KEY_OPERATIONS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import', 'export'] as const;
export type KeyOperation = (typeof KEY_OPERATIONS)[number];

export { API_VERSIONS, checkApiVersion, LATEST_API_VERSION } from './api-version.js';

export const RELEASE_POLICY_CONTENT_TYPE = 'application/json; charset=utf-8';

const RSA_SIZES = [2048, 3072, 4096];
const OCT_SIZES = [128, 192, 256];
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-f]{32}$/i;

const DEFAULT_OPS: Record<KeyFamily, readonly KeyOperation[]> = {
  RSA: ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'],
  EC: ['sign', 'verify'],
  oct: ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'],
};
const ALLOWED_OPS: Record<KeyFamily, readonly KeyOperation[]> = {
  RSA: [...DEFAULT_OPS.RSA, 'import', 'export'],
  EC: ['sign', 'verify', 'import', 'export'],
  // HS256/384/512 (HMAC) need sign/verify on an oct key; asked for explicitly, as Managed HSM has it.
  oct: [...DEFAULT_OPS.oct, 'sign', 'verify', 'import', 'export'],
};

export function checkKeyName(name: string): string {
  if (!NAME.test(name)) throw fail('request.invalid', `The request URI contains an invalid name: ${name}`, { field: 'key-name' });
  return name;
}

export function checkKeyVersion(version: string): string {
  if (!VERSION.test(version)) throw fail('key.not_found', `A key with (name/id) of version ${version} was not found in this key vault.`, { version });
  return version.toLowerCase();
}

export function familyOf(kty: string): KeyFamily {
  if (kty === 'RSA' || kty === 'RSA-HSM') return 'RSA';
  if (kty === 'EC' || kty === 'EC-HSM') return 'EC';
  if (kty === 'oct' || kty === 'oct-HSM') return 'oct';
  throw fail('key.invalid', `Invalid key type (kty) ${JSON.stringify(kty)}; expected one of ${KEY_TYPES.join(', ')}`, { field: 'kty' });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(field: string, message: string): never {
  throw fail('key.invalid', message, { field });
}

/** Attributes as stored. Times are epoch seconds (AKV wire format). */
export interface KeyAttributes {
  readonly enabled: boolean;
  readonly nbf?: number;
  readonly exp?: number;
  readonly exportable: boolean;
  readonly created: number;
  readonly updated: number;
}

/** A stored release policy: canonical JSON plus the immutable flag. */
export interface StoredReleasePolicy {
  readonly json: string;
  readonly immutable: boolean;
}

/** One version of a key as the vault holds it (no key material: the protector's handle only). */
export interface KeyVersion {
  readonly name: string;
  readonly version: string;
  readonly kty: KeyType;
  readonly keySize?: number;
  readonly crv?: CurveName;
  readonly keyOps: readonly KeyOperation[];
  readonly publicJwk: PublicJwk;
  readonly handle: Uint8Array;
  readonly provider: string;
  readonly attributes: KeyAttributes;
  readonly tags?: Readonly<Record<string, string>>;
  readonly releasePolicy?: StoredReleasePolicy;
}

interface AttributeInput {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
  exportable?: boolean;
}

/** The range of nbf and exp (seconds since the epoch): 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
const MIN_TIME = -62_135_596_800;
const MAX_TIME = 253_402_300_799;

function parseAttributes(v: unknown): AttributeInput {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) bad('attributes', 'attributes must be an object');
  const out: AttributeInput = {};
  if (v.enabled !== undefined && v.enabled !== null) {
    if (typeof v.enabled !== 'boolean') bad('attributes.enabled', 'attributes.enabled must be a boolean');
    out.enabled = v.enabled;
  }
  for (const k of ['nbf', 'exp'] as const) {
    const t = v[k];
    if (t === undefined || t === null) continue;
    // An integer in the years 1–9999: one the clock compares, the store (a bigint column) keeps exactly, and every
    // SDK reads (the Python SDK's datetime ends with 9999; a key past it could be neither read nor listed).
    if (typeof t !== 'number' || !Number.isInteger(t) || t < MIN_TIME || t > MAX_TIME) {
      bad(`attributes.${k}`, `attributes.${k} must be an integer (seconds since the epoch) from ${MIN_TIME} (0001-01-01) to ${MAX_TIME} (9999-12-31T23:59:59Z)`);
    }
    out[k] = t;
  }
  if (v.exportable !== undefined && v.exportable !== null) {
    if (typeof v.exportable !== 'boolean') bad('attributes.exportable', 'attributes.exportable must be a boolean');
    out.exportable = v.exportable;
  }
  return out;
}

function parseTags(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) bad('tags', 'tags must be an object of strings');
  const entries = Object.entries(v);
  if (entries.length > 15) bad('tags', 'at most 15 tags are allowed');
  for (const [k, val] of entries) {
    if (typeof val !== 'string' || k.length > 512 || val.length > 256) bad('tags', 'tag names (≤ 512) and values (≤ 256 characters) must be strings');
  }
  return v as Record<string, string>;
}

function parseKeyOps(v: unknown, family: KeyFamily): KeyOperation[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) bad('key_ops', 'key_ops must be an array');
  for (const op of v) {
    if (!(ALLOWED_OPS[family] as readonly string[]).includes(op)) bad('key_ops', `Invalid key operation ${JSON.stringify(op)} for a ${family} key`);
  }
  return [...new Set(v as KeyOperation[])];
}

/** `release_policy` as sent: `{contentType?, data: base64url(policy JSON), immutable?}`. */
export interface ReleasePolicyInput {
  readonly policy: StoredReleasePolicy;
}

function parseReleasePolicyInput(v: unknown): StoredReleasePolicy | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw fail('release.policy_invalid', 'release_policy must be an object', { field: 'release_policy' });
  if (v.contentType !== undefined && v.contentType !== null) {
    if (typeof v.contentType !== 'string' || !/^application\/json(\s*;\s*charset=utf-8)?$/i.test(v.contentType)) {
      throw fail('release.policy_invalid', `Unsupported release policy content type ${JSON.stringify(v.contentType)}`, { field: 'release_policy.contentType' });
    }
  }
  if (v.immutable !== undefined && v.immutable !== null && typeof v.immutable !== 'boolean') {
    throw fail('release.policy_invalid', 'release_policy.immutable must be a boolean', { field: 'release_policy.immutable' });
  }
  if (typeof v.data !== 'string' || v.data.length === 0) throw fail('release.policy_invalid', 'release_policy.data must hold the base64url-encoded policy', { field: 'release_policy.data' });
  return { json: canonicalReleasePolicyJson(parseReleasePolicyData(v.data)), immutable: v.immutable === true };
}

function checkExportRules(exportable: boolean, policy: StoredReleasePolicy | undefined): void {
  // AKV.SKR.1004 is the message real AKV gives (azure-sdk-clients.md §1.4).
  if (exportable && policy === undefined) throw fail('release.policy_required', 'AKV.SKR.1004: Exportable keys must have release policy.');
  if (!exportable && policy !== undefined) throw fail('release.policy_invalid', 'AKV.SKR.1005: Non-exportable keys must not have release policy.', { field: 'release_policy' });
}

export interface CreateParameters {
  readonly kty: KeyType;
  readonly spec: KeySpec;
  readonly keyOps: readonly KeyOperation[];
  readonly attributes: AttributeInput;
  readonly tags?: Record<string, string>;
  readonly releasePolicy?: StoredReleasePolicy;
}

/** `POST /keys/{name}/create` body (KeyCreateParameters). */
export function parseCreateParameters(body: unknown): CreateParameters {
  if (!isObject(body)) bad('body', 'The request body must be a JSON object (KeyCreateParameters)');
  const kty = body.kty;
  if (typeof kty !== 'string') bad('kty', 'kty is required');
  const family = familyOf(kty);
  let spec: KeySpec;
  if (family === 'RSA') {
    const size = body.key_size ?? 2048;
    if (typeof size !== 'number' || !RSA_SIZES.includes(size)) bad('key_size', `Invalid RSA key size ${JSON.stringify(size)}; allowed: ${RSA_SIZES.join(', ')}`);
    const pe = body.public_exponent ?? 65537;
    if (pe !== 3 && pe !== 65537) bad('public_exponent', 'public_exponent must be 65537 (or 3)');
    spec = { family, keySize: size, publicExponent: pe };
  } else if (family === 'EC') {
    const crv = body.crv ?? 'P-256';
    if (typeof crv !== 'string' || !(CURVES as readonly string[]).includes(crv)) bad('crv', `Invalid curve ${JSON.stringify(crv)}; allowed: ${CURVES.join(', ')}`);
    if (body.key_size !== undefined && body.key_size !== null) bad('key_size', 'key_size does not apply to EC keys');
    spec = { family, crv: crv as CurveName };
  } else {
    const size = body.key_size ?? 256;
    if (typeof size !== 'number' || !OCT_SIZES.includes(size)) bad('key_size', `Invalid oct key size ${JSON.stringify(size)}; allowed: ${OCT_SIZES.join(', ')}`);
    spec = { family, keySize: size };
  }
  const attributes = parseAttributes(body.attributes);
  const releasePolicy = parseReleasePolicyInput(body.release_policy);
  checkExportRules(attributes.exportable === true, releasePolicy);
  const tags = parseTags(body.tags);
  return {
    kty: kty as KeyType,
    spec,
    keyOps: parseKeyOps(body.key_ops, family) ?? DEFAULT_OPS[family],
    attributes,
    ...(tags ? { tags } : {}),
    ...(releasePolicy ? { releasePolicy } : {}),
  };
}

export interface ImportParameters {
  readonly kty: KeyType;
  readonly jwk: PrivateJwk;
  /** BYOK: the key transfer blob (base64url of its JSON), wrapped to a KEK of this vault. */
  readonly keyHsm?: string;
  readonly keyOps: readonly KeyOperation[];
  readonly attributes: AttributeInput;
  readonly tags?: Record<string, string>;
  readonly releasePolicy?: StoredReleasePolicy;
}

/** Bits of a base64url big-endian modulus, leading zero octets and bits aside. */
function modulusBits(n: string): number {
  const b = Buffer.from(n, 'base64url');
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return i === b.length ? 0 : (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!));
}

/**
 * A private JWK to import must be one key (RFC 7518 §6.3.2, §6.2.2): the vault publishes the public members
 * it was given and operates with the private ones, so members of two keys would publish one key and sign,
 * decrypt and release with another. RSA: n = p·q, dp and dq are d modulo p−1 and q−1 and invert e there, qi
 * inverts q modulo p, and e is odd and at least 3. EC: d's public point is (x, y). BYOK's PKCS#8 too (hsm/software.ts).
 */
export function checkOneKey(key: Record<string, unknown>, family: KeyFamily): void {
  if (family === 'RSA') {
    for (const m of ['p', 'q', 'dp', 'dq', 'qi']) if (typeof key[m] !== 'string') bad(`key.${m}`, `An RSA key to import needs n, e, d, p, q, dp, dq and qi (key.${m} is missing)`);
    // No member (n included) is longer than n's significant octets and one leading zero (whose size is checked)
    // before any is read as a number: the arithmetic below on members of hundreds of kilobytes would hold the
    // event loop for tens of milliseconds, and n padded with zero octets would let them through.
    const members = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => Buffer.from(key[m] as string, 'base64url'));
    const longest = members[0]!.length - members[0]!.findIndex((o) => o !== 0) + 1;
    if (members.some((b) => b.length > longest)) bad('key', 'The members of the RSA key to import (n, e, d, p, q, dp, dq, qi) are not of one key');
    const [n, e, d, p, q, dp, dq, qi] = members.map((b) => (b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`))) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
    if (e < 3n || e % 2n === 0n || e >= n) bad('key.e', 'The public exponent e of an RSA key must be odd, at least 3 and less than n');
    const one =
      p > 1n && q > 1n && p * q === n && d > 0n && d < n && dp === d % (p - 1n) && dq === d % (q - 1n) && (e * dp) % (p - 1n) === 1n && (e * dq) % (q - 1n) === 1n && qi < p && (qi * q) % p === 1n;
    if (!one) bad('key', 'The members of the RSA key to import (n, e, d, p, q, dp, dq, qi) are not of one key');
  } else if (family === 'EC') {
    if (typeof key.x !== 'string' || typeof key.y !== 'string') bad('key', 'An EC key to import needs crv, x, y and d');
    const m = (v: unknown) => new Uint8Array(Buffer.from(v as string, 'base64url'));
    if (!isEcdsaKeyPair(key.crv as CurveName, m(key.d), m(key.x), m(key.y))) bad('key.d', 'The private key d of the EC key to import is not the private key of its point (x, y)');
  }
}

/** `PUT /keys/{name}` body (KeyImportParameters: `Hsm`, `key`, `attributes`, `tags`, `release_policy`). */
export function parseImportParameters(body: unknown): ImportParameters {
  if (!isObject(body)) bad('body', 'The request body must be a JSON object (KeyImportParameters)');
  const key = body.key;
  if (!isObject(key)) bad('key', 'key (a JSON Web Key) is required');
  if (typeof key.kty !== 'string') bad('key.kty', 'key.kty is required');
  const family = familyOf(key.kty);
  const b64 = (m: string) => key[m] === undefined || (typeof key[m] === 'string' && /^[A-Za-z0-9_-]*={0,2}$/.test(key[m] as string));
  for (const m of ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'x', 'y', 'k']) if (!b64(m)) bad(`key.${m}`, `key.${m} must be base64url`);
  const hsm = body.Hsm ?? body.hsm;
  const kty = (hsm === true && !key.kty.endsWith('-HSM') ? `${key.kty}-HSM` : key.kty) as KeyType;
  if (key.key_hsm !== undefined && key.key_hsm !== null) return parseByokImport(body, key, family, kty);
  if (family === 'RSA' && (!key.n || !key.e || !key.d)) bad('key', 'An RSA key to import needs n, e, d, p, q, dp, dq and qi');
  // The sizes create takes (AKV's): a larger key holds the signer (a token session) for as long as its size asks.
  if (family === 'RSA' && !RSA_SIZES.includes(modulusBits(key.n as string))) bad('key.n', `Invalid RSA key size ${modulusBits(key.n as string)}; allowed: ${RSA_SIZES.join(', ')}`);
  if (family === 'EC' && (!key.crv || !key.d)) bad('key', 'An EC key to import needs crv, x, y and d');
  if (family === 'EC' && !(CURVES as readonly string[]).includes(key.crv as string)) bad('key.crv', `Invalid curve ${JSON.stringify(key.crv)}`);
  checkOneKey(key, family);
  if (family === 'oct') {
    if (typeof key.k !== 'string') bad('key.k', 'An oct key to import needs k');
    const len = Buffer.from(key.k, 'base64url').length;
    if (len > 64) bad('key.k', 'JSON Web Key: k property of oct key is too large, maximum size is 64');
    if (![16, 24, 32].includes(len)) bad('key.k', `oct keys must be 128, 192 or 256 bits, got ${len * 8}`);
  }
  const attributes = parseAttributes(body.attributes);
  const releasePolicy = parseReleasePolicyInput(body.release_policy);
  checkExportRules(attributes.exportable === true, releasePolicy);
  const tags = parseTags(body.tags);
  return {
    kty,
    jwk: key as unknown as PrivateJwk,
    keyOps: parseKeyOps(key.key_ops, family) ?? DEFAULT_OPS[family],
    attributes,
    ...(tags ? { tags } : {}),
    ...(releasePolicy ? { releasePolicy } : {}),
  };
}

/**
 * BYOK (Azure's BYOK specification): `key: {kty: RSA-HSM | EC-HSM | oct-HSM, key_ops?, key_hsm}`, where
 * `key_hsm` is the key transfer blob — JSON `{schema_version, header: {kid: <KEK kid>, alg: "dir", enc},
 * ciphertext}` — base64-encoded (either alphabet). Only HSM key types come in this way.
 */
function parseByokImport(body: Record<string, unknown>, key: Record<string, unknown>, family: KeyFamily, kty: KeyType): ImportParameters {
  if (!kty.endsWith('-HSM')) bad('key.kty', `A key_hsm (BYOK) import must be an HSM key type (RSA-HSM, EC-HSM, oct-HSM), got ${kty}`);
  if (typeof key.key_hsm !== 'string' || !/^[A-Za-z0-9_\-+/]+={0,2}$/.test(key.key_hsm) || key.key_hsm.length > 65536) bad('key.key_hsm', 'key.key_hsm must be the base64-encoded key transfer blob');
  for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) if (key[m] !== undefined) bad(`key.${m}`, `key.${m} must not accompany key_hsm`);
  const attributes = parseAttributes(body.attributes);
  const releasePolicy = parseReleasePolicyInput(body.release_policy);
  checkExportRules(attributes.exportable === true, releasePolicy);
  const tags = parseTags(body.tags);
  const keyHsm = key.key_hsm.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return {
    kty,
    jwk: { kty },
    keyHsm,
    keyOps: parseKeyOps(key.key_ops, family) ?? DEFAULT_OPS[family],
    attributes,
    ...(tags ? { tags } : {}),
    ...(releasePolicy ? { releasePolicy } : {}),
  };
}

export interface UpdateParameters {
  readonly keyOps?: readonly KeyOperation[];
  readonly attributes: AttributeInput;
  readonly tags?: Record<string, string>;
  readonly releasePolicy?: StoredReleasePolicy;
}

export function parseUpdateParameters(body: unknown, family: KeyFamily): UpdateParameters {
  if (body === undefined) return { attributes: {} };
  if (!isObject(body)) bad('body', 'The request body must be a JSON object (KeyUpdateParameters)');
  const keyOps = parseKeyOps(body.key_ops, family);
  const tags = parseTags(body.tags);
  const releasePolicy = parseReleasePolicyInput(body.release_policy);
  return { attributes: parseAttributes(body.attributes), ...(keyOps ? { keyOps } : {}), ...(tags ? { tags } : {}), ...(releasePolicy ? { releasePolicy } : {}) };
}

/**
 * Applies an update to a version: attributes merge, tags and key_ops replace, and a release policy
 * replaces the stored one unless that one is immutable (then only an identical policy is accepted).
 */
export function applyUpdate(current: KeyVersion, update: UpdateParameters, nowSeconds: number): KeyVersion {
  const a = update.attributes;
  if (a.exportable !== undefined && a.exportable !== current.attributes.exportable) {
    throw fail('key.invalid', 'The exportable attribute of a key cannot be changed', { field: 'attributes.exportable' });
  }
  if (update.keyOps !== undefined) {
    const kek = isKeyExchangeKey(current);
    const kekAfter = isKeyExchangeKey({ ...current, keyOps: update.keyOps });
    // A BYOK key exchange key (byok.ts: key_ops exactly ["import"]) keeps them: with any other operation its
    // private key would open transfer blobs outside an import (decrypt the RSA-OAEP part, unwrap the rest).
    if (kek && !kekAfter) {
      throw fail('key.invalid', 'The key_ops of a key exchange key (key_ops ["import"]) cannot be changed: its private key opens key transfer blobs by import only.', { field: 'key_ops' });
    }
    // Nor does another key become one: its private key may have been imported, or used for other operations.
    if (!kek && kekAfter) {
      throw fail('key.invalid', 'A key becomes a key exchange key (RSA-HSM, key_ops ["import"]) only when the vault generates it so; this key cannot be turned into one.', { field: 'key_ops' });
    }
  }
  let releasePolicy = current.releasePolicy;
  if (update.releasePolicy !== undefined) {
    if (!current.attributes.exportable) throw fail('release.policy_invalid', 'AKV.SKR.1005: Non-exportable keys must not have release policy.', { field: 'release_policy' });
    if (current.releasePolicy?.immutable && (update.releasePolicy.json !== current.releasePolicy.json || !update.releasePolicy.immutable)) {
      throw fail('release.policy_immutable', 'AKV.SKR.1008: The release policy of this key is immutable and cannot be changed.');
    }
    releasePolicy = update.releasePolicy;
  }
  const attributes: KeyAttributes = {
    enabled: a.enabled ?? current.attributes.enabled,
    exportable: current.attributes.exportable,
    created: current.attributes.created,
    updated: nowSeconds,
    ...(a.nbf !== undefined ? { nbf: a.nbf } : current.attributes.nbf !== undefined ? { nbf: current.attributes.nbf } : {}),
    ...(a.exp !== undefined ? { exp: a.exp } : current.attributes.exp !== undefined ? { exp: current.attributes.exp } : {}),
  };
  const tags = update.tags ?? current.tags;
  return {
    ...current,
    keyOps: update.keyOps ?? current.keyOps,
    attributes,
    ...(tags ? { tags } : {}),
    ...(releasePolicy ? { releasePolicy } : {}),
  };
}

/**
 * A BYOK key exchange key (byok.ts): an RSA-HSM key whose only operation is import, not exportable (a
 * release would hand its private key to a TEE). Only the vault generates one (create, rotate): an import
 * of one, or an update into one, is refused, so its private key never existed anywhere else.
 */
export function isKeyExchangeKey(key: { readonly kty: KeyType; readonly keyOps: readonly KeyOperation[]; readonly attributes: { readonly exportable?: boolean } }): boolean {
  return key.kty === 'RSA-HSM' && key.keyOps.length === 1 && key.keyOps[0] === 'import' && key.attributes.exportable !== true;
}

export function newAttributes(input: AttributeInput, nowSeconds: number): KeyAttributes {
  return {
    enabled: input.enabled ?? true,
    exportable: input.exportable ?? false,
    created: nowSeconds,
    updated: nowSeconds,
    ...(input.nbf !== undefined ? { nbf: input.nbf } : {}),
    ...(input.exp !== undefined ? { exp: input.exp } : {}),
  };
}

/** What a key version may still do outside its [nbf, exp] window (AKV: recovering what it made while valid). */
const OUTSIDE_WINDOW: ReadonlySet<string> = new Set(['decrypt', 'unwrapKey', 'verify']);

/**
 * A key may be used when enabled and inside [nbf, exp] (AKV: "Operation … is not allowed on a
 * disabled key" / "… expired key"); outside the window it still decrypts, unwraps and verifies, as AKV's
 * do, but never signs, encrypts, wraps or is released.
 */
export function checkUsable(key: KeyVersion, operation: string, nowSeconds: number): void {
  const a = key.attributes;
  if (!a.enabled) throw fail('key.operation_not_allowed', `Operation ${operation} is not allowed on a disabled key.`, { reason: 'disabled' });
  if (OUTSIDE_WINDOW.has(operation)) return;
  if (a.nbf !== undefined && nowSeconds < a.nbf) throw fail('key.operation_not_allowed', `Operation ${operation} is not allowed on a key that is not yet valid (nbf ${a.nbf}).`, { reason: 'not_yet_valid', nbf: a.nbf });
  if (a.exp !== undefined && nowSeconds >= a.exp) throw fail('key.operation_not_allowed', `Operation ${operation} is not allowed on an expired key (exp ${a.exp}).`, { reason: 'expired', exp: a.exp });
}

export function checkOperationPermitted(key: KeyVersion, op: KeyOperation): void {
  if (!key.keyOps.includes(op)) throw fail('key.operation_not_allowed', `Operation ${op} is not allowed by the key_ops of this key.`, { reason: 'key_ops', operation: op });
}

// ── wire shapes ───────────────────────────────────────────────────────────────────────────────────

/** How a response is rendered: the vault's URL, the request's api-version and the soft-delete setting. */
export interface KeyView {
  readonly baseUrl: string;
  readonly api: ApiVersion;
  /** Soft-delete retention in days (7–90). */
  readonly recoverableDays: number;
  readonly purgeProtection: boolean;
}

/**
 * AKV's DeletionRecoveryLevel for the vault's soft-delete setting: purge protection makes keys merely
 * `Recoverable` (no purge before the date); a retention under 90 days is `Customized…`.
 */
export function recoveryLevel(v: Pick<KeyView, 'recoverableDays' | 'purgeProtection'>): string {
  const base = v.recoverableDays < 90 ? 'CustomizedRecoverable' : 'Recoverable';
  return v.purgeProtection ? base : `${base}+Purgeable`;
}

export function keyId(baseUrl: string, name: string, version?: string): string {
  return version === undefined ? `${baseUrl}/keys/${name}` : `${baseUrl}/keys/${name}/${version}`;
}

export function attributesWire(view: KeyView, a: KeyAttributes, provider?: string): Record<string, unknown> {
  return {
    enabled: a.enabled,
    ...(a.nbf !== undefined ? { nbf: a.nbf } : {}),
    ...(a.exp !== undefined ? { exp: a.exp } : {}),
    created: a.created,
    updated: a.updated,
    recoveryLevel: recoveryLevel(view),
    ...(view.api.has('recoverableDays') ? { recoverableDays: view.recoverableDays } : {}),
    ...(view.api.has('release') ? { exportable: a.exportable } : {}),
    // Azure names its HSM platform with a number; Conclave names the key protector that holds the key.
    ...(view.api.has('hsmPlatform') && provider !== undefined ? { hsmPlatform: provider } : {}),
  };
}

export function releasePolicyWire(p: StoredReleasePolicy): { contentType: string; data: string; immutable: boolean } {
  return { contentType: RELEASE_POLICY_CONTENT_TYPE, data: b64url(p.json), immutable: p.immutable };
}

/** The public JWK of a version with kid, kty and key_ops (never private members). */
export function publicKeyWire(baseUrl: string, key: KeyVersion): Record<string, unknown> {
  return { kid: keyId(baseUrl, key.name, key.version), kty: key.kty, key_ops: key.keyOps, ...key.publicJwk };
}

/** KeyBundle [SPEC74]. */
export function keyBundle(view: KeyView, key: KeyVersion): Record<string, unknown> {
  return {
    key: publicKeyWire(view.baseUrl, key),
    attributes: attributesWire(view, key.attributes, key.provider),
    ...(key.tags ? { tags: key.tags } : {}),
    ...(key.releasePolicy && view.api.has('release') ? { release_policy: releasePolicyWire(key.releasePolicy) } : {}),
  };
}

/** KeyItem: `kid` without version in `GET /keys`, with version in `GET /keys/{name}/versions`. */
export function keyItem(view: KeyView, key: KeyVersion, withVersion: boolean): Record<string, unknown> {
  return {
    kid: keyId(view.baseUrl, key.name, withVersion ? key.version : undefined),
    attributes: attributesWire(view, key.attributes, key.provider),
    ...(key.tags ? { tags: key.tags } : {}),
  };
}

export interface DeletionInfo {
  readonly deletedDate: number;
  readonly scheduledPurgeDate: number;
}

function deletionWire(baseUrl: string, name: string, d: DeletionInfo): Record<string, unknown> {
  return { recoveryId: `${baseUrl}/deletedkeys/${name}`, deletedDate: d.deletedDate, scheduledPurgeDate: d.scheduledPurgeDate };
}

export function deletedKeyBundle(view: KeyView, key: KeyVersion, d: DeletionInfo): Record<string, unknown> {
  return { ...deletionWire(view.baseUrl, key.name, d), ...keyBundle(view, key) };
}

export function deletedKeyItem(view: KeyView, key: KeyVersion, d: DeletionInfo): Record<string, unknown> {
  return { ...deletionWire(view.baseUrl, key.name, d), ...keyItem(view, key, false) };
}
