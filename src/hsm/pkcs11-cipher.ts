/**
 * Encryption and decryption with keys in the token: RSA (PKCS#1 v1.5, OAEP with SHA-1 or SHA-256; where
 * the token lacks OAEP with SHA-256 the private-key operation stays in the token, CKM_RSA_X_509, and the
 * padding comes off here with src/hsm/oaep.ts) and AES (GCM, CBC, CBC-PAD, key wrap RFC 3394/5649).
 * Every padding failure reads the same.
 */
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import type pkcs11js from 'pkcs11js';
import { fail } from '../core/errors.js';
import type { CipherRequest, CipherResult, KeyRef } from '../vault/ports.js';
import { oaepDecode } from './oaep.js';
import { aesBits, CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD, CKZ_DATA_SPECIFIED, type Connection, DEVICE_FAILURES, type Handle, HASH_MECH, type HashName, type KeyObjects, type Lib, leftPad, P, pkcs11ReturnValue } from './pkcs11-common.js';
import type { TokenObjects } from './pkcs11-objects.js';
import type { SessionPool } from './pkcs11-sessions.js';

export function oaepParams(hash: HashName): pkcs11js.Mechanism {
  const h = HASH_MECH[hash];
  return { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: h.hashAlg, mgf: h.mgf, source: CKZ_DATA_SPECIFIED } as pkcs11js.RsaOAEP };
}

const refusedParameters = (e: unknown): boolean => {
  const rv = pkcs11ReturnValue(e);
  return rv === 'CKR_ARGUMENTS_BAD' || rv === 'CKR_MECHANISM_PARAM_INVALID' || rv === 'CKR_MECHANISM_INVALID';
};

/**
 * Runs fn with OAEP under `hash` in the token; `{ ok: false }` when the token refuses that hash
 * (remembered for the connection). A refusal is learnt only where it can be the hash's: never for a hash
 * that worked on this connection (SHA-1 is taken as working from the start), and, where fn also takes the
 * request's data (C_WrapKey under the caller's key), only when `probe`, the same mechanism on data the
 * request has no part in, is refused too. Otherwise the error is the request's and goes on: a bad request
 * (an empty ciphertext answers CKR_ARGUMENTS_BAD) never moves the provider to another path.
 */
export async function tryOaep<T>(c: Connection, hash: HashName, fn: () => Promise<T> | T, probe?: () => Promise<unknown>): Promise<{ ok: true; value: T } | { ok: false }> {
  if (c.oaep.get(hash) === false) return { ok: false };
  let value: T;
  try {
    value = await fn();
  } catch (e) {
    if (!refusedParameters(e) || c.oaep.get(hash) === true) throw e;
    if (probe) {
      let works = true;
      try {
        await probe();
      } catch (pe) {
        if (!refusedParameters(pe)) throw pe;
        works = false;
      }
      if (works) {
        c.oaep.set(hash, true);
        throw e;
      }
    }
    c.oaep.set(hash, false);
    return { ok: false };
  }
  c.oaep.set(hash, true);
  return { ok: true, value };
}

export function createCipher(lib: Lib, pool: SessionPool, objects: TokenObjects) {
  const { withSession, sessionAlive } = pool;
  const { checkFamily, objectsOf } = objects;

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
      // After C_DecryptInit took the mechanism, a refusal is about the data (an empty input: CKR_ARGUMENTS_BAD).
      if (deviceLost) throw e;
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
    // The token checks the OAEP parameters in C_DecryptInit: only a refusal there says the token lacks the hash.
    const inToken = await tryOaep(c, hash, () => lib.C_DecryptInit(s, oaepParams(hash), o.key));
    if (inToken.ok) return uniformDecryptFailure(s, c, () => lib.C_DecryptAsync(s, input, Buffer.alloc(k)));
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


  return { cipher };
}
