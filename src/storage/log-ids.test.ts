/**
 * The sequencer's premise on SQLite (src/storage/log-store.ts, WAITING): leaf ids grow in commit order and
 * are never handed out twice, so the leaves waiting for an index are those above the highest indexed id.
 * Since migration 216 `log_leaves` has no AUTOINCREMENT (its sqlite_sequence row cost every writer's
 * commit a page): SQLite gives max(id) + 1, which would hand an id out again only after the newest row was
 * deleted or an id changed. Deleting the newest leaf while it is indexed, the one case where a new entry
 * would stand in for a sequenced one at its index and never be sequenced itself, and changing an id are
 * refused; a newest leaf that still waits may go (it is gone either way) and the next entry is sequenced
 * in its place. PostgreSQL draws ids from a sequence (and waits in log_pending): the same attacks leave the
 * log verifiable there too.
 *
 * Tree nodes (migration 217, SQLite): keyed by the position at which the tree completes them, which grows
 * with every node the sequencer adds (a batch appends), and bound to their level and index.
 */
import assert from 'node:assert/strict';
import { createHash, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { drainSequencer } from '../../test/helpers/log.js';
import { createTestDatabase, postgresUnavailable } from '../../test/helpers/postgres.js';
import { generateEcKeyPair } from '../core/keygen.js';
import { createSequencer } from '../log/sequencer.js';
import { type LogSigner, logKeyId } from '../log/tree-head.js';
import { verifyLog } from '../log/verify.js';
import type { Database } from './database.js';
import { createLogAppender, createLogStore, insertLogEntry, nodePos } from './log-store.js';
import { MIGRATIONS } from './migrations/index.js';
import { openDatabase } from './open.js';

const { publicKey, privateKey } = generateEcKeyPair('P-256');
const logKey: LogSigner = { keyId: logKeyId(publicKey), publicKey, sign: async (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) };
const entry = (tag: string) => JSON.stringify({ operation: 'test', tag, entryId: createHash('sha256').update(String(Math.random())).digest('hex') });

const ids = async (db: Database) => (await db.all<{ id: number }>('SELECT id FROM log_leaves ORDER BY id')).map((r) => Number(r.id));

const pgSkip = await postgresUnavailable();
const backends: { name: string; skip: string | undefined; open(): Promise<{ db: Database; dispose(): Promise<void> }> }[] = [
  {
    name: 'sqlite',
    skip: undefined,
    async open() {
      const db = await openDatabase('sqlite::memory:');
      return { db, dispose: () => db.close() };
    },
  },
  {
    name: 'postgres',
    skip: pgSkip,
    async open() {
      const t = await createTestDatabase();
      const db = await openDatabase(t.url, { poolSize: 4 });
      return {
        db,
        async dispose() {
          await db.close();
          await t.drop();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`transparency log leaf ids (migration 216): ${backend.name}`, { skip: backend.skip }, () => {
    let env: Awaited<ReturnType<(typeof backends)[number]['open']>>;
    let db: Database;
    const clock = { ms: Date.UTC(2026, 11, 6) };
    before(async () => {
      env = await backend.open();
      db = env.db;
      await db.migrate(MIGRATIONS);
    });
    after(async () => env?.dispose());

    test('ids grow in commit order, from writers in a transaction and through the appender alike; no sqlite_sequence row is kept for them', async () => {
      const appender = createLogAppender(db);
      for (let i = 0; i < 3; i++) await insertLogEntry(db, entry(`w${i}`), clock.ms);
      await Promise.all(Array.from({ length: 5 }, (_, i) => appender.append(entry(`a${i}`), clock.ms)));
      await insertLogEntry(db, entry('w3'), clock.ms);
      const got = await ids(db);
      assert.equal(got.length, 9);
      assert.deepEqual(got, [...got].sort((a, b) => a - b));
      assert.equal(new Set(got).size, got.length);
      if (db.dialect === 'sqlite') assert.equal(await db.get("SELECT seq FROM sqlite_sequence WHERE name = 'log_leaves'"), undefined);
      const seq = createSequencer({ store: createLogStore(db), signer: async () => logKey, nowMs: () => clock.ms, holder: 'a', batchMs: 5, leaseMs: 1000, maxBatch: 50 });
      await drainSequencer(seq, db, clock);
      await seq.release();
    });

    test('attack: the newest sequenced leaf deleted, or an id changed, so that the next entry takes a sequenced id: refused (SQLite), and every entry is sequenced once', async () => {
      const store = createLogStore(db);
      const seq = createSequencer({ store, signer: async () => logKey, nowMs: () => clock.ms, holder: 'a', batchMs: 5, leaseMs: 1000, maxBatch: 50 });
      await insertLogEntry(db, entry('newest'), clock.ms);
      await drainSequencer(seq, db, clock);
      const size = (await store.latestHead())!.treeSize;
      const newest = Math.max(...(await ids(db)));
      if (db.dialect === 'sqlite') {
        await assert.rejects(db.run('DELETE FROM log_leaves WHERE id = ?', [newest]), /newest log leaf is indexed/);
        await assert.rejects(db.run('DELETE FROM log_leaves'), /newest log leaf is indexed/);
        await assert.rejects(db.run('UPDATE log_leaves SET id = id + 1000 WHERE id = ?', [newest]), /never changed/);
        await assert.rejects(db.run('UPDATE log_leaves SET id = ? WHERE id = ?', [newest + 1, newest - 1]), /never changed/);
        assert.equal(Math.max(...(await ids(db))), newest);
      }
      const after = await insertLogEntry(db, entry('after'), clock.ms);
      await drainSequencer(seq, db, clock);
      const leaves = await store.leaves(0, 10_000);
      assert.equal(leaves.length, size + 1);
      assert.equal(leaves.at(-1)!.leafHash.toString('hex'), after.leafHash, 'the next entry was not sequenced after the newest');
      assert.equal(new Set(leaves.map((l) => l.entry)).size, leaves.length, 'an entry sequenced twice');
      const verified = await verifyLog(store, [logKey.publicKey]);
      assert.ok(verified.ok && verified.treeSize === size + 1 && verified.pending === 0, JSON.stringify(verified));
      await seq.release();
    });

    test('tree nodes: each batch appends them in position order (SQLite); a node under another position, or stored twice, is refused; proofs and the audit still verify', async () => {
      const store = createLogStore(db);
      const seq = createSequencer({ store, signer: async () => logKey, nowMs: () => clock.ms, holder: 'a', batchMs: 5, leaseMs: 1000, maxBatch: 7 });
      for (let i = 0; i < 40; i++) await insertLogEntry(db, entry(`n${i}`), clock.ms);
      await drainSequencer(seq, db, clock);
      await seq.release();
      const size = (await store.latestHead())!.treeSize;
      if (db.dialect === 'sqlite') {
        const rows = await db.all<{ pos: number; level: number; idx: number }>('SELECT pos, level, idx FROM log_nodes ORDER BY rowid');
        assert.ok(rows.length >= size - 1 - 8, String(rows.length));
        // Stored in the order the tree completed them: ascending positions, each its node's.
        for (let i = 0; i < rows.length; i++) {
          assert.equal(Number(rows[i]!.pos), nodePos({ level: Number(rows[i]!.level), index: Number(rows[i]!.idx) }));
          if (i > 0) assert.ok(Number(rows[i]!.pos) > Number(rows[i - 1]!.pos));
        }
        const n = rows[3]!;
        await assert.rejects(db.run('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)', [n.level, Number(n.idx) + 1000, '00'.repeat(32)]), /CHECK/);
        await assert.rejects(db.run('INSERT INTO log_nodes (pos, level, idx, hash) VALUES (?, ?, ?, ?)', [Number(n.pos) + 64, n.level, n.idx, '00'.repeat(32)]), /CHECK/);
        await assert.rejects(db.run('UPDATE log_nodes SET idx = idx + 1 WHERE pos = ?', [n.pos]), /CHECK/);
      }
      const n = (await db.get<{ level: number; idx: number; hash: string }>('SELECT level, idx, hash FROM log_nodes WHERE level = 2 ORDER BY idx LIMIT 1'))!;
      await assert.rejects(
        db.dialect === 'sqlite'
          ? db.run('INSERT INTO log_nodes (pos, level, idx, hash) VALUES (?, ?, ?, ?)', [nodePos({ level: 2, index: Number(n.idx) }), 2, n.idx, '00'.repeat(32)])
          : db.run('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)', [2, n.idx, '00'.repeat(32)]),
        /UNIQUE|unique|duplicate/,
      );
      assert.deepEqual(
        (await store.levelNodes(2, 1, 3)).map((x) => x.index),
        [1, 2, 3],
      );
      assert.deepEqual(await store.levelNodes(2, 3, 1), []);
      const verified = await verifyLog(store, [logKey.publicKey]);
      assert.ok(verified.ok && verified.treeSize === size && verified.pending === 0, JSON.stringify(verified));
    });

    test('a newest leaf that still waits may be deleted: the next entry is sequenced in its place, once', async () => {
      const store = createLogStore(db);
      const seq = createSequencer({ store, signer: async () => logKey, nowMs: () => clock.ms, holder: 'a', batchMs: 5, leaseMs: 1000, maxBatch: 50 });
      await drainSequencer(seq, db, clock);
      const size = (await store.latestHead())!.treeSize;
      const gone = await insertLogEntry(db, entry('gone'), clock.ms);
      await db.transaction(async (tx) => {
        await tx.run('DELETE FROM log_leaves WHERE leaf_hash = ?', [gone.leafHash]);
        if (db.dialect === 'postgres') await tx.run('DELETE FROM log_pending WHERE id NOT IN (SELECT id FROM log_leaves)');
      });
      const next = await insertLogEntry(db, entry('next'), clock.ms);
      await drainSequencer(seq, db, clock);
      const leaves = await store.leaves(size, 10);
      assert.deepEqual(
        leaves.map((l) => l.leafHash.toString('hex')),
        [next.leafHash],
      );
      const verified = await verifyLog(store, [logKey.publicKey]);
      assert.ok(verified.ok && verified.treeSize === size + 1 && verified.pending === 0, JSON.stringify(verified));
      await seq.release();
    });
  });
}

/**
 * Attacks on migration 216's premise that a leaf id is never handed out twice: the trigger that keeps the
 * newest leaf while it is indexed looks only at the newest row, so a leaf stored above it (then deleted)
 * lets the indexed one go; and a store whose newest indexed leaf was deleted before 216 (AUTOINCREMENT then
 * gave the next entry a new id, and the sequencer refused to go on: log.entry_missing) gives that id out
 * again after it. Either way the next entry took a sequenced leaf's id: it stood in for that leaf at its
 * index (the sequencer then found "the last entry" present and went on) and was never sequenced itself,
 * though its writer was told it was stored. Such an entry is refused (SQLite; PostgreSQL draws from a
 * sequence). A leaf put back under its own id below a newer one (an operator's restore) is not.
 */
describe('transparency log leaf ids: an id of an indexed leaf is never given to a new entry (SQLite)', () => {
  const clock = { ms: Date.UTC(2026, 11, 6) };

  test('attack: a leaf stored above the newest indexed one lets it be deleted, then goes itself: the next entry is refused (it would stand in for the deleted one, never sequenced), the tree is not extended, the audit fails', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      await db.migrate(MIGRATIONS);
      const store = createLogStore(db);
      const seq = createSequencer({ store, signer: async () => logKey, nowMs: () => clock.ms, holder: 'a', batchMs: 5, leaseMs: 1000, maxBatch: 50 });
      for (let i = 0; i < 3; i++) await insertLogEntry(db, entry(`s${i}`), clock.ms);
      await drainSequencer(seq, db, clock);
      const size = (await store.latestHead())!.treeSize;
      const newest = Math.max(...(await ids(db)));
      await db.transaction(async (tx) => {
        const above = await insertLogEntry(tx, entry('above'), clock.ms);
        await tx.run('DELETE FROM log_leaves WHERE id = ?', [newest]);
        await tx.run('DELETE FROM log_leaves WHERE leaf_hash = ?', [above.leafHash]);
      });
      assert.ok(Math.max(...(await ids(db))) < newest);
      await assert.rejects(insertLogEntry(db, entry('victim'), clock.ms), /handed out again/);
      await assert.rejects(createLogAppender(db).append(entry('victim2'), clock.ms), /handed out again/);
      assert.deepEqual(
        (await db.all<{ entry: string }>('SELECT entry FROM log_entries WHERE idx = ?', [size - 1])).length,
        0,
        'a new entry stands in for the deleted sequenced one',
      );
      // Nothing waits, so the sequencer has nothing to extend the tree with (before: it went on past the hole).
      await seq.tick().catch((e: { code?: string }) => assert.equal(e.code, 'log.entry_missing'));
      assert.equal((await store.latestHead())!.treeSize, size);
      assert.equal((await verifyLog(store, [logKey.publicKey]).catch(() => ({ ok: false }))).ok, false);
      await seq.release();
    } finally {
      await db.close();
    }
  });

  test('attack: a store whose newest indexed leaf was deleted under AUTOINCREMENT, migrated: the id it had is not given to the next entry', async () => {
    const db = await openDatabase('sqlite::memory:');
    try {
      await db.migrate(MIGRATIONS.filter((m) => m.id < 216 || m.id >= 220));
      for (let i = 0; i < 3; i++) {
        const e = entry(`old${i}`);
        await insertLogEntry(db, e, clock.ms);
        await db.run('INSERT INTO log_index (idx, leaf_id) VALUES (?, ?)', [i, i + 1]);
      }
      // Deleted before 216: nothing refused it, and AUTOINCREMENT kept id 3 from the next entry.
      await db.run('DELETE FROM log_leaves WHERE id = 3');
      await db.migrate(MIGRATIONS);
      await assert.rejects(insertLogEntry(db, entry('victim'), clock.ms), /handed out again/);
      assert.equal((await db.all('SELECT 1 FROM log_entries WHERE idx = 2')).length, 0, 'a new entry stands in for sequenced entry 2');
    } finally {
      await db.close();
    }
  });
});
