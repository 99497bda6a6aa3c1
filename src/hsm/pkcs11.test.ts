/**
 * The PKCS#11 provider against a SoftHSM2 token in a temporary directory (test/helpers/softhsm.ts).
 */
import assert from 'node:assert/strict';
import { constants, createDecipheriv, createHash, createPrivateKey, createPublicKey, type KeyObject, publicEncrypt, verify } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pkcs11js from 'pkcs11js';
import { faultingLibrary, initSoftHsm, type SoftHsmToken, skipWithoutSoftHsm } from '../../test/helpers/softhsm.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../core/keygen.js';
import type { KeyRef, PrivateJwk, ProtectedKey } from '../vault/ports.js';
import { unwrapKeyTransfer } from '../vault/release/index.js';
import { createPkcs11KeyProtector, objectIdOf, type Pkcs11KeyProtector, routeKeyProtector } from './pkcs11.js';
import { parsePkcs11Spec } from './pkcs11-spec.js';

const skip = skipWithoutSoftHsm();
let token: SoftHsmToken;
let hsm: Pkcs11KeyProtector;
let n = 0;

function refOf(family: KeyRef['family'], pk: ProtectedKey, binding: string): KeyRef {
  // As the vault's refOf: with the public key it recorded, which the token's objects must match.
  return { family, handle: pk.handle, binding, publicJwk: pk.publicJwk };
}

async function make(family: 'RSA' | 'EC' | 'oct', exportable: boolean, extra: { keySize?: number; crv?: 'P-256' | 'P-384' | 'P-521' | 'P-256K' } = {}) {
  const binding = `vault-key:t${n++}/0123456789abcdef0123456789abcdef`;
  const spec =
    family === 'RSA' ? { family, keySize: extra.keySize ?? 2048, publicExponent: 65537 } : family === 'EC' ? { family, crv: extra.crv ?? 'P-256' } : { family, keySize: extra.keySize ?? 256 };
  const pk = await hsm.generate(spec, binding, { exportable });
  return { pk, ref: refOf(family, pk, binding), binding };
}

/**
 * Runs `fn` straight at the shared token with the same module and PIN, bypassing the provider (what another
 * holder of the user PIN can do): a read-write session `s`, and `find`, the first object of a class under a label.
 */
