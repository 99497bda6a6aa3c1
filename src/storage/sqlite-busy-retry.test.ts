/**
 * Attack on the SQLite store's SQLITE_BUSY back-off (src/storage/sqlite.ts): a statement issued with no
 * transaction open that meets another process's write lock (a restarted server whose predecessor is still
 * exiting, `conclave db migrate`) sleeps and tries again. If a transaction of this process opened while it
 * slept, the retry ran on the shared connection inside that transaction: an autocommitted write (the audit
 * append of a release) was acknowledged (and its WAL "flushed") before anything was committed, and undone
 * when that transaction rolled back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { Migration } from './database.js';
import { openSqlite } from './sqlite.js';

const SCHEMA: readonly Migration[] = [{ id: 1, name: 'items', sql: 'CREATE TABLE items (id TEXT PRIMARY KEY)' }];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function withStore(fn: (db: ReturnType<typeof openSqlite>, file: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-busy-'));
  const file = join(dir, 'store.db');
  const db = openSqlite(file);
  try {
    await db.migrate(SCHEMA);
    await fn(db, file);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SQLite: a statement retried after SQLITE_BUSY', () => {
  test('an autocommitted write never lands in a transaction that opened while it backed off', async () => {
    await withStore(async (db, file) => {
      const other = new BetterSqlite3(file); // another process holding the write lock
      other.exec('BEGIN IMMEDIATE');
      other.prepare('INSERT INTO items (id) VALUES (?)').run('other');
      // The audit append: BUSY, then retried with a growing back-off.
      const appended = db.run('INSERT INTO items (id) VALUES (?)', ['audit-record']);
      let ackedInsideTx = false;
      await sleep(400);
      // The other process lets go, and in the same turn this process opens a transaction: its BEGIN runs
      // before the back-off's next try.
      other.exec('COMMIT');
      other.close();
      const tx = db.transaction(async (t) => {
        await t.run('INSERT INTO items (id) VALUES (?)', ['tx-write']);
        const first = await Promise.race([appended.then(() => 'acknowledged'), sleep(800).then(() => 'waiting')]);
        ackedInsideTx = first === 'acknowledged';
        throw new Error('roll back');
      });
      await assert.rejects(tx, /roll back/);
      assert.equal((await appended).changes, 1);
      assert.equal(ackedInsideTx, false, 'the autocommitted write was acknowledged while another transaction was open (it ran inside it)');
      // Acknowledged, so stored: the rollback of a transaction it was no part of does not undo it.
      assert.ok(await db.get('SELECT id FROM items WHERE id = ?', ['audit-record']), 'an acknowledged write was rolled back with another transaction');
      assert.equal(await db.get('SELECT id FROM items WHERE id = ?', ['tx-write']), undefined);
    });
  });

});
