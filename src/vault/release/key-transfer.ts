/**
 * Wrapping a released key to the TEE: choosing the wrapping key from the verified token, and the
 * `key_hsm` transfer blob (skr-maa-protocol.md §1.5 "Wrapping key", §2.4).
 *
 * key_hsm = base64url(JSON {schema_version, header{kid, alg:"dir", enc}, ciphertext, generator}) [BYOK];
 * ciphertext = RSA-OAEP(wrapping key, AES-256 KEK) ‖ RFC 5649 AES-KWP(KEK, key material).
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { fail } from '../../core/errors.js';
import type { Jwk, KeyTransferEnc, KeyTransferWrap, WrappedKeyParts } from './ports.js';
import { lookupClaim } from './policy.js';
import { importJwk } from './target-token.js';
import { b64url } from '../../core/bytes.js';

export const KEY_TRANSFER_ENCS = ['CKM_RSA_AES_KEY_WRAP', 'RSA_AES_KEY_WRAP_256', 'RSA_AES_KEY_WRAP_384'] as const;

/** When the release request names no `enc`: AKV uses SHA-1 (CKM_RSA_AES_KEY_WRAP) [AZIHSM; §2.3]. */
export const DEFAULT_KEY_TRANSFER_ENC: KeyTransferEnc = 'CKM_RSA_AES_KEY_WRAP';

/** One hash for OAEP and MGF1 per enc [SIDECAR: Go rsa.DecryptOAEP uses one hash for both]. */
export const OAEP_HASH: Record<KeyTransferEnc, 'sha1' | 'sha256' | 'sha384'> = {
  CKM_RSA_AES_KEY_WRAP: 'sha1',
  RSA_AES_KEY_WRAP_256: 'sha256',
  RSA_AES_KEY_WRAP_384: 'sha384',
};

/** RFC 5649 §3 alternative initial value (the 32-bit MLI follows inside the cipher). */
const KWP_AIV = Buffer.from('A65959A6', 'hex');
const MIN_WRAPPING_KEY_BITS = 2048;
/**
 * What OpenSSL's RSA-OAEP encryption takes (OPENSSL_RSA_MAX_MODULUS_BITS; RSA_MAX_PUBEXP_BITS above
 * RSA_SMALL_MODULUS_BITS): a runtime key past these imports, then fails the wrap with an untyped error.
 */
const MAX_WRAPPING_KEY_BITS = 16384;
const WIDE_EXPONENT_MODULUS_BITS = 3072;
const MAX_WIDE_MODULUS_EXPONENT = (1n << 64n) - 1n;
export const TRANSFER_BLOB_SCHEMA_VERSION = '1.0.0';
export const TRANSFER_BLOB_GENERATOR = 'conclave';

export function isKeyTransferEnc(v: unknown): v is KeyTransferEnc {
  return typeof v === 'string' && (KEY_TRANSFER_ENCS as readonly string[]).includes(v);
}

// ── wrapping key selection ────────────────────────────────────────────────────────────────────────

export interface WrappingKey {
  readonly key: KeyObject;
  readonly kid: string | undefined;
  readonly jwk: Jwk;
}

function isEncryptionKey(jwk: Jwk): boolean {
  // GRAM: "key_use is "enc", or key_ops contains "encrypt"" — JWK `use` accepted alike (§1.5).
  return jwk.use === 'enc' || jwk.key_use === 'enc' || (Array.isArray(jwk.key_ops) && jwk.key_ops.includes('encrypt'));
}

function runtimeKeys(claims: Readonly<Record<string, unknown>>): unknown[] | undefined {
  // Top-level x-ms-runtime.keys only: in CVM guest tokens the x-ms-isolation-tee keys are the HCL's,
  // and the guest decrypts with the vTPM key from the top level (skr-maa-protocol.md §1.5).
  const keys = lookupClaim(claims, 'x-ms-runtime.keys');
  if (Array.isArray(keys)) return keys;
  // Legacy SGX tokens carry the runtime JWKS as base64url JSON in aas-ehd / maa-ehd [SPEC74 release-example].
  for (const legacy of ['maa-ehd', 'aas-ehd']) {
    const v = claims[legacy];
    if (typeof v !== 'string') continue;
    try {
      const jwks = JSON.parse(Buffer.from(v, 'base64url').toString('utf8')) as { keys?: unknown };
      if (Array.isArray(jwks.keys)) return jwks.keys;
    } catch {
      // not a JWKS: the enclave held other data
    }
  }
  return undefined;
}

