/**
 * Release wrapping inside the token, in two steps (toolchain.md §6): an ephemeral AES-256 KEK wraps the
 * key with CKM_AES_KEY_WRAP_PAD (RFC 5649), the KEK is wrapped with CKM_RSA_PKCS_OAEP under the TEE's
 * key; with release-sha2=hybrid and a token without OAEP over SHA-2, the KEK is made and OAEP-wrapped
 * here while the key is still wrapped in the token. The parts go through assembleTransferBlob, so the
 * blob is the software provider's format.
 */
import { constants, type JsonWebKey, type KeyObject, publicEncrypt, randomBytes } from 'node:crypto';
import type pkcs11js from 'pkcs11js';
import { fail } from '../core/errors.js';
import { generateRsaKeyPair } from '../core/keygen.js';
import type { KeyTransferEnc } from '../vault/release/index.js';
import { oaepParams, tryOaep } from './pkcs11-cipher.js';
import { CKM_AES_KEY_WRAP_PAD, type Connection, type Handle, type HashName, type KeyObjects, type Lib, P, RELEASE_HASH } from './pkcs11-common.js';
import type { Pkcs11Spec } from './pkcs11-spec.js';

const PROBE_PUBLIC_TEMPLATE = (modulus: Buffer, exponent: Buffer): pkcs11js.Template => [
  { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
  { type: P.CKA_TOKEN, value: false },
  { type: P.CKA_MODULUS, value: modulus },
  { type: P.CKA_PUBLIC_EXPONENT, value: exponent },
  { type: P.CKA_WRAP, value: true },
  { type: P.CKA_ENCRYPT, value: true },
];

export function createReleaseWrap(lib: Lib, spec: Pkcs11Spec) {
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
        // C_WrapKey takes the caller's key with the mechanism: a refusal says the token lacks the hash only if a probe under a key of ours is refused too.
        const inToken = await tryOaep(c, hash, () => lib.C_WrapKeyAsync(s, oaepParams(hash), pub, kek, Buffer.alloc(k)), () => wrapProbe(s, hash));
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

  let probeKey: KeyObject | undefined;

  /** C_WrapKey with OAEP under `hash` of a throwaway KEK under a throwaway RSA-2048 key; throws what the token answers. */
  async function wrapProbe(s: Handle, hash: HashName): Promise<void> {
    probeKey ??= generateRsaKeyPair(2048).publicKey;
    const pub = importWrappingKey(s, probeKey);
    try {
      const kek = lib.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_EXTRACTABLE, value: true },
      ]);
      try {
        await lib.C_WrapKeyAsync(s, oaepParams(hash), pub, kek, Buffer.alloc(512));
      } finally {
        lib.C_DestroyObject(s, kek);
      }
    } finally {
      lib.C_DestroyObject(s, pub);
    }
  }

  async function releaseProbe(s: Handle, c: Connection, hash: HashName): Promise<void> {
    await tryOaep(c, hash, () => wrapProbe(s, hash));
  }

  return { releaseParts, releaseProbe };
}
