/**
 * Stock Azure credentials against Conclave: @azure/identity's ClientSecretCredential and
 * DefaultAzureCredential in a child process configured by environment variables only, then a key
 * operation with the token (docs/vault.md "Stock Azure credentials"); and the authority endpoints MSAL reads.
 * The vault is named `stock.vault.localtest:<port>`, so the SDK's challenge-resource check stays on (the
 * child resolves *.localtest to 127.0.0.1: clients/localtest-resolver.mjs).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { TestServer } from '../../helpers/server.js';
import { assignRole, newClient } from './harness.js';
import { startNamedVault } from './python-harness.js';
import { ROOT } from '../../helpers/root.js';

const run = promisify(execFile);
const CLIENT = join(ROOT, 'test', 'integration', 'vault', 'clients', 'identity-client.mjs');
const RESOLVER = join(ROOT, 'test', 'integration', 'vault', 'clients', 'localtest-resolver.mjs');

let server: TestServer;
let vaultUrl: string;
let workload: { clientId: string; clientSecret: string };

async function workloadRun(kind: string, tenant: string, keyName: string, url = vaultUrl): Promise<{ ok: boolean; error?: string; same?: boolean }> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    AZURE_TENANT_ID: tenant,
    AZURE_CLIENT_ID: workload.clientId,
    AZURE_CLIENT_SECRET: workload.clientSecret,
    AZURE_AUTHORITY_HOST: vaultUrl,
    NODE_EXTRA_CA_CERTS: server.caPath,
  };
  const { stdout } = await run(process.execPath, ['--import', pathToFileURL(RESOLVER).href, CLIENT, url, kind, keyName], { env, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

describe('stock Azure credentials and the authority endpoints', () => {
  before(async () => {
    ({ server, url: vaultUrl } = await startNamedVault('stock', { flags: { maintenanceInterval: 0 } }));
    workload = await newClient(server, 'stock credential workload');
    await assignRole(server, workload.clientId, 'Managed HSM Crypto User');
  });
  after(() => server?.stop());

  describe('stock Azure credentials (@azure/identity), environment variables only', () => {
    test('DefaultAzureCredential with AZURE_TENANT_ID=adfs: token from Conclave, key created', async () => {
      const r = await workloadRun('default', 'adfs', 'stock-default');
      assert.equal(r.ok, true, r.error);
      assert.equal(r.same, true);
    });

    test('ClientSecretCredential with AZURE_TENANT_ID=adfs', async () => {
      const r = await workloadRun('secret', 'adfs', 'stock-secret');
      assert.equal(r.ok, true, r.error);
    });

    test('a GUID tenant needs instance discovery skipped (disableInstanceDiscovery), and the challenge tenant', async () => {
      const r = await workloadRun('secret-no-discovery', '00000000-0000-0000-0000-000000000000', 'stock-guid');
      assert.equal(r.ok, true, r.error);
    });

    test('the challenge check is on: the same server under 127.0.0.1 (not under the resource) is refused by the SDK', async () => {
      const r = await workloadRun('secret', 'adfs', 'stock-unchecked', `https://127.0.0.1:${new URL(vaultUrl).port}`);
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.match(r.error ?? '', /challenge resource|does not match/i);
    });

    test('a wrong secret fails in the credential, nothing is created', async () => {
      workload = { ...workload, clientSecret: 'wrong' };
      const r = await workloadRun('default', 'adfs', 'stock-wrong');
      assert.equal(r.ok, false);
      assert.match(r.error ?? '', /invalid_client|invalid client credentials/);
    });
  });

  describe('authority endpoints', () => {
    test('tenant discovery, token endpoint, JWKS', async () => {
      const conf = (await server.send('GET', '/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration')).json();
      assert.equal(conf.token_endpoint, `${vaultUrl}/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token`);
      const adfs = (await server.send('GET', '/adfs/.well-known/openid-configuration')).json();
      assert.equal(adfs.token_endpoint, `${vaultUrl}/adfs/oauth2/v2.0/token`);
      const instance = (await server.send('GET', '/common/discovery/instance?api-version=1.1&authorization_endpoint=x')).json();
      assert.equal(instance.tenant_discovery_endpoint, `${vaultUrl}/common/v2.0/.well-known/openid-configuration`);
      assert.deepEqual(instance.metadata[0].aliases, [new URL(vaultUrl).host]);
      const jwks = (await server.send('GET', '/adfs/discovery/v2.0/keys')).json();
      assert.equal(jwks.keys[0].crv, 'P-256');
      const bad = await server.send('POST', '/adfs/oauth2/v2.0/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x', scope: 'https://vault.localtest/.default' }).toString(),
      });
      assert.equal(bad.status, 401);
      assert.equal(bad.json().error, 'invalid_client');
      assert.equal((await server.send('GET', '/..%2F/v2.0/.well-known/openid-configuration')).status, 404);
    });
  });
});
