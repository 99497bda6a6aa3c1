/**
 * Every api-version the official Python SDKs send (azure-keyvault-keys 4.8: 2016-10-01 to 7.4-preview.1;
 * azure-keyvault-administration 4.3: 7.2 to 7.4-preview.1), each through the unchanged clients with the
 * calls that version has (test/integration/vault/clients/python_api_versions.py).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { tempDir, type TestServer } from '../../helpers/server.js';
import { adminJson, assignRole, type AuthorityStandIn, newClient, policyFor, startAuthority } from './harness.js';
import { pythonMissing, runPython, startControl, startNamedVault } from './python-harness.js';

const skip = pythonMissing();

describe('official Python SDKs in each of their api-versions', { skip }, () => {
  const backupDir = tempDir('conclave-backups-');
  let vault: TestServer;
  let vaultUrl: string;
  let authority: AuthorityStandIn;
  let control: { url: string; close(): Promise<void> };

  before(async () => {
    ({ server: vault, url: vaultUrl } = await startNamedVault('versions', { flags: { maintenanceInterval: 0, backupDir } }));
    authority = await startAuthority(vault);
    assert.equal((await adminJson(vault, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(vault, vault.admin.clientId, 'Managed HSM Administrator');
    // Release needs a role that names it (docs/vault.md): the administrator gets one here.
    await assignRole(vault, vault.admin.clientId, 'Managed HSM Crypto Service Release User');
    control = await startControl({
      '/policy': async () => JSON.parse(Buffer.from(policyFor(authority.url)).toString()),
      '/token': async () => ({ token: authority.token() }),
      '/workload': () => newClient(vault, 'python workload'),
    });
  });
  after(async () => {
    await control?.close();
    await authority?.close();
    await vault?.stop();
  });

  test('keys 2016-10-01 … 7.4-preview.1 and administration 7.2 … 7.4-preview.1', async () => {
    const facts = await runPython('python_api_versions.py', {
      AZURE_TENANT_ID: 'adfs',
      AZURE_CLIENT_ID: vault.admin.clientId,
      AZURE_CLIENT_SECRET: vault.admin.clientSecret,
      AZURE_AUTHORITY_HOST: vaultUrl,
      REQUESTS_CA_BUNDLE: vault.caPath,
      CONCLAVE_TEST_CONTROL: control.url,
      CONCLAVE_TEST_VAULT: vaultUrl,
      CONCLAVE_TEST_BACKUP_CONTAINER: pathToFileURL(join(backupDir, 'container')).href,
    });
    const base = ['create/get/list/update', 'sign/verify/encrypt/decrypt/wrap/unwrap', 'backup/delete/recover/purge/restore'];
    assert.deepEqual(facts.keys, {
      '2016-10-01': base,
      '7.0': base,
      '7.1': base,
      '7.2': [...base, 'oct'],
      '7.3': [...base, 'oct', 'rng/rotation/release'],
      '7.4-preview.1': [...base, 'oct', 'rng/rotation/release'],
    });
    const admin = ['access control', 'backup/selective restore'];
    assert.deepEqual(facts.administration, { '7.2': admin, '7.3': admin, '7.4-preview.1': [...admin, 'settings'] });
    assert.equal(facts.guid_tenant, true);
  });
});
