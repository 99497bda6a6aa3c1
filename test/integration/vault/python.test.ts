/**
 * The official Python SDKs unchanged (Debian python3-azure; .ci/run installs it) against Conclave:
 * test/integration/vault/clients/python_acceptance.py drives rotation policies and a rotation, automatic
 * purge, case-insensitive names, Managed HSM role definitions and assignments with a custom release-only
 * role, and full backup with restore into fresh servers. This file runs the servers (an injected clock,
 * names under *.vault.localtest so the SDK's challenge check runs) and the control endpoints the script
 * calls to move the clock, mint attestation tokens and start fresh servers.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { tempDir, type TestServer } from '../../helpers/server.js';
import { adminJson, assignRole, type AuthorityStandIn, newClient, policyFor, startAuthority, startVault, testClock } from './harness.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'clients', 'python_acceptance.py');

function pythonMissing(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import azure.keyvault.keys, azure.keyvault.administration, azure.identity'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const why = `${PYTHON} with python3-azure (azure.keyvault.keys, azure.keyvault.administration, azure.identity) is not installed`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${why}`);
  return why;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const skip = pythonMissing();

describe('official Python SDKs (azure.keyvault.keys, azure.keyvault.administration, azure.identity)', { skip }, () => {
  const clock = testClock(Date.UTC(2032, 0, 1));
  const backupDir = tempDir('conclave-backups-');
  const servers: TestServer[] = [];
  let vault: TestServer;
  let vaultUrl: string;
  let authority: AuthorityStandIn;
  let control: Server;
  let controlUrl: string;

  async function startNamed(label: string, dataDir?: string): Promise<{ server: TestServer; url: string }> {
    const port = await freePort();
    const url = `https://${label}.vault.localtest:${port}`;
    const server = await startVault({ now: clock.now, ...(dataDir ? { dataDir } : {}), flags: { port, publicUrl: url, recoverableDays: 7, maintenanceInterval: 0, backupDir } });
    servers.push(server);
    return { server, url };
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
    control = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://control');
      const reply = (v: unknown) => res.end(JSON.stringify(v));
      (async () => {
        switch (u.pathname) {
          case '/advance':
            clock.advance(Number(u.searchParams.get('seconds')));
            return reply((await adminJson(vault, 'POST', '/admin/vault/maintenance')).json);
          case '/workload':
            return reply(await newClient(vault, 'python workload'));
          case '/policy':
            return reply(JSON.parse(Buffer.from(policyFor(authority.url)).toString()));
          case '/token':
            return reply({ token: authority.token() });
          case '/fresh':
            return reply({ url: await fresh(u.searchParams.get('master') === 'same') });
          default:
            res.statusCode = 404;
            return reply({});
        }
      })().catch((e) => {
        res.statusCode = 500;
        reply({ error: String(e) });
      });
    });
    await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
    controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => (control ? control.close(() => resolve()) : resolve()));
    await authority?.close();
    for (const s of servers) await s.stop().catch(() => undefined);
  });

  test('rotation, purge, case-insensitive names, roles with a custom release-only role, full backup and restore', async () => {
    const env: Record<string, string> = {
      PATH: '/usr/bin:/bin',
      HOME: tempDir('conclave-pyhome-'),
      AZURE_TENANT_ID: 'adfs',
      AZURE_CLIENT_ID: vault.admin.clientId,
      AZURE_CLIENT_SECRET: vault.admin.clientSecret,
      AZURE_AUTHORITY_HOST: vaultUrl,
      REQUESTS_CA_BUNDLE: vault.caPath,
      CONCLAVE_TEST_CONTROL: controlUrl,
      CONCLAVE_TEST_VAULT: vaultUrl,
      CONCLAVE_TEST_BACKUP_CONTAINER: pathToFileURL(join(backupDir, 'container')).href,
    };
    let out: { stdout: string; stderr: string };
    try {
      out = await promisify(execFile)(PYTHON, [SCRIPT], { env, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string };
      assert.fail(`python failed:\n${err.stderr?.slice(-6000)}\n${err.stdout?.slice(-2000)}`);
    }
    const facts = JSON.parse(out.stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(facts.rotation, { versions: 2, lifetime_days: 90 });
    assert.equal(facts.case_insensitive, 'PyMixedCase');
    assert.equal(facts.purged, true);
    assert.equal(facts.release_only_role, true);
    assert.ok(facts.restored_keys.includes('py-skr') && facts.restored_keys.includes('PyMixedCase'));
    assert.equal(facts.selective_restore, true);
    assert.match(facts.foreign_restore_error, /another master key/);
  });
});
