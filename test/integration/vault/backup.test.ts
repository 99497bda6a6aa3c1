/**
 * Full backup and restore over raw HTTPS (the Python KeyVaultBackupClient drives the happy path in
 * python.test.ts): the job protocol, the directory confinement, and the error paths.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { tempDir, type TestServer } from '../../helpers/server.js';
import { adminJson, akvCall, startVault } from './harness.js';

const API = '7.4-preview.1';
let server: TestServer;
const backupDir = tempDir('conclave-backup-test-');
const container = pathToFileURL(join(backupDir, 'c1')).href;
/** A fresh data dir holding only the master key of `dataDir`. */
function copyOfMasterKey(dataDir: string): string {
  const dir = tempDir();
  copyFileSync(join(dataDir, 'master.key'), join(dir, 'master.key'));
  return dir;
}
const call = (method: string, path: string, body?: unknown, v = API) => akvCall(server, method, path, body, v);

describe('full backup and restore', () => {
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0, backupDir } });
    await call('POST', '/keys/b1/create', { kty: 'EC', crv: 'P-256' });
  });
  after(() => server?.stop());
  let folder: string;

  test('POST /backup: 202, Azure-AsyncOperation, a whole folder with one 0600 file; the status URL answers', async () => {
    const r = await server.send('POST', `/backup?api-version=${API}`, { headers: { authorization: `Bearer ${await server.adminToken()}` }, body: { storageResourceUri: container, token: '' } });
    assert.equal(r.status, 202, r.text);
    const job = r.json();
    assert.equal(job.status, 'Succeeded');
    assert.match(job.jobId, /^[0-9a-f]{32}$/);
    assert.equal(r.headers['azure-asyncoperation'], `${server.url}/backup/${job.jobId}/pending`);
    folder = job.azureStorageBlobContainerUri;
    const dir = fileURLToPath(folder);
    assert.deepEqual(readdirSync(dir), ['conclave-vault-backup.json']);
    assert.equal(statSync(join(dir, 'conclave-vault-backup.json')).mode & 0o777, 0o600);
    assert.equal(readdirSync(fileURLToPath(container)).filter((n) => n.startsWith('.')).length, 0, 'no temporary folder left');
    const status = await call('GET', `/backup/${job.jobId}/pending`);
    assert.equal(status.status, 200);
    assert.equal(status.json.azureStorageBlobContainerUri, folder);
    assert.equal((await call('GET', `/restore/${job.jobId}/pending`)).status, 404, 'a backup job is not a restore job');
  });

  test('restore into a vault that holds the keys: 409 naming them, nothing written', async () => {
    const name = folder.slice(container.length + 1);
    const r = await call('PUT', '/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: name });
    assert.equal(r.status, 409, JSON.stringify(r.json));
    assert.match(r.json.error.message, /b1/);
    const sel = await call('PUT', '/keys/nope/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folder: name });
    assert.equal(sel.status, 404);
  });

  test('the backup directory confines every path', async () => {
    const bad = async (path: string, body: unknown, field: RegExp, method = 'POST') => {
      const r = await call(method, path, body);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.match(r.json.error.message, field);
    };
    await bad('/backup', { storageResourceUri: 'https://account.blob.core.windows.net/backups', token: 'sv=…' }, /not offered yet/);
    await bad('/backup', { storageResourceUri: 'file:///etc', token: '' }, /outside the backup directory/);
    await bad('/backup', { storageResourceUri: `${container}/../../x`, token: '' }, /outside the backup directory/);
    await bad('/backup', { storageResourceUri: 'not a url' }, /not a URL/);
    await bad('/backup', {}, /storageResourceUri/);
    await bad('/restore', { sasTokenParameters: { storageResourceUri: container }, folderToRestore: '../../etc' }, /not a backup folder name/, 'PUT');
    await bad('/restore', { sasTokenParameters: { storageResourceUri: 'file:///' }, folderToRestore: 'etc' }, /outside the backup directory/, 'PUT');
    await bad('/restore', { sasTokenParameters: { storageResourceUri: container } }, /folderToRestore/, 'PUT');
    assert.equal(existsSync('/etc/conclave-vault-backup.json'), false);
    const missing = await call('PUT', '/restore', { sasTokenParameters: { storageResourceUri: container }, folderToRestore: 'mhsm-none' });
    assert.equal(missing.status, 404);
    assert.equal((await call('GET', '/backup/0123456789abcdef0123456789abcdef/pending')).status, 404);
    assert.equal((await call('POST', '/backup', { storageResourceUri: container }, '7.1')).status, 400, 'not in api-version 7.1');
  });

  test('a symlink in the backup directory that leads out: refused before anything is created outside', async () => {
    const outside = tempDir('conclave-outside-');
    symlinkSync(outside, join(backupDir, 'escape'));
    const r = await call('POST', '/backup', { storageResourceUri: pathToFileURL(join(backupDir, 'escape', 'made', 'deeper')).href, token: '' });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, /outside the backup directory/);
    assert.deepEqual(readdirSync(outside), [], 'no directory was made outside');
    symlinkSync(join(outside, 'not-yet'), join(backupDir, 'dangling'));
    const dangling = await call('POST', '/backup', { storageResourceUri: pathToFileURL(join(backupDir, 'dangling', 'x')).href, token: '' });
    assert.equal(dangling.status, 400, JSON.stringify(dangling.json));
    assert.deepEqual(readdirSync(outside), [], 'nothing made through a dangling link either');
  });

  test('odd locations are refused with 400, never an internal error: NUL, an encoded slash, an over-long or over-deep path, a backup file that is a directory', async () => {
    const base = pathToFileURL(backupDir).href;
    const refused = async (method: string, path: string, body: unknown, v = API) => {
      const r = await call(method, path, body, v);
      assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body).slice(0, 120)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.innererror.code, 'request.invalid');
    };
    for (const uri of [`${base}/a%00b`, `${base}/a%2Fb`, `${base}/${'a'.repeat(300)}`, `${base}/${'a/'.repeat(3000)}`]) {
      await refused('POST', '/backup', { storageResourceUri: uri, token: '' });
      await refused('POST', '/prebackup', { storageResourceUri: uri, token: '' }, '7.6');
      await refused('PUT', '/restore', { sasTokenParameters: { storageResourceUri: uri, token: '' }, folderToRestore: 'x' });
    }
    // A backup made into a container named like the backup file leaves a directory where a restore
    // looks for the file: the restore of that folder is refused, not a 500.
    const trap = await call('POST', '/backup', { storageResourceUri: `${base}/trap/conclave-vault-backup.json`, token: '' });
    assert.equal(trap.status, 202, JSON.stringify(trap.json));
    await refused('PUT', '/restore', { sasTokenParameters: { storageResourceUri: base, token: '' }, folderToRestore: 'trap' });
    await refused('PUT', '/keys/b1/restore', { sasTokenParameters: { storageResourceUri: base, token: '' }, folder: 'trap' });
  });

  test("a refused restore's audit record does not hold the caller's folder whole", async () => {
    // Attack: the folder to restore was written to the request's audit record (detail.folder, append-only) before
    // the backup location refused it: one request with a 300 kB folder name wrote 300 kB to the log for good.
    const big = 'f'.repeat(300_000);
    const sas = { storageResourceUri: container, token: '' };
    for (const [path, body, v] of [
      ['/restore', { sasTokenParameters: sas, folderToRestore: big }, API],
      ['/prerestore', { sasTokenParameters: sas, folderToRestore: big }, '7.6'],
      ['/keys/b1/restore', { sasTokenParameters: sas, folder: big }, API],
    ] as const) {
      const r = await call('PUT', path, body, v);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.json).slice(0, 200)}`);
    }
    const audit = await adminJson(server, 'GET', '/admin/vault/audit?from=1&limit=100000');
    const failed = audit.json.value.map((x: { record: any }) => x.record).filter((x: any) => /restore/i.test(x.operation) && x.result === 'failed');
    assert.ok(failed.length >= 3, `${failed.length} failed restore records`);
    for (const rec of failed) assert.ok(JSON.stringify(rec).length < 4096, `${rec.operation}: an audit record of ${JSON.stringify(rec).length} characters`);
  });

  test('pre-backup and pre-restore checks (7.5 and later): 202 with the job, nothing written, the same refusals as the real thing', async () => {
    const V = '7.6';
    const before = readdirSync(fileURLToPath(container)).sort();
    const pre = await server.send('POST', `/prebackup?api-version=${V}`, { headers: { authorization: `Bearer ${await server.adminToken()}` }, body: { storageResourceUri: container, token: '' } });
    assert.equal(pre.status, 202, pre.text);
    assert.equal(pre.json().status, 'Succeeded');
    assert.equal(pre.headers['azure-asyncoperation'], `${server.url}/backup/${pre.json().jobId}/pending`);
    assert.equal((await call('GET', `/backup/${pre.json().jobId}/pending`, undefined, V)).json.status, 'Succeeded');
    assert.deepEqual(readdirSync(fileURLToPath(container)).sort(), before, 'a pre-backup writes no folder');
    const fresh = pathToFileURL(join(backupDir, 'not-made-yet')).href;
    assert.equal((await call('POST', '/prebackup', { storageResourceUri: fresh, token: '' }, V)).status, 202);
    assert.equal(existsSync(fileURLToPath(fresh)), false, 'a pre-backup makes no directory');
    const outside = await call('POST', '/prebackup', { storageResourceUri: 'file:///etc', token: '' }, V);
    assert.equal(outside.status, 400);
    assert.match(outside.json.error.message, /outside the backup directory/);
    assert.equal((await call('POST', '/prebackup', { storageResourceUri: container }, '7.4')).status, 400, 'not in api-version 7.4');

    const name = folder.slice(container.length + 1);
    const preRestore = await server.send('PUT', `/prerestore?api-version=${V}`, {
      headers: { authorization: `Bearer ${await server.adminToken()}` },
      body: { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: name },
    });
    // This vault still holds b1: the check names the clash as the restore would, and writes nothing.
    assert.equal(preRestore.status, 409, preRestore.text);
    assert.match(preRestore.json().error.message, /b1/);
    const missing = await call('PUT', '/prerestore', { sasTokenParameters: { storageResourceUri: container }, folderToRestore: 'mhsm-none' }, V);
    assert.equal(missing.status, 404);
    const other = await startVault({ flags: { maintenanceInterval: 0, backupDir } });
    try {
      const foreign = await akvCall(other, 'PUT', '/prerestore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: name }, V);
      assert.equal(foreign.status, 400);
      assert.equal(foreign.json.error.innererror.code, 'backup.foreign');
      const sameKey = await startVault({ flags: { maintenanceInterval: 0, backupDir }, dataDir: copyOfMasterKey(server.dataDir) });
      try {
        const ok = await akvCall(sameKey, 'PUT', '/prerestore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: name }, V);
        assert.equal(ok.status, 202, JSON.stringify(ok.json));
        assert.equal(ok.json.status, 'Succeeded');
        assert.equal((await akvCall(sameKey, 'GET', `/restore/${ok.json.jobId}/pending`, undefined, V)).json.status, 'Succeeded');
        assert.equal((await akvCall(sameKey, 'GET', '/keys/b1', undefined, V)).status, 404, 'a pre-restore restores nothing');
      } finally {
        await sameKey.stop();
      }
    } finally {
      await other.stop();
    }
  });

  test('a key restored selectively from the backup after purge', async () => {
    const name = folder.slice(container.length + 1);
    await call('DELETE', '/keys/b1');
    assert.equal((await call('DELETE', '/deletedkeys/b1')).status, 204);
    const r = await call('PUT', '/keys/B1/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folder: name });
    assert.equal(r.status, 202, JSON.stringify(r.json));
    assert.equal(r.json.status, 'Succeeded');
    assert.equal((await call('GET', '/keys/b1')).status, 200);
  });

  test('a vault with another master key refuses the backups of this one clearly, and writes nothing', async () => {
    const other = await startVault({ flags: { maintenanceInterval: 0, backupDir } });
    try {
      const name = folder.slice(container.length + 1);
      const otherCall = (method: string, path: string, body?: unknown) => akvCall(other, method, path, body, API);
      const foreign = (r: { status: number; json: any }) => {
        assert.equal(r.status, 400, JSON.stringify(r.json));
        assert.equal(r.json.error.code, 'BadParameter');
        assert.equal(r.json.error.innererror.code, 'backup.foreign');
        assert.match(r.json.error.message, /another master key/);
      };
      foreign(await otherCall('PUT', '/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: name }));
      foreign(await otherCall('PUT', '/keys/b1/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folder: name }));
      const blob = await call('POST', '/keys/b1/backup');
      assert.equal(blob.status, 200);
      foreign(await otherCall('POST', '/keys/restore', { value: blob.json.value }));
      assert.equal((await otherCall('GET', '/keys/b1')).status, 404, 'nothing restored');
      assert.deepEqual((await otherCall('GET', '/keys')).json.value, []);

      // A backup file changed by one byte is refused the same way by the vault that made it.
      const file = join(fileURLToPath(folder), 'conclave-vault-backup.json');
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      const sealed = Buffer.from(doc.sealed, 'base64url');
      sealed[sealed.length - 1]! ^= 1;
      writeFileSync(file, JSON.stringify({ ...doc, sealed: sealed.toString('base64url') }));
      await call('DELETE', '/keys/b1');
      await call('DELETE', '/deletedkeys/b1');
      foreign(await call('PUT', '/keys/b1/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folder: name }));
      assert.equal((await call('GET', '/keys/b1')).status, 404);
      writeFileSync(file, 'not json');
      const garbage = await call('PUT', '/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: name });
      assert.equal(garbage.status, 400);
      assert.match(garbage.json.error.message, /holds no Conclave backup/);
    } finally {
      await other.stop();
    }
  });
});
