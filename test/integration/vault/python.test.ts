/**
 * The official Python SDKs unchanged (Debian python3-azure; .ci/run installs it) against Conclave:
 * test/integration/vault/clients/python_acceptance.py drives rotation policies and a rotation, automatic
 * purge, case-insensitive names, Managed HSM role definitions and assignments with a custom release-only
 * role, and full backup with restore into fresh servers. This file runs the servers (an injected clock,
 * names under *.vault.localtest so the SDK's challenge check runs) and the control endpoints the script
 * calls to move the clock, mint attestation tokens and start fresh servers.
 */
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { tempDir, type TestServer } from '../../helpers/server.js';
import { adminJson, assignRole, type AuthorityStandIn, newClient, policyFor, startAuthority, testClock } from './harness.js';
import { pythonMissing, runPython, startControl, startNamedVault } from './python-harness.js';

const skip = pythonMissing();

describe('official Python SDKs (azure.keyvault.keys, azure.keyvault.administration, azure.identity)', { skip }, () => {
  const clock = testClock(Date.UTC(2032, 0, 1));
  const backupDir = tempDir('conclave-backups-');
  const servers: TestServer[] = [];
  let vault: TestServer;
  let vaultUrl: string;
  let authority: AuthorityStandIn;
  let control: { url: string; close(): Promise<void> };

  async function startNamed(label: string, dataDir?: string): Promise<{ server: TestServer; url: string }> {
    const started = await startNamedVault(label, { now: clock.now, ...(dataDir ? { dataDir } : {}), flags: { recoverableDays: 7, maintenanceInterval: 0, backupDir } });
    servers.push(started.server);
    return started;
  }

  /** A fresh server whose data dir has the first one's admin credential and TLS identity, and its master key or not. */
  async function fresh(sameMasterKey: boolean): Promise<string> {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    copyFileSync(join(vault.dataDir, 'admin.json'), join(dir, 'admin.json'));
    cpSync(join(vault.dataDir, 'tls'), join(dir, 'tls'), { recursive: true });
    if (sameMasterKey) copyFileSync(join(vault.dataDir, 'master.key'), join(dir, 'master.key'));
    return (await startNamed(`fresh${servers.length}`, dir)).url;
  }

  before(async () => {
    ({ server: vault, url: vaultUrl } = await startNamed('myvault'));
    authority = await startAuthority(vault, clock.now);
    assert.equal((await adminJson(vault, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(vault, vault.admin.clientId, 'Managed HSM Administrator');
    control = await startControl({
      '/advance': async (q) => {
        clock.advance(Number(q.get('seconds')));
        return (await adminJson(vault, 'POST', '/admin/vault/maintenance')).json;
      },
      '/workload': () => newClient(vault, 'python workload'),
      '/policy': async () => JSON.parse(Buffer.from(policyFor(authority.url)).toString()),
      '/token': async () => ({ token: authority.token() }),
      '/fresh': async (q) => ({ url: await fresh(q.get('master') === 'same') }),
    });
  });
  after(async () => {
    await control?.close();
    await authority?.close();
    for (const s of servers) await s.stop().catch(() => undefined);
  });

  test('rotation, purge, case-insensitive names, roles with a custom release-only role, full backup and restore', async () => {
    const facts = await runPython('python_acceptance.py', {
      AZURE_TENANT_ID: 'adfs',
      AZURE_CLIENT_ID: vault.admin.clientId,
      AZURE_CLIENT_SECRET: vault.admin.clientSecret,
      AZURE_AUTHORITY_HOST: vaultUrl,
      REQUESTS_CA_BUNDLE: vault.caPath,
      CONCLAVE_TEST_CONTROL: control.url,
      CONCLAVE_TEST_VAULT: vaultUrl,
      CONCLAVE_TEST_BACKUP_CONTAINER: pathToFileURL(join(backupDir, 'container')).href,
    });
    assert.deepEqual(facts.rotation, { versions: 2, lifetime_days: 90 });
    assert.equal(facts.case_insensitive, 'PyMixedCase');
    assert.equal(facts.purged, true);
    assert.equal(facts.release_only_role, true);
    assert.ok(facts.restored_keys.includes('py-skr') && facts.restored_keys.includes('PyMixedCase'));
    assert.equal(facts.selective_restore, true);
    assert.match(facts.foreign_restore_error, /another master key/);
  });
});
