/**
 * Key objects in the token: CKA_LABEL = the binding `vault-key:{name}/{version}`, CKA_ID =
 * SHA-256(binding)[0..16], the handle the vault stores `p11\x01 ‖ CKA_ID`; a lookup checks the label, so
 * a handle moved to another key version does not open. Generation and import set the protection
 * attributes (sensitive; extractable only when exportable).
 */
import { createHash, createPrivateKey, createPublicKey, createSecretKey, type JsonWebKey, type KeyObject, verify } from 'node:crypto';
import type pkcs11js from 'pkcs11js';
import { fail } from '../core/errors.js';
import { TAG, tlv } from '../core/der.js';
import type { CurveName, KeyFamily, KeyRef, KeySpec, PrivateJwk, ProtectedKey, PublicJwk } from '../vault/ports.js';
import { bigEndian, type Connection, CURVE_BYTES, CURVE_PARAMS, DIGEST_INFO, ecPointOf, HANDLE_MAGIC, type Handle, isPkcs11Handle, type KeyObjects, type Lib, leftPad, objectIdOf, P, pkcs11ReturnValue, unsigned } from './pkcs11-common.js';

export type TokenObjects = ReturnType<typeof createTokenObjects>;

export function createTokenObjects(lib: Lib) {
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

  /** The one object of a key version (of a class); two under one label and CKA_ID mean one was planted. */
  function findUnique(s: Handle, template: pkcs11js.Template, binding: string): Handle | undefined {
    lib.C_FindObjectsInit(s, template);
    let found: Handle[];
    try {
      found = lib.C_FindObjects(s, 2);
    } finally {
      lib.C_FindObjectsFinal(s);
    }
    if (found.length > 1) throw untrusted(binding, 'duplicate_object');
    return found[0];
  }

  function untrusted(binding: string, reason: string): Error {
    return fail('hsm.key_untrusted', `the HSM token's objects for ${binding} are not the key the vault recorded (${reason}); another holder of the token's PIN may have replaced them`, { binding, reason });
  }

  /**
   * The token's objects must be the key the vault recorded when it made the version: the public object's
   * key, and an RSA private key's modulus, equal the stored public JWK. A holder of the user PIN who
   * destroys a version's objects and plants a pair they know under its label and CKA_ID gets
   * `hsm.key_untrusted`, not signatures, ciphertexts and releases under their key.
   */
  function checkRecorded(s: Handle, ref: KeyRef, key: Handle, publicKey: KeyObject | undefined, crv: CurveName | undefined): void {
    const want = ref.publicJwk;
    if (!want || ref.family === 'oct') return;
    const bytes = (v: string | undefined) => unsigned(Buffer.from(v ?? '', 'base64url'));
    if (!publicKey) throw untrusted(ref.binding, 'public_object_missing');
    const got = publicKey.export({ format: 'jwk' }) as JsonWebKey;
    if (ref.family === 'RSA') {
      const modulus = unsigned(lib.C_GetAttributeValue(s, key, [{ type: P.CKA_MODULUS }])[0]!.value as Buffer);
      if (!bytes(got.n).equals(bytes(want.n)) || !bytes(got.e).equals(bytes(want.e)) || !modulus.equals(bytes(want.n))) throw untrusted(ref.binding, 'public_key_mismatch');
      return;
    }
    if (crv === undefined || crv !== want.crv || !bytes(got.x).equals(bytes(want.x)) || !bytes(got.y).equals(bytes(want.y))) throw untrusted(ref.binding, 'public_key_mismatch');
  }

  /**
   * The private object must be the recorded public key's pair: an EC private object carries no public
   * part (and an RSA one's CRT parts need not match its CKA_MODULUS), so a private key planted beside the
   * version's own public object would pass checkRecorded. It signs a fixed digest, which node:crypto
   * verifies under the recorded key; once per cached lookup, not per operation.
   */
  function checkPair(s: Handle, ref: KeyRef, key: Handle, publicKey: KeyObject | undefined): void {
    if (!ref.publicJwk || ref.family === 'oct' || !publicKey) return;
    const message = Buffer.from(`conclave pairwise check ${ref.binding}`);
    const digest = createHash('sha256').update(message).digest();
    const rsa = ref.family === 'RSA';
    let signature: Buffer;
    try {
      lib.C_SignInit(s, { mechanism: rsa ? P.CKM_RSA_PKCS : P.CKM_ECDSA }, key);
      signature = lib.C_Sign(s, rsa ? Buffer.concat([DIGEST_INFO['256']!, digest]) : digest, Buffer.alloc(Math.max(512, (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8)));
    } catch (e) {
      // A private object that may not sign, or is no key of the recorded type, is not the vault's; the token's other errors go on.
      const rv = pkcs11ReturnValue(e);
      if (rv === 'CKR_KEY_FUNCTION_NOT_PERMITTED' || rv === 'CKR_KEY_TYPE_INCONSISTENT') throw untrusted(ref.binding, 'private_key_mismatch');
      throw e;
    }
    if (!verify('sha256', message, rsa ? publicKey : { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) throw untrusted(ref.binding, 'private_key_mismatch');
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
    const key = findUnique(s, [
      { type: P.CKA_CLASS, value: cls },
      { type: P.CKA_ID, value: id },
      { type: P.CKA_LABEL, value: ref.binding },
    ], ref.binding);
    if (!key) throw fail('key.crypto_failed', 'the key material is missing from the HSM token', { reason: 'object_not_found' });
    let crv: CurveName | undefined;
    let bits: number | undefined;
    let pub: Handle | undefined;
    if (ref.family === 'oct') {
      bits = (lib.C_GetAttributeValue(s, key, [{ type: P.CKA_VALUE_LEN }])[0]!.value as Buffer).readUIntLE(0, 4) * 8;
    } else {
      pub = findUnique(s, [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        { type: P.CKA_ID, value: id },
        { type: P.CKA_LABEL, value: ref.binding },
      ], ref.binding);
      if (ref.family === 'EC') {
        const params = (lib.C_GetAttributeValue(s, key, [{ type: P.CKA_EC_PARAMS }])[0]!.value as Buffer).toString('hex');
        crv = (Object.entries(CURVE_PARAMS).find(([, v]) => v === params)?.[0] as CurveName | undefined) ?? undefined;
      } else {
        bits = unsigned(lib.C_GetAttributeValue(s, key, [{ type: P.CKA_MODULUS }])[0]!.value as Buffer).length * 8;
      }
    }
    // A curve none of ours: not an object the vault made.
    if (ref.family === 'EC' && crv === undefined) throw untrusted(ref.binding, 'curve_unknown');
    let publicKey: KeyObject | undefined;
    try {
      publicKey = publicKeyOf(s, ref.family, pub, crv);
    } catch (e) {
      // The token's answer is no key node:crypto can read (a planted object, or an odd token); its own errors go on.
      if (pkcs11ReturnValue(e) !== undefined) throw e;
      throw untrusted(ref.binding, 'public_key_invalid');
    }
    checkRecorded(s, ref, key, publicKey, crv);
    checkPair(s, ref, key, publicKey);
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

  return { findOne, publicKeyOf, objectsOf, checkFamily, generateIn, importIn };
}
