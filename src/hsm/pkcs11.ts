/**
 * PKCS#11 key protection: key material generated or imported into an HSM token and used there
 * (PKCS#11 v2.40). Implements the vault's KeyProtector port beside the software provider. This file
 * assembles the parts: the module (pkcs11-module.ts), the session pool and its failure policy
 * (pkcs11-sessions.ts), key objects (pkcs11-objects.ts), signing (pkcs11-sign.ts), encryption
 * (pkcs11-cipher.ts), release wrapping (pkcs11-release.ts) and the service's signing keys
 * (pkcs11-service.ts); their shared vocabulary is pkcs11-common.ts.
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
import type { KeyObject } from 'node:crypto';
import { isConclaveError } from '../core/errors.js';
import type { KeyProtector, KeyRef } from '../vault/ports.js';
import { assembleTransferBlob } from '../vault/release/index.js';
import { createCipher } from './pkcs11-cipher.js';
import { CKM_AES_KEY_WRAP_PAD, CKM_RSA_AES_KEY_WRAP, isPkcs11Handle, P, type Pkcs11Options, readPin } from './pkcs11-common.js';
import { acquireModule } from './pkcs11-module.js';
import { createTokenObjects } from './pkcs11-objects.js';
import { createReleaseWrap } from './pkcs11-release.js';
import { createServiceKeys, type Pkcs11ServiceSigner } from './pkcs11-service.js';
import { createSessionPool } from './pkcs11-sessions.js';
import { createSigning } from './pkcs11-sign.js';
import { describePkcs11Spec, type Pkcs11Spec } from './pkcs11-spec.js';

export { isPkcs11Handle, objectIdOf, type Pkcs11Options, pkcs11ReturnValue } from './pkcs11-common.js';
export type { Pkcs11ServiceSigner } from './pkcs11-service.js';

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

/**
 * Opens the token named by the spec: loads the module (shared per process), logs in once and fills
 * the session pool. Throws `config.invalid` (module, PIN) or `hsm.unavailable` (token absent, login).
 */
export async function createPkcs11KeyProtector(spec: Pkcs11Spec, opts: Pkcs11Options = {}): Promise<Pkcs11KeyProtector> {
  const pin = readPin(spec, opts.env ?? process.env);
  const raw = acquireModule(spec.module);
  const lib = opts.wrapLibrary ? opts.wrapLibrary(raw) : raw;
  const pool = createSessionPool(spec, lib, pin, opts);
  const { withSession } = pool;
  const objects = createTokenObjects(lib);
  const { generateIn, importIn, objectsOf } = objects;
  const { cipher } = createCipher(lib, pool, objects);
  const { releaseParts, releaseProbe } = createReleaseWrap(lib, spec);
  const service = createServiceKeys(lib, spec, opts, pool, objects);

  function mechanismName(m: number): string {
    const name = Object.keys(P).find((k) => k.startsWith('CKM_') && (P as unknown as Record<string, unknown>)[k] === m);
    if (name) return name;
    if (m === CKM_AES_KEY_WRAP_PAD) return 'CKM_AES_KEY_WRAP_PAD';
    if (m === CKM_RSA_AES_KEY_WRAP) return 'CKM_RSA_AES_KEY_WRAP';
    return `0x${m.toString(16).padStart(8, '0')}`;
  }

  await pool.connection();

  return {
    provider: 'pkcs11',

    async generate(keySpec, binding, genOpts = {}) {
      return withSession((s) => generateIn(s, keySpec, binding, genOpts.exportable === true));
    },

    async import(jwk, binding, importOpts = {}) {
      return withSession((s) => importIn(s, jwk, binding, importOpts.exportable === true));
    },

    async holds(ref) {
      if (!isPkcs11Handle(ref.handle)) return false;
      return withSession((s, c) => {
        try {
          objectsOf(s, c, ref);
          return true;
        } catch (e) {
          // The object is absent (another token) or the handle is not this version's; device failures go on.
          if (isConclaveError(e, 'key.crypto_failed') || isConclaveError(e, 'key.invalid')) return false;
          throw e;
        }
      });
    },

    ...createSigning(lib, pool, objects),

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

    serviceSigner: service.serviceSigner,
    findServiceSigner: service.findServiceSigner,

    async check() {
      await withSession((s, c) => {
        lib.C_GetSessionInfo(s);
        lib.C_GetTokenInfo(c.slot);
      });
    },

    async info() {
      return withSession(async (s, c) => {
        // Learn the OAEP hashes the token accepts by wrapping a throwaway KEK under a throwaway key.
        for (const hash of ['sha256', 'sha384'] as const) {
          if (c.oaep.has(hash)) continue;
          await releaseProbe(s, c, hash);
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

    close: pool.close,
  };
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
    holds: (ref) => pick(ref).holds(ref),
    // Where the key's provider has no one-job form (the token): undefined, so the caller wraps and signs apart.
    releaseWrappedSigned: async (ref, key, enc, opts, document) => pick(ref).releaseWrappedSigned?.(ref, key, enc, opts, document),
    // BYOK lands new keys in the token: only when the token can unwrap there (not yet, docs/vault.md).
    ...(hsm.importTransfer ? { importTransfer: hsm.importTransfer.bind(hsm) } : {}),
  };
}