/**
 * Imported runtime keys by modulus and exponent. A TEE keeps its runtime key for its life and presents
 * it in every token, so the import (a parse of the modulus) is done once per key; the entry is the
 * public key those two numbers define, whoever presents them. Bounded: the map starts over when full.
 */
const runtimeKeys_ = new Map<string, KeyObject | null>();
const RUNTIME_KEY_CACHE_LIMIT = 1024;

function runtimeKeyOf(jwk: Jwk): KeyObject | null {
  if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return importJwk({ ...jwk, kty: 'RSA' });
  const id = `${jwk.e}.${jwk.n}`;
  let key = runtimeKeys_.get(id);
  if (key === undefined) {
    key = importJwk({ kty: 'RSA', n: jwk.n, e: jwk.e });
    if (runtimeKeys_.size >= RUNTIME_KEY_CACHE_LIMIT) runtimeKeys_.clear();
    runtimeKeys_.set(id, key);
  }
  return key;
}

/** {@link modulusRefusal}'s verdicts, once per key object (the runtime keys are imported once per modulus). */
const modulusVerdicts = new WeakMap<KeyObject, 'bad_modulus' | 'bad_exponent' | null>();

/**
 * What RSA-OAEP encryption needs of a modulus beyond its size: an odd one (OpenSSL's Montgomery arithmetic
 * refuses an even modulus, "no inverse") and an exponent below it ("bad e value"). Read once per key.
 */
function modulusRefusal(key: KeyObject, e: bigint, bits: number): 'bad_modulus' | 'bad_exponent' | undefined {
  let verdict = modulusVerdicts.get(key);
  if (verdict === undefined) {
    const n = Buffer.from(String(key.export({ format: 'jwk' }).n), 'base64url');
    // An exponent shorter than the modulus is below it; only a wider one is compared in full.
    const below = e.toString(2).length < bits || e < BigInt(`0x${n.toString('hex')}`);
    verdict = n.length === 0 || (n[n.length - 1]! & 1) === 0 ? 'bad_modulus' : below ? null : 'bad_exponent';
    modulusVerdicts.set(key, verdict);
  }
  return verdict ?? undefined;
}

/**
 * The first key of the token's runtime JWKS that can wrap the released key: RSA, marked for encryption,
 * modulus of 2048 to 16384 bits and odd, an exponent RSA-OAEP takes ("The first suitable key is chosen" [GRAM]).
 * Throws `release.no_wrapping_key`.
 */
export function findWrappingKey(claims: Readonly<Record<string, unknown>>): WrappingKey {
  const keys = runtimeKeys(claims);
  if (keys === undefined) throw fail('release.no_wrapping_key', 'the attestation token has no x-ms-runtime.keys', { reason: 'no_runtime_keys' });
  const rejected: Array<{ kid: unknown; reason: string }> = [];
  for (const k of keys) {
    if (typeof k !== 'object' || k === null) continue;
    const jwk = k as Jwk;
    if (jwk.kty !== 'RSA' && jwk.kty !== 'RSA-HSM') {
      rejected.push({ kid: jwk.kid, reason: 'not_rsa' });
      continue;
    }
    if (!isEncryptionKey(jwk)) {
      rejected.push({ kid: jwk.kid, reason: 'not_for_encryption' });
      continue;
    }
    const key = runtimeKeyOf(jwk);
    const bits = key?.asymmetricKeyDetails?.modulusLength;
    if (key === null || key.asymmetricKeyType !== 'rsa' || bits === undefined) {
      rejected.push({ kid: jwk.kid, reason: 'unreadable' });
      continue;
    }
    if (bits < MIN_WRAPPING_KEY_BITS) {
      rejected.push({ kid: jwk.kid, reason: 'too_small' });
      continue;
    }
    // Refused here, with the others, rather than by the wrap after the release was decided (a 500, and a
    // software key's success record already stored): a modulus or exponent RSA-OAEP cannot encrypt with,
    // and an exponent RFC 8017 §3.1 rules out (an RSA exponent is odd and at least 3; e = 1 encrypts nothing).
    const e = key.asymmetricKeyDetails?.publicExponent;
    if (bits > MAX_WRAPPING_KEY_BITS) {
      rejected.push({ kid: jwk.kid, reason: 'too_large' });
      continue;
    }
    if (e === undefined || e < 3n || e % 2n === 0n || (bits > WIDE_EXPONENT_MODULUS_BITS && e > MAX_WIDE_MODULUS_EXPONENT)) {
      rejected.push({ kid: jwk.kid, reason: 'bad_exponent' });
      continue;
    }
    const unusable = modulusRefusal(key, e, bits);
    if (unusable !== undefined) {
      rejected.push({ kid: jwk.kid, reason: unusable });
      continue;
    }
    return { key, kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, jwk };
  }
  throw fail('release.no_wrapping_key', 'the attestation token holds no RSA (2048- to 16384-bit) encryption key in x-ms-runtime.keys', {
    reason: 'no_suitable_key',
    rejected,
  });
}

