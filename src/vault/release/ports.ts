/**
 * Ports of the release domain: what it needs from the outside world, implemented elsewhere
 * (src/upstream for OpenID discovery, src/hsm for wrapping inside a PKCS#11 token).
 */
import type { KeyObject } from 'node:crypto';

/** A JSON Web Key as published by an attestation authority or carried in `x-ms-runtime.keys`. */
export interface Jwk {
  readonly kty: string;
  readonly kid?: string;
  readonly use?: string;
  /** GRAM's spelling of `use` for runtime keys; accepted alike. */
  readonly key_use?: string;
  readonly key_ops?: readonly string[];
  readonly alg?: string;
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  /** Base64 (standard alphabet) DER certificates, leaf first (RFC 7517 §4.7). */
  readonly x5c?: readonly string[];
  readonly [extra: string]: unknown;
}

export interface JsonWebKeySet {
  readonly keys: readonly Jwk[];
}

/**
 * Fetches the signing keys an attestation authority publishes: `{issuer}/.well-known/openid-configuration`
 * → `jwks_uri` → JWKS (GRAM §"Key Vault and Managed HSM Attestation Token Requirements"). The
 * implementation caches; `forceRefresh` bypasses the cache (used once when a token names an unknown
 * `kid`, i.e. after a key rotation). `issuer` is the trusted authority exactly as configured.
 */
export type GetJwks = (issuer: string, opts: { forceRefresh: boolean }) => Promise<JsonWebKeySet>;

export type KeyTransferEnc = 'CKM_RSA_AES_KEY_WRAP' | 'RSA_AES_KEY_WRAP_256' | 'RSA_AES_KEY_WRAP_384';

/** The two halves of a `key_hsm` ciphertext (skr-maa-protocol.md §2.4). */
export interface WrappedKeyParts {
  /** RSA-OAEP(wrapping key, AES KEK); as long as the wrapping key modulus. */
  readonly wrappedKek: Uint8Array;
  /** RFC 5649 AES key wrap with padding of the key material under the KEK. */
  readonly wrappedKey: Uint8Array;
}

/**
 * Produces the wrapped parts for a key transfer. The software provider does it with node:crypto
 * (`wrapWithNodeCrypto`); a PKCS#11 provider does the same inside the HSM (CKM_RSA_AES_KEY_WRAP), so the
 * key material never leaves it in clear. `material` is opaque to callers that hold only a handle.
 */
export type KeyTransferWrap<M = Uint8Array> = (material: M, wrappingKey: KeyObject, enc: KeyTransferEnc) => WrappedKeyParts | Promise<WrappedKeyParts>;

/** Signs the release JWS with the vault's release certificate key (RS256 unless `alg` says ES256/ES384). */
export interface ReleaseSigner {
  readonly alg?: 'RS256' | 'ES256' | 'ES384';
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** DER certificates, leaf first; the leaf must cover the vault's DNS name (the SKR sidecar checks it). */
  readonly certificateChainDer: readonly Uint8Array[];
  /** JWS header `kid`; defaults to the `x5t#S256` thumbprint of the leaf. */
  readonly kid?: string;
  /**
   * The node:crypto private key `sign` signs with (node:crypto's one-shot sign with `alg`'s hash, ECDSA in
   * the IEEE P1363 encoding), where it is one another thread of the process may sign with too (the wrap
   * worker signs a software key's release in the same job as its wrap); absent for a key `sign` alone
   * reaches (a PKCS#11 token's).
   */
  readonly privateKey?: KeyObject;
}
