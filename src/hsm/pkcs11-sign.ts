/**
 * Signing and verification in the token: ECDSA over the digest, RSASSA-PKCS1-v1_5 over the DER
 * DigestInfo (RFC 8017 §9.2) or, for RSNULL, over the caller's bytes, RSASSA-PSS with the digest's hash.
 */
import type pkcs11js from 'pkcs11js';
import { fail } from '../core/errors.js';
import { CURVE_SIGNATURE_ALGORITHM, type KeyProtector, type SignatureAlgorithm } from '../vault/ports.js';
import { DIGEST_INFO, HASH_MECH, type HashName, type KeyObjects, type Lib, P, pkcs11ReturnValue } from './pkcs11-common.js';
import { digestBits } from './rsa-padding.js';
import type { TokenObjects } from './pkcs11-objects.js';
import type { SessionPool } from './pkcs11-sessions.js';

export function checkDigest(alg: SignatureAlgorithm, digest: Uint8Array): string {
  // RSNULL: CKM_RSA_PKCS over the value as given (the caller's DigestInfo); the token bounds its length.
  if (alg === 'RSNULL') return '';
  // HS256/384/512 need HMAC-capable secret objects; the token's oct keys are AES keys (docs/hsm.md).
  if (alg.startsWith('HS')) throw fail('key.invalid', `${alg} is not available for keys in the PKCS#11 token`, { field: 'alg', alg });
  return digestBits(alg, digest);
}

export function signMechanism(o: KeyObjects, alg: SignatureAlgorithm, bits: string, digest: Uint8Array): { mech: pkcs11js.Mechanism; data: Buffer } {
  if (alg.startsWith('ES')) {
    if (o.family !== 'EC' || !o.crv || CURVE_SIGNATURE_ALGORITHM[o.crv] !== alg) throw fail('key.invalid', `Algorithm ${alg} does not match the key curve ${o.crv ?? 'unknown'}`, { field: 'alg' });
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

export function createSigning(lib: Lib, pool: SessionPool, objects: TokenObjects): Pick<KeyProtector, 'sign' | 'verify'> {
  const { withSession } = pool;
  const { checkFamily, objectsOf } = objects;
  return {
  async sign(ref, alg, digest) {
    const bits = checkDigest(alg, digest);
    checkFamily(ref, alg.startsWith('ES') ? ['EC'] : ['RSA'], alg);
    return withSession(async (s, c) => {
      const o = objectsOf(s, c, ref);
      const max = Math.ceil((o.bits ?? 2048) / 8) - 11;
      if (alg === 'RSNULL' && digest.length > max) throw fail('key.invalid', `RSNULL signs at most ${max} bytes with this key, got ${digest.length}`, { field: 'value' });
      const { mech, data } = signMechanism(o, alg, bits, digest);
      lib.C_SignInit(s, mech, o.key);
      // Room for the key's whole signature (an imported RSA key may exceed 4096 bits): too small a buffer is
      // CKR_BUFFER_TOO_SMALL, which leaves the operation active (PKCS#11 v2.40 §5.2).
      return new Uint8Array(await lib.C_SignAsync(s, data, Buffer.alloc(Math.max(512, Math.ceil((o.bits ?? 0) / 8)))));
    });
  },

  async verify(ref, alg, digest, signature) {
    const bits = checkDigest(alg, digest);
    checkFamily(ref, alg.startsWith('ES') ? ['EC'] : ['RSA'], alg);
    return withSession(async (s, c) => {
      const o = objectsOf(s, c, ref);
      if (!o.pub) throw fail('key.crypto_failed', 'the public key object is missing from the HSM token', { reason: 'object_not_found' });
      const { mech, data } = signMechanism(o, alg, bits, digest);
      // No signature verifies, as the software protector answers (once the alg is the key's, which signMechanism
      // checks); pkcs11js refuses an empty buffer (CKR_ARGUMENTS_BAD).
      if (signature.length === 0) return false;
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
  };
}