export function selectWrappingKey(claims: Readonly<Record<string, unknown>>): KeyObject {
  return findWrappingKey(claims).key;
}

// ── key material ──────────────────────────────────────────────────────────────────────────────────

/** The bytes a transfer carries: PKCS#8 DER for RSA and EC private keys, raw bytes for oct [BYOK]. */
export function transferMaterialOf(key: KeyObject): Uint8Array {
  if (key.type === 'secret') return new Uint8Array(key.export());
  if (key.type === 'private') return new Uint8Array(key.export({ format: 'der', type: 'pkcs8' }));
  throw fail('key.invalid', 'only private or secret keys can be transferred', { keyType: key.type });
}

// ── wrap / unwrap (node:crypto provider) ──────────────────────────────────────────────────────────

/** The software provider of {@link KeyTransferWrap}: a fresh AES-256 KEK per transfer. */
export const wrapWithNodeCrypto: KeyTransferWrap = (material, wrappingKey, enc) => {
  if (material.byteLength === 0) throw fail('key.invalid', 'empty key material cannot be transferred');
  const kek = randomBytes(32);
  try {
    const wrappedKek = publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[enc] }, kek);
    const cipher = createCipheriv('id-aes256-wrap-pad', kek, KWP_AIV);
    const wrappedKey = Buffer.concat([cipher.update(material), cipher.final()]);
    return { wrappedKek: new Uint8Array(wrappedKek), wrappedKey: new Uint8Array(wrappedKey) };
  } finally {
    kek.fill(0);
  }
};

export interface TransferBlobHeader {
  readonly kid?: string;
  readonly alg: string;
  readonly enc: string;
}

export interface TransferBlob {
  readonly schema_version: string;
  readonly header: TransferBlobHeader;
  /** base64url of wrappedKek ‖ wrappedKey. */
  readonly ciphertext: string;
  readonly generator?: string;
}

/**
 * The transfer blob's JSON text (`JSON.stringify` of the TransferBlob {schema_version, header, ciphertext,
 * generator}) before and after its ciphertext's base64url, which needs no escaping: `key_hsm` is the
 * base64url of `before + base64url(wrappedKek ‖ wrappedKey) + after` (also written so by the wrap worker).
 */
export function transferBlobAround(opts: { enc: KeyTransferEnc; kid?: string; generator?: string }): readonly [string, string] {
  const header: TransferBlobHeader = opts.kid === undefined ? { alg: 'dir', enc: opts.enc } : { kid: opts.kid, alg: 'dir', enc: opts.enc };
  return [
    `{"schema_version":${JSON.stringify(TRANSFER_BLOB_SCHEMA_VERSION)},"header":${JSON.stringify(header)},"ciphertext":"`,
    `","generator":${JSON.stringify(opts.generator ?? TRANSFER_BLOB_GENERATOR)}}`,
  ];
}

/**
 * Pure assembly of `key_hsm` from the wrapped parts, shared by the software and PKCS#11 providers.
 * `kid` names the wrapping key (the runtime key's `kid`).
 */
export function assembleTransferBlob(parts: WrappedKeyParts, opts: { enc: KeyTransferEnc; kid?: string; generator?: string }): string {
  const [before, after] = transferBlobAround(opts);
  // Written around the ciphertext (base64url, ≈ 2 KB for an RSA key: nothing to escape) instead of scanning it again.
  return b64url(`${before}${Buffer.concat([parts.wrappedKek, parts.wrappedKey]).toString('base64url')}${after}`);
}

