/**
 * Software key protection: key material sealed with AES-256-GCM under the master key (Sealer), the
 * associated data binding each blob to its key version. Private keys are PKCS#8 DER, oct keys raw bytes.
 * Implements the vault's KeyProtector port; a PKCS#11 provider implements the same port in hardware.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  createHmac,
  type JsonWebKey,
  type KeyObject,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { fail } from '../core/errors.js';
import { signDigestEcdsa, verifyDigestEcdsa } from '../vault/ecdsa.js';
import { type CipherRequest, type CipherResult, CURVE_SIGNATURE_ALGORITHM, type CurveName, type KeyProtector, type KeyRef, type PrivateJwk, type ProtectedKey, type PublicJwk, type SignatureAlgorithm } from '../vault/ports.js';
import { checkOneKey } from '../vault/key.js';
import { assembleTransferBlob, transferBlobAround, transferMaterialOf, unwrapTransferCiphertext } from '../vault/release/index.js';
import { wrapAndSignOffThread, wrapOffThread } from './wrap-worker.js';
import type { Sealer } from './master-key.js';
import { DIGEST_INFO, digestBits, pkcs1v15Unpad, pssEncode, pssVerify } from './rsa-padding.js';
import { generateKeyPairOffThread } from '../core/keygen.js';

const NODE_CURVE: Record<CurveName, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1', 'P-256K': 'secp256k1' };
const JWK_CURVE: Record<string, CurveName> = { 'P-256': 'P-256', 'P-384': 'P-384', 'P-521': 'P-521', 'P-256K': 'P-256K', secp256k1: 'P-256K' };

const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
/** RFC 5649 §3 alternative initial value. */
const KWP_AIV = Buffer.from('A65959A6', 'hex');
const HMAC_HASH: Record<string, 'sha256' | 'sha384' | 'sha512'> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
const CACHE_LIMIT = 1024;

function hashName(bits: string): 'sha256' | 'sha384' | 'sha512' {
  return `sha${bits.replace('K', '')}` as 'sha256' | 'sha384' | 'sha512';
}

function publicJwkOf(key: KeyObject): PublicJwk {
  const j = createPublicKey(key).export({ format: 'jwk' }) as JsonWebKey;
  if (j.kty === 'RSA') return { n: j.n!, e: j.e! };
  return { crv: j.crv === 'secp256k1' ? 'P-256K' : j.crv!, x: j.x!, y: j.y! };
}

/**
 * k, the length in octets of an RSA key's modulus: the only length of its signatures (RFC 8017 §8.1.2, §8.2.2
 * step 1). publicDecrypt reads a shorter one as the number it encodes, which a signature beginning with 0x00 is too.
 */
function rsaBytes(key: KeyObject): number {
  return Math.ceil(key.asymmetricKeyDetails!.modulusLength! / 8);
}

/** The AES key size an algorithm names; the CKM_* wraps take any (undefined). */
function aesBits(alg: string): number | undefined {
  return alg.startsWith('CKM_') ? undefined : Number(alg.slice(1, 4));
}

