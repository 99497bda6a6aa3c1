/** The SDK checks that the release response was signed for the vault host it asked. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { attest, releaseKey } from '../../../src/sdk/index.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

let server: TestServer;

describe('the SDK checks the vault host of the release', () => {
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server.stop());

  test('the release certificate names the vault host; a release read through another host name is refused', async () => {
    const ca = readFileSync(server.caPath, 'utf8');
    const auth = { authorization: `Bearer ${await server.adminToken()}` };
    await server.sendHttps('PUT', '/admin/vault/roleAssignments', { headers: auth, body: { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' } });
    const policy = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-sgx-is-debuggable', equals: 'false' }] }] };
    const created = await server.sendHttps('POST', '/keys/host-bound/create?api-version=7.4', {
      headers: auth,
      body: { kty: 'oct-HSM', key_size: 256, attributes: { exportable: true }, release_policy: { data: Buffer.from(JSON.stringify(policy)).toString('base64url') } },
    });
    assert.equal(created.status, 200, created.text);
    const tee = generateRsaKeyPair(2048);
    const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ ...tee.publicKey.export({ format: 'jwk' }), kid: 't', key_ops: ['encrypt'] }] }));
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: runtime });
    const token = await attest({ attestationUrl: server.url, evidence: { path: ev.path, body: ev.body }, ca });
    const common = { keyName: 'host-bound', token, credential: server.admin, privateKey: tee.privateKey, ca, trustStore: ca };
    const ok = await releaseKey({ ...common, vaultUrl: server.url });
    assert.equal(ok.jwk.kty, 'oct');
    const other = server.url.replace('127.0.0.1', 'localhost');
    await assert.rejects(releaseKey({ ...common, vaultUrl: other, credential: { ...server.admin, tokenEndpoint: `${other}/oauth2/token` } }), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'sdk.release_jws_invalid');
      assert.match(e.message ?? '', /not valid for the vault host localhost/);
      return true;
    });
  });
});