/** `key_hsm` for key material, wrapped with node:crypto. */
export function wrapKeyForTransfer(
  material: Uint8Array,
  wrappingKey: KeyObject,
  enc: KeyTransferEnc,
  opts: { kid?: string; generator?: string } = {},
): string {
  const parts = wrapWithNodeCrypto(material, wrappingKey, enc) as WrappedKeyParts;
  return assembleTransferBlob(parts, { enc, ...opts });
}

/**
 * Decodes a `key_hsm` value. Besides the JSON blob it accepts the raw-ciphertext shape of the 7.4
 * swagger example (no JSON wrapper), whose header is then unknown.
 */
export function parseTransferBlob(keyHsm: string): { header: Partial<TransferBlobHeader>; ciphertext: Uint8Array; schemaVersion?: string } {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(keyHsm)) throw fail('request.invalid', 'key_hsm is not base64url', { field: 'key_hsm' });
  const bytes = Buffer.from(keyHsm, 'base64url');
  if (bytes[0] !== 0x7b /* '{' */) return { header: {}, ciphertext: new Uint8Array(bytes) };
  let blob: Partial<TransferBlob>;
  try {
    blob = JSON.parse(bytes.toString('utf8')) as Partial<TransferBlob>;
  } catch {
    throw fail('request.invalid', 'key_hsm is not a JSON transfer blob', { field: 'key_hsm' });
  }
  if (typeof blob.ciphertext !== 'string' || !/^[A-Za-z0-9_-]+={0,2}$/.test(blob.ciphertext)) {
    throw fail('request.invalid', 'key_hsm has no base64url ciphertext', { field: 'key_hsm.ciphertext' });
  }
  return {
    header: typeof blob.header === 'object' && blob.header !== null ? blob.header : {},
    ciphertext: new Uint8Array(Buffer.from(blob.ciphertext, 'base64url')),
    ...(typeof blob.schema_version === 'string' ? { schemaVersion: blob.schema_version } : {}),
  };
}

/**
 * Recovers the key material from `key_hsm` with the wrapping key's private half (what the TEE does;
 * used by the SDK and tests). `enc` comes from the blob header, else from `fallbackEnc` (the release
 * JWS `request.enc`).
 */
export function unwrapKeyTransfer(keyHsm: string, privateKey: KeyObject, fallbackEnc: KeyTransferEnc = DEFAULT_KEY_TRANSFER_ENC): Uint8Array {
  const { header, ciphertext } = parseTransferBlob(keyHsm);
  const enc = header.enc ?? fallbackEnc;
  if (!isKeyTransferEnc(enc)) throw fail('key.invalid', `unsupported key transfer enc '${String(enc)}'`, { enc });
  return unwrapTransferCiphertext(ciphertext, privateKey, enc);
}

/** RSA-OAEP(privateKey) of the AES KEK, then RFC 5649 unwrap of the rest (BYOK and release alike). */
export function unwrapTransferCiphertext(ciphertext: Uint8Array, privateKey: KeyObject, enc: KeyTransferEnc): Uint8Array {
  const bits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (privateKey.asymmetricKeyType !== 'rsa' || bits === undefined) throw fail('key.invalid', 'the unwrapping key must be an RSA private key');
  const n = Math.ceil(bits / 8);
  if (ciphertext.byteLength <= n + 8) throw fail('key.crypto_failed', 'key_hsm ciphertext is too short', { length: ciphertext.byteLength, modulusBytes: n });
  let kek: Buffer;
  try {
    kek = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[enc] }, ciphertext.subarray(0, n));
  } catch (e) {
    throw fail('key.crypto_failed', 'the key encryption key does not decrypt with this private key', { enc }, e);
  }
  const cipherName = kek.length === 32 ? 'id-aes256-wrap-pad' : kek.length === 24 ? 'id-aes192-wrap-pad' : kek.length === 16 ? 'id-aes128-wrap-pad' : undefined;
  if (cipherName === undefined) throw fail('key.crypto_failed', 'the key encryption key has an invalid length', { length: kek.length });
  try {
    const decipher = createDecipheriv(cipherName, kek, KWP_AIV);
    return new Uint8Array(Buffer.concat([decipher.update(ciphertext.subarray(n)), decipher.final()]));
  } catch (e) {
    throw fail('key.crypto_failed', 'the wrapped key does not unwrap (RFC 5649 integrity check failed)', {}, e);
  } finally {
    kek.fill(0);
  }
}
