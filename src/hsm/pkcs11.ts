/**
 * PKCS#11 key protection: key material generated or imported into an HSM token and used there
 * (PKCS#11 v2.40). Implements the vault's KeyProtector port beside the software provider.
 *
 * - Objects carry CKA_LABEL = the binding `vault-key:{name}/{version}` and CKA_ID = SHA-256(binding)[0..16];
 *   the vault stores only the handle `p11\x01 ‖ CKA_ID` and the public parts. A lookup checks the label,
 *   so a handle moved to another key version does not open.
 * - Private and secret keys are CKA_SENSITIVE; non-exportable ones CKA_EXTRACTABLE=false, so no
 *   C_GetAttributeValue or C_WrapKey reveals them. Exportable ones are extractable (SoftHSM cannot
 *   restrict wrapping to CKA_TRUSTED keys from a user session, docs/hsm.md).
 * - Release wraps inside the token in two steps (toolchain.md §6): an ephemeral AES-256 KEK wraps the key
 *   with CKM_AES_KEY_WRAP_PAD (RFC 5649), the KEK is wrapped with CKM_RSA_PKCS_OAEP under the TEE key;
 *   the parts go through assembleTransferBlob, so the blob is the software provider's format.
 * - The service's release-signing key is an RSA-2048 pair labelled `conclave-service:{name}` (random
 *   CKA_ID, sensitive, not extractable), generated once; its certificate, kept in the store by
 *   src/hsm/service-keys.ts, pins it by public key, and every load checks CKA_SENSITIVE,
 *   CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE (`hsm.key_untrusted` otherwise).
 * - A small pool of logged-in R/W sessions; device-level failures drop the connection (503
 *   `hsm.unavailable`); the next request reconnects, later ones back off (1 s doubling to 60 s), a
 *   refused PIN is never tried again, and a token re-initialised meanwhile is found again.
 */
import { constants, createHash, createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, type JsonWebKey, type KeyObject, publicEncrypt, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import { fail, isConclaveError } from '../core/errors.js';
import { oaepDecode } from './oaep.js';
import { content, parseDer, TAG, tlv } from '../core/der.js';
import type {
  CipherRequest,
  CipherResult,
  CurveName,
  KeyFamily,
  KeyProtector,
  KeyRef,
  KeySpec,
  PrivateJwk,
  ProtectedKey,
  PublicJwk,
  SignatureAlgorithm,
} from '../vault/ports.js';
import { assembleTransferBlob, type KeyTransferEnc } from '../vault/release/index.js';
import { describePkcs11Spec, type Pkcs11Spec } from './pkcs11-spec.js';

type Lib = pkcs11js.PKCS11;
type Handle = Buffer;

const P = pkcs11js;
/** Not exported by pkcs11js (toolchain.md §6). */
const CKZ_DATA_SPECIFIED = 1;
const CKM_RSA_AES_KEY_WRAP = 0x1054;
const CKM_AES_KEY_WRAP = 0x2109;
const CKM_AES_KEY_WRAP_PAD = 0x210a;
const HANDLE_MAGIC = Buffer.from('p11\x01', 'latin1');
const ID_LENGTH = 16;

/** SEC 2 / RFC 5480 named-curve OIDs, as CKA_EC_PARAMS (DER OBJECT IDENTIFIER). */
const CURVE_PARAMS: Record<CurveName, string> = {
  'P-256': '06082a8648ce3d030107',
  'P-384': '06052b81040022',
  'P-521': '06052b81040023',
  'P-256K': '06052b8104000a',
};
const CURVE_BYTES: Record<CurveName, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66, 'P-256K': 32 };
const EC_ALG: Record<CurveName, SignatureAlgorithm> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', 'P-256K': 'ES256K' };
const DIGEST_LEN: Record<string, number> = { '256': 32, '384': 48, '512': 64, '256K': 32 };
/** RFC 8017 §9.2 note 1: DER DigestInfo prefixes for CKM_RSA_PKCS over a precomputed digest. */
const DIGEST_INFO: Record<string, Buffer> = {
  '256': Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  '384': Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  '512': Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};
type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';
const HASH_MECH: Record<HashName, { hashAlg: number; mgf: number; len: number }> = {
  sha1: { hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1, len: 20 },
  sha256: { hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256, len: 32 },
  sha384: { hashAlg: P.CKM_SHA384, mgf: P.CKG_MGF1_SHA384, len: 48 },
  sha512: { hashAlg: P.CKM_SHA512, mgf: P.CKG_MGF1_SHA512, len: 64 },
};
const RELEASE_HASH: Record<KeyTransferEnc, HashName> = { CKM_RSA_AES_KEY_WRAP: 'sha1', RSA_AES_KEY_WRAP_256: 'sha256', RSA_AES_KEY_WRAP_384: 'sha384' };

