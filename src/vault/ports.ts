/**
 * Ports of the vault domain. Key material lives behind {@link KeyProtector}: the software provider
 * (src/hsm/software.ts) seals it under the master key; a PKCS#11 provider keeps it inside the HSM. The
 * vault stores only the provider's opaque handle and the public part.
 */
import type { KeyObject } from 'node:crypto';
import type { KeyTransferEnc } from './release/index.js';

export type KeyFamily = 'RSA' | 'EC' | 'oct';
export type CurveName = 'P-256' | 'P-384' | 'P-521' | 'P-256K';

/** What to generate: family plus size (RSA modulus bits, oct key bits) or curve. */
export type KeySpec =
  | { readonly family: 'RSA'; readonly keySize: number; readonly publicExponent: number }
  | { readonly family: 'EC'; readonly crv: CurveName }
  | { readonly family: 'oct'; readonly keySize: number };

/** The public members of a JWK (RFC 7518 §6): n/e for RSA, crv/x/y for EC, none for oct. */
export interface PublicJwk {
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
}

/** A private JWK as AKV's ImportKey carries it (base64url members). */
export interface PrivateJwk extends PublicJwk {
  readonly kty: string;
  readonly d?: string;
  readonly p?: string;
  readonly q?: string;
  readonly dp?: string;
  readonly dq?: string;
  readonly qi?: string;
  readonly k?: string;
}

/** A key as the protector holds it: its opaque handle and the AAD-like binding to the key version. */
export interface KeyRef {
  readonly family: KeyFamily;
  /** Opaque to the vault: a sealed blob (software) or an object handle (PKCS#11). */
  readonly handle: Uint8Array;
  /** `vault-key:{name}/{version}`: a handle moved to another key version does not open. */
  readonly binding: string;
  /**
   * The public key the vault recorded for the version (RSA, EC): a provider whose material lives outside
   * the process (a PKCS#11 token) refuses material that does not match it, `hsm.key_untrusted`.
   */
  readonly publicJwk?: PublicJwk;
}

export interface ProtectedKey {
  readonly handle: Uint8Array;
  readonly publicJwk: PublicJwk;
  /** RSA modulus bits or oct key bits; undefined for EC. */
  readonly keySize?: number;
  readonly crv?: CurveName;
}

/** The sign/verify algorithms: any other name is refused before it is recorded or used. */
export const SIGNATURE_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'ES256K',
  // HMAC over `value` as given (oct keys; Managed HSM).
  'HS256',
  'HS384',
  'HS512',
  // RSASSA-PKCS1-v1_5 over `value` as given: the caller supplies the DigestInfo (or any encoded message).
  'RSNULL',
] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/** The one ECDSA algorithm each curve signs with (AKV's: ES256K is secp256k1's). */
export const CURVE_SIGNATURE_ALGORITHM: Readonly<Record<CurveName, SignatureAlgorithm>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', 'P-256K': 'ES256K' };
/**
 * The encryption algorithms of encrypt/decrypt/wrapKey/unwrapKey: JWA's, and RFC 3394 / RFC 5649 AES key
 * wrap with any AES key size under their PKCS#11 names (Managed HSM). Any other name is refused.
 */
export const ENCRYPTION_ALGORITHMS = [
  'RSA1_5',
  'RSA-OAEP',
  'RSA-OAEP-256',
  'A128GCM',
  'A192GCM',
  'A256GCM',
  'A128CBC',
  'A192CBC',
  'A256CBC',
  'A128CBCPAD',
  'A192CBCPAD',
  'A256CBCPAD',
  'A128KW',
  'A192KW',
  'A256KW',
  'CKM_AES_KEY_WRAP',
  'CKM_AES_KEY_WRAP_PAD',
] as const;
export type EncryptionAlgorithm = (typeof ENCRYPTION_ALGORITHMS)[number];

/** Input of encrypt/decrypt/wrapKey/unwrapKey (AKV KeyOperationsParameters, decoded). */
export interface CipherRequest {
  readonly alg: EncryptionAlgorithm;
  readonly value: Uint8Array;
  readonly iv?: Uint8Array;
  readonly aad?: Uint8Array;
  readonly tag?: Uint8Array;
}

/** Output (AKV KeyOperationResult, decoded): `iv`/`tag` for AES modes the vault chose or produced. */
export interface CipherResult {
  readonly value: Uint8Array;
  readonly iv?: Uint8Array;
  readonly tag?: Uint8Array;
  readonly aad?: Uint8Array;
}

export interface KeyCreationOptions {
  readonly exportable?: boolean;
}

/**
 * The key-protection layer. Every operation that touches private or secret key material goes through
 * it, so a provider can keep that material in hardware. Operations throw `key.crypto_failed` (bad
 * input to the primitive) or `hsm.unavailable`.
 */
