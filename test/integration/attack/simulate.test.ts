/**
 * #14 item 1: simulated trust never mixes with real trust. A token minted from simulated evidence must
 * not release a key on a server without --simulate: not after a restart without the flag on the same
 * store, not through a replica in the other mode, not through an authority that vouches for simulated
 * evidence.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { type TestServer, startTestServer, tempDir } from '../../helpers/server.js';
import { adminJson, assignRole, type AuthorityStandIn, policyFor, startAuthority, startVault } from '../vault/harness.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const workload = generateRsaKeyPair(2048);
const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ ...workload.publicKey.export({ format: 'jwk' }), kid: 'w', key_ops: ['encrypt'] }] }));
const MRENCLAVE = 'c3'.repeat(32);

async function release(server: TestServer, name: string, target: string) {
  const r = await server.send('POST', `/keys/${name}/release?api-version=7.4`, { headers: { authorization: `Bearer ${await server.adminToken()}` }, body: { target } });
  return { status: r.status, json: r.text ? r.json() : undefined };
}

/** A simulate-mode server with an exportable key bound to an SGX MRENCLAVE, and a simulated token that satisfies it. */
async function simulatedSetup(port: number, dataDir: string): Promise<{ server: TestServer; token: string }> {
  const server = await startTestServer({ simulate: true, port }, { dataDir });
  await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
  const policy = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-sgx-mrenclave', equals: MRENCLAVE }] }] };
  const created = await server.send('POST', '/keys/k/create?api-version=7.4', {
    headers: { authorization: `Bearer ${await server.adminToken()}` },
    body: { kty: 'RSA-HSM', key_size: 2048, attributes: { exportable: true }, release_policy: { data: Buffer.from(JSON.stringify(policy)).toString('base64url') } },
  });
  assert.equal(created.status, 200, created.text.slice(0, 300));
  const ev = loadOrCreateSimulatedTee(dataDir).evidence({ tee: 'sgx', runtimeData: runtime, mrenclave: MRENCLAVE });
  const r = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
  assert.equal(r.status, 200, r.text);
  const token = r.json().token as string;
  // Under --simulate the simulated token releases: the baseline the attacks below start from.
  assert.equal((await release(server, 'k', token)).status, 200);
  return { server, token };
}

function kidOf(jwt: string): string {
  return JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid;
}

describe('simulated trust never mixes with real trust', () => {
  test('a store used with --simulate refuses a server without it (and the reverse), naming the mode', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const { server } = await simulatedSetup(port, dataDir);
    await server.stop();
    await assert.rejects(startTestServer({ port }, { dataDir }), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'store.mode_mismatch', e.message);
      assert.match(e.message ?? '', /simulate/);
      return true;
    });
  });

  test('a production store refuses --simulate', async () => {
    const dataDir = tempDir();
    const prod = await startTestServer({}, { dataDir });
    await prod.stop();
    await assert.rejects(startTestServer({ simulate: true }, { dataDir }), (e: { code?: string }) => e.code === 'store.mode_mismatch');
  });

  test('simulated tokens are signed by a simulate-only key that a server without --simulate neither publishes nor trusts', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const { server, token } = await simulatedSetup(port, dataDir);
    const certs = (await server.send('GET', '/certs')).json().keys as { kid: string }[];
    assert.ok(certs.some((k) => k.kid === kidOf(token)), 'simulate mode publishes the simulated key');
    // A store whose mode was never recorded (made before the mode existed) or whose mode row was
    // removed: the server re-records its own mode, and the other two layers still hold.
    await server.ctx.db.run("DELETE FROM store_meta WHERE name = 'mode'");
    await server.stop();
    const real = await startTestServer({ port }, { dataDir });
    try {
      const published = (await real.send('GET', '/certs')).json().keys as { kid: string }[];
      assert.ok(published.length > 0);
      assert.ok(!published.some((k) => k.kid === kidOf(token)), 'the simulated signing key is not published without --simulate');
      const r = await release(real, 'k', token);
      assert.equal(r.status, 401, JSON.stringify(r.json).slice(0, 300));
      assert.equal(r.json.error.innererror.code, 'release.token_invalid');
      // Refused by the key check, before the claim check: the simulated key is simply not known.
      assert.match(r.json.error.message, /publishes no signing key/);
    } finally {
      await real.stop();
    }
  });
});

describe('a vault without --simulate refuses tokens that say they come from simulated evidence', () => {
  let vault: TestServer;
  let authority: AuthorityStandIn;
  before(async () => {
    vault = await startVault();
    authority = await startAuthority(vault);
    assert.equal((await adminJson(vault, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(vault, vault.admin.clientId, 'Key Vault Crypto Service Release User');
    const created = await vault.send('POST', '/keys/skr/create?api-version=7.4', {
      headers: { authorization: `Bearer ${await vault.adminToken()}` },
      body: { kty: 'RSA-HSM', key_size: 2048, attributes: { exportable: true }, release_policy: { data: Buffer.from(policyFor(authority.url)).toString('base64url') } },
    });
    assert.equal(created.status, 200, created.text.slice(0, 300));
  });
  after(async () => {
    await authority?.close();
    await vault?.stop();
  });

  test('x-conclave-simulated from a trusted authority is refused with release.token_invalid (reason simulated)', async () => {
    assert.equal((await release(vault, 'skr', authority.token())).status, 200, 'the same token without the claim releases');
    for (const value of [true, 'true', false]) {
      const r = await release(vault, 'skr', authority.token({ 'x-conclave-simulated': value }));
      assert.equal(r.status, 401, JSON.stringify(r.json).slice(0, 300));
      assert.equal(r.json.error.innererror.code, 'release.token_invalid');
      assert.match(r.json.error.message, /simulat/);
    }
  });
});
