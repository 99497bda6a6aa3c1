/**
 * #14 items 12 and 13: what the server writes into its data dir.
 * 12. Every file the server writes is 0600 and every directory 0700, even when the data dir (or the
 *     database file) already existed with looser modes.
 * 13. A missing or different `master.key` next to a store that holds sealed data is never replaced by a
 *     new random key: start-up fails naming the file and what to restore, and leaves the data dir as it was.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startTestServer, tempDir } from '../../helpers/server.js';

const mode = (p: string) => statSync(p).mode & 0o777;

/** Every path under `dir` (itself included) that the server wrote: all of it, in a data dir made for the test. */
function walk(dir: string, out: string[] = [dir]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out.push(p);
    if (statSync(p).isDirectory()) walk(p, out);
  }
  return out;
}

describe('data dir permissions', () => {
  test('an existing world-readable data dir and database file end up 0700 and 0600, and so does everything written', async (t) => {
    if (process.env.CONCLAVE_TEST_DB === 'postgres') return t.skip('the SQLite file is the point');
    const dataDir = tempDir();
    chmodSync(dataDir, 0o755);
    // A database file that exists before the first start, as an operator's `touch` or a restore leaves it.
    writeFileSync(join(dataDir, 'conclave.db'), '');
    chmodSync(join(dataDir, 'conclave.db'), 0o644);
    const server = await startTestServer({}, { dataDir });
    try {
      // Something that writes to the store (so the WAL exists) and to the data dir.
      assert.equal((await server.send('GET', '/healthz')).status, 200);
      await server.adminToken();
      const loose = walk(dataDir)
        .map((p) => ({ p, m: mode(p), dir: statSync(p).isDirectory() }))
        .filter(({ m, dir }) => m !== (dir ? 0o700 : 0o600))
        .map(({ p, m }) => `${p.slice(dataDir.length) || '/'} ${m.toString(8)}`);
      assert.deepEqual(loose, []);
      assert.ok(existsSync(join(dataDir, 'conclave.db-wal')), 'the WAL is among the files checked');
    } finally {
      await server.stop();
    }
  });

  test('a restart tightens what an operator loosened', async (t) => {
    if (process.env.CONCLAVE_TEST_DB === 'postgres') return t.skip('the SQLite file is the point');
    const dataDir = tempDir();
    await (await startTestServer({}, { dataDir })).stop();
    for (const p of walk(dataDir)) chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
    const server = await startTestServer({}, { dataDir });
    try {
      const loose = walk(dataDir).filter((p) => mode(p) !== (statSync(p).isDirectory() ? 0o700 : 0o600));
      assert.deepEqual(loose, []);
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the master key of a store with sealed data', () => {
  test('a missing master.key is not replaced: start-up fails naming the file and what to restore', async () => {
    const dataDir = tempDir();
    await (await startTestServer({}, { dataDir })).stop();
    const keyPath = join(dataDir, 'master.key');
    rmSync(keyPath);
    await assert.rejects(startTestServer({}, { dataDir }), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'store.master_key_missing', e.message);
      assert.ok(e.message?.includes(keyPath), e.message);
      assert.match(e.message ?? '', /restore/i);
      return true;
    });
    assert.equal(existsSync(keyPath), false, 'no new master key was created for the store');
  });

  test('a different master.key is refused, naming the file, and left as it is', async () => {
    const dataDir = tempDir();
    await (await startTestServer({}, { dataDir })).stop();
    const keyPath = join(dataDir, 'master.key');
    const other = Buffer.alloc(32, 7);
    writeFileSync(keyPath, other);
    await assert.rejects(startTestServer({}, { dataDir }), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'store.master_key_mismatch', e.message);
      assert.ok(e.message?.includes(keyPath), e.message);
      return true;
    });
    assert.deepEqual(readFileSync(keyPath), other);
  });

  test('a fresh store gets a master key, and a restart with it works', async () => {
    const dataDir = tempDir();
    await (await startTestServer({}, { dataDir })).stop();
    const key = readFileSync(join(dataDir, 'master.key'));
    assert.equal(key.length, 32);
    const again = await startTestServer({}, { dataDir });
    try {
      assert.equal((await again.send('GET', '/healthz')).status, 200);
      await again.adminToken();
    } finally {
      await again.stop();
    }
    assert.deepEqual(readFileSync(join(dataDir, 'master.key')), key);
  });
});
