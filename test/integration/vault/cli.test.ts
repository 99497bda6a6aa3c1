/** `conclave key|role|audit` against a running server and its data directory. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { TestServer } from '../../helpers/server.js';
import { startVault } from './harness.js';

let server: TestServer;
const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));

/**
 * Runs the CLI in a child process: under `node --test` the test's own stdout carries the runner's
 * protocol, so the CLI's output cannot be captured in-process.
 */
function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const script = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...argv], { env: { ...process.env, CONCLAVE_URL: '', CONCLAVE_CLIENT_ID: '', CONCLAVE_CLIENT_SECRET: '', CONCLAVE_DATA_DIR: '' } }, (error, out, err) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out, err });
    });
  });
}

before(async () => {
  server = await startVault();
});
after(async () => server?.stop());

describe('conclave key, role, audit', () => {
  test('key create/get/list/rotate/delete with admin.json from --data-dir', async () => {
    const c = await run('key', 'create', 'cli-k', '--kty', 'EC', '--curve', 'P-256', '--data-dir', server.dataDir, '-o', 'json');
    assert.equal(c.code, 0, c.err);
    assert.match(JSON.parse(c.out).kid, /\/keys\/cli-k\/[0-9a-f]{32}$/);
    assert.equal((await run('key', 'rotate', 'cli-k', '--data-dir', server.dataDir, '-o', 'json')).code, 0);
    const v = await run('key', 'versions', 'cli-k', '--data-dir', server.dataDir, '-o', 'json');
    assert.equal(JSON.parse(v.out).length, 2);
    const l = await run('key', 'list', '--data-dir', server.dataDir, '-o', 'json');
    assert.deepEqual(JSON.parse(l.out).map((r: any) => r.name), ['cli-k']);
    assert.equal((await run('key', 'delete', 'cli-k', '--data-dir', server.dataDir, '-o', 'json')).code, 0);
    const g = await run('key', 'get', 'cli-k', '--data-dir', server.dataDir, '-o', 'json');
    assert.equal(g.code, 1);
    assert.match(g.err, /key\.not_found/);
  });

  test('role assign/list/remove', async () => {
    const a = await run('role', 'assign', '--principal', 'someone', '--role', 'Key Vault Reader', '--scope', '/keys/x', '--data-dir', server.dataDir, '-o', 'json');
    assert.equal(a.code, 0, a.err);
    const id = JSON.parse(a.out).id;
    const l = await run('role', 'list', '--data-dir', server.dataDir, '-o', 'json');
    assert.equal(JSON.parse(l.out).length, 1);
    assert.equal((await run('role', 'assign', '--principal', 'p', '--role', 'Owner', '--data-dir', server.dataDir)).code, 1);
    assert.equal((await run('role', 'remove', id, '--data-dir', server.dataDir, '-o', 'json')).code, 0);
  });

  test('audit verify passes, then names a deleted and a reordered record', async () => {
    const ok = await run('audit', 'verify', '--data-dir', server.dataDir, '--db', server.ctx.config.db, '-o', 'json');
    assert.equal(ok.code, 0, ok.err);
    assert.ok(JSON.parse(ok.out).records >= 6);
    const rows = await server.ctx.db.all<{ seq: number; record: string; prev_hash: string; hash: string }>('SELECT seq, record, prev_hash, hash FROM vault_audit ORDER BY seq');
    // Swap the contents of records 3 and 4 (reorder).
    const [r3, r4] = [rows[2]!, rows[3]!];
    await server.ctx.db.run('UPDATE vault_audit SET record = ?, prev_hash = ?, hash = ? WHERE seq = 3', [r4.record, r4.prev_hash, r4.hash]);
    await server.ctx.db.run('UPDATE vault_audit SET record = ?, prev_hash = ?, hash = ? WHERE seq = 4', [r3.record, r3.prev_hash, r3.hash]);
    const reordered = await run('audit', 'verify', '--data-dir', server.dataDir, '--db', server.ctx.config.db);
    assert.equal(reordered.code, 1);
    assert.match(reordered.err, /sequence 3/);
    await server.ctx.db.run('UPDATE vault_audit SET record = ?, prev_hash = ?, hash = ? WHERE seq = 3', [r3.record, r3.prev_hash, r3.hash]);
    await server.ctx.db.run('UPDATE vault_audit SET record = ?, prev_hash = ?, hash = ? WHERE seq = 4', [r4.record, r4.prev_hash, r4.hash]);
    assert.equal((await run('audit', 'verify', '--data-dir', server.dataDir, '--db', server.ctx.config.db)).code, 0);
    await server.ctx.db.run('DELETE FROM vault_audit WHERE seq = 2');
    const deleted = await run('audit', 'verify', '--data-dir', server.dataDir, '--db', server.ctx.config.db);
    assert.equal(deleted.code, 1);
    assert.match(deleted.err, /sequence 2/);
  });
});
