/**
 * The vault with `--hsm pkcs11:…` on a SoftHSM2 token: keys are created in the token (the store keeps
 * only the handle), readiness covers the token, Secure Key Release output unwraps with node:crypto
 * exactly as the software provider's does, and `conclave hsm info` describes the token.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { decodeReleaseResponse, unwrapKeyTransfer } from '../../../src/vault/release/index.js';
import type { TestServer } from '../../helpers/server.js';
import { startTestServer } from '../../helpers/server.js';
import { sharedSoftHsm, skipWithoutSoftHsm } from '../../helpers/softhsm.js';
import { adminJson, adminKeyClient, assignRole, type AuthorityStandIn, policyFor, startAuthority } from '../vault/harness.js';
import { waitSequenced } from '../../helpers/log.js';
import { cliFromSourceArgs } from '../../helpers/root.js';
import { checkTreeHead, parseTreeHeadWire } from '../../../src/log/tree-head.js';

const skip = skipWithoutSoftHsm();

describe('vault keys in a PKCS#11 token', { skip }, () => {
  let hsm: TestServer;
  let soft: TestServer;
  let hsmAuthority: AuthorityStandIn;
  let softAuthority: AuthorityStandIn;

  async function prepare(server: TestServer): Promise<AuthorityStandIn> {
    const authority = await startAuthority(server);
    assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
    return authority;
  }

  before(async () => {
    const token = sharedSoftHsm();
    // token-only release (the default): RSA_AES_KEY_WRAP_256/384 must fail closed on SoftHSM.
    hsm = await startTestServer({ services: 'vault', hsm: token.spec });
    soft = await startTestServer({ services: 'vault', hsm: undefined });
    hsmAuthority = await prepare(hsm);
    softAuthority = await prepare(soft);
  });
  after(async () => {
    await hsmAuthority?.close();
    await softAuthority?.close();
    await hsm?.stop();
    await soft?.stop();
  });

  test('new keys are stored with provider pkcs11 and only a handle; readiness includes the token', async () => {
    const client = adminKeyClient(hsm);
    await client.createEcKey('hsm-ec', { hsm: true, curve: 'P-256' });
    const row = await hsm.ctx.db.get<{ provider: string; protected_key: Uint8Array }>('SELECT provider, protected_key FROM vault_key_versions WHERE name = ?', ['hsm-ec']);
    assert.equal(row?.provider, 'pkcs11');
    assert.equal(Buffer.from(row!.protected_key).subarray(0, 4).toString('latin1'), 'p11\x01');
    assert.equal(row!.protected_key.byteLength, 20);
    assert.ok(hsm.ctx.readiness.has('hsm'));
    assert.equal((await hsm.send('GET', '/readyz')).status, 200);
    assert.equal(soft.ctx.readiness.has('hsm'), false);
  });

  test('released key material unwraps with node:crypto exactly as from the software provider', async () => {
    for (const [server, authority] of [[hsm, hsmAuthority], [soft, softAuthority]] as const) {
      const client = adminKeyClient(server);
      const releasePolicy = { encodedPolicy: policyFor(authority.url), contentType: 'application/json; charset=utf-8' };
      const rsa = await client.createRsaKey('rel-rsa', { hsm: true, keySize: 2048, exportable: true, releasePolicy });
      const r = await client.releaseKey('rel-rsa', authority.token(), { algorithm: 'CKM_RSA_AES_KEY_WRAP' });
      const keyHsm = decodeReleaseResponse(r.value).payload.response.key.key.key_hsm as string;
      const blob = JSON.parse(Buffer.from(keyHsm, 'base64url').toString('utf8'));
      assert.deepEqual(Object.keys(blob), ['schema_version', 'header', 'ciphertext', 'generator']);
      assert.deepEqual(blob.header, { kid: 'workload-key', alg: 'dir', enc: 'CKM_RSA_AES_KEY_WRAP' });
      // 256 bytes of OAEP (RSA-2048 workload key) and then RFC 5649 output.
      assert.equal((Buffer.from(blob.ciphertext, 'base64url').length - 256) % 8, 0);
      const priv = createPrivateKey({ key: Buffer.from(unwrapKeyTransfer(keyHsm, authority.workload.privateKey)), format: 'der', type: 'pkcs8' });
      assert.equal((createPublicKey(priv).export({ format: 'jwk' }) as { n: string }).n, Buffer.from(rsa.key!.n!).toString('base64url'));
    }
  });

  test('RSA_AES_KEY_WRAP_256 fails closed on a token without OAEP-SHA-256 (release-sha2=token)', async () => {
    const client = adminKeyClient(hsm);
    const releasePolicy = { encodedPolicy: policyFor(hsmAuthority.url), contentType: 'application/json; charset=utf-8' };
    await client.createRsaKey('rel-sha2', { hsm: true, keySize: 2048, exportable: true, releasePolicy });
    await assert.rejects(client.releaseKey('rel-sha2', hsmAuthority.token(), { algorithm: 'RSA_AES_KEY_WRAP_256' }), (e: { statusCode?: number }) => e.statusCode === 400);
    await waitSequenced(hsm.ctx.db);
    const audit = await adminJson(hsm, 'GET', '/admin/vault/audit');
    const last = audit.json.value.filter((r: { record: { operation: string } }) => r.record.operation === 'release').at(-1).record;
    assert.equal(last.code, 'hsm.mechanism_unsupported');
  });

  test('the log key is in the token too (RS256): tree heads verify with it, and the log verifies', async () => {
    const key = await hsm.send('GET', '/log/key');
    assert.equal(key.json().alg, 'RS256');
    const pinned = await hsm.ctx.db.get<{ cert_der: Uint8Array }>("SELECT cert_der FROM service_keys WHERE name = 'pkcs11:log-signing'");
    assert.ok(pinned, 'the token key is pinned by its certificate in the store');
    await waitSequenced(hsm.ctx.db);
    checkTreeHead(parseTreeHeadWire((await hsm.send('GET', '/log/sth')).json()), createPublicKey(key.json().publicKey));
    const verified = await adminJson(hsm, 'GET', '/admin/vault/audit/verify');
    assert.equal(verified.json.ok, true, JSON.stringify(verified.json));
  });

  test('a non-exportable key is refused before it reaches the token', async () => {
    const client = adminKeyClient(hsm);
    await client.createRsaKey('rel-fixed', { hsm: true, keySize: 2048 });
    await assert.rejects(client.releaseKey('rel-fixed', hsmAuthority.token()), (e: { statusCode?: number }) => e.statusCode === 403);
  });

  test('conclave hsm info describes the token and the wrap path', () => {
    const token = sharedSoftHsm();
    const r = spawnSync(
      process.execPath,
      [...cliFromSourceArgs(), 'hsm', 'info', '--hsm', token.spec, '--output', 'json'],
      { encoding: 'utf8', env: process.env, timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.token.label, token.label);
    assert.equal(info.rsaAesKeyWrapListed, false);
    assert.match(info.releasePath, /two-step/);
    assert.ok(info.mechanisms.includes('CKM_AES_KEY_WRAP_PAD'));
    assert.equal(info.oaepHashes.sha1, true);
    assert.ok(!r.stdout.includes(token.pin) && !r.stderr.includes(token.pin));
  });
});