export interface KeyProtector {
  /** Provider name stored with each key version (`software`, `pkcs11`). */
  readonly provider: string;
  /** `exportable`: whether the key may later leave by Secure Key Release (an HSM makes others non-extractable). */
  generate(spec: KeySpec, binding: string, opts?: KeyCreationOptions): Promise<ProtectedKey>;
  import(jwk: PrivateJwk, binding: string, opts?: KeyCreationOptions): Promise<ProtectedKey>;
  /** Signs a precomputed digest (AKV sign takes the digest, not the message). */
  sign(ref: KeyRef, alg: SignatureAlgorithm, digest: Uint8Array): Promise<Uint8Array>;
  verify(ref: KeyRef, alg: SignatureAlgorithm, digest: Uint8Array, signature: Uint8Array): Promise<boolean>;
  encrypt(ref: KeyRef, req: CipherRequest): Promise<CipherResult>;
  decrypt(ref: KeyRef, req: CipherRequest): Promise<CipherResult>;
  /**
   * Wraps the key for Secure Key Release to the TEE's RSA key: returns `key_hsm` (skr-maa-protocol.md
   * §2.4). A PKCS#11 provider does this with CKM_RSA_AES_KEY_WRAP inside the HSM.
   */
  releaseWrapped(ref: KeyRef, wrappingPublicKey: KeyObject, enc: KeyTransferEnc, opts?: { kid?: string }): Promise<string>;
  /**
   * Whether this provider holds `ref`'s material, so the version works here: the software provider when
   * the handle opens under its master key, a PKCS#11 one when its token has the object. A restore asks
   * before it writes a version (a backup carries a token's handle, not its material). Throws where the
   * provider cannot tell now (`hsm.unavailable`).
   */
  holds(ref: KeyRef): Promise<boolean>;
  /**
   * {@link releaseWrapped} and the signature of the document that carries its `key_hsm` in one job off the
   * event loop (the software provider's wrap worker): resolves the compact JWS under `document.header` of
   * `document.around[0] + key_hsm + document.around[1]`, signed with `document.key` as `document.alg` says,
   * or undefined where it could not (the caller then wraps and signs as it would without this, with those
   * outcomes). Absent where the provider wraps elsewhere (a PKCS#11 token).
   */
  releaseWrappedSigned?(ref: KeyRef, wrappingPublicKey: KeyObject, enc: KeyTransferEnc, opts: { kid?: string }, document: EmbeddingDocument): Promise<string | undefined>;
  /**
   * BYOK: unwraps a key transfer blob (`ciphertext` = RSA-OAEP(KEK) ‖ AES-KWP) with the KEK `kek` and
   * protects the target key under `binding`, never holding it outside the provider. Absent where the
   * provider cannot (the vault then refuses BYOK imports).
   */
  importTransfer?(kek: KeyRef, transfer: { ciphertext: Uint8Array; enc: KeyTransferEnc }, target: KeySpecFamily, binding: string, opts?: KeyCreationOptions): Promise<ProtectedKey>;
}

/** A JWS whose payload embeds a released key's `key_hsm` ({@link KeyProtector.releaseWrappedSigned}). */
export interface EmbeddingDocument {
  /** The encoded (base64url) protected header. */
  readonly header: string;
  /** The payload's text before and after `key_hsm` (a base64url string, so nothing in between is escaped). */
  readonly around: readonly [string, string];
  /** The signing key (node:crypto), RS256 (RSASSA-PKCS1-v1_5 SHA-256) or ES256/ES384 (ECDSA, IEEE P1363). */
  readonly key: KeyObject;
  readonly alg: 'RS256' | 'ES256' | 'ES384';
}

/** What a BYOK target key must turn out to be. */
export type KeySpecFamily = { readonly family: 'RSA' } | { readonly family: 'EC' } | { readonly family: 'oct' };

/**
 * Where full backups go (Managed HSM's `storageResourceUri` + SAS `token`): an adapter maps the URI to a
 * place Conclave can reach (src/storage/backup-directory.ts: a directory). Files are opaque sealed bytes.
 */
export interface BackupTarget {
  /** Writes the files into a new folder `folderName` of the container; returns the folder's URI. */
  writeFolder(containerUri: string, token: string, folderName: string, files: Readonly<Record<string, Uint8Array>>): Promise<string>;
  /** Checks that a backup could be written into the container (confinement, a directory where one exists), writing nothing. */
  checkContainer(containerUri: string, token: string): Promise<void>;
  /** Reads one file of a backup folder (the folder given relative to the container, as the SDKs send it). */
  readFile(containerUri: string, token: string, folder: string, file: string): Promise<Uint8Array>;
}
