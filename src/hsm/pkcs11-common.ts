/**
 * The shared vocabulary of the PKCS#11 provider (src/hsm/pkcs11.ts and its parts): the module's types,
 * mechanism and attribute constants, the return values that mean a lost device, handles and CKA_IDs,
 * the per-connection state, and small byte helpers.
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import { fail } from '../core/errors.js';
import { content, parseDer, TAG } from '../core/der.js';
import type { CurveName, KeyFamily } from '../vault/ports.js';
import type { KeyTransferEnc } from '../vault/release/index.js';
import type { Pkcs11Spec } from './pkcs11-spec.js';

export { DIGEST_INFO } from './rsa-padding.js';

export type Lib = pkcs11js.PKCS11;
export type Handle = Buffer;

export const P = pkcs11js;
/** Not exported by pkcs11js (toolchain.md §6). */
export const CKZ_DATA_SPECIFIED = 1;
export const CKM_RSA_AES_KEY_WRAP = 0x1054;
export const CKM_AES_KEY_WRAP = 0x2109;
export const CKM_AES_KEY_WRAP_PAD = 0x210a;
export const HANDLE_MAGIC = Buffer.from('p11\x01', 'latin1');
export const ID_LENGTH = 16;

/** SEC 2 / RFC 5480 named-curve OIDs, as CKA_EC_PARAMS (DER OBJECT IDENTIFIER). */
export const CURVE_PARAMS: Record<CurveName, string> = {
  'P-256': '06082a8648ce3d030107',
  'P-384': '06052b81040022',
  'P-521': '06052b81040023',
  'P-256K': '06052b8104000a',
};
export const CURVE_BYTES: Record<CurveName, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66, 'P-256K': 32 };
export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export const HASH_MECH: Record<HashName, { hashAlg: number; mgf: number; len: number }> = {
  sha1: { hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1, len: 20 },
  sha256: { hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256, len: 32 },
  sha384: { hashAlg: P.CKM_SHA384, mgf: P.CKG_MGF1_SHA384, len: 48 },
  sha512: { hashAlg: P.CKM_SHA512, mgf: P.CKG_MGF1_SHA512, len: 64 },
};
export const RELEASE_HASH: Record<KeyTransferEnc, HashName> = { CKM_RSA_AES_KEY_WRAP: 'sha1', RSA_AES_KEY_WRAP_256: 'sha256', RSA_AES_KEY_WRAP_384: 'sha384' };

/** Return values that mean the token (not the request) is gone: drop the connection, answer 503. */
export const DEVICE_FAILURES = new Set([
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_ERROR',
  'CKR_DEVICE_MEMORY',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_SESSION_COUNT',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_SLOT_ID_INVALID',
  'CKR_GENERAL_ERROR',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
]);
/** Login answers after which trying the PIN again could lock the token. */
export const PIN_FAILURES = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);
export const MECHANISM_FAILURES = new Set(['CKR_MECHANISM_INVALID', 'CKR_MECHANISM_PARAM_INVALID', 'CKR_ARGUMENTS_BAD', 'CKR_KEY_FUNCTION_NOT_PERMITTED', 'CKR_FUNCTION_NOT_SUPPORTED']);
export const DATA_FAILURES = new Set([
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
  'CKR_DATA_INVALID',
  'CKR_DATA_LEN_RANGE',
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
  'CKR_KEY_SIZE_RANGE',
  'CKR_TEMPLATE_INCONSISTENT',
  'CKR_ATTRIBUTE_VALUE_INVALID',
  'CKR_FUNCTION_FAILED',
]);

/** The CKR_ name of a pkcs11js error, or undefined for anything else. */
export function pkcs11ReturnValue(e: unknown): string | undefined {
  const m = /(CKR_[A-Z0-9_]+)/.exec(e instanceof Error ? e.message : String(e));
  return m?.[1];
}

export function isPkcs11Handle(handle: Uint8Array): boolean {
  return handle.byteLength === HANDLE_MAGIC.length + ID_LENGTH && Buffer.from(handle.subarray(0, HANDLE_MAGIC.length)).equals(HANDLE_MAGIC);
}

/** CKA_ID of a key version's objects. */
export function objectIdOf(binding: string): Buffer {
  return createHash('sha256').update(binding).digest().subarray(0, ID_LENGTH);
}

// ── small helpers ────────────────────────────────────────────────────────────────────────────────

export function readPin(spec: Pkcs11Spec, env: NodeJS.ProcessEnv): string {
  const src = spec.pinSource;
  let pin: string | undefined;
  if (src.kind === 'env') pin = env[src.name];
  else {
    try {
      pin = readFileSync(src.path, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw fail('config.invalid', `cannot read the HSM PIN file ${src.path}`, { option: 'hsm', path: src.path }, e);
    }
  }
  if (!pin) throw fail('config.invalid', `the HSM PIN source ${src.kind === 'env' ? `env:${src.name}` : `file:${src.path}`} is empty or unset`, { option: 'hsm' });
  return pin;
}

export function unsigned(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

export function leftPad(b: Buffer, len: number): Buffer {
  return b.length >= len ? b : Buffer.concat([Buffer.alloc(len - b.length), b]);
}

export function bigEndian(n: number): Buffer {
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return Buffer.from(out.length ? out : [0]);
}

/** CKA_EC_POINT is a DER OCTET STRING around the X9.62 point (PKCS#11 v2.40 §2.3.3); some tokens omit it. */
export function ecPointOf(value: Buffer): Buffer {
  if (value[0] === 0x04 && value.length > 2) {
    try {
      const t = parseDer(value, 'CKA_EC_POINT');
      if (t.tag === TAG.OCTET_STRING) return Buffer.from(content(t));
    } catch {
      // a raw uncompressed point that happens to start with 0x04
    }
  }
  return value;
}

export function aesBits(alg: string): number {
  return Number(alg.slice(1, 4));
}

/** What a key version's objects are, read once per connection. */
export interface KeyObjects {
  readonly family: KeyFamily;
  /** Private or secret key. */
  readonly key: Handle;
  readonly pub?: Handle;
  readonly crv?: CurveName;
  /** RSA modulus bits or secret key bits. */
  readonly bits?: number;
  readonly publicKey?: KeyObject;
}

export interface ServicePair {
  readonly key: Handle;
  readonly id: Buffer;
  readonly publicKey: KeyObject;
  readonly protection: Readonly<Record<'sensitive' | 'extractable' | 'alwaysSensitive' | 'neverExtractable', boolean>>;
}

export const spkiOf = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });

export interface Connection {
  readonly slot: Handle;
  readonly sessions: Handle[];
  readonly free: Handle[];
  readonly waiters: Array<(s: Handle) => void>;
  readonly mechanisms: Set<number>;
  readonly objects: Map<string, KeyObjects>;
  /** OAEP hashes the token accepts in C_WrapKey/C_Decrypt, learnt by trying (SoftHSM: SHA-1 only). */
  readonly oaep: Map<HashName, boolean>;
  /** Service signing keys by `label/CKA_ID`. */
  readonly services: Map<string, Handle>;
}

export interface Pkcs11Options {
  readonly logger?: Logger;
  /**
   * Reconnection after a device failure: the first try is immediate, later ones wait `initialMs`,
   * doubling up to `maxMs` (default 1 s … 60 s); calls in between fail fast without touching the token.
   */
  readonly reconnectBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Test seam: the clock of the backoff (ms). */
  readonly now?: () => number;
  readonly env?: NodeJS.ProcessEnv;
  /** Test seam: wraps the loaded module (fault injection). */
  readonly wrapLibrary?: (lib: Lib) => Lib;
}