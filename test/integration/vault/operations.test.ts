/**
 * The key operations Managed HSM has beyond the JS SDK's everyday calls, through the unchanged
 * @azure/keyvault-keys: HS256/384/512 with oct keys, RSNULL, CKM_AES_KEY_WRAP(_PAD), and BYOK import of a
 * key wrapped to a KEK the vault generated (Azure's BYOK specification), with their error paths.
 */
import assert from 'node:assert/strict';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  publicEncrypt,
  randomBytes,
  verify as nodeVerify,
} from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CryptographyClient, type KeyClient } from '@azure/keyvault-keys';
import type { TestServer } from '../../helpers/server.js';
import { adminKeyClient, akvCall, assignRole, credentialFor, newClient, sdkOptions, startVault } from './harness.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../../../src/core/keygen.js';

let server: TestServer;
let client: KeyClient;
/** Under scripts/test-hsm.mjs the keys live in SoftHSM2, which has neither HMAC on AES keys nor a BYOK unwrap (docs/hsm.md). */
const onToken = process.env.CONCLAVE_TEST_HSM === 'softhsm';
const crypto = (id: string) => new CryptographyClient(id, credentialFor(server, server.admin.clientId, server.admin.clientSecret), sdkOptions(server));

describe('Managed HSM key operations beyond the everyday SDK calls', () => {
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
    client = adminKeyClient(server);
  });
  after(() => server?.stop());

  describe('HMAC, RSNULL and CKM AES key wrap', () => {
    test('HS256/384/512 with an oct key: sign matches HMAC over the value, verify accepts it and refuses a changed one', async () => {
      const raw = randomBytes(32);
      const key = await client.importKey('hmac-key', { kty: 'oct-HSM', k: raw, keyOps: ['sign', 'verify'] }, { hardwareProtected: true });
      const cc = crypto(key.id!);
      const data = Buffer.from('the message');
      if (onToken) {
        const r = await akvCall(server, 'POST', '/keys/hmac-key/sign', { alg: 'HS256', value: data.toString('base64url') });
        assert.equal(r.status, 400);
        assert.match(r.json.error.message, /not available for keys in the PKCS#11 token/);
        return;
      }
      for (const [alg, hash] of [['HS256', 'sha256'], ['HS384', 'sha384'], ['HS512', 'sha512']] as const) {
        const sig = await cc.sign(alg, data);
        assert.deepEqual(Buffer.from(sig.result), createHmac(hash, raw).update(data).digest(), alg);
        assert.equal((await cc.verify(alg, data, sig.result)).result, true);
        const changed = Buffer.from(sig.result);
        changed[0]! ^= 1;
        assert.equal((await cc.verify(alg, data, changed)).result, false);
      }
    });

    test('HS256 needs sign in key_ops and an oct key', async () => {
      // raw calls: the SDK checks key_ops itself before it sends
      await client.createOctKey('oct-nosign', { hsm: true, keySize: 256 });
      const noSign = await akvCall(server, 'POST', '/keys/oct-nosign/sign', { alg: 'HS256', value: Buffer.alloc(32).toString('base64url') });
      assert.equal(noSign.status, 403);
      assert.equal(noSign.json.error.innererror.code, 'key.operation_not_allowed');
      await client.createRsaKey('rsa-for-hs', { keySize: 2048 });
      const onRsa = await akvCall(server, 'POST', '/keys/rsa-for-hs/sign', { alg: 'HS256', value: Buffer.alloc(32).toString('base64url') });
      assert.equal(onRsa.status, 400);
      assert.equal(onRsa.json.error.innererror.code, 'key.invalid');
    });

    test('an alg whose digest part names a member of Object.prototype is an unsupported algorithm, on either key protector', async () => {
      // The PKCS#11 protector took the digest size from DIGEST_LEN[alg.slice(2)], a plain object: RStoString,
      // ES__proto__ and the like found a function or an object on its prototype chain and were refused as
      // "RStoString signs a function toString() { [native code] }-byte digest" (400, but a wrong answer
      // naming no digest size there is). The software protector checks the name first.
      await client.createRsaKey('rsa-proto-alg', { keySize: 2048 });
      const value = Buffer.alloc(32).toString('base64url');
      for (const alg of ['RStoString', 'PSconstructor', 'ES__proto__', 'RShasOwnProperty', 'ESvalueOf', 'RS256K', 'PS256K', 'ES256KK']) {
        for (const [op, body] of [['sign', { alg, value }], ['verify', { alg, digest: value, value }]] as const) {
          const r = await akvCall(server, 'POST', `/keys/rsa-proto-alg/${op}`, body);
          assert.equal(r.status, 400, `${op} ${alg}: ${JSON.stringify(r.json)}`);
          assert.equal(r.json.error.innererror.code, 'key.invalid', `${op} ${alg}`);
          assert.equal(r.json.error.message, `Unsupported signature algorithm ${alg}`, `${op} ${alg}`);
        }
      }
    });

    test('RSNULL signs the given DigestInfo as is; verifies with node:crypto RS256', async () => {
      const rsa = await client.createRsaKey('rsnull', { keySize: 2048 });
      const msg = Buffer.from('rsnull message');
      const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(msg).digest()]);
      const sig = await crypto(rsa.id!).sign('RSNULL', digestInfo);
      const pub = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(rsa.key!.n!).toString('base64url'), e: Buffer.from(rsa.key!.e!).toString('base64url') }, format: 'jwk' });
      assert.equal(nodeVerify('sha256', msg, pub, Buffer.from(sig.result)), true);
      assert.equal((await crypto(rsa.id!).verify('RSNULL', digestInfo, sig.result)).result, true);
      await assert.rejects(crypto(rsa.id!).sign('RSNULL', Buffer.alloc(300)), (e: any) => e.statusCode === 400);
    });

    test('CKM_AES_KEY_WRAP (RFC 3394) and CKM_AES_KEY_WRAP_PAD (RFC 5649) with 128/192/256-bit keys', async () => {
      for (const size of [16, 24, 32]) {
        const raw = randomBytes(size);
        const key = await client.importKey(`aeskw-${size}`, { kty: 'oct-HSM', k: raw, keyOps: ['wrapKey', 'unwrapKey'] }, { hardwareProtected: true });
        const cc = crypto(key.id!);
        const cek = randomBytes(32);
        const w = await cc.wrapKey('CKM_AES_KEY_WRAP', cek);
        const expected = createCipheriv(`id-aes${size * 8}-wrap`, raw, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
        assert.deepEqual(Buffer.from(w.result), Buffer.concat([expected.update(cek), expected.final()]));
        assert.deepEqual(Buffer.from((await cc.unwrapKey('CKM_AES_KEY_WRAP', w.result)).result), cek);
        // an odd length where the key is in software; whole blocks in SoftHSM2, which pads before an RFC 5649 wrap
        const odd = randomBytes(onToken ? 24 : 21);
        const wp = await cc.wrapKey('CKM_AES_KEY_WRAP_PAD', odd);
        const d = createDecipheriv(`id-aes${size * 8}-wrap-pad`, raw, Buffer.from('A65959A6', 'hex'));
        assert.deepEqual(Buffer.concat([d.update(wp.result), d.final()]), odd);
        assert.deepEqual(Buffer.from((await cc.unwrapKey('CKM_AES_KEY_WRAP_PAD', wp.result)).result), odd);
        await assert.rejects(cc.wrapKey('CKM_AES_KEY_WRAP', randomBytes(21)), (e: any) => e.statusCode === 400);
      }
      const enc = await akvCall(server, 'POST', '/keys/oct-nosign/encrypt', { alg: 'CKM_AES_KEY_WRAP', value: randomBytes(16).toString('base64url') });
      assert.equal(enc.status, 400, 'a key-wrap algorithm is for wrapKey only');
    });

    test('A*GCM encryption takes no caller iv: one reused nonce would hand an encrypt-only caller every plaintext under the key', async () => {
      const created = await akvCall(server, 'POST', '/keys/gcm-nonce/create', { kty: 'oct-HSM', key_size: 256 });
      assert.equal(created.status, 200, JSON.stringify(created.json));
      const secret = Buffer.from('the victim wrote this with A256GCM');
      const victim = await akvCall(server, 'POST', '/keys/gcm-nonce/encrypt', { alg: 'A256GCM', value: secret.toString('base64url') });
      assert.equal(victim.status, 200);
      // Encrypting zeros under the victim's iv returns the CTR keystream: XORed with the victim's ciphertext, the plaintext.
      const replay = await akvCall(server, 'POST', '/keys/gcm-nonce/encrypt', { alg: 'A256GCM', value: Buffer.alloc(secret.length).toString('base64url'), iv: victim.json.iv });
      const keystream = replay.json?.value ? Buffer.from(replay.json.value, 'base64url') : Buffer.alloc(0);
      const recovered = Buffer.from(Buffer.from(victim.json.value, 'base64url').map((b, i) => b ^ (keystream[i] ?? 0)));
      assert.notDeepEqual(recovered, secret, 'an encrypt call with the victim iv recovered the plaintext');
      assert.equal(replay.status, 400, JSON.stringify(replay.json));
      assert.equal(replay.json.error.code, 'BadParameter');
      // Decryption takes the iv, as before.
      const dec = await akvCall(server, 'POST', '/keys/gcm-nonce/decrypt', { alg: 'A256GCM', value: victim.json.value, iv: victim.json.iv, tag: victim.json.tag });
      assert.equal(Buffer.from(dec.json.value, 'base64url').toString(), secret.toString());
    });

    test('A*GCM decryption takes only a whole 128-bit tag: a truncated one is no 32-bit forgery budget', async () => {
      const created = await akvCall(server, 'POST', '/keys/gcm-tag/create', { kty: 'oct-HSM', key_size: 256 });
      assert.equal(created.status, 200, JSON.stringify(created.json));
      const enc = await akvCall(server, 'POST', '/keys/gcm-tag/encrypt', { alg: 'A256GCM', value: Buffer.from('pay 10 to bob').toString('base64url') });
      const tag = Buffer.from(enc.json.tag, 'base64url');
      assert.equal(tag.length, 16);
      for (const len of [0, 4, 8, 12, 15, 17]) {
        // On main (software keys): node:crypto checks only the first `len` bytes of the tag and decrypts.
        const cut = len > 16 ? Buffer.concat([tag, Buffer.of(0)]) : tag.subarray(0, len);
        const r = await akvCall(server, 'POST', '/keys/gcm-tag/decrypt', { alg: 'A256GCM', value: enc.json.value, iv: enc.json.iv, tag: cut.toString('base64url') });
        assert.equal(r.status, 400, `a ${len}-byte tag: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.value, undefined);
      }
    });

    test('an imported RSA key is 2048, 3072 or 4096 bits, as a created one: no key that ties up the token for seconds a signature', async () => {
      for (const bits of [1024, 4104]) {
        const jwk = generateRsaKeyPair(bits).privateKey.export({ format: 'jwk' });
        // On main: 200, and every sign with it holds a session of the token (or the software signer) for as long as the key's size asks.
        const r = await akvCall(server, 'PUT', `/keys/rsa-import-${bits}`, { key: { ...jwk, kty: 'RSA' } });
        assert.equal(r.status, 400, `a ${bits}-bit RSA import: ${JSON.stringify(r.json).slice(0, 200)}`);
        assert.equal(r.json.error.code, 'BadParameter');
      }
      const ok = await akvCall(server, 'PUT', '/keys/rsa-import-3072', { key: { ...generateRsaKeyPair(3072).privateKey.export({ format: 'jwk' }), kty: 'RSA' } });
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      // The size is the modulus's bit length: a 2047-bit modulus (256 octets) is not 2048 bits, and a leading
      // zero octet in n (some encoders add one) does not make a 2048-bit key 2056.
      const short = await akvCall(server, 'PUT', '/keys/rsa-import-2047', { key: { ...generateRsaKeyPair(2047).privateKey.export({ format: 'jwk' }), kty: 'RSA' } });
      assert.equal(short.status, 400, `a 2047-bit RSA import: ${JSON.stringify(short.json).slice(0, 200)}`);
      const padded = generateRsaKeyPair(2048).privateKey.export({ format: 'jwk' });
      const n = Buffer.concat([Buffer.of(0), Buffer.from(padded.n!, 'base64url')]).toString('base64url');
      const zero = await akvCall(server, 'PUT', '/keys/rsa-import-padded', { key: { ...padded, n, kty: 'RSA' } });
      assert.equal(zero.status, 200, JSON.stringify(zero.json).slice(0, 300));
    });

    test('an algorithm name outside the list is a 400, never taken for another mode', async () => {
      // An AES name was read by its size digits and its ending alone: A256FOO, B256CBC or A256XCBC encrypted
      // with AES-256-CBC (200) instead of being refused as the unknown algorithm it is.
      for (const alg of ['A256FOO', 'B256CBC', 'A256XCBC', 'A256cbc', 'A256GCMX', 'toString', 'RSA-OAEP-512']) {
        for (const [path, op] of [['/keys/oct-nosign/encrypt', 'encrypt'], ['/keys/aeskw-32/wrapKey', 'wrapKey']] as const) {
          const r = await akvCall(server, 'POST', path, { alg, value: randomBytes(32).toString('base64url'), iv: randomBytes(16).toString('base64url') });
          assert.equal(r.status, 400, `${op} with ${alg}: ${JSON.stringify(r.json)}`);
          assert.equal(r.json.error.code, 'BadParameter');
          assert.equal(r.json.value, undefined);
        }
      }
    });

    test('a changed, truncated or empty wrapped key is a 400 (never a 500, never an empty key)', async () => {
      const ok = await akvCall(server, 'POST', '/keys/aeskw-32/wrapKey', { alg: 'CKM_AES_KEY_WRAP', value: randomBytes(32).toString('base64url') });
      assert.equal(ok.status, 200);
      const wrapped = Buffer.from(ok.json.value, 'base64url');
      const changed = Buffer.from(wrapped);
      changed[3]! ^= 1;
      for (const alg of ['CKM_AES_KEY_WRAP', 'CKM_AES_KEY_WRAP_PAD', 'A256KW']) {
        for (const [what, value] of [['changed', changed], ['truncated', wrapped.subarray(0, 20)], ['empty', Buffer.alloc(0)]] as const) {
          const r = await akvCall(server, 'POST', '/keys/aeskw-32/unwrapKey', { alg, value: value.toString('base64url') });
          assert.equal(r.status, 400, `${alg} ${what}: ${JSON.stringify(r.json)}`);
          assert.equal(r.json.error.code, 'BadParameter');
          assert.equal(r.json.value, undefined);
        }
      }
      const emptyWrap = await akvCall(server, 'POST', '/keys/aeskw-32/wrapKey', { alg: 'CKM_AES_KEY_WRAP_PAD', value: '' });
      assert.equal(emptyWrap.status, 400, 'RFC 5649 wraps at least one byte');
      const wrongSize = await akvCall(server, 'POST', '/keys/aeskw-16/unwrapKey', { alg: 'A256KW', value: wrapped.toString('base64url') });
      assert.equal(wrongSize.status, 400, 'A256KW with a 128-bit key');
    });
  });

  /** What a vendor BYOK tool does with the KEK's public key (BYOK specification, key transfer blob). */
  function transferBlob(kekKid: string, kekPublic: ReturnType<typeof createPublicKey>, material: Buffer, enc = 'CKM_RSA_AES_KEY_WRAP'): Buffer {
    const aes = randomBytes(32);
    const oaepHash = enc === 'CKM_RSA_AES_KEY_WRAP' ? 'sha1' : enc === 'RSA_AES_KEY_WRAP_256' ? 'sha256' : 'sha384';
    const wrappedAes = publicEncrypt({ key: kekPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, aes);
    const kwp = createCipheriv('id-aes256-wrap-pad', aes, Buffer.from('A65959A6', 'hex'));
    const ciphertext = Buffer.concat([wrappedAes, kwp.update(material), kwp.final()]);
    const blob = { schema_version: '1.0.0', header: { kid: kekKid, alg: 'dir', enc }, ciphertext: ciphertext.toString('base64url'), generator: 'test BYOK tool' };
    return Buffer.from(JSON.stringify(blob));
  }

  describe('BYOK', () => {
    let kekKid: string;
    let kekPublic: ReturnType<typeof createPublicKey>;
    before(async () => {
      const kek = await client.createRsaKey('byok-kek', { hsm: true, keySize: 2048, keyOps: ['import'] });
      kekKid = kek.id!;
      kekPublic = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(kek.key!.n!).toString('base64url'), e: Buffer.from(kek.key!.e!).toString('base64url') }, format: 'jwk' });
    });

    test('an RSA key wrapped to the KEK imports through the SDK (key_hsm) and signs as the original', async () => {
      const { privateKey, publicKey } = generateRsaKeyPair(2048);
      const blob = transferBlob(kekKid, kekPublic, privateKey.export({ format: 'der', type: 'pkcs8' }));
      if (onToken) {
        const r = await akvCall(server, 'PUT', '/keys/byok-rsa', { key: { kty: 'RSA-HSM', key_hsm: blob.toString('base64url') } });
        assert.equal(r.status, 400);
        assert.match(r.json.error.message, /BYOK import is not available with the pkcs11 key protector/);
        return;
      }
      const imported = await client.importKey('byok-rsa', { kty: 'RSA-HSM', t: blob, keyOps: ['sign', 'verify'] });
      assert.equal(imported.keyType, 'RSA-HSM');
      assert.deepEqual(Buffer.from(imported.key!.n!), Buffer.from((publicKey.export({ format: 'jwk' }) as { n: string }).n, 'base64url'));
      const digest = createHash('sha256').update('byok').digest();
      const sig = await crypto(imported.id!).sign('RS256', digest);
      assert.equal(nodeVerify('sha256', Buffer.from('byok'), publicKey, Buffer.from(sig.result)), true);
    });

    test('EC and oct targets, and the SHA-256 variant', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      const ec = generateEcKeyPair('P-384');
      const r = await client.importKey('byok-ec', { kty: 'EC-HSM', t: transferBlob(kekKid, kekPublic, ec.privateKey.export({ format: 'der', type: 'pkcs8' }), 'RSA_AES_KEY_WRAP_256') });
      assert.equal(r.key!.crv, 'P-384');
      const digest = createHash('sha384').update('x').digest();
      const sig = await crypto(r.id!).sign('ES384', digest);
      assert.equal(nodeVerify('sha384', Buffer.from('x'), { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig.result)), true);
      const raw = randomBytes(32);
      const oct = await client.importKey('byok-oct', { kty: 'oct-HSM', t: transferBlob(kekKid, kekPublic, raw), keyOps: ['encrypt', 'decrypt'] });
      const iv = randomBytes(16);
      const c = await crypto(oct.id!).encrypt({ algorithm: 'A256CBCPAD', plaintext: Buffer.from('hello'), iv });
      const d = createDecipheriv('aes-256-cbc', raw, iv);
      assert.equal(Buffer.concat([d.update(c.result), d.final()]).toString(), 'hello');
    });

    test('a transferred private key whose members are of two keys is refused, as a JWK import is', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      // Attack: PKCS#8 carries the public point (EC) and n, e beside the private members, and OpenSSL takes them as
      // given: a blob whose EC d or RSA d is of another key imported (200), published the one key and signed with the other.
      const mixed = (named: string | number, member: 'd') => {
        const pair = () => (typeof named === 'number' ? generateRsaKeyPair(named) : generateEcKeyPair(named)).privateKey.export({ format: 'jwk' });
        const [a, b] = [pair(), pair()];
        return createPrivateKey({ key: { ...a, [member]: b[member] }, format: 'jwk' }).export({ format: 'der', type: 'pkcs8' });
      };
      // A key on a curve the vault does not take is refused as such (a JWK of it cannot be made to check it: 400, not 500).
      const brainpool = await akvCall(server, 'PUT', '/keys/byok-brainpool', { key: { kty: 'EC-HSM', key_hsm: transferBlob(kekKid, kekPublic, generateEcKeyPair('brainpoolP256r1').privateKey.export({ format: 'der', type: 'pkcs8' })).toString('base64url') } });
      assert.equal(brainpool.status, 400, `brainpoolP256r1: ${JSON.stringify(brainpool.json).slice(0, 300)}`);
      assert.equal(brainpool.json.error.innererror.code, 'key.invalid');
      for (const [kty, named] of [['EC-HSM', 'P-256'], ['EC-HSM', 'P-384'], ['RSA-HSM', 2048]] as const) {
        const r = await akvCall(server, 'PUT', `/keys/byok-mixed-${String(named)}`, { key: { kty, key_hsm: transferBlob(kekKid, kekPublic, mixed(named, 'd')).toString('base64url') } });
        assert.equal(r.status, 400, `${kty} ${String(named)}: ${JSON.stringify(r.json).slice(0, 300)}`);
        assert.equal(r.json.error.innererror.code, 'key.invalid');
      }
    });

    test('a principal whose roles do not reach the KEK cannot import a blob wrapped to it', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      // Attack: the KEK was looked up by the blob's kid and its private key used for whoever held import on
      // the *target* name: a principal scoped to /keys/byok-mine alone unwrapped with byok-kek, on which it
      // holds nothing, and brought the key in under attributes and a release policy of its own choosing.
      const scoped = await newClient(server, 'byok scoped importer');
      await assignRole(server, scoped.clientId, 'Managed HSM Crypto User', '/keys/byok-mine');
      const bearer = (await credentialFor(server, scoped.clientId, scoped.clientSecret).getToken(''))!.token;
      const importAs = async () => {
        const r = await server.send('PUT', '/keys/byok-mine?api-version=7.4', { headers: { authorization: `Bearer ${bearer}` }, body: { key: { kty: 'EC-HSM', key_hsm: transferBlob(kekKid, kekPublic, generateEcKeyPair('P-256').privateKey.export({ format: 'der', type: 'pkcs8' })).toString('base64url') } } });
        return { status: r.status, json: r.json() };
      };
      const refused = await importAs();
      assert.equal(refused.status, 403, JSON.stringify(refused.json));
      assert.equal(refused.json.error.innererror.code, 'auth.forbidden');
      assert.match(refused.json.error.message, /'import' on key byok-kek/);
      assert.equal((await akvCall(server, 'GET', '/keys/byok-mine')).status, 404, 'nothing imported');
      // The same principal with import on the KEK as well: the blob imports.
      await assignRole(server, scoped.clientId, 'Managed HSM Crypto User', '/keys/byok-kek');
      const imported = await importAs();
      assert.equal(imported.status, 200, JSON.stringify(imported.json));
    });

    test('a principal whose roles do not reach the KEK learns nothing of the key the blob names: the refusal names it as asked', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      // Attack: the KEK was looked up before the permission check on it, so a principal with import on its
      // own target name alone read 400 "not a key of this vault" for a name (or version) that does not
      // exist and 403 naming the stored spelling for one that does: an oracle for which key names and
      // versions exist, the one create and import on the target name no longer give.
      const scoped = await newClient(server, 'byok oracle prober');
      await assignRole(server, scoped.clientId, 'Managed HSM Crypto User', '/keys/byok-probe');
      const bearer = (await credentialFor(server, scoped.clientId, scoped.clientSecret).getToken(''))!.token;
      const kekVersion = kekKid.split('/').pop()!;
      const pkcs8 = generateEcKeyPair('P-256').privateKey.export({ format: 'der', type: 'pkcs8' });
      for (const [kid, asked] of [
        [`${server.url}/keys/BYOK-KEK/${kekVersion}`, 'BYOK-KEK'],
        [`${server.url}/keys/byok-kek/${'0'.repeat(32)}`, 'byok-kek'],
        [`${server.url}/keys/no-such-kek/${kekVersion}`, 'no-such-kek'],
      ] as const) {
        const r = await server.send('PUT', '/keys/byok-probe?api-version=7.4', { headers: { authorization: `Bearer ${bearer}` }, body: { key: { kty: 'EC-HSM', key_hsm: transferBlob(kid, kekPublic, pkcs8).toString('base64url') } } });
        assert.equal(r.status, 403, `${kid}: ${r.text}`);
        assert.equal(r.json().error.innererror.code, 'auth.forbidden', kid);
        assert.match(r.json().error.message, new RegExp(`'import' on key ${asked}\\.`), kid);
      }
      assert.equal((await akvCall(server, 'GET', '/keys/byok-probe')).status, 404, 'nothing imported');
    });

    test('the key_ops of a KEK cannot be changed: its private key opens transfer blobs by import only', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      // Attack: keys/write and decrypt on the KEK (Managed HSM Crypto User) were enough to PATCH its key_ops to
      // ["decrypt"], decrypt a blob's RSA-OAEP part (the AES key) with it and unwrap the rest outside the
      // vault: the material of a BYOK import in the clear, without import, release or export permission.
      const kek = await client.createRsaKey('byok-kek-fixed', { hsm: true, keySize: 2048, keyOps: ['import'] });
      const pub = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(kek.key!.n!).toString('base64url'), e: Buffer.from(kek.key!.e!).toString('base64url') }, format: 'jwk' });
      const blob = JSON.parse(transferBlob(kek.id!, pub, randomBytes(32)).toString());
      for (const keyOps of [['decrypt'], ['import', 'decrypt'], ['unwrapKey', 'import'], ['sign'], []]) {
        const r = await akvCall(server, 'PATCH', '/keys/byok-kek-fixed', { key_ops: keyOps });
        assert.equal(r.status, 400, `key_ops ${JSON.stringify(keyOps)}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error.innererror.code, 'key.invalid');
      }
      const wrappedAes = Buffer.from(blob.ciphertext, 'base64url').subarray(0, 256).toString('base64url');
      const decrypt = await akvCall(server, 'POST', '/keys/byok-kek-fixed/decrypt', { alg: 'RSA-OAEP', value: wrappedAes });
      assert.equal(decrypt.status, 403, 'the KEK still decrypts nothing');
      // An update that leaves key_ops as they are, or changes only attributes, is taken.
      assert.equal((await akvCall(server, 'PATCH', '/keys/byok-kek-fixed', { key_ops: ['import'], tags: { team: 'a' } })).status, 200);
      assert.equal((await akvCall(server, 'PATCH', '/keys/byok-kek-fixed', { attributes: { enabled: true } })).status, 200);
    });

    test('a KEK is a key the vault generated, non-exportable, with import its only operation from its creation', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      // Attack: ef7e883 keeps a KEK's key_ops from changing, but a KEK-shaped key could still have a private
      // key that exists outside the vault. A principal with import on a name (Managed HSM Crypto User, as in
      // the key_ops attack) imported its own RSA key as RSA-HSM with key_ops ["import"], for instance as a new
      // version of a KEK's name that a BYOK tool then downloads; or imported it with ["decrypt"] and PATCHed
      // that to ["import"]; or brought one in by BYOK; or created the KEK exportable, with a release policy
      // that hands its private key to a TEE. Each was then taken as a KEK, and a blob wrapped to it opened
      // outside the vault with that private key.
      const { privateKey } = generateRsaKeyPair(2048);
      const jwk = privateKey.export({ format: 'jwk' }) as Record<string, string>;
      const refused = async (r: { status: number; json: any }, what: string) => {
        assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error.innererror.code, 'key.invalid', what);
      };
      await refused(await akvCall(server, 'PUT', '/keys/kek-imported', { key: { ...jwk, kty: 'RSA-HSM', key_ops: ['import'] } }), 'JWK import as a KEK');
      await refused(await akvCall(server, 'PUT', '/keys/kek-imported', { key: { ...jwk, kty: 'RSA', key_ops: ['import'] }, Hsm: true }), 'JWK import as a KEK (Hsm: true)');
      await refused(await akvCall(server, 'PUT', '/keys/byok-kek', { key: { ...jwk, kty: 'RSA-HSM', key_ops: ['import'] } }), 'JWK import as a new version of a KEK');
      assert.equal((await akvCall(server, 'GET', '/keys/kek-imported')).status, 404, 'nothing imported');
      assert.equal((await akvCall(server, 'GET', '/keys/byok-kek')).json.key.kid, kekKid, 'no new version of the KEK');
      // Imported for decrypt, then turned into a KEK by update.
      assert.equal((await akvCall(server, 'PUT', '/keys/kek-converted', { key: { ...jwk, kty: 'RSA-HSM', key_ops: ['decrypt'] } })).status, 200);
      await refused(await akvCall(server, 'PATCH', '/keys/kek-converted', { key_ops: ['import'] }), 'update into a KEK');
      // A KEK brought in by BYOK (its material came from outside as well).
      const rsaPkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
      await refused(await akvCall(server, 'PUT', '/keys/kek-byok', { key: { kty: 'RSA-HSM', key_ops: ['import'], key_hsm: transferBlob(kekKid, kekPublic, rsaPkcs8).toString('base64url') } }), 'BYOK import as a KEK');
      // Exportable: release would hand the KEK's private key to a TEE; a blob wrapped to it is refused.
      const releasePolicy = { encodedPolicy: Buffer.from(JSON.stringify({ version: '1.0.0', anyOf: [{ authority: 'https://attest.example', allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] })) };
      const exportable = await client.createRsaKey('kek-exportable', { hsm: true, keySize: 2048, keyOps: ['import'], exportable: true, releasePolicy });
      const exportablePublic = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(exportable.key!.n!).toString('base64url'), e: Buffer.from(exportable.key!.e!).toString('base64url') }, format: 'jwk' });
      const toExportable = await akvCall(server, 'PUT', '/keys/byok-via-exportable', { key: { kty: 'EC-HSM', key_hsm: transferBlob(exportable.id!, exportablePublic, generateEcKeyPair('P-256').privateKey.export({ format: 'der', type: 'pkcs8' })).toString('base64url') } });
      await refused(toExportable, 'a blob wrapped to an exportable KEK');
      assert.match(toExportable.json.error.message, /not a key exchange key/);
      // The KEK as the BYOK specification makes it still opens blobs.
      assert.equal((await akvCall(server, 'PUT', '/keys/byok-after', { key: { kty: 'EC-HSM', key_hsm: transferBlob(kekKid, kekPublic, generateEcKeyPair('P-256').privateKey.export({ format: 'der', type: 'pkcs8' })).toString('base64url') } })).status, 200);
    });

    test('a KEK outside its nbf/exp window opens no blob: import is not among the operations an expired key still does (pin, defended on main)', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      // AKV lets a key outside its window decrypt, unwrap and verify (5181edb); a BYOK import is the KEK's own
      // operation, import, which stays refused there. Mutation caught: 'import' added to key.ts OUTSIDE_WINDOW.
      const hour = 3600_000;
      for (const [name, window] of [['byok-kek-expired', { expiresOn: new Date(Date.now() - hour) }], ['byok-kek-early', { notBefore: new Date(Date.now() + hour) }]] as const) {
        const kek = await client.createRsaKey(name, { hsm: true, keySize: 2048, keyOps: ['import'], ...window });
        const pub = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(kek.key!.n!).toString('base64url'), e: Buffer.from(kek.key!.e!).toString('base64url') }, format: 'jwk' });
        const r = await akvCall(server, 'PUT', `/keys/${name}-target`, { key: { kty: 'EC-HSM', key_hsm: transferBlob(kek.id!, pub, generateEcKeyPair('P-256').privateKey.export({ format: 'der', type: 'pkcs8' })).toString('base64url') } });
        assert.equal(r.status, 403, `${name}: ${JSON.stringify(r.json).slice(0, 300)}`);
        assert.equal(r.json.error.innererror.code, 'key.operation_not_allowed', name);
        assert.equal((await akvCall(server, 'GET', `/keys/${name}-target`)).status, 404, `${name}: nothing imported`);
      }
    });

    test('error paths: not a KEK, unknown KEK, broken ciphertext, wrong type, non-HSM type, bad enc', { skip: onToken && 'BYOK into the token is not offered yet' }, async () => {
      const { privateKey } = generateRsaKeyPair(2048);
      const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
      const put = (name: string, key: Record<string, unknown>) => akvCall(server, 'PUT', `/keys/${name}`, { key });
      const expect400 = async (name: string, key: Record<string, unknown>, code: string, message: RegExp) => {
        const r = await put(name, key);
        assert.equal(r.status, 400, JSON.stringify(r.json));
        assert.equal(r.json.error.innererror.code, code);
        assert.match(r.json.error.message, message);
        assert.equal((await akvCall(server, 'GET', `/keys/${name}`)).status, 404, 'nothing imported');
      };
      const notKek = await client.createRsaKey('not-a-kek', { hsm: true, keySize: 2048 });
      const notKekPublic = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(notKek.key!.n!).toString('base64url'), e: Buffer.from(notKek.key!.e!).toString('base64url') }, format: 'jwk' });
      await expect400('b1', { kty: 'RSA-HSM', key_hsm: transferBlob(notKek.id!, notKekPublic, pkcs8).toString('base64') }, 'key.invalid', /not a key exchange key/);
      await expect400('b2', { kty: 'RSA-HSM', key_hsm: transferBlob(`${server.url}/keys/nokek/${'0'.repeat(32)}`, kekPublic, pkcs8).toString('base64url') }, 'key.invalid', /not a key of this vault/);
      const blob = JSON.parse(transferBlob(kekKid, kekPublic, pkcs8).toString());
      const ct = Buffer.from(blob.ciphertext, 'base64url');
      ct[ct.length - 1]! ^= 1;
      await expect400('b3', { kty: 'RSA-HSM', key_hsm: Buffer.from(JSON.stringify({ ...blob, ciphertext: ct.toString('base64url') })).toString('base64url') }, 'key.crypto_failed', /unwrap/);
      await expect400('b4', { kty: 'EC-HSM', key_hsm: transferBlob(kekKid, kekPublic, pkcs8).toString('base64url') }, 'key.invalid', /is RSA, but key.kty names EC/);
      await expect400('b5', { kty: 'RSA', key_hsm: transferBlob(kekKid, kekPublic, pkcs8).toString('base64url') }, 'key.invalid', /HSM key type/);
      await expect400('b6', { kty: 'RSA-HSM', key_hsm: transferBlob(kekKid, kekPublic, pkcs8, 'A256GCM').toString('base64url') }, 'key.invalid', /enc must be/);
      // the KEK itself is good for nothing else
      const kekSign = await akvCall(server, 'POST', '/keys/byok-kek/sign', { alg: 'RS256', value: Buffer.alloc(32).toString('base64url') });
      assert.equal(kekSign.status, 403);
    });
  });
});