async function atToken(fn: (lib: pkcs11js.PKCS11, s: pkcs11js.Handle, find: (cls: number, label: string) => pkcs11js.Handle | undefined) => Promise<void>): Promise<void> {
  const lib = new pkcs11js.PKCS11();
  lib.load(token.module);
  try {
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    assert.match(String(e), /CKR_CRYPTOKI_ALREADY_INITIALIZED/);
  }
  const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === token.label)!;
  const s = lib.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
  const find = (cls: number, label: string) => {
    lib.C_FindObjectsInit(s, [
      { type: pkcs11js.CKA_CLASS, value: cls },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    try {
      return lib.C_FindObjects(s, 1)[0];
    } finally {
      lib.C_FindObjectsFinal(s);
    }
  };
  try {
    await fn(lib, s, find);
  } finally {
    lib.C_CloseSession(s);
  }
}

/**
 * A protector on the shared token (two sessions) whose library calls throw what `fault` returns for the
 * call's name (nothing: the call goes through), with its own clock.
 */
function faultingProtector(fault: (prop: string) => Error | undefined, now: () => number): Promise<Pkcs11KeyProtector> {
  return createPkcs11KeyProtector(parsePkcs11Spec(`${token.spec};sessions=2`), {
    now,
    wrapLibrary: faultingLibrary(fault),
  });
}

const workload = generateRsaKeyPair(2048);

describe('PKCS#11 key protector (SoftHSM2)', { skip }, () => {
  before(async () => {
    token = initSoftHsm();
    hsm = await createPkcs11KeyProtector(parsePkcs11Spec(token.spec));
  });
  after(async () => {
    await hsm?.close();
    token?.remove();
  });

  test('RSA: RS*/PS* signatures over a digest verify with OpenSSL and in the token', async () => {
    const { pk, ref } = await make('RSA', false);
    assert.equal(pk.keySize, 2048);
    const pub = createPublicKey({ key: { kty: 'RSA', n: pk.publicJwk.n!, e: pk.publicJwk.e! }, format: 'jwk' });
    for (const [alg, hash] of [['RS256', 'sha256'], ['RS384', 'sha384'], ['RS512', 'sha512'], ['PS256', 'sha256'], ['PS384', 'sha384'], ['PS512', 'sha512']] as const) {
      const digest = createHash(hash).update('message').digest();
      const sig = await hsm.sign(ref, alg, digest);
      const padding = alg.startsWith('PS') ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : {};
      assert.ok(verify(hash, Buffer.from('message'), { key: pub, ...padding }, sig), alg);
      assert.equal(await hsm.verify(ref, alg, digest, sig), true, alg);
      assert.equal(await hsm.verify(ref, alg, createHash(hash).update('other').digest(), sig), false, alg);
    }
    await assert.rejects(hsm.sign(ref, 'RS256', Buffer.alloc(20)), (e: { code?: string }) => e.code === 'key.invalid');
    await assert.rejects(hsm.sign(ref, 'ES256', Buffer.alloc(32)), (e: { code?: string }) => e.code === 'key.invalid');
  });

  test('EC: ES256/384/512/256K raw r||s verifies with OpenSSL', async () => {
    for (const [crv, alg, hash] of [['P-256', 'ES256', 'sha256'], ['P-384', 'ES384', 'sha384'], ['P-521', 'ES512', 'sha512'], ['P-256K', 'ES256K', 'sha256']] as const) {
      const { pk, ref } = await make('EC', false, { crv });
      assert.equal(pk.crv, crv);
      const pub = createPublicKey({ key: { kty: 'EC', crv: crv === 'P-256K' ? 'secp256k1' : crv, x: pk.publicJwk.x!, y: pk.publicJwk.y! }, format: 'jwk' });
      const digest = createHash(hash).update('msg').digest();
      const sig = await hsm.sign(ref, alg, digest);
      assert.ok(verify(hash, Buffer.from('msg'), { key: pub, dsaEncoding: 'ieee-p1363' }, sig), alg);
      assert.equal(await hsm.verify(ref, alg, digest, sig), true);
      assert.equal(await hsm.verify(ref, alg, createHash(hash).update('x').digest(), sig), false);
      if (crv === 'P-256') await assert.rejects(hsm.sign(ref, 'ES384', Buffer.alloc(48)), (e: { code?: string }) => e.code === 'key.invalid');
    }
  });

  test('RSA encrypt/decrypt: RSA1_5, RSA-OAEP, RSA-OAEP-256 (interoperable with node:crypto)', async () => {
    const { pk, ref } = await make('RSA', false);
    const pub = createPublicKey({ key: { kty: 'RSA', n: pk.publicJwk.n!, e: pk.publicJwk.e! }, format: 'jwk' });
    const pt = Buffer.from('attack at dawn');
    for (const alg of ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'] as const) {
      const c = await hsm.encrypt(ref, { alg, value: pt });
      assert.deepEqual(Buffer.from((await hsm.decrypt(ref, { alg, value: c.value })).value), pt, alg);
    }
    const external = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, pt);
    assert.deepEqual(Buffer.from((await hsm.decrypt(ref, { alg: 'RSA-OAEP-256', value: external })).value), pt);
    const tampered = Buffer.from(external);
    tampered[10]! ^= 1;
    await assert.rejects(hsm.decrypt(ref, { alg: 'RSA-OAEP-256', value: tampered }), (e: { code?: string }) => e.code === 'key.crypto_failed');
  });

  test('OAEP padding failures give one error, whether the token or the host removes the padding (#13)', async () => {
    const { pk, ref } = await make('RSA', false);
    const pub = createPublicKey({ key: { kty: 'RSA', n: pk.publicJwk.n!, e: pk.publicJwk.e! }, format: 'jwk' });
    const seen = new Set<string>();
    for (const [alg, oaepHash] of [['RSA-OAEP', 'sha1'], ['RSA-OAEP-256', 'sha256']] as const) {
      for (const at of [0, 10, 200]) {
        const c = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, Buffer.from('attack at dawn'));
        c[at]! ^= 1;
        await assert.rejects(hsm.decrypt(ref, { alg, value: c }), (e: { code?: string; message?: string; detail?: unknown }) => {
          seen.add(JSON.stringify([e.code, e.message, e.detail ?? null]));
          return true;
        });
      }
    }
    assert.deepEqual([...seen], [JSON.stringify(['key.crypto_failed', 'decryption failed', null])]);
  });

  test('oct: GCM (with aad), CBC, CBCPAD, KW inside the token', async () => {
    const { ref } = await make('oct', false);
    const pt = Buffer.from('sixteen byte msg and then some');
    const gcm = await hsm.encrypt(ref, { alg: 'A256GCM', value: pt, aad: Buffer.from('aad') });
    assert.equal(gcm.tag?.length, 16);
    assert.deepEqual(Buffer.from((await hsm.decrypt(ref, { alg: 'A256GCM', value: gcm.value, iv: gcm.iv!, tag: gcm.tag!, aad: Buffer.from('aad') })).value), pt);
    await assert.rejects(hsm.decrypt(ref, { alg: 'A256GCM', value: gcm.value, iv: gcm.iv!, tag: Buffer.alloc(16), aad: Buffer.from('aad') }), (e: { code?: string }) => e.code === 'key.crypto_failed');
    const pad = await hsm.encrypt(ref, { alg: 'A256CBCPAD', value: pt });
    assert.deepEqual(Buffer.from((await hsm.decrypt(ref, { alg: 'A256CBCPAD', value: pad.value, iv: pad.iv! })).value), pt);
    const cbc = await hsm.encrypt(ref, { alg: 'A256CBC', value: Buffer.alloc(32, 1) });
    assert.deepEqual(Buffer.from((await hsm.decrypt(ref, { alg: 'A256CBC', value: cbc.value, iv: cbc.iv! })).value), Buffer.alloc(32, 1));
    const kw = await hsm.encrypt(ref, { alg: 'A256KW', value: Buffer.alloc(32, 9) });
    assert.equal(kw.value.length, 40);
    assert.deepEqual(Buffer.from((await hsm.decrypt(ref, { alg: 'A256KW', value: kw.value })).value), Buffer.alloc(32, 9));
    await assert.rejects(hsm.encrypt(ref, { alg: 'A128GCM', value: pt }), (e: { code?: string }) => e.code === 'key.invalid');
  });

  test('release: key_hsm unwraps with plain node:crypto (RSA, EC, oct) and matches the key', async () => {
    const rsa = await make('RSA', true);
    const material = unwrapKeyTransfer(await hsm.releaseWrapped(rsa.ref, workload.publicKey, 'CKM_RSA_AES_KEY_WRAP', { kid: 'w1' }), workload.privateKey);
    const priv = createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' });
    assert.equal((createPublicKey(priv).export({ format: 'jwk' }) as { n: string }).n, rsa.pk.publicJwk.n);
    const blob = JSON.parse(Buffer.from(await hsm.releaseWrapped(rsa.ref, workload.publicKey, 'CKM_RSA_AES_KEY_WRAP', { kid: 'w1' }), 'base64url').toString());
    assert.deepEqual(blob.header, { kid: 'w1', alg: 'dir', enc: 'CKM_RSA_AES_KEY_WRAP' });
    assert.equal(blob.schema_version, '1.0.0');

    const ec = await make('EC', true, { crv: 'P-384' });
    const ecPriv = createPrivateKey({ key: Buffer.from(unwrapKeyTransfer(await hsm.releaseWrapped(ec.ref, workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), workload.privateKey)), format: 'der', type: 'pkcs8' });
    assert.equal((createPublicKey(ecPriv).export({ format: 'jwk' }) as { x: string }).x, ec.pk.publicJwk.x);

    const oct = await make('oct', true);
    const k = unwrapKeyTransfer(await hsm.releaseWrapped(oct.ref, workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), workload.privateKey);
    const enc = await hsm.encrypt(oct.ref, { alg: 'A256GCM', value: Buffer.from('secret') });
    const d = createDecipheriv('aes-256-gcm', Buffer.from(k), Buffer.from(enc.iv!));
    d.setAuthTag(Buffer.from(enc.tag!));
    assert.equal(Buffer.concat([d.update(enc.value), d.final()]).toString(), 'secret');
  });

  test('release with OAEP-SHA-256/384 fails closed on a token without it (release-sha2=token)', async () => {
    const rsa = await make('RSA', true);
    const info = await hsm.info();
    if (info.oaepHashes.sha256 === true) return; // a token that can: nothing to refuse
    for (const enc of ['RSA_AES_KEY_WRAP_256', 'RSA_AES_KEY_WRAP_384'] as const) {
      await assert.rejects(hsm.releaseWrapped(rsa.ref, workload.publicKey, enc), (e: { code?: string }) => e.code === 'hsm.mechanism_unsupported', enc);
    }
  });

  test('release-sha2=hybrid: RSA_AES_KEY_WRAP_256/384 blobs unwrap with the requested hash', async () => {
    const hybrid = await createPkcs11KeyProtector(parsePkcs11Spec(`${token.spec};release-sha2=hybrid;sessions=1`));
    try {
      const binding = 'vault-key:hybrid/0123456789abcdef0123456789abcdef';
      const pk = await hybrid.generate({ family: 'RSA', keySize: 2048, publicExponent: 65537 }, binding, { exportable: true });
      for (const enc of ['RSA_AES_KEY_WRAP_256', 'RSA_AES_KEY_WRAP_384'] as const) {
        const m = unwrapKeyTransfer(await hybrid.releaseWrapped(refOf('RSA', pk, binding), workload.publicKey, enc), workload.privateKey);
        assert.equal((createPublicKey(createPrivateKey({ key: Buffer.from(m), format: 'der', type: 'pkcs8' })).export({ format: 'jwk' }) as { n: string }).n, pk.publicJwk.n, enc);
      }
    } finally {
      await hybrid.close();
    }
  });

  test('a non-exportable key cannot be extracted through the token', async () => {
    const rsa = await make('RSA', false);
    const oct = await make('oct', false);
    await assert.rejects(hsm.releaseWrapped(rsa.ref, workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), (e: { code?: string }) => e.code === 'key.operation_not_allowed');
    // Straight at the token, with the same module and PIN, bypassing the provider.
    await atToken(async (lib, s, find) => {
      const priv = find(pkcs11js.CKO_PRIVATE_KEY, rsa.binding);
      assert.ok(priv, 'the private key object exists');
      const [sens, extr] = lib.C_GetAttributeValue(s, priv, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }]);
      assert.deepEqual([(sens!.value as Buffer)[0], (extr!.value as Buffer)[0]], [1, 0]);
      assert.throws(() => lib.C_GetAttributeValue(s, priv, [{ type: pkcs11js.CKA_PRIVATE_EXPONENT }]), /CKR_ATTRIBUTE_SENSITIVE/);
      const secret = find(pkcs11js.CKO_SECRET_KEY, oct.binding)!;
      assert.throws(() => lib.C_GetAttributeValue(s, secret, [{ type: pkcs11js.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
      const kek = lib.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_WRAP, value: true },
      ]);
      assert.throws(() => lib.C_WrapKey(s, { mechanism: 0x210a }, kek, priv, Buffer.alloc(4096)), /CKR_KEY_UNEXTRACTABLE/);
      assert.throws(() => lib.C_WrapKey(s, { mechanism: 0x2109 }, kek, secret, Buffer.alloc(64)), /CKR_KEY_UNEXTRACTABLE/);
    });
  });

  test('a key pair planted under a key version\'s label and CKA_ID (another holder of the user PIN) is refused, not used', async () => {
    await atToken(async (lib, s, find) => {
      for (const family of ['RSA', 'EC'] as const) {
        const victim = await make(family, false);
        // The vault passes the public key it recorded for the version (KeyRef.publicJwk).
        const ref: KeyRef = Object.assign({ ...victim.ref }, { publicJwk: victim.pk.publicJwk });
        const ids = [pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY].map((cls) => find(cls, victim.binding)!);
        for (const h of ids) lib.C_DestroyObject(s, h);
        // A pair the planter knows, under the same label and CKA_ID, imported through the provider's own path.
        const known = family === 'RSA' ? generateRsaKeyPair(2048) : generateEcKeyPair('prime256v1');
        const jwk = known.privateKey.export({ format: 'jwk' }) as PrivateJwk;
        await hsm.import({ ...jwk, kty: `${jwk.kty}-HSM` }, victim.binding, { exportable: true });
        const digest = createHash('sha256').update('planted').digest();
        const untrusted = (e: { code?: string }) => e.code === 'hsm.key_untrusted';
        // On main: the vault signs with (and encrypts to) the planter's key.
        await assert.rejects(hsm.sign(ref, family === 'RSA' ? 'RS256' : 'ES256', digest), untrusted, `${family} sign`);
        if (family === 'RSA') await assert.rejects(hsm.encrypt(ref, { alg: 'RSA-OAEP', value: Buffer.from('secret') }), untrusted, 'RSA encrypt');
        await assert.rejects(hsm.releaseWrapped(ref, workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), untrusted, `${family} release`);
      }
    });
  });

  test('a private key planted beside a key version\'s own public object (another holder of the user PIN) is refused, not used', async () => {
    await atToken(async (lib, s, find) => {
      const victim = await make('EC', true);
      const ref: KeyRef = Object.assign({ ...victim.ref }, { publicJwk: victim.pk.publicJwk });
      const priv = find(pkcs11js.CKO_PRIVATE_KEY, victim.binding)!;
      lib.C_DestroyObject(s, priv);
      // Only the private object is replaced: the public object (all a lookup compares) stays the recorded key.
      const known = generateEcKeyPair('prime256v1').privateKey.export({ format: 'jwk' }) as { d: string };
      lib.C_CreateObject(s, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: true },
        { type: pkcs11js.CKA_SIGN, value: true },
        { type: pkcs11js.CKA_LABEL, value: victim.binding },
        { type: pkcs11js.CKA_ID, value: objectIdOf(victim.binding) },
        { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') },
        { type: pkcs11js.CKA_VALUE, value: Buffer.from(known.d, 'base64url') },
      ]);
      const untrusted = (e: { code?: string }) => e.code === 'hsm.key_untrusted';
      // On main: the vault signs with the planter's key and releases it to the workload as the version's key.
      await assert.rejects(hsm.sign(ref, 'ES256', createHash('sha256').update('planted').digest()), untrusted, 'EC sign');
      await assert.rejects(hsm.releaseWrapped(ref, workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), untrusted, 'EC release');
    });
  });

  test('a second pair planted beside a key version\'s own objects (same label and CKA_ID) is refused as a duplicate, whichever a lookup finds first', async () => {
    for (const family of ['RSA', 'EC'] as const) {
      const victim = await make(family, false);
      const ref: KeyRef = Object.assign({ ...victim.ref }, { publicJwk: victim.pk.publicJwk });
      const known = family === 'RSA' ? generateRsaKeyPair(2048) : generateEcKeyPair('prime256v1');
      const jwk = known.privateKey.export({ format: 'jwk' }) as PrivateJwk;
      await hsm.import({ ...jwk, kty: `${jwk.kty}-HSM` }, victim.binding, { exportable: true });
      const duplicate = (e: { code?: string; detail?: { reason?: unknown } }) => e.code === 'hsm.key_untrusted' && e.detail?.reason === 'duplicate_object';
      await assert.rejects(hsm.sign(ref, family === 'RSA' ? 'RS256' : 'ES256', createHash('sha256').update('planted').digest()), duplicate, `${family} sign`);
    }
  });

  test('a public key object the token answers with an unreadable key gives hsm.key_untrusted, not an internal error', async () => {
    await atToken(async (lib, s, find) => {
      const victim = await make('EC', false);
      const pub = find(pkcs11js.CKO_PUBLIC_KEY, victim.binding)!;
      lib.C_DestroyObject(s, pub);
      // A public object whose CKA_EC_POINT is no point of the curve (a planted object, or a token answering oddly).
      lib.C_CreateObject(s, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_LABEL, value: victim.binding },
        { type: pkcs11js.CKA_ID, value: objectIdOf(victim.binding) },
        { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') },
        { type: pkcs11js.CKA_EC_POINT, value: Buffer.from('04050401020304', 'hex') },
      ]);
      // On main: a plain Error from node:crypto's key parser, which the server answers 500.
      await assert.rejects(hsm.sign(victim.ref, 'ES256', Buffer.alloc(32)), (e: { code?: string }) => e.code === 'hsm.key_untrusted');
    });
  });

  test('import: private JWKs go into the token and sign there', async () => {
    const rsa = generateRsaKeyPair(2048);
    const ec = generateEcKeyPair('secp256k1');
    for (const [key, alg, hash, family] of [[rsa.privateKey, 'RS256', 'sha256', 'RSA'], [ec.privateKey, 'ES256K', 'sha256', 'EC']] as const) {
      const jwk = key.export({ format: 'jwk' }) as PrivateJwk;
      const binding = `vault-key:imp${n++}/0123456789abcdef0123456789abcdef`;
      const pk = await hsm.import({ ...jwk, kty: `${jwk.kty}-HSM`, ...(jwk.crv === 'secp256k1' ? { crv: 'P-256K' } : {}) }, binding);
      const digest = createHash(hash).update('imported').digest();
      const sig = await hsm.sign(refOf(family, pk, binding), alg, digest);
      assert.ok(verify(hash, Buffer.from('imported'), { key: createPublicKey(key), ...(family === 'EC' ? { dsaEncoding: 'ieee-p1363' as const } : {}) }, sig), alg);
    }
    const binding = `vault-key:imp${n++}/0123456789abcdef0123456789abcdef`;
    const pk = await hsm.import({ kty: 'oct-HSM', k: Buffer.alloc(32, 5).toString('base64url') }, binding, { exportable: true });
    assert.equal(pk.keySize, 256);
    const k = unwrapKeyTransfer(await hsm.releaseWrapped(refOf('oct', pk, binding), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), workload.privateKey);
    assert.deepEqual(Buffer.from(k), Buffer.alloc(32, 5));
    await assert.rejects(hsm.import({ kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'AQ' }, binding), (e: { code?: string }) => e.code === 'key.invalid');
  });

  test('a handle moved to another key version does not open', async () => {
    const { pk } = await make('EC', false);
    await assert.rejects(hsm.sign({ family: 'EC', handle: pk.handle, binding: 'vault-key:other/0123456789abcdef0123456789abcdef' }, 'ES256', Buffer.alloc(32)), (e: { code?: string }) => e.code === 'key.crypto_failed');
  });

  test('routeKeyProtector sends software handles to the software provider', async () => {
    const calls: string[] = [];
    const software = { provider: 'software', sign: async () => {
        calls.push('software');
        return new Uint8Array(1);
      },
    } as unknown as Parameters<typeof routeKeyProtector>[1];
    const routed = routeKeyProtector(hsm, software);
    assert.equal(routed.provider, 'pkcs11');
    await routed.sign({ family: 'EC', handle: new Uint8Array(60), binding: 'vault-key:a/b' }, 'ES256', Buffer.alloc(32));
    assert.deepEqual(calls, ['software']);
    const { ref } = await make('EC', false);
    assert.equal((await routed.sign(ref, 'ES256', Buffer.alloc(32))).length, 64);
  });

  test('a token that fails gives hsm.unavailable and readiness false, then recovers', async () => {
    let broken = false;
    let t = 0;
    const flaky = await faultingProtector(
      (prop) => (broken && prop.startsWith('C_') && prop !== 'C_CloseSession' ? new Error('C_X:CKR_DEVICE_REMOVED:50') : undefined),
      () => t,
    );
    try {
      const binding = 'vault-key:flaky/0123456789abcdef0123456789abcdef';
      const pk = await flaky.generate({ family: 'EC', crv: 'P-256' }, binding);
      const ref = refOf('EC', pk, binding);
      await flaky.check();
      broken = true;
      await assert.rejects(flaky.sign(ref, 'ES256', Buffer.alloc(32)), (e: { code?: string; status?: number }) => e.code === 'hsm.unavailable' && e.status === 503);
      await assert.rejects(flaky.check(), (e: { code?: string }) => e.code === 'hsm.unavailable');
      await assert.rejects(flaky.sign(ref, 'ES256', Buffer.alloc(32)), (e: { code?: string }) => e.code === 'hsm.unavailable');
      broken = false;
      t += 60_000; // past the reconnection backoff
      await flaky.check();
      assert.equal((await flaky.sign(ref, 'ES256', Buffer.alloc(32))).length, 64);
    } finally {
      await flaky.close();
    }
  });

  test('an error that names no PKCS#11 return value, with the session alive, fails that call only: the token is not reset', async () => {
    // A TypeError of ours inside a token session (sign RS256K read DIGEST_INFO['256K'], undefined, into
    // Buffer.concat) was taken for a lost device: the connection dropped and every caller of the token got
    // 503 through the reconnection backoff, a reset any caller with sign on one key could repeat at will.
    let bug = false;
    const t = 0;
    const p = await faultingProtector(
      (prop) => (bug && prop === 'C_SignInit' ? new TypeError('The "list[0]" argument must be an instance of Buffer or Uint8Array') : undefined),
      () => t,
    );
    try {
      const binding = 'vault-key:bug/0123456789abcdef0123456789abcdef';
      const pk = await p.generate({ family: 'EC', crv: 'P-256' }, binding);
      const ref = refOf('EC', pk, binding);
      bug = true;
      for (let i = 0; i < 3; i++) {
        await assert.rejects(p.sign(ref, 'ES256', Buffer.alloc(32)), (e: { code?: string }) => e.code !== 'hsm.unavailable', `call ${i}: not a token failure`);
      }
      bug = false;
      // No time has passed: a reset token would still be in its backoff.
      await p.check();
      assert.equal((await p.sign(ref, 'ES256', Buffer.alloc(32))).length, 64);
    } finally {
      await p.close();
    }
  });

  test('service signer: generated once per label, RS256 verifies, also via CKM_RSA_PKCS over a DigestInfo', async () => {
    const signer = await hsm.serviceSigner('unit-signing');
    assert.equal(signer.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const data = Buffer.from('header.payload');
    assert.ok(verify('sha256', data, signer.publicKey, await signer.sign(data)));
    const spkiOf = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
    assert.deepEqual(spkiOf((await hsm.serviceSigner('unit-signing')).publicKey), spkiOf(signer.publicKey), 'found again by label');
    assert.notDeepEqual(spkiOf((await hsm.serviceSigner('other-signing')).publicKey), spkiOf(signer.publicKey));
    assert.deepEqual(spkiOf((await hsm.findServiceSigner('unit-signing', signer.publicKey))!.publicKey), spkiOf(signer.publicKey));
    assert.equal(await hsm.findServiceSigner('unit-signing', workload.publicKey), undefined);
    assert.equal(await hsm.findServiceSigner('other-signing', signer.publicKey), undefined);
    // A token without CKM_SHA256_RSA_PKCS: the digest is made here, the signature in the token.
    const plain = await createPkcs11KeyProtector(parsePkcs11Spec(token.spec), {
      wrapLibrary: (lib) =>
        new Proxy(lib, {
          get(target, prop, receiver) {
            const v = Reflect.get(target, prop, receiver);
            if (prop === 'C_GetMechanismList') return (slot: Buffer) => target.C_GetMechanismList(slot).filter((m) => m !== pkcs11js.CKM_SHA256_RSA_PKCS);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }),
    });
    try {
      assert.ok(!(await plain.info()).mechanisms.includes('CKM_SHA256_RSA_PKCS'));
      const viaDigestInfo = await plain.serviceSigner('unit-signing');
      assert.ok(verify('sha256', data, signer.publicKey, await viaDigestInfo.sign(data)));
    } finally {
      await plain.close();
    }
  });

  test('info reports the library, token, mechanisms and release path', async () => {
    const info = await hsm.info();
    assert.equal(info.token.label, token.label);
    assert.ok(info.mechanisms.includes('CKM_RSA_PKCS_OAEP'));
    assert.ok(info.mechanisms.includes('CKM_AES_KEY_WRAP_PAD'));
    assert.equal(info.rsaAesKeyWrapListed, false);
    assert.equal(info.oaepHashes.sha1, true);
    assert.equal(typeof info.oaepHashes.sha256, 'boolean');
    assert.ok(!JSON.stringify(info).includes(token.pin));
  });

  test('a wrong PIN or an absent token refuses to start', async () => {
    await assert.rejects(createPkcs11KeyProtector(parsePkcs11Spec(token.spec.replace(/token=[^;]+/, 'token=absent'))), (e: { code?: string }) => e.code === 'hsm.unavailable');
    await assert.rejects(createPkcs11KeyProtector(parsePkcs11Spec(token.spec), { env: {} }), (e: { code?: string }) => e.code === 'config.invalid');
    await assert.rejects(createPkcs11KeyProtector(parsePkcs11Spec(token.spec.replace('module=', 'module=/nonexistent'))), (e: { code?: string }) => e.code === 'config.invalid');
  });
});
