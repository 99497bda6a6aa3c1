/**
 * The unchanged @azure/keyvault-keys SDK against the vault over HTTPS: key lifecycle, crypto
 * operations and Secure Key Release.
 */
import assert from 'node:assert/strict';
import { constants, createDecipheriv, createHash, createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CryptographyClient, type KeyClient } from '@azure/keyvault-keys';
import { decodeReleaseResponse, unwrapKeyTransfer } from '../../../src/vault/release/index.js';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, adminKeyClient, assignRole, type AuthorityStandIn, credentialFor, policyFor, sdkOptions, startAuthority, startVault } from './harness.js';

let server: TestServer;
let client: KeyClient;
let authority: AuthorityStandIn;

describe('@azure/keyvault-keys against conclave', () => {
  before(async () => {
    server = await startVault();
    client = adminKeyClient(server);
    authority = await startAuthority(server);
    assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
  });
  after(async () => {
    await authority?.close();
    await server?.stop();
  });
  test('unauthenticated requests get the AKV challenge', async () => {
    const r = await server.send('GET', '/keys/k1/?api%2Dversion=2025-07-01');
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /^Bearer authorization="https:\/\/[^"\s]+\/00000000-0000-0000-0000-000000000000", resource="https:\/\/vault\.localtest:\d+"$/);
    assert.equal(r.json().error.code, 'Unauthorized');
  });

  test('an unknown api-version is refused with BadParameter', async () => {
    const r = await server.send('GET', '/keys?api-version=2014-12-01', { headers: { authorization: `Bearer ${await server.adminToken()}` } });
    assert.equal(r.status, 400);
    assert.equal(r.json().error.code, 'BadParameter');
  });

  test('create, get, list, versions, update, rotate', async () => {
    const rsa = await client.createRsaKey('sdk-rsa', { keySize: 2048, tags: { team: 'a' } });
    assert.equal(rsa.keyType, 'RSA');
    assert.match(rsa.id!, new RegExp(`^${server.url}/keys/sdk-rsa/[0-9a-f]{32}$`));
    const got = await client.getKey('sdk-rsa');
    assert.equal(got.properties.version, rsa.properties.version);
    assert.deepEqual(got.properties.tags, { team: 'a' });
    const v2 = await client.rotateKey('sdk-rsa');
    assert.notEqual(v2.properties.version, rsa.properties.version);
    assert.equal((await client.getKey('sdk-rsa')).properties.version, v2.properties.version);
    assert.equal((await client.getKey('sdk-rsa', { version: rsa.properties.version! })).properties.version, rsa.properties.version);
    const versions: string[] = [];
    for await (const p of client.listPropertiesOfKeyVersions('sdk-rsa')) versions.push(p.version!);
    assert.deepEqual(versions.sort(), [rsa.properties.version!, v2.properties.version!].sort());
    const upd = await client.updateKeyProperties('sdk-rsa', v2.properties.version!, { enabled: false, tags: { team: 'b' } });
    assert.equal(upd.properties.enabled, false);
    assert.deepEqual(upd.properties.tags, { team: 'b' });
    await client.createEcKey('sdk-ec', { curve: 'P-384' });
    await client.createOctKey('sdk-oct', { hsm: true, keySize: 256 });
    const names: string[] = [];
    for await (const p of client.listPropertiesOfKeys()) names.push(p.name);
    for (const n of ['sdk-rsa', 'sdk-ec', 'sdk-oct']) assert.ok(names.includes(n), n);
  });

  test('listing pages with nextLink', async () => {
    for (let i = 0; i < 4; i++) await client.createOctKey(`page-${i}`, { keySize: 128 });
    const pages: number[] = [];
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 2 })) pages.push(page.length);
    assert.ok(pages.length >= 3, `pages ${pages}`);
    assert.ok(pages.every((n) => n <= 2));
  });

  test('delete, get deleted, recover, purge', async () => {
    await client.createRsaKey('sdk-del');
    const poller = await client.beginDeleteKey('sdk-del', { intervalInMs: 10 });
    const deleted = await poller.pollUntilDone();
    assert.equal(deleted.name, 'sdk-del');
    assert.ok(deleted.properties.recoveryId?.endsWith('/deletedkeys/sdk-del'));
    await assert.rejects(client.getKey('sdk-del'), (e: any) => e.statusCode === 404 && e.code === 'KeyNotFound');
    await assert.rejects(client.createRsaKey('sdk-del'), (e: any) => e.statusCode === 409);
    assert.equal((await client.getDeletedKey('sdk-del')).name, 'sdk-del');
    const rec = await (await client.beginRecoverDeletedKey('sdk-del', { intervalInMs: 10 })).pollUntilDone();
    assert.equal(rec.name, 'sdk-del');
    await client.getKey('sdk-del');
    await (await client.beginDeleteKey('sdk-del', { intervalInMs: 10 })).pollUntilDone();
    await client.purgeDeletedKey('sdk-del');
    await assert.rejects(client.getDeletedKey('sdk-del'), (e: any) => e.statusCode === 404);
  });

  test('backup and restore', async () => {
    const k = await client.createEcKey('sdk-bak', { curve: 'P-256' });
    const blob = await client.backupKey('sdk-bak');
    assert.ok(blob && blob.length > 0);
    await (await client.beginDeleteKey('sdk-bak', { intervalInMs: 10 })).pollUntilDone();
    await assert.rejects(client.restoreKeyBackup(blob!), (e: any) => e.statusCode === 409);
    await client.purgeDeletedKey('sdk-bak');
    const restored = await client.restoreKeyBackup(blob!);
    assert.equal(restored.properties.version, k.properties.version);
    assert.deepEqual(restored.key?.x, k.key?.x);
    const c = new CryptographyClient(restored, credentialFor(server, server.admin.clientId, server.admin.clientSecret), sdkOptions(server));
    const digest = createHash('sha256').update('after restore').digest();
    const sig = await c.sign('ES256', digest);
    assert.ok((await c.verify('ES256', digest, sig.result)).result);
  });

  test('CryptographyClient with RSA: encrypt/decrypt, wrap/unwrap, sign/verify', async () => {
    const key = await client.createRsaKey('sdk-crypto-rsa', { keySize: 2048 });
    const c = new CryptographyClient(key.id!, credentialFor(server, server.admin.clientId, server.admin.clientSecret), sdkOptions(server));
    const pt = Buffer.from('attack at dawn');
    for (const algorithm of ['RSA-OAEP', 'RSA-OAEP-256', 'RSA1_5'] as const) {
      const enc = await c.encrypt({ algorithm, plaintext: pt });
      assert.deepEqual(Buffer.from((await c.decrypt({ algorithm, ciphertext: enc.result })).result), pt, algorithm);
    }
    const cek = Buffer.alloc(32, 7);
    const wrapped = await c.wrapKey('RSA-OAEP-256', cek);
    assert.deepEqual(Buffer.from((await c.unwrapKey('RSA-OAEP-256', wrapped.result)).result), cek);
    for (const [alg, hash] of [['RS256', 'sha256'], ['PS256', 'sha256'], ['RS384', 'sha384'], ['PS512', 'sha512']] as const) {
      const digest = createHash(hash).update('message').digest();
      const sig = await c.sign(alg, digest);
      assert.ok((await c.verify(alg, digest, sig.result)).result, alg);
      assert.equal((await c.verify(alg, createHash(hash).update('other').digest(), sig.result)).result, false, alg);
      // The signature is over the digest of 'message': OpenSSL verifies it with the published public key.
      const pub = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(key.key!.n!).toString('base64url'), e: Buffer.from(key.key!.e!).toString('base64url') }, format: 'jwk' });
      const padding = alg.startsWith('PS') ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : {};
      assert.ok(verify(hash, Buffer.from('message'), { key: pub, ...padding }, sig.result), `${alg} with OpenSSL`);
      if (alg.startsWith('RS')) {
        // The SDK verifies RS* locally with the public key (its local PS* path uses PKCS#1 v1.5 padding, so only RS* here).
        const data = await c.signData(alg, Buffer.from('message'));
        assert.ok((await c.verifyData(alg, Buffer.from('message'), data.result)).result, `${alg} data`);
      }
    }
  });

  test('CryptographyClient with EC (incl. P-256K) and oct (GCM, CBCPAD, KW)', async () => {
    const cred = credentialFor(server, server.admin.clientId, server.admin.clientSecret);
    for (const [curve, alg, hash] of [['P-256', 'ES256', 'sha256'], ['P-521', 'ES512', 'sha512'], ['P-256K', 'ES256K', 'sha256']] as const) {
      const key = await client.createEcKey(`sdk-ec-${curve.toLowerCase()}`, { curve });
      const c = new CryptographyClient(key.id!, cred, sdkOptions(server));
      const digest = createHash(hash).update('msg').digest();
      const sig = await c.sign(alg, digest);
      assert.ok((await c.verify(alg, digest, sig.result)).result, alg);
      // The signature also verifies with the public key the vault publishes.
      const pub = createPublicKey({ key: { kty: 'EC', crv: curve === 'P-256K' ? 'secp256k1' : curve, x: Buffer.from(key.key!.x!).toString('base64url'), y: Buffer.from(key.key!.y!).toString('base64url') }, format: 'jwk' });
      assert.ok(verify(hash, Buffer.from('msg'), { key: pub, dsaEncoding: 'ieee-p1363' }, sig.result), `${alg} with OpenSSL`);
    }
    const oct = await client.createOctKey('sdk-oct-ops', { hsm: true, keySize: 256 });
    const c = new CryptographyClient(oct.id!, cred, sdkOptions(server));
    const pt = Buffer.from('sixteen byte msg and then some');
    const gcm = await c.encrypt({ algorithm: 'A256GCM', plaintext: pt, additionalAuthenticatedData: Buffer.from('aad') });
    assert.ok(gcm.iv && gcm.authenticationTag);
    const dec = await c.decrypt({ algorithm: 'A256GCM', ciphertext: gcm.result, iv: gcm.iv!, authenticationTag: gcm.authenticationTag!, additionalAuthenticatedData: Buffer.from('aad') });
    assert.deepEqual(Buffer.from(dec.result), pt);
    const cbc = await c.encrypt({ algorithm: 'A256CBCPAD', plaintext: pt });
    assert.deepEqual(Buffer.from((await c.decrypt({ algorithm: 'A256CBCPAD', ciphertext: cbc.result, iv: cbc.iv! })).result), pt);
    const kw = await c.wrapKey('A256KW', Buffer.alloc(32, 9));
    assert.deepEqual(Buffer.from((await c.unwrapKey('A256KW', kw.result)).result), Buffer.alloc(32, 9));
    assert.equal((await client.getRandomBytes(16)).length, 16);
  });

  test('releaseKey: RSA, EC and oct keys, every algorithm, with nonce', async () => {
    const releasePolicy = { encodedPolicy: policyFor(authority.url), contentType: 'application/json; charset=utf-8' };
    const rsa = await client.createRsaKey('skr-rsa', { hsm: true, keySize: 2048, exportable: true, releasePolicy });
    const ec = await client.createEcKey('skr-ec', { hsm: true, curve: 'P-384', exportable: true, releasePolicy });
    const oct = await client.createOctKey('skr-oct', { hsm: true, keySize: 256, exportable: true, releasePolicy: { ...releasePolicy, immutable: true } });
    assert.deepEqual(JSON.parse(Buffer.from(rsa.properties.releasePolicy!.encodedPolicy!).toString()).anyOf[0].authority, authority.url);
    assert.equal(oct.properties.releasePolicy?.immutable, true);
    for (const algorithm of ['CKM_RSA_AES_KEY_WRAP', 'RSA_AES_KEY_WRAP_256', 'RSA_AES_KEY_WRAP_384'] as const) {
      const nonce = `n-${algorithm}`;
      const r = await client.releaseKey('skr-rsa', authority.token(), { nonce, algorithm });
      const { header, payload } = decodeReleaseResponse(r.value);
      assert.equal(header.alg, 'RS256');
      assert.equal(payload.request.nonce, nonce);
      assert.equal(payload.request.enc, algorithm);
      const material = unwrapKeyTransfer(payload.response.key.key.key_hsm, authority.workload.privateKey, algorithm);
      const priv = createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' });
      const jwk = createPublicKey(priv).export({ format: 'jwk' });
      assert.equal(jwk.n, Buffer.from(rsa.key!.n!).toString('base64url'), algorithm);
    }
    const rEc = await client.releaseKey('skr-ec', authority.token(), { version: ec.properties.version! });
    const ecPriv = createPrivateKey({ key: Buffer.from(unwrapKeyTransfer(decodeReleaseResponse(rEc.value).payload.response.key.key.key_hsm, authority.workload.privateKey)), format: 'der', type: 'pkcs8' });
    assert.equal(createPublicKey(ecPriv).export({ format: 'jwk' }).x, Buffer.from(ec.key!.x!).toString('base64url'));
    // oct: the released bytes decrypt what the vault encrypted with the key.
    const rOct = await client.releaseKey('skr-oct', authority.token());
    const k = unwrapKeyTransfer(decodeReleaseResponse(rOct.value).payload.response.key.key.key_hsm, authority.workload.privateKey);
    assert.equal(k.length, 32);
    const c = new CryptographyClient(oct.id!, credentialFor(server, server.admin.clientId, server.admin.clientSecret), sdkOptions(server));
    const enc = await c.encrypt({ algorithm: 'A256GCM', plaintext: Buffer.from('secret') });
    const d = createDecipheriv('aes-256-gcm', Buffer.from(k), Buffer.from(enc.iv!));
    d.setAuthTag(Buffer.from(enc.authenticationTag!));
    assert.equal(Buffer.concat([d.update(Buffer.from(enc.result)), d.final()]).toString(), 'secret');
  });

  test('exportable without policy, immutable policy change', async () => {
    await assert.rejects(client.createRsaKey('skr-nopolicy', { exportable: true }), (e: any) => e.statusCode === 400 && /AKV\.SKR\.1004/.test(e.message));
    const oct = await client.getKey('skr-oct');
    const other = Buffer.from(JSON.stringify({ version: '1.0.0', anyOf: [{ authority: authority.url, allOf: [{ claim: 'x', equals: 'y' }] }] }));
    await assert.rejects(
      client.updateKeyProperties('skr-oct', oct.properties.version!, { releasePolicy: { encodedPolicy: other } }),
      (e: any) => e.statusCode === 400,
    );
  });
});