/** Return values that mean the token (not the request) is gone: drop the connection, answer 503. */
const DEVICE_FAILURES = new Set([
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
const PIN_FAILURES = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);
const MECHANISM_FAILURES = new Set(['CKR_MECHANISM_INVALID', 'CKR_MECHANISM_PARAM_INVALID', 'CKR_ARGUMENTS_BAD', 'CKR_KEY_FUNCTION_NOT_PERMITTED', 'CKR_FUNCTION_NOT_SUPPORTED']);
const DATA_FAILURES = new Set([
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

// ── the module, once per process ─────────────────────────────────────────────────────────────────
// C_Initialize/C_Finalize are per process (PKCS#11 v2.40 §5.4), while several servers may run in one
// process (tests): loaded modules are shared by path and finalised when their last user closes.
const modules = new Map<string, { lib: Lib; users: number }>();

function initialize(lib: Lib): void {
  try {
    // Async variants call the module from worker threads: the module must lock (CKF_OS_LOCKING_OK).
    lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (pkcs11ReturnValue(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw e;
  }
}

function acquireModule(path: string): Lib {
  const hit = modules.get(path);
  if (hit) {
    hit.users++;
    return hit.lib;
  }
  const lib = new P.PKCS11();
  try {
    lib.load(path);
    initialize(lib);
  } catch (e) {
    throw fail('config.invalid', `cannot load PKCS#11 module ${path}`, { option: 'hsm', module: path, reason: pkcs11ReturnValue(e) ?? String((e as Error).message).slice(0, 200) }, e);
  }
  modules.set(path, { lib, users: 1 });
  return lib;
}

/** C_Finalize and C_Initialize again: other users of the module reconnect on their next call. */
function reinitializeModule(lib: Lib): void {
  try {
    lib.C_Finalize();
  } catch {
    // not initialised: nothing to finalise
  }
  initialize(lib);
}

function releaseModule(path: string): void {
  const m = modules.get(path);
  if (!m || --m.users > 0) return;
  modules.delete(path);
  try {
    m.lib.C_Finalize();
  } catch {
    // already finalised or the token is gone: nothing to release
  }
  try {
    m.lib.close();
  } catch {
    // the library handle is released when the process exits anyway
  }
}

// ── small helpers ────────────────────────────────────────────────────────────────────────────────

function readPin(spec: Pkcs11Spec, env: NodeJS.ProcessEnv): string {
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

function unsigned(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function leftPad(b: Buffer, len: number): Buffer {
  return b.length >= len ? b : Buffer.concat([Buffer.alloc(len - b.length), b]);
}

function bigEndian(n: number): Buffer {
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return Buffer.from(out.length ? out : [0]);
}

/** CKA_EC_POINT is a DER OCTET STRING around the X9.62 point (PKCS#11 v2.40 §2.3.3); some tokens omit it. */
function ecPointOf(value: Buffer): Buffer {
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

function aesBits(alg: string): number {
  return Number(alg.slice(1, 4));
}

// ── the provider ─────────────────────────────────────────────────────────────────────────────────

/** What a key version's objects are, read once per connection. */
interface KeyObjects {
  readonly family: KeyFamily;
  /** Private or secret key. */
  readonly key: Handle;
  readonly pub?: Handle;
  readonly crv?: CurveName;
  /** RSA modulus bits or secret key bits. */
  readonly bits?: number;
  readonly publicKey?: KeyObject;
}

interface ServicePair {
  readonly key: Handle;
  readonly id: Buffer;
  readonly publicKey: KeyObject;
  readonly protection: Readonly<Record<'sensitive' | 'extractable' | 'alwaysSensitive' | 'neverExtractable', boolean>>;
}

const spkiOf = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });

interface Connection {
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

export interface Pkcs11Info {
  readonly spec: string;
  readonly library: { readonly description: string; readonly manufacturer: string; readonly version: string; readonly cryptoki: string };
  readonly token: { readonly label: string; readonly manufacturer: string; readonly model: string; readonly serialNumber: string };
  readonly mechanisms: string[];
  /** `CKM_RSA_AES_KEY_WRAP` listed by the token; pkcs11js cannot pass its parameters, so the two-step path is used regardless. */
  readonly rsaAesKeyWrapListed: boolean;
  readonly releasePath: string;
  readonly oaepHashes: Record<string, boolean>;
  readonly releaseSha2: string;
}

/** A signing key of the service itself (e.g. release responses) whose private half stays in the token. */
export interface Pkcs11ServiceSigner {
  readonly publicKey: KeyObject;
  /** RSASSA-PKCS1-v1_5 with SHA-256 over `data` (RS256), computed in the token. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export interface Pkcs11KeyProtector extends KeyProtector {
  /**
   * The RSA-2048 service key labelled `conclave-service:{name}`: found by label (lowest CKA_ID where a
   * race between replicas left several), or generated once in the token (sensitive, not extractable).
   * Throws `hsm.key_untrusted` when a labelled key is extractable or not sensitive (now or ever).
   */
  serviceSigner(name: string): Promise<Pkcs11ServiceSigner>;
  /**
   * The service key labelled for `name` whose public key is `publicKey`, if the token holds it. Throws
   * `hsm.key_untrusted` when that key is extractable or not sensitive (now or ever).
   */
  findServiceSigner(name: string, publicKey: KeyObject): Promise<Pkcs11ServiceSigner | undefined>;
  /** Readiness: throws `hsm.unavailable` when the token cannot be reached. */
  check(): Promise<void>;
  info(): Promise<Pkcs11Info>;
  close(): Promise<void>;
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

const PROBE_PUBLIC_TEMPLATE = (modulus: Buffer, exponent: Buffer): pkcs11js.Template => [
  { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
  { type: P.CKA_TOKEN, value: false },
  { type: P.CKA_MODULUS, value: modulus },
  { type: P.CKA_PUBLIC_EXPONENT, value: exponent },
  { type: P.CKA_WRAP, value: true },
  { type: P.CKA_ENCRYPT, value: true },
];

/**
 * Opens the token named by the spec: loads the module (shared per process), logs in once and fills
 * the session pool. Throws `config.invalid` (module, PIN) or `hsm.unavailable` (token absent, login).
 */
export async function createPkcs11KeyProtector(spec: Pkcs11Spec, opts: Pkcs11Options = {}): Promise<Pkcs11KeyProtector> {
  const pin = readPin(spec, opts.env ?? process.env);
  const raw = acquireModule(spec.module);
  const lib = opts.wrapLibrary ? opts.wrapLibrary(raw) : raw;
  let conn: Promise<Connection> | undefined;
  let closed = false;
  const backoff = opts.reconnectBackoff ?? { initialMs: 1_000, maxMs: 60_000 };
  const clock = opts.now ?? Date.now;
  /** Consecutive failed connections (failed opens, or connections dropped before an operation succeeded). */
  let failures = 0;
  let retryAt = 0;
  /** A PIN the token refused after start: never tried again (a PIN lockout is worse than an outage). */
  let loginRefused: Error | undefined;
  let opened = false;

  function failed(): void {
    failures++;
    retryAt = failures <= 1 ? 0 : clock() + Math.min(backoff.maxMs, backoff.initialMs * 2 ** (failures - 2));
  }

  function unavailable(e: unknown, what: string): never {
    throw fail('hsm.unavailable', `the HSM token '${spec.token}' cannot be reached (${what})`, { token: spec.token, reason: pkcs11ReturnValue(e) ?? 'error' }, e);
  }

  /** The slot holding the token labelled as configured; a slot that errors is skipped. */
  function findSlot(): Handle | undefined {
    return lib.C_GetSlotList(true).find((s) => {
      try {
        return lib.C_GetTokenInfo(s).label.trim() === spec.token;
      } catch {
        return false;
      }
    });
  }

  async function open(): Promise<Connection> {
    initialize(lib);
    let slot = findSlot();
    if (!slot && opened) {
      // A token re-initialised (or re-inserted) while we run gets a new slot that the module only lists
      // after C_Finalize/C_Initialize (SoftHSM2 keeps its slot list from C_Initialize).
      reinitializeModule(lib);
      slot = findSlot();
    }
    if (!slot) throw fail('hsm.unavailable', `no token labelled '${spec.token}' is present`, { token: spec.token, reason: 'token_not_present' });
    const sessions: Handle[] = [];
    try {
      for (let i = 0; i < spec.sessions; i++) sessions.push(lib.C_OpenSession(slot, P.CKF_RW_SESSION | P.CKF_SERIAL_SESSION));
      try {
        // Login state is per application and token (PKCS#11 v2.40 §5.6): once for the whole pool.
        lib.C_Login(sessions[0]!, P.CKU_USER, pin);
      } catch (e) {
        if (pkcs11ReturnValue(e) !== 'CKR_USER_ALREADY_LOGGED_IN') throw e;
      }
    } catch (e) {
      for (const s of sessions) closeQuietly(s);
      const rv = pkcs11ReturnValue(e);
      if (rv !== undefined && PIN_FAILURES.has(rv)) {
        const refused = fail('hsm.unavailable', `login to the HSM token '${spec.token}' failed (${rv})${opened ? '; not retried until restart, to avoid locking the PIN' : ''}`, { token: spec.token, reason: rv });
        if (opened) loginRefused = refused;
        throw refused;
      }
      throw e;
    }
    opened = true;
    opts.logger?.info({ hsm: describePkcs11Spec(spec), sessions: spec.sessions }, 'PKCS#11 token opened');
    return { slot, sessions, free: [...sessions], waiters: [], mechanisms: new Set(lib.C_GetMechanismList(slot)), objects: new Map(), oaep: new Map([['sha1', true]]), services: new Map() };
  }

  function closeQuietly(s: Handle): void {
    try {
      lib.C_CloseSession(s);
    } catch {
      // the session died with the token
    }
  }

  async function connection(): Promise<Connection> {
    if (closed) throw fail('hsm.unavailable', 'the PKCS#11 provider is closed', { token: spec.token, reason: 'closed' });
    if (loginRefused) throw loginRefused;
    if (!conn) {
      // After repeated failures, wait before logging in again: health checks and requests in between
      // fail fast instead of hammering the token (and its PIN counter).
      const wait = retryAt - clock();
      if (wait > 0) throw fail('hsm.unavailable', `the HSM token '${spec.token}' failed; reconnecting in ${Math.ceil(wait / 1000)} s`, { token: spec.token, reason: 'backoff', retryInMs: wait });
      const attempt = open().catch((e: unknown) => {
        conn = undefined;
        failed();
        if (isConclaveError(e)) throw e;
        return unavailable(e, 'open');
      });
      conn = attempt;
    }
    return conn;
  }

  function drop(c: Connection): void {
    void conn?.then((cur) => {
      if (cur !== c) return;
      conn = undefined;
      failed();
      for (const s of c.sessions) closeQuietly(s);
      opts.logger?.warn({ token: spec.token }, 'PKCS#11 token failed; reconnecting on the next request');
    }, () => undefined);
  }

  function sessionAlive(s: Handle, c: Connection): boolean {
    try {
      lib.C_GetSessionInfo(s);
      lib.C_GetTokenInfo(c.slot);
      return true;
    } catch {
      return false;
    }
  }

  /** Runs fn on a pooled session; device failures drop the connection and become `hsm.unavailable`. */
  async function withSession<T>(fn: (s: Handle, c: Connection) => Promise<T> | T): Promise<T> {
    const c = await connection();
    const s = c.free.pop() ?? (await new Promise<Handle>((resolve) => c.waiters.push(resolve)));
    try {
      const out = await fn(s, c);
      failures = 0;
      return out;
    } catch (e) {
      if (isConclaveError(e)) throw e;
      const rv = pkcs11ReturnValue(e);
      // SoftHSM answers CKR_GENERAL_ERROR to a bad GCM tag too: the token is gone only if the session is.
      if (rv === 'CKR_GENERAL_ERROR' && sessionAlive(s, c)) throw fail('key.crypto_failed', `the HSM operation failed (${rv})`, { reason: rv }, e);
      if (rv === undefined || DEVICE_FAILURES.has(rv)) {
        drop(c);
        return unavailable(e, rv ?? 'error');
      }
      if (MECHANISM_FAILURES.has(rv)) throw fail('hsm.mechanism_unsupported', `the HSM token refused the operation (${rv})`, { reason: rv }, e);
      if (rv === 'CKR_KEY_UNEXTRACTABLE' || rv === 'CKR_KEY_NOT_WRAPPABLE') throw fail('key.operation_not_allowed', 'the key cannot leave the HSM', { reason: rv }, e);
      if (DATA_FAILURES.has(rv)) throw fail('key.crypto_failed', `the HSM operation failed (${rv})`, { reason: rv }, e);
      throw fail('key.crypto_failed', `the HSM operation failed (${rv})`, { reason: rv }, e);
    } finally {
      const next = c.waiters.shift();
      if (next) next(s);
      else c.free.push(s);
    }
  }

  function label(binding: string) {
    return [
      { type: P.CKA_LABEL, value: binding },
      { type: P.CKA_ID, value: objectIdOf(binding) },
    ];
  }

  function findOne(s: Handle, template: pkcs11js.Template): Handle | undefined {
    lib.C_FindObjectsInit(s, template);
    try {
      return lib.C_FindObjects(s, 1)[0];
    } finally {
      lib.C_FindObjectsFinal(s);
    }
  }

  function publicKeyOf(s: Handle, family: KeyFamily, pub: Handle | undefined, crv: CurveName | undefined): KeyObject | undefined {
    if (!pub) return undefined;
    if (family === 'RSA') {
      const [n, e] = lib.C_GetAttributeValue(s, pub, [{ type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }]);
      return createPublicKey({ key: { kty: 'RSA', n: unsigned(n!.value as Buffer).toString('base64url'), e: unsigned(e!.value as Buffer).toString('base64url') }, format: 'jwk' });
    }
    const [pt] = lib.C_GetAttributeValue(s, pub, [{ type: P.CKA_EC_POINT }]);
    const point = ecPointOf(pt!.value as Buffer);
    const len = CURVE_BYTES[crv!];
    return createPublicKey({
      key: { kty: 'EC', crv: crv === 'P-256K' ? 'secp256k1' : crv!, x: point.subarray(1, 1 + len).toString('base64url'), y: point.subarray(1 + len).toString('base64url') },
      format: 'jwk',
    });
  }

  /** The objects of a key version; the label must equal the binding (a moved handle does not open). */
  function objectsOf(s: Handle, c: Connection, ref: KeyRef): KeyObjects {
    if (!isPkcs11Handle(ref.handle)) throw fail('key.invalid', 'the key version is not held by the PKCS#11 provider', { provider: 'pkcs11' });
    const id = Buffer.from(ref.handle.subarray(HANDLE_MAGIC.length));
    if (!id.equals(objectIdOf(ref.binding))) throw fail('key.crypto_failed', 'the key handle does not belong to this key version');
    const cacheKey = id.toString('hex');
    const hit = c.objects.get(cacheKey);
    if (hit) return hit;
    const cls = ref.family === 'oct' ? P.CKO_SECRET_KEY : P.CKO_PRIVATE_KEY;
    const key = findOne(s, [
      { type: P.CKA_CLASS, value: cls },
      { type: P.CKA_ID, value: id },
      { type: P.CKA_LABEL, value: ref.binding },
    ]);
    if (!key) throw fail('key.crypto_failed', 'the key material is missing from the HSM token', { reason: 'object_not_found' });
    let crv: CurveName | undefined;
    let bits: number | undefined;
    let pub: Handle | undefined;
    if (ref.family === 'oct') {
      bits = (lib.C_GetAttributeValue(s, key, [{ type: P.CKA_VALUE_LEN }])[0]!.value as Buffer).readUIntLE(0, 4) * 8;
    } else {
      pub = findOne(s, [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        { type: P.CKA_ID, value: id },
        { type: P.CKA_LABEL, value: ref.binding },
      ]);
      if (ref.family === 'EC') {
        const params = (lib.C_GetAttributeValue(s, key, [{ type: P.CKA_EC_PARAMS }])[0]!.value as Buffer).toString('hex');
        crv = (Object.entries(CURVE_PARAMS).find(([, v]) => v === params)?.[0] as CurveName | undefined) ?? undefined;
      } else {
        bits = unsigned(lib.C_GetAttributeValue(s, key, [{ type: P.CKA_MODULUS }])[0]!.value as Buffer).length * 8;
      }
    }
    const publicKey = publicKeyOf(s, ref.family, pub, crv);
    const objects: KeyObjects = { family: ref.family, key, ...(pub ? { pub } : {}), ...(crv ? { crv } : {}), ...(bits ? { bits } : {}), ...(publicKey ? { publicKey } : {}) };
    c.objects.set(cacheKey, objects);
    return objects;
  }

  function handleOf(binding: string): Uint8Array {
    return new Uint8Array(Buffer.concat([HANDLE_MAGIC, objectIdOf(binding)]));
  }

  function protectedOf(binding: string, key: KeyObject | undefined, family: KeyFamily, bits: number | undefined, crv?: CurveName): ProtectedKey {
    let publicJwk: PublicJwk = {};
    if (key) {
      const j = key.export({ format: 'jwk' }) as JsonWebKey;
      publicJwk = family === 'RSA' ? { n: j.n!, e: j.e! } : { crv: crv!, x: j.x!, y: j.y! };
    }
    return { handle: handleOf(binding), publicJwk, ...(bits !== undefined ? { keySize: bits } : {}), ...(crv ? { crv } : {}) };
  }

  const privateAttrs = (exportable: boolean) => [
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: exportable },
  ];

  function checkFamily(ref: KeyRef, families: readonly KeyFamily[], alg: string): void {
    if (!families.includes(ref.family)) throw fail('key.invalid', `Algorithm ${alg} does not apply to a ${ref.family} key`, { field: 'alg', alg });
  }

  function checkDigest(alg: SignatureAlgorithm, digest: Uint8Array): string {
    // RSNULL: CKM_RSA_PKCS over the value as given (the caller's DigestInfo); the token bounds its length.
    if (alg === 'RSNULL') return '';
    // HS256/384/512 need HMAC-capable secret objects; the token's oct keys are AES keys (docs/hsm.md).
    if (alg.startsWith('HS')) throw fail('key.invalid', `${alg} is not available for keys in the PKCS#11 token`, { field: 'alg', alg });
    const bits = alg.slice(2);
    const want = DIGEST_LEN[bits];
    if (want === undefined) throw fail('key.invalid', `Unsupported signature algorithm ${alg}`, { field: 'alg' });
    if (digest.length !== want) throw fail('key.invalid', `${alg} signs a ${want}-byte digest, got ${digest.length} bytes`, { field: 'value' });
    return bits;
  }

  function signMechanism(o: KeyObjects, alg: SignatureAlgorithm, bits: string, digest: Uint8Array): { mech: pkcs11js.Mechanism; data: Buffer } {
    if (alg.startsWith('ES')) {
      if (o.family !== 'EC' || !o.crv || EC_ALG[o.crv] !== alg) throw fail('key.invalid', `Algorithm ${alg} does not match the key curve ${o.crv ?? 'unknown'}`, { field: 'alg' });
      return { mech: { mechanism: P.CKM_ECDSA }, data: Buffer.from(digest) };
    }
    if (alg === 'RSNULL') return { mech: { mechanism: P.CKM_RSA_PKCS }, data: Buffer.from(digest) };
    if (alg.startsWith('RS')) return { mech: { mechanism: P.CKM_RSA_PKCS }, data: Buffer.concat([DIGEST_INFO[bits]!, digest]) };
    if (alg.startsWith('PS')) {
      const h = HASH_MECH[`sha${bits}` as HashName];
      return { mech: { mechanism: P.CKM_RSA_PKCS_PSS, parameter: { type: P.CK_PARAMS_RSA_PSS, hashAlg: h.hashAlg, mgf: h.mgf, saltLen: h.len } as pkcs11js.RsaPSS }, data: Buffer.from(digest) };
    }
    throw fail('key.invalid', `Unsupported signature algorithm ${alg}`, { field: 'alg' });
  }

  function oaepParams(hash: HashName): pkcs11js.Mechanism {
    const h = HASH_MECH[hash];
    return { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: h.hashAlg, mgf: h.mgf, source: CKZ_DATA_SPECIFIED } as pkcs11js.RsaOAEP };
  }

  /** Runs fn with OAEP under `hash` in the token; false when the token refuses that hash (remembered). */
  async function tryOaep<T>(c: Connection, hash: HashName, fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    if (c.oaep.get(hash) === false) return { ok: false };
    try {
      const value = await fn();
      c.oaep.set(hash, true);
      return { ok: true, value };
    } catch (e) {
      const rv = pkcs11ReturnValue(e);
      if (rv === 'CKR_ARGUMENTS_BAD' || rv === 'CKR_MECHANISM_PARAM_INVALID' || rv === 'CKR_MECHANISM_INVALID') {
        c.oaep.set(hash, false);
        return { ok: false };
      }
      throw e;
    }
  }

  /**
   * A padding failure inside the token reads as the host-side decoder's one error (src/hsm/oaep.ts), whatever
   * return value the token chose (SoftHSM2: CKR_GENERAL_ERROR), so no message tells one failure from another.
   * A lost device still answers 503.
   */
  async function uniformDecryptFailure(s: Handle, c: Connection, decrypt: () => Promise<Buffer>): Promise<Buffer> {
    try {
      return await decrypt();
    } catch (e) {
      const rv = pkcs11ReturnValue(e);
      const deviceLost = rv === undefined || (DEVICE_FAILURES.has(rv) && !(rv === 'CKR_GENERAL_ERROR' && sessionAlive(s, c)));
      if (deviceLost || MECHANISM_FAILURES.has(rv)) throw e;
      throw fail('key.crypto_failed', 'decryption failed');
    }
  }

  async function rsaCipher(s: Handle, c: Connection, o: KeyObjects, alg: string, data: Uint8Array, decrypt: boolean): Promise<Buffer> {
    const k = Math.ceil((o.bits ?? 2048) / 8);
    const input = Buffer.from(data);
    if (!decrypt) {
      // Encryption uses only the public key: node:crypto with the token's public parts where the token lacks the padding.
      if (!o.publicKey) throw fail('key.crypto_failed', 'the public key object is missing from the HSM token', { reason: 'object_not_found' });
      try {
        if (alg === 'RSA1_5') return publicEncrypt({ key: o.publicKey, padding: constants.RSA_PKCS1_PADDING }, input);
        return publicEncrypt({ key: o.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' }, input);
      } catch (e) {
        throw fail('key.crypto_failed', `encryption with ${alg} failed`, { alg }, e);
      }
    }
    if (alg === 'RSA1_5') {
      lib.C_DecryptInit(s, { mechanism: P.CKM_RSA_PKCS }, o.key);
      return uniformDecryptFailure(s, c, () => lib.C_DecryptAsync(s, input, Buffer.alloc(k)));
    }
    const hash: HashName = alg === 'RSA-OAEP' ? 'sha1' : 'sha256';
    const inToken = await tryOaep(c, hash, async () => {
      lib.C_DecryptInit(s, oaepParams(hash), o.key);
      return uniformDecryptFailure(s, c, () => lib.C_DecryptAsync(s, input, Buffer.alloc(k)));
    });
    if (inToken.ok) return inToken.value;
    // The private-key operation stays in the token (CKM_RSA_X_509); only the padding is removed here.
    lib.C_DecryptInit(s, { mechanism: P.CKM_RSA_X_509 }, o.key);
    const em = leftPad(await uniformDecryptFailure(s, c, () => lib.C_DecryptAsync(s, input, Buffer.alloc(k))), k);
    return oaepDecode(em, hash);
  }

  async function aesCipher(s: Handle, o: KeyObjects, req: CipherRequest, decrypt: boolean): Promise<CipherResult> {
    const alg = req.alg;
    // The PKCS#11 names (Managed HSM) wrap with any AES key size.
    const bits = alg.startsWith('CKM_') ? o.bits : aesBits(alg);
    if (!Number.isFinite(bits) || o.bits !== bits) throw fail('key.invalid', `Algorithm ${alg} needs a ${bits}-bit key; this key has ${o.bits} bits`, { field: 'alg', alg });
    const value = Buffer.from(req.value);
    if (alg.endsWith('KW') || alg === 'CKM_AES_KEY_WRAP' || alg === 'CKM_AES_KEY_WRAP_PAD') {
      const padded = alg === 'CKM_AES_KEY_WRAP_PAD';
      const mechanism = padded ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP;
      if (!padded && (value.length < 16 || value.length % 8 !== 0)) throw fail('key.invalid', `${alg} takes a multiple of 8 bytes, at least 16`, { field: 'value', alg });
      // SoftHSM2 2.6 pads a key to whole blocks before an RFC 5649 wrap (the MLI then says the padded
      // length), and unwraps to the padded length: only whole blocks come out right, so only those go in.
      if (padded && decrypt && (value.length < 16 || value.length % 8 !== 0)) throw fail('key.invalid', `${alg} unwraps a multiple of 8 bytes, at least 16`, { field: 'value', alg });
      if (padded && !decrypt && (value.length < 16 || value.length % 8 !== 0)) {
        throw fail('key.invalid', `${alg} with a key in the PKCS#11 token takes a multiple of 8 bytes, at least 16 (docs/hsm.md)`, { field: 'value', alg });
      }
      // RFC 3394 inside the token: the data travels as a session secret-key object.
      if (!decrypt) {
        const tmp = lib.C_CreateObject(s, [
          { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
          { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
          { type: P.CKA_TOKEN, value: false },
          { type: P.CKA_SENSITIVE, value: false },
          { type: P.CKA_EXTRACTABLE, value: true },
          { type: P.CKA_VALUE, value },
        ]);
        try {
          return { value: await lib.C_WrapKeyAsync(s, { mechanism }, o.key, tmp, Buffer.alloc(value.length + 16)) };
        } finally {
          lib.C_DestroyObject(s, tmp);
        }
      }
      const tmp = await lib.C_UnwrapKeyAsync(s, { mechanism }, o.key, value, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_SENSITIVE, value: false },
        { type: P.CKA_EXTRACTABLE, value: true },
      ]);
      try {
        return { value: lib.C_GetAttributeValue(s, tmp, [{ type: P.CKA_VALUE }])[0]!.value as Buffer };
      } finally {
        lib.C_DestroyObject(s, tmp);
      }
    }
    if (alg.endsWith('GCM')) {
      const iv = req.iv ? Buffer.from(req.iv) : decrypt ? undefined : randomBytes(12);
      if (iv?.length !== 12) throw fail('key.invalid', `${alg} needs a 12-byte iv`, { field: 'iv' });
      if (decrypt && !req.tag) throw fail('key.invalid', `${alg} decryption needs the authentication tag`, { field: 'tag' });
      const mech = {
        mechanism: P.CKM_AES_GCM,
        parameter: { type: P.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, ...(req.aad ? { aad: Buffer.from(req.aad) } : {}), tagBits: 128 } as pkcs11js.GcmParams,
      };
      if (decrypt) {
        lib.C_DecryptInit(s, mech, o.key);
        const out = await lib.C_DecryptAsync(s, Buffer.concat([value, req.tag!]), Buffer.alloc(value.length + 16));
        return { value: out, iv };
      }
      lib.C_EncryptInit(s, mech, o.key);
      const out = await lib.C_EncryptAsync(s, value, Buffer.alloc(value.length + 16));
      return { value: out.subarray(0, out.length - 16), iv, tag: out.subarray(out.length - 16), ...(req.aad ? { aad: req.aad } : {}) };
    }
    const iv = req.iv ? Buffer.from(req.iv) : decrypt ? undefined : randomBytes(16);
    if (iv?.length !== 16) throw fail('key.invalid', `${alg} needs a 16-byte iv`, { field: 'iv' });
    const mech = { mechanism: alg.endsWith('CBCPAD') ? P.CKM_AES_CBC_PAD : P.CKM_AES_CBC, parameter: iv };
    if (decrypt) {
      lib.C_DecryptInit(s, mech, o.key);
      return { value: await lib.C_DecryptAsync(s, value, Buffer.alloc(value.length + 16)), iv };
    }
    lib.C_EncryptInit(s, mech, o.key);
    return { value: await lib.C_EncryptAsync(s, value, Buffer.alloc(value.length + 16)), iv };
  }

  async function cipher(ref: KeyRef, req: CipherRequest, decrypt: boolean): Promise<CipherResult> {
    if (req.alg.startsWith('RSA')) {
      checkFamily(ref, ['RSA'], req.alg);
      if (!['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'].includes(req.alg)) throw fail('key.invalid', `Algorithm ${req.alg} does not apply to an RSA key`, { field: 'alg', alg: req.alg });
      return withSession(async (s, c) => ({ value: await rsaCipher(s, c, objectsOf(s, c, ref), req.alg, req.value, decrypt) }));
    }
    checkFamily(ref, ['oct'], req.alg);
    return withSession((s, c) => aesCipher(s, objectsOf(s, c, ref), req, decrypt));
  }

  /** Public template for C_CreateObject of an RSA wrapping key (session object, wrap only). */
  function importWrappingKey(s: Handle, key: KeyObject): Handle {
    const j = key.export({ format: 'jwk' }) as JsonWebKey;
    return lib.C_CreateObject(s, PROBE_PUBLIC_TEMPLATE(Buffer.from(j.n!, 'base64url'), Buffer.from(j.e!, 'base64url')));
  }

  async function releaseParts(s: Handle, c: Connection, o: KeyObjects, wrappingPublicKey: KeyObject, enc: KeyTransferEnc): Promise<{ wrappedKek: Uint8Array; wrappedKey: Uint8Array }> {
    const hash = RELEASE_HASH[enc];
    const k = Math.ceil((wrappingPublicKey.asymmetricKeyDetails?.modulusLength ?? 2048) / 8);
    const pub = importWrappingKey(s, wrappingPublicKey);
    try {
      const kek = await lib.C_GenerateKeyAsync(s, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: true },
        { type: P.CKA_WRAP, value: true },
      ]);
      try {
        const inToken = await tryOaep(c, hash, () => lib.C_WrapKeyAsync(s, oaepParams(hash), pub, kek, Buffer.alloc(k)));
        if (inToken.ok) {
          const wrappedKey = await lib.C_WrapKeyAsync(s, { mechanism: CKM_AES_KEY_WRAP_PAD }, kek, o.key, Buffer.alloc(16384));
          return { wrappedKek: inToken.value, wrappedKey };
        }
      } finally {
        lib.C_DestroyObject(s, kek);
      }
    } finally {
      lib.C_DestroyObject(s, pub);
    }
    if (spec.releaseSha2 !== 'hybrid') {
      throw fail('hsm.mechanism_unsupported', `the HSM token cannot do OAEP with ${hash.toUpperCase()}, which ${enc} requires; request CKM_RSA_AES_KEY_WRAP or configure release-sha2=hybrid (docs/hsm.md)`, {
        enc,
        mechanism: 'CKM_RSA_PKCS_OAEP',
        hash,
      });
    }
    // release-sha2=hybrid: the KEK is made here, the key is still wrapped inside the token.
    const kekBytes = randomBytes(32);
    try {
      const kek = lib.C_CreateObject(s, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_WRAP, value: true },
        { type: P.CKA_VALUE, value: kekBytes },
      ]);
      try {
        const wrappedKey = await lib.C_WrapKeyAsync(s, { mechanism: CKM_AES_KEY_WRAP_PAD }, kek, o.key, Buffer.alloc(16384));
        const wrappedKek = publicEncrypt({ key: wrappingPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, kekBytes);
        return { wrappedKek, wrappedKey };
      } finally {
        lib.C_DestroyObject(s, kek);
      }
    } finally {
      kekBytes.fill(0);
    }
  }

  async function generateIn(s: Handle, keySpec: KeySpec, binding: string, exportable: boolean): Promise<ProtectedKey> {
    const common = label(binding);
    if (keySpec.family === 'oct') {
      if (![128, 192, 256].includes(keySpec.keySize)) throw fail('key.invalid', `oct key size ${keySpec.keySize} is not an AES key size`, { field: 'key_size' });
      await lib.C_GenerateKeyAsync(s, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE_LEN, value: keySpec.keySize / 8 },
        ...common,
        ...privateAttrs(exportable),
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_DECRYPT, value: true },
        { type: P.CKA_WRAP, value: true },
        { type: P.CKA_UNWRAP, value: true },
      ]);
      return protectedOf(binding, undefined, 'oct', keySpec.keySize);
    }
    const pubTemplate: pkcs11js.Template = [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false }, ...common, { type: P.CKA_VERIFY, value: true }];
    const privTemplate: pkcs11js.Template = [...common, ...privateAttrs(exportable), { type: P.CKA_SIGN, value: true }];
    if (keySpec.family === 'RSA') {
      const pair = await lib.C_GenerateKeyPairAsync(
        s,
        { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [...pubTemplate, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_MODULUS_BITS, value: keySpec.keySize }, { type: P.CKA_PUBLIC_EXPONENT, value: bigEndian(keySpec.publicExponent) }],
        [...privTemplate, { type: P.CKA_DECRYPT, value: true }],
      );
      return protectedOf(binding, publicKeyOf(s, 'RSA', pair.publicKey, undefined), 'RSA', keySpec.keySize);
    }
    const pair = await lib.C_GenerateKeyPairAsync(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, [...pubTemplate, { type: P.CKA_EC_PARAMS, value: Buffer.from(CURVE_PARAMS[keySpec.crv], 'hex') }], privTemplate);
    return protectedOf(binding, publicKeyOf(s, 'EC', pair.publicKey, keySpec.crv), 'EC', undefined, keySpec.crv);
  }

  function importIn(s: Handle, jwk: PrivateJwk, binding: string, exportable: boolean): ProtectedKey {
    const common = label(binding);
    const b = (v: string | undefined) => Buffer.from(v ?? '', 'base64url');
    if (jwk.kty.startsWith('oct')) {
      const k = b(jwk.k);
      if (![16, 24, 32].includes(k.length)) throw fail('key.invalid', `an oct key for the HSM must be 128, 192 or 256 bits, not ${k.length * 8}`, { field: 'key' });
      lib.C_CreateObject(s, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE, value: k },
        ...common,
        ...privateAttrs(exportable),
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_DECRYPT, value: true },
        { type: P.CKA_WRAP, value: true },
        { type: P.CKA_UNWRAP, value: true },
      ]);
      k.fill(0);
      return protectedOf(binding, undefined, 'oct', createSecretKey(Buffer.alloc(k.length)).symmetricKeySize! * 8);
    }
    // node:crypto checks the key and completes it (EC public point, RSA CRT parts) before it goes in.
    let key: KeyObject;
    try {
      const kty = jwk.kty.replace('-HSM', '');
      const crv = jwk.crv === 'P-256K' ? 'secp256k1' : jwk.crv;
      const { n, e, d, p, q, dp, dq, qi, x, y } = jwk;
      key = createPrivateKey({ key: { kty, n, e, d, p, q, dp, dq, qi, crv, x, y } as JsonWebKey, format: 'jwk' });
    } catch (e) {
      throw fail('key.invalid', 'The JSON Web Key to import is not a valid private key', { field: 'key' }, e);
    }
    const full = key.export({ format: 'jwk' }) as JsonWebKey;
    const pubTemplate: pkcs11js.Template = [{ type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false }, ...common, { type: P.CKA_VERIFY, value: true }];
    const privTemplate: pkcs11js.Template = [{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, ...common, ...privateAttrs(exportable), { type: P.CKA_SIGN, value: true }];
    if (full.kty === 'RSA') {
      const [n, e] = [b(full.n), b(full.e)];
      lib.C_CreateObject(s, [...pubTemplate, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_MODULUS, value: n }, { type: P.CKA_PUBLIC_EXPONENT, value: e }]);
      lib.C_CreateObject(s, [
        ...privTemplate,
        { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
        { type: P.CKA_DECRYPT, value: true },
        { type: P.CKA_MODULUS, value: n },
        { type: P.CKA_PUBLIC_EXPONENT, value: e },
        { type: P.CKA_PRIVATE_EXPONENT, value: b(full.d) },
        { type: P.CKA_PRIME_1, value: b(full.p) },
        { type: P.CKA_PRIME_2, value: b(full.q) },
        { type: P.CKA_EXPONENT_1, value: b(full.dp) },
        { type: P.CKA_EXPONENT_2, value: b(full.dq) },
        { type: P.CKA_COEFFICIENT, value: b(full.qi) },
      ]);
      return protectedOf(binding, createPublicKey(key), 'RSA', key.asymmetricKeyDetails!.modulusLength!);
    }
    const crv = (full.crv === 'secp256k1' ? 'P-256K' : full.crv) as CurveName;
    if (!(crv in CURVE_PARAMS)) throw fail('key.invalid', `unsupported curve ${String(full.crv)}`, { field: 'crv' });
    const len = CURVE_BYTES[crv];
    const point = Buffer.concat([Buffer.of(4), leftPad(b(full.x), len), leftPad(b(full.y), len)]);
    const params = Buffer.from(CURVE_PARAMS[crv], 'hex');
    lib.C_CreateObject(s, [...pubTemplate, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_EC_PARAMS, value: params }, { type: P.CKA_EC_POINT, value: Buffer.from(tlv(TAG.OCTET_STRING, point)) }]);
    lib.C_CreateObject(s, [...privTemplate, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_EC_PARAMS, value: params }, { type: P.CKA_VALUE, value: leftPad(b(full.d), len) }]);
    return protectedOf(binding, createPublicKey(key), 'EC', undefined, crv);
  }

  const serviceLabel = (name: string) => `conclave-service:${name}`;

  /** The private keys labelled for service `name` with their public keys, lowest CKA_ID first. */
  function servicePairs(s: Handle, name: string): ServicePair[] {
    lib.C_FindObjectsInit(s, [
      { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
      { type: P.CKA_LABEL, value: serviceLabel(name) },
    ]);
    let keys: Handle[];
    try {
      keys = lib.C_FindObjects(s, 16);
    } finally {
      lib.C_FindObjectsFinal(s);
    }
    return keys.map((key) => servicePair(s, key)).sort((a, b) => Buffer.compare(a.id, b.id));
  }

  function servicePair(s: Handle, key: Handle): ServicePair {
    // CKA_MODULUS and CKA_PUBLIC_EXPONENT are public attributes of an RSA private key (PKCS#11 v2.40 §2.1.3).
    const [id, n, e] = lib.C_GetAttributeValue(s, key, [{ type: P.CKA_ID }, { type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }]);
    const jwk = { kty: 'RSA', n: unsigned(n!.value as Buffer).toString('base64url'), e: unsigned(e!.value as Buffer).toString('base64url') };
    return { key, id: id!.value as Buffer, publicKey: createPublicKey({ key: jwk, format: 'jwk' }), protection: protectionOf(s, key) };
  }

  /**
   * The attributes that keep a private key inside the token (PKCS#11 v2.40 §4.9): sensitive and not
   * extractable now, and always so since it was made (a key once readable may have been copied).
   */
  function protectionOf(s: Handle, key: Handle): Record<'sensitive' | 'extractable' | 'alwaysSensitive' | 'neverExtractable', boolean> {
    const [sensitive, extractable, always, never] = lib.C_GetAttributeValue(s, key, [
      { type: P.CKA_SENSITIVE },
      { type: P.CKA_EXTRACTABLE },
      { type: P.CKA_ALWAYS_SENSITIVE },
      { type: P.CKA_NEVER_EXTRACTABLE },
    ]);
    const bool = (a: pkcs11js.Attribute | undefined) => (a!.value as Buffer)[0] === 1;
    return { sensitive: bool(sensitive), extractable: bool(extractable), alwaysSensitive: bool(always), neverExtractable: bool(never) };
  }

  /** Refuses a service key that could have left the token: `hsm.key_untrusted` naming the attribute. */
  function requireProtected(name: string, pair: ServicePair): void {
    const p = pair.protection;
    const bad = !p.sensitive ? 'CKA_SENSITIVE' : p.extractable ? 'CKA_EXTRACTABLE' : !p.alwaysSensitive ? 'CKA_ALWAYS_SENSITIVE' : !p.neverExtractable ? 'CKA_NEVER_EXTRACTABLE' : undefined;
    if (bad === undefined) return;
    opts.logger?.error({ token: spec.token, label: serviceLabel(name), id: pair.id.toString('hex'), attribute: bad }, 'service key in the token is not protected; refusing it');
    throw fail('hsm.key_untrusted', `the service key ${serviceLabel(name)} (CKA_ID ${pair.id.toString('hex')}) in the HSM token has ${bad} ${bad === 'CKA_EXTRACTABLE' ? 'true' : 'false'}: its private key may exist outside the token`, {
      token: spec.token,
      label: serviceLabel(name),
      id: pair.id.toString('hex'),
      attribute: bad,
    });
  }

  async function generateServiceKey(s: Handle, name: string): Promise<void> {
    const common: pkcs11js.Template = [
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_LABEL, value: serviceLabel(name) },
      { type: P.CKA_ID, value: randomBytes(ID_LENGTH) },
    ];
    await lib.C_GenerateKeyPairAsync(
      s,
      { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [...common, { type: P.CKA_PRIVATE, value: false }, { type: P.CKA_VERIFY, value: true }, { type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_PUBLIC_EXPONENT, value: bigEndian(65537) }],
      [
        ...common,
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
        { type: P.CKA_SIGN, value: true },
        { type: P.CKA_DECRYPT, value: false },
        { type: P.CKA_UNWRAP, value: false },
      ],
    );
    opts.logger?.info({ token: spec.token, label: serviceLabel(name) }, 'service signing key generated in the PKCS#11 token');
  }

  function serviceSignerOf(name: string, id: Buffer, publicKey: KeyObject): Pkcs11ServiceSigner {
    const label = serviceLabel(name);
    const cacheKey = `${label}/${id.toString('hex')}`;
    return {
      publicKey,
      sign: (data) =>
        withSession(async (s, c) => {
          let key = c.services.get(cacheKey);
          if (!key) {
            const found = findOne(s, [
              { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
              { type: P.CKA_LABEL, value: label },
              { type: P.CKA_ID, value: id },
            ]);
            if (!found) throw fail('hsm.unavailable', `the service key ${label} is missing from the HSM token`, { token: spec.token, reason: 'object_not_found' });
            // Every load (also after a reconnect) checks that this is still the pinned, protected key.
            const pair = servicePair(s, found);
            if (!spkiOf(pair.publicKey).equals(spkiOf(publicKey))) throw fail('hsm.key_untrusted', `the service key ${label} in the HSM token is not the pinned key`, { token: spec.token, label, id: id.toString('hex') });
            requireProtected(name, pair);
            key = found;
            c.services.set(cacheKey, key);
          }
          // CKM_SHA256_RSA_PKCS hashes in the token; without it, CKM_RSA_PKCS over the DigestInfo (RFC 8017 §9.2).
          if (c.mechanisms.has(P.CKM_SHA256_RSA_PKCS)) {
            lib.C_SignInit(s, { mechanism: P.CKM_SHA256_RSA_PKCS }, key);
            return new Uint8Array(await lib.C_SignAsync(s, Buffer.from(data), Buffer.alloc(512)));
          }
          lib.C_SignInit(s, { mechanism: P.CKM_RSA_PKCS }, key);
          return new Uint8Array(await lib.C_SignAsync(s, Buffer.concat([DIGEST_INFO['256']!, createHash('sha256').update(data).digest()]), Buffer.alloc(512)));
        }),
    };
  }

  function mechanismName(m: number): string {
    const name = Object.keys(P).find((k) => k.startsWith('CKM_') && (P as unknown as Record<string, unknown>)[k] === m);
    if (name) return name;
    if (m === CKM_AES_KEY_WRAP_PAD) return 'CKM_AES_KEY_WRAP_PAD';
    if (m === CKM_RSA_AES_KEY_WRAP) return 'CKM_RSA_AES_KEY_WRAP';
    return `0x${m.toString(16).padStart(8, '0')}`;
  }

  await connection();

  return {
    provider: 'pkcs11',

    async generate(keySpec, binding, genOpts = {}) {
      return withSession((s) => generateIn(s, keySpec, binding, genOpts.exportable === true));
    },

    async import(jwk, binding, importOpts = {}) {
      return withSession((s) => importIn(s, jwk, binding, importOpts.exportable === true));
    },

    async sign(ref, alg, digest) {
      const bits = checkDigest(alg, digest);
      checkFamily(ref, alg.startsWith('ES') ? ['EC'] : ['RSA'], alg);
      return withSession(async (s, c) => {
        const o = objectsOf(s, c, ref);
        const max = Math.ceil((o.bits ?? 2048) / 8) - 11;
        if (alg === 'RSNULL' && digest.length > max) throw fail('key.invalid', `RSNULL signs at most ${max} bytes with this key, got ${digest.length}`, { field: 'value' });
        const { mech, data } = signMechanism(o, alg, bits, digest);
        lib.C_SignInit(s, mech, o.key);
        return new Uint8Array(await lib.C_SignAsync(s, data, Buffer.alloc(512)));
      });
    },

    async verify(ref, alg, digest, signature) {
      const bits = checkDigest(alg, digest);
      checkFamily(ref, alg.startsWith('ES') ? ['EC'] : ['RSA'], alg);
      return withSession(async (s, c) => {
        const o = objectsOf(s, c, ref);
        if (!o.pub) throw fail('key.crypto_failed', 'the public key object is missing from the HSM token', { reason: 'object_not_found' });
        const { mech, data } = signMechanism(o, alg, bits, digest);
        lib.C_VerifyInit(s, mech, o.pub);
        try {
          return await lib.C_VerifyAsync(s, data, Buffer.from(signature));
        } catch (e) {
          const rv = pkcs11ReturnValue(e);
          if (rv === 'CKR_SIGNATURE_INVALID' || rv === 'CKR_SIGNATURE_LEN_RANGE' || rv === 'CKR_DATA_LEN_RANGE') return false;
          throw e;
        }
      });
    },

    async encrypt(ref, req) {
      return cipher(ref, req, false);
    },

    async decrypt(ref, req) {
      return cipher(ref, req, true);
    },

    async releaseWrapped(ref, wrappingPublicKey, enc, releaseOpts = {}) {
      const parts = await withSession((s, c) => releaseParts(s, c, objectsOf(s, c, ref), wrappingPublicKey, enc));
      return assembleTransferBlob(parts, { enc, ...(releaseOpts.kid !== undefined ? { kid: releaseOpts.kid } : {}) });
    },

    async serviceSigner(name) {
      const chosen = await withSession(async (s) => {
        let found = servicePairs(s, name);
        if (found.length === 0) {
          await generateServiceKey(s, name);
          found = servicePairs(s, name);
        }
        // A labelled pair that could have left the token is an attack or a mistake: refuse, never skip it.
        for (const p of found) requireProtected(name, p);
        return found[0];
      });
      if (!chosen) throw fail('hsm.unavailable', `the service key ${serviceLabel(name)} vanished after generation`, { token: spec.token, reason: 'object_not_found' });
      return serviceSignerOf(name, chosen.id, chosen.publicKey);
    },

    async findServiceSigner(name, publicKey) {
      const want = spkiOf(publicKey);
      const hit = await withSession((s) => servicePairs(s, name).find((p) => want.equals(spkiOf(p.publicKey))));
      if (hit) requireProtected(name, hit);
      return hit ? serviceSignerOf(name, hit.id, hit.publicKey) : undefined;
    },

    async check() {
      await withSession((s, c) => {
        lib.C_GetSessionInfo(s);
        lib.C_GetTokenInfo(c.slot);
      });
    },

    async info() {
      return withSession(async (s, c) => {
        // Learn the OAEP hashes the token accepts by wrapping a throwaway KEK under a throwaway key.
        const probe = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
        for (const hash of ['sha256', 'sha384'] as const) {
          if (c.oaep.has(hash)) continue;
          await releaseProbe(s, c, probe, hash);
        }
        const li = lib.C_GetInfo();
        const ti = lib.C_GetTokenInfo(c.slot);
        const listed = c.mechanisms.has(CKM_RSA_AES_KEY_WRAP);
        return {
          spec: describePkcs11Spec(spec),
          library: {
            description: li.libraryDescription.trim(),
            manufacturer: li.manufacturerID.trim(),
            version: `${li.libraryVersion.major}.${li.libraryVersion.minor}`,
            cryptoki: `${li.cryptokiVersion.major}.${li.cryptokiVersion.minor}`,
          },
          token: { label: ti.label.trim(), manufacturer: ti.manufacturerID.trim(), model: ti.model.trim(), serialNumber: ti.serialNumber.trim() },
          mechanisms: [...c.mechanisms].sort((a, b) => a - b).map(mechanismName),
          rsaAesKeyWrapListed: listed,
          releasePath: 'two-step: ephemeral AES-256 KEK (CKM_AES_KEY_GEN), CKM_AES_KEY_WRAP_PAD of the key, CKM_RSA_PKCS_OAEP of the KEK',
          oaepHashes: Object.fromEntries(c.oaep),
          releaseSha2: spec.releaseSha2,
        };
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      const c = await conn?.catch(() => undefined);
      conn = undefined;
      if (c) for (const s of c.sessions) closeQuietly(s);
      releaseModule(spec.module);
    },
  };

  async function releaseProbe(s: Handle, c: Connection, probe: KeyObject, hash: HashName): Promise<void> {
    const pub = importWrappingKey(s, probe);
    try {
      const kek = lib.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_EXTRACTABLE, value: true },
      ]);
      try {
        await tryOaep(c, hash, async () => lib.C_WrapKey(s, oaepParams(hash), pub, kek, Buffer.alloc(512)));
      } finally {
        lib.C_DestroyObject(s, kek);
      }
    } finally {
      lib.C_DestroyObject(s, pub);
    }
  }
}

/**
 * Routes operations by handle: PKCS#11 handles to the token, everything else (keys created before the
 * HSM was configured) to the software provider. New keys go to the token.
 */
export function routeKeyProtector(hsm: KeyProtector, software: KeyProtector): KeyProtector {
  const pick = (ref: KeyRef) => (isPkcs11Handle(ref.handle) ? hsm : software);
  return {
    provider: hsm.provider,
    generate: (spec, binding, opts) => hsm.generate(spec, binding, opts),
    import: (jwk, binding, opts) => hsm.import(jwk, binding, opts),
    sign: (ref, alg, digest) => pick(ref).sign(ref, alg, digest),
    verify: (ref, alg, digest, sig) => pick(ref).verify(ref, alg, digest, sig),
    encrypt: (ref, req) => pick(ref).encrypt(ref, req),
    decrypt: (ref, req) => pick(ref).decrypt(ref, req),
    releaseWrapped: (ref, key, enc, opts) => pick(ref).releaseWrapped(ref, key, enc, opts),
    // BYOK lands new keys in the token: only when the token can unwrap there (not yet, docs/vault.md).
    ...(hsm.importTransfer ? { importTransfer: hsm.importTransfer.bind(hsm) } : {}),
  };
}