export function createSoftwareKeyProtector(sealer: Sealer): KeyProtector {
  // Opened keys by hash of their sealed handle: immutable content, so a content-keyed cache is safe.
  const cache = new Map<string, KeyObject>();

  function open(ref: KeyRef): KeyObject {
    const id = createHash('sha256').update(ref.binding).update(ref.handle).digest('base64url');
    const hit = cache.get(id);
    if (hit) return hit;
    const raw = Buffer.from(sealer.open(ref.handle, ref.binding));
    const key = ref.family === 'oct' ? createSecretKey(raw) : createPrivateKey({ key: raw, format: 'der', type: 'pkcs8' });
    raw.fill(0);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(id, key);
    return key;
  }

  function seal(key: KeyObject, binding: string): Uint8Array {
    const material = transferMaterialOf(key);
    try {
      return sealer.seal(material, binding);
    } finally {
      material.fill(0);
    }
  }

  function protect(key: KeyObject, binding: string): ProtectedKey {
    if (key.type === 'secret') return { handle: seal(key, binding), publicJwk: {}, keySize: key.symmetricKeySize! * 8 };
    const details = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType === 'rsa') return { handle: seal(key, binding), publicJwk: publicJwkOf(key), keySize: details.modulusLength! };
    const crv = Object.entries(NODE_CURVE).find(([, n]) => n === details.namedCurve)?.[0] as CurveName | undefined;
    if (!crv) throw fail('key.invalid', `unsupported curve ${String(details.namedCurve)}`);
    return { handle: seal(key, binding), publicJwk: publicJwkOf(key), crv };
  }

  function checkFamily(ref: KeyRef, families: readonly string[], alg: string): void {
    if (!families.includes(ref.family)) throw fail('key.invalid', `Algorithm ${alg} does not apply to a ${ref.family} key`, { field: 'alg', alg });
  }

  function rsaCipher(key: KeyObject, alg: string, data: Uint8Array, decrypt: boolean): Buffer {
    try {
      if (alg === 'RSA1_5') {
        if (!decrypt) return publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, data);
        return pkcs1v15Unpad(privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, data));
      }
      const oaepHash = alg === 'RSA-OAEP' ? 'sha1' : alg === 'RSA-OAEP-256' ? 'sha256' : undefined;
      if (!oaepHash) throw fail('key.invalid', `Algorithm ${alg} does not apply to an RSA key`, { field: 'alg', alg });
      return decrypt ? privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data) : publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
    } catch (e) {
      if ((e as { code?: string }).code === 'key.invalid') throw e;
      throw fail('key.crypto_failed', `${decrypt ? 'decryption' : 'encryption'} with ${alg} failed`, { alg }, e);
    }
  }

  function aesCipher(key: KeyObject, req: CipherRequest, decrypt: boolean): CipherResult {
    const alg = req.alg;
    const named = aesBits(alg);
    const bits = named ?? key.symmetricKeySize! * 8;
    if (!Number.isFinite(bits) || key.symmetricKeySize! * 8 !== bits) throw fail('key.invalid', `Algorithm ${alg} needs a ${bits}-bit key; this key has ${key.symmetricKeySize! * 8} bits`, { field: 'alg', alg });
    try {
      if (alg.endsWith('KW') || alg === 'CKM_AES_KEY_WRAP') {
        // RFC 3394: the input is whole 64-bit blocks, at least two.
        if (req.value.length < 16 || req.value.length % 8 !== 0) throw fail('key.invalid', `${alg} takes a multiple of 8 bytes, at least 16`, { field: 'value', alg });
        const c = decrypt ? createDecipheriv(`id-aes${bits}-wrap`, key, KW_IV) : createCipheriv(`id-aes${bits}-wrap`, key, KW_IV);
        return { value: Buffer.concat([c.update(req.value), c.final()]) };
      }
      if (alg === 'CKM_AES_KEY_WRAP_PAD') {
        // RFC 5649: at least one byte goes in; whole 64-bit blocks, at least two, come out. OpenSSL
        // "unwraps" an empty input to nothing, so the lengths are checked here.
        if (decrypt ? req.value.length < 16 || req.value.length % 8 !== 0 : req.value.length === 0) {
          throw fail('key.invalid', decrypt ? `${alg} unwraps a multiple of 8 bytes, at least 16` : `${alg} wraps at least 1 byte`, { field: 'value', alg });
        }
        const c = decrypt ? createDecipheriv(`id-aes${bits}-wrap-pad`, key, KWP_AIV) : createCipheriv(`id-aes${bits}-wrap-pad`, key, KWP_AIV);
        return { value: Buffer.concat([c.update(req.value), c.final()]) };
      }
      if (alg.endsWith('GCM')) {
        const iv = req.iv ?? (decrypt ? undefined : randomBytes(12));
        if (iv?.length !== 12) throw fail('key.invalid', `${alg} needs a 12-byte iv`, { field: 'iv' });
        if (decrypt) {
          if (!req.tag) throw fail('key.invalid', `${alg} decryption needs the authentication tag`, { field: 'tag' });
          const d = createDecipheriv(`aes-${bits}-gcm` as 'aes-256-gcm', key, iv);
          if (req.aad) d.setAAD(req.aad);
          d.setAuthTag(req.tag);
          return { value: Buffer.concat([d.update(req.value), d.final()]), iv };
        }
        const c = createCipheriv(`aes-${bits}-gcm` as 'aes-256-gcm', key, iv);
        if (req.aad) c.setAAD(req.aad);
        const value = Buffer.concat([c.update(req.value), c.final()]);
        return { value, iv, tag: c.getAuthTag(), ...(req.aad ? { aad: req.aad } : {}) };
      }
      const iv = req.iv ?? (decrypt ? undefined : randomBytes(16));
      if (iv?.length !== 16) throw fail('key.invalid', `${alg} needs a 16-byte iv`, { field: 'iv' });
      const c = decrypt ? createDecipheriv(`aes-${bits}-cbc`, key, iv) : createCipheriv(`aes-${bits}-cbc`, key, iv);
      c.setAutoPadding(alg.endsWith('CBCPAD'));
      return { value: Buffer.concat([c.update(req.value), c.final()]), iv };
    } catch (e) {
      if ((e as { code?: string }).code === 'key.invalid') throw e;
      throw fail('key.crypto_failed', `${decrypt ? 'decryption' : 'encryption'} with ${alg} failed`, { alg }, e);
    }
  }

  function cipher(ref: KeyRef, req: CipherRequest, decrypt: boolean): CipherResult {
    if (req.alg.startsWith('RSA')) {
      checkFamily(ref, ['RSA'], req.alg);
      const key = open(ref);
      return { value: rsaCipher(decrypt ? key : createPublicKey(key), req.alg, req.value, decrypt) };
    }
    checkFamily(ref, ['oct'], req.alg);
    return aesCipher(open(ref), req, decrypt);
  }

  function hmac(ref: KeyRef, alg: SignatureAlgorithm, value: Uint8Array): Buffer {
    checkFamily(ref, ['oct'], alg);
    return createHmac(HMAC_HASH[alg]!, open(ref)).update(value).digest();
  }

  return {
    provider: 'software',

    async holds(ref) {
      try {
        sealer.open(ref.handle, ref.binding).fill(0);
        return true;
      } catch {
        return false;
      }
    },

    async generate(spec, binding) {
      if (spec.family === 'oct') return protect(createSecretKey(randomBytes(spec.keySize / 8)), binding);
      // Off the event loop: an RSA-4096 key takes hundreds of milliseconds to make.
      const pair = await generateKeyPairOffThread(spec.family === 'RSA' ? { rsa: spec.keySize, publicExponent: spec.publicExponent } : { ec: NODE_CURVE[spec.crv] });
      return protect(pair.privateKey, binding);
    },

    async import(jwk: PrivateJwk, binding) {
      try {
        if (jwk.kty.startsWith('oct')) return protect(createSecretKey(Buffer.from(jwk.k ?? '', 'base64url')), binding);
        const kty = jwk.kty.replace('-HSM', '');
        const crv = jwk.crv === 'P-256K' ? 'secp256k1' : jwk.crv;
        const { n, e, d, p, q, dp, dq, qi, x, y } = jwk;
        const key = createPrivateKey({ key: { kty, n, e, d, p, q, dp, dq, qi, crv, x, y } as JsonWebKey, format: 'jwk' });
        return protect(key, binding);
      } catch (e) {
        if ((e as { code?: string }).code === 'key.invalid') throw e;
        throw fail('key.invalid', 'The JSON Web Key to import is not a valid private key', { field: 'key' }, e);
      }
    },

    async sign(ref, alg, digest) {
      if (Object.hasOwn(HMAC_HASH, alg)) return hmac(ref, alg, digest);
      if (alg === 'RSNULL') {
        checkFamily(ref, ['RSA'], alg);
        const key = open(ref);
        const k = key.asymmetricKeyDetails!.modulusLength! / 8;
        if (digest.length > k - 11) throw fail('key.invalid', `RSNULL signs at most ${k - 11} bytes with this key, got ${digest.length}`, { field: 'value' });
        return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digest);
      }
      const bits = digestBits(alg, digest);
      if (alg.startsWith('ES')) {
        checkFamily(ref, ['EC'], alg);
        const key = open(ref);
        const jwk = key.export({ format: 'jwk' }) as JsonWebKey;
        const crv = JWK_CURVE[jwk.crv!]!;
        if (CURVE_SIGNATURE_ALGORITHM[crv] !== alg) throw fail('key.invalid', `Algorithm ${alg} does not match the key curve ${crv}`, { field: 'alg' });
        return signDigestEcdsa(crv, Buffer.from(jwk.d!, 'base64url'), digest);
      }
      checkFamily(ref, ['RSA'], alg);
      const key = open(ref);
      if (alg.startsWith('RS')) return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO[bits]!, digest]));
      if (alg.startsWith('PS')) return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, pssEncode(digest, key.asymmetricKeyDetails!.modulusLength!, hashName(bits)));
      throw fail('key.invalid', `Unsupported signature algorithm ${alg}`, { field: 'alg' });
    },

    async verify(ref, alg, digest, signature) {
      if (Object.hasOwn(HMAC_HASH, alg)) {
        const mac = hmac(ref, alg, digest);
        return mac.length === signature.length && timingSafeEqual(mac, signature);
      }
      if (alg === 'RSNULL') {
        checkFamily(ref, ['RSA'], alg);
        const pub = createPublicKey(open(ref));
        if (signature.length !== rsaBytes(pub)) return false;
        try {
          return publicDecrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, signature).equals(Buffer.from(digest));
        } catch {
          return false;
        }
      }
      const bits = digestBits(alg, digest);
      const pub = createPublicKey(open(ref));
      if (alg.startsWith('ES')) {
        checkFamily(ref, ['EC'], alg);
        const jwk = pub.export({ format: 'jwk' }) as JsonWebKey;
        const crv = JWK_CURVE[jwk.crv!]!;
        if (CURVE_SIGNATURE_ALGORITHM[crv] !== alg) throw fail('key.invalid', `Algorithm ${alg} does not match the key curve ${crv}`, { field: 'alg' });
        return verifyDigestEcdsa(crv, Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url'), digest, signature);
      }
      checkFamily(ref, ['RSA'], alg);
      if (signature.length !== rsaBytes(pub)) return false;
      try {
        if (alg.startsWith('RS')) return publicDecrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, signature).equals(Buffer.concat([DIGEST_INFO[bits]!, digest]));
        return pssVerify(digest, publicDecrypt({ key: pub, padding: constants.RSA_NO_PADDING }, signature), pub.asymmetricKeyDetails!.modulusLength!, hashName(bits));
      } catch {
        return false;
      }
    },

    async encrypt(ref, req) {
      return cipher(ref, req, false);
    },

    async decrypt(ref, req) {
      return cipher(ref, req, true);
    },

    async importTransfer(kek, transfer, target, binding) {
      checkFamily(kek, ['RSA'], 'BYOK');
      const material = Buffer.from(unwrapTransferCiphertext(transfer.ciphertext, open(kek), transfer.enc));
      try {
        let key: KeyObject;
        try {
          key = target.family === 'oct' ? createSecretKey(material) : createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
        } catch (e) {
          throw fail('key.invalid', `The unwrapped key material is not ${target.family === 'oct' ? 'an AES key' : 'a PKCS#8 private key'}`, { field: 'key.key_hsm' }, e);
        }
        const family = key.type === 'secret' ? 'oct' : key.asymmetricKeyType === 'rsa' ? 'RSA' : key.asymmetricKeyType === 'ec' ? 'EC' : 'other';
        if (family !== target.family) throw fail('key.invalid', `The transferred key is ${family}, but key.kty names ${target.family}`, { field: 'key.kty' });
        // PKCS#8 carries the public half beside the private members, and OpenSSL takes both as given (key.ts, checkOneKey).
        if (family !== 'oct') {
          // Only a curve the vault takes has a JWK (node:crypto has none for brainpool and the like); protect() refuses the others.
          if (family === 'EC' && !Object.values(NODE_CURVE).includes(key.asymmetricKeyDetails?.namedCurve ?? '')) {
            throw fail('key.invalid', `The transferred EC key is on an unsupported curve (${String(key.asymmetricKeyDetails?.namedCurve)})`, { field: 'key.key_hsm' });
          }
          const jwk = key.export({ format: 'jwk' }) as Record<string, unknown>;
          checkOneKey({ ...jwk, ...(jwk.crv !== undefined ? { crv: JWK_CURVE[jwk.crv as string] } : {}) }, family);
        }
        if (family === 'oct' && ![16, 24, 32].includes(material.length)) throw fail('key.invalid', `A transferred oct key must be 128, 192 or 256 bits, got ${material.length * 8}`, { field: 'key.key_hsm' });
        return protect(key, binding);
      } finally {
        material.fill(0);
      }
    },

    async releaseWrapped(ref, wrappingPublicKey, enc, opts = {}) {
      // The sealed bytes are the transfer material itself (what seal() stored: transferMaterialOf the key),
      // so a release opens them directly instead of exporting the cached KeyObject again (~90 µs for RSA).
      const material = sealer.open(ref.handle, ref.binding);
      try {
        // OAEP and AES-KWP on the wrap worker, off the event loop (wrap-worker.ts); the same OpenSSL calls.
        const parts = await wrapOffThread(material, wrappingPublicKey, enc);
        return assembleTransferBlob(parts, { enc, ...(opts.kid !== undefined ? { kid: opts.kid } : {}) });
      } finally {
        material.fill(0);
      }
    },

    async releaseWrappedSigned(ref, wrappingPublicKey, enc, opts, document) {
      const material = sealer.open(ref.handle, ref.binding);
      try {
        // The wrap, key_hsm and the signature of the document around it, in one job on the wrap worker.
        return await wrapAndSignOffThread(material, wrappingPublicKey, enc, {
          blob: transferBlobAround({ enc, ...(opts.kid !== undefined ? { kid: opts.kid } : {}) }),
          document: document.around,
          header: document.header,
          key: document.key,
          alg: document.alg,
        });
      } finally {
        material.fill(0);
      }
    },
  };
}
