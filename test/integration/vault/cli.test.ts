/** `conclave key|role|audit` against a running server and its data directory. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { conclave } from '../../helpers/cli.js';
import { waitSequenced } from '../../helpers/log.js';
import type { TestServer } from '../../helpers/server.js';
import { startVault } from './harness.js';

let server: TestServer;

/** Runs the CLI (test/helpers/cli.ts) with no CONCLAVE_* credentials from the environment. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await conclave(argv, { env: { CONCLAVE_URL: '', CONCLAVE_CLIENT_ID: '', CONCLAVE_CLIENT_SECRET: '', CONCLAVE_DATA_DIR: '' } });
  return { code: r.code ?? 1, out: r.stdout, err: r.stderr };
}

describe('conclave key, role, audit', () => {
  before(async () => {
    server = await startVault();
  });
  after(async () => server?.stop());
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

  test('audit verify --head: a head kept from before (GET /log/sth or a monitor state) must match; one not signed by the log key is refused', async () => {
    await waitSequenced(server.ctx.db);
    const sth = (await server.send('GET', '/log/sth')).json() as { treeSize: number; rootHash: string };
    const dir = mkdtempSync(join(tmpdir(), 'conclave-audit-head-'));
    try {
      const file = (name: string, v: unknown) => {
        const p = join(dir, name);
        writeFileSync(p, JSON.stringify(v));
        return p;
      };
      const verify = (...extra: string[]) => run('audit', 'verify', '--data-dir', server.dataDir, '--db', server.ctx.config.db, ...extra);
      const ok = await verify('--head', file('sth.json', sth), '--head', file('monitor.json', { sth }), '-o', 'json');
      assert.equal(ok.code, 0, ok.err);
      const forged = await verify('--head', file('forged.json', { ...sth, rootHash: 'ab'.repeat(32) }));
      assert.equal(forged.code, 1);
      assert.match(forged.err, /log\.signature_invalid/);
      const garbage = await verify('--head', file('garbage.json', { sth: { treeSize: 'x' } }));
      assert.equal(garbage.code, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('audit verify without --log-key says loudly that it trusts the log keys the store holds (which a store writer can plant); with --log-key it trusts the key given', async () => {
    await waitSequenced(server.ctx.db);
    const dir = mkdtempSync(join(tmpdir(), 'conclave-audit-key-'));
    try {
      const keyFile = join(dir, 'log-key.pem');
      writeFileSync(keyFile, String((await server.send('GET', '/log/key')).json().publicKey));
      const verify = (...extra: string[]) => run('audit', 'verify', '--data-dir', server.dataDir, '--db', server.ctx.config.db, '-o', 'json', ...extra);
      const byStore = await verify();
      assert.equal(byStore.code, 0, byStore.err);
      assert.equal(JSON.parse(byStore.out).trustedBy, 'store');
      assert.match(byStore.err, /warning: .*log keys the store holds.*--log-key/s);
      const pinned = await verify('--log-key', keyFile);
      assert.equal(pinned.code, 0, pinned.err);
      assert.equal(JSON.parse(pinned.out).trustedBy, 'log-key');
      assert.doesNotMatch(pinned.err, /warning/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('audit verify passes, then names a reordered, a changed and a deleted entry (typed codes)', async () => {
    await waitSequenced(server.ctx.db);
    const verify = (...extra: string[]) => run('audit', 'verify', '--data-dir', server.dataDir, '--db', server.ctx.config.db, ...extra);
    const ok = await verify('-o', 'json');
    assert.equal(ok.code, 0, ok.err);
    assert.ok(JSON.parse(ok.out).records >= 6);
    const rows = await server.ctx.db.all<{ idx: number; leaf_hash: string; entry: string }>('SELECT i.idx, l.leaf_hash, l.entry FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id WHERE i.idx IN (2, 3) ORDER BY i.idx');
    const [r2, r3] = [rows[0]!, rows[1]!];
    const put = (idx: number, r: { leaf_hash: string; entry: string }) => server.ctx.db.run('UPDATE log_leaves SET leaf_hash = ?, entry = ? WHERE id = (SELECT leaf_id FROM log_index WHERE idx = ?)', [r.leaf_hash, r.entry, idx]);
    // Reordered (each entry still hashes to its leaf hash): the signed heads no longer match.
    await put(2, r3);
    await put(3, r2);
    const reordered = await verify();
    assert.equal(reordered.code, 1);
    assert.match(reordered.err, /log\.root_mismatch/);
    await put(2, r2);
    await put(3, r3);
    assert.equal((await verify()).code, 0);
    // Changed: the entry no longer hashes to its leaf hash.
    await put(3, { leaf_hash: r3.leaf_hash, entry: r3.entry.replace(/"time":"[^"]+"/, '"time":"2000-01-01T00:00:00.000Z"') });
    const changed = await verify();
    assert.equal(changed.code, 1);
    assert.match(changed.err, /log\.entry_mismatch.*entry 3/);
    await put(3, r3);
    // Deleted.
    await server.ctx.db.run('DELETE FROM log_index WHERE idx = 2');
    const deleted = await verify();
    assert.equal(deleted.code, 1);
    assert.match(deleted.err, /log\.entry_missing.*entry 2 is missing/);
  });
});
