/**
 * The log's layout since migration 215 on both stores: an entry stays in `log_leaves` where its writer put
 * it and the sequencer adds only its index (`log_index`). The migration carries a log at the schema before
 * it over (sequenced entries keep their index, heads and proofs; queued ones wait in their order), and an
 * entry whose transaction commits after later entries were sequenced (PostgreSQL draws ids before commit)
 * is sequenced once, never skipped.
 */
import assert from 'node:assert/strict';
import { createHash, type KeyObject, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { drainSequencer } from '../../test/helpers/log.js';
import { createTestDatabase, postgresUnavailable } from '../../test/helpers/postgres.js';
import { generateEcKeyPair } from '../core/keygen.js';
import { CompactRange, hashLeafText } from '../log/merkle.js';
import { createSequencer, type Sequencer } from '../log/sequencer.js';
import { type LogSigner, logKeyId, type SignedTreeHead, signTreeHead } from '../log/tree-head.js';
import { verifyLog } from '../log/verify.js';
import type { Database } from './database.js';
import { createLogStore, insertLogEntry } from './log-store.js';
import { MIGRATIONS } from './migrations/index.js';
import { openDatabase } from './open.js';

const { publicKey, privateKey } = generateEcKeyPair('P-256');
const logKey: LogSigner & { privateKey: KeyObject } = { keyId: logKeyId(publicKey), publicKey, privateKey, sign: async (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) };
const entry = (tag: string) => JSON.stringify({ operation: 'test', tag, entryId: createHash('sha256').update(String(Math.random())).digest('hex') });

function sequencer(db: Database, clock: { ms: number }): Sequencer {
  return createSequencer({ store: createLogStore(db), signer: async () => logKey, nowMs: () => clock.ms, holder: 'a', batchMs: 5, leaseMs: 1000, maxBatch: 50 });
}

/** The stored leaves as (index, entry), in index order; every entry text must appear once. */
async function sequenced(db: Database): Promise<{ index: number; entry: string }[]> {
  return (await createLogStore(db).leaves(0, 10_000)).map((l) => ({ index: l.index, entry: l.entry }));
}

const pgSkip = await postgresUnavailable();
const backends: { name: string; skip: string | undefined; open(): Promise<{ dbs: Database[]; dispose(): Promise<void> }> }[] = [
  {
    name: 'sqlite',
    skip: undefined,
    async open() {
      const db = await openDatabase('sqlite::memory:');
      return { dbs: [db, db], dispose: () => db.close() };
    },
  },
  {
    name: 'postgres',
    skip: pgSkip,
    async open() {
      const t = await createTestDatabase();
      const dbs = [await openDatabase(t.url, { poolSize: 4 }), await openDatabase(t.url, { poolSize: 4 })];
      return {
        dbs,
        async dispose() {
          for (const d of dbs) await d.close();
          await t.drop();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`transparency log layout (migration 215): ${backend.name}`, { skip: backend.skip }, () => {
    let env: Awaited<ReturnType<(typeof backends)[number]['open']>>;
    before(async () => {
      env = await backend.open();
    });
    after(async () => env?.dispose());

    test('a log at the schema before 215 is carried over: sequenced entries keep index, heads and proofs; queued ones wait in order; each is sequenced once', async () => {
      const db = env.dbs[0]!;
      const clock = { ms: Date.UTC(2026, 11, 6) };
      await db.migrate(MIGRATIONS.filter((m) => m.id < 215 || m.id >= 220));
      // The writers and the sequencer as they were: entries queued, then moved into log_entries with their
      // index, the perfect nodes stored and each batch's head signed.
      const queue = async (n: number, tag: string) => {
        const texts = Array.from({ length: n }, (_, i) => entry(`${tag}${i}`));
        for (const t of texts) await db.run('INSERT INTO log_queue (leaf_hash, entry, created_ms) VALUES (?, ?, ?)', [hashLeafText(t).toString('hex'), t, clock.ms]);
        return texts;
      };
      const range = new CompactRange();
      const oldHeads: SignedTreeHead[] = [];
      const oldBatch = async () => {
        const rows = await db.all<{ id: number; leaf_hash: string; entry: string; created_ms: number }>('SELECT id, leaf_hash, entry, created_ms FROM log_queue ORDER BY id');
        for (const r of rows) {
          await db.run('INSERT INTO log_entries (leaf_hash, entry, created_ms, idx) VALUES (?, ?, ?, ?)', [r.leaf_hash, r.entry, r.created_ms, range.size]);
          await db.run('DELETE FROM log_queue WHERE id = ?', [r.id]);
          const nodes: [number, number, string][] = [];
          range.append(Buffer.from(r.leaf_hash, 'hex'), (node, hash) => nodes.push([node.level, node.index, hash.toString('hex')]));
          for (const n of nodes) await db.run('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)', n);
        }
        const head = await signTreeHead({ treeSize: range.size, timestamp: clock.ms++, rootHash: range.root() }, logKey);
        await db.run('INSERT INTO log_heads (tree_size, root_hash, timestamp_ms, key_id, signature, epoch) VALUES (?, ?, ?, ?, ?, 1)', [head.treeSize, head.rootHash.toString('hex'), head.timestamp, head.keyId, head.signature.toString('base64')]);
        oldHeads.push(head);
      };
      const first = await queue(6, 's');
      await oldBatch();
      const second = await queue(5, 's');
      await oldBatch();
      const waiting = await queue(4, 'q');
      assert.equal((await verifyLog(createLogStore(db), [logKey.publicKey], { knownHeads: oldHeads }).catch((e: unknown) => ({ ok: false, code: String(e) }))).ok, false, 'the new store cannot read the old layout');

      // 215, then 216 to 218 (SQLite: log_leaves without AUTOINCREMENT, ids kept; log_nodes keyed by position; no new entry under an indexed id).
      assert.equal(await db.migrate(MIGRATIONS), 4);
      const store = createLogStore(db);
      assert.deepEqual(await sequenced(db), [...first, ...second].map((e, index) => ({ index, entry: e })));
      assert.deepEqual((await store.pendingLeaves(100)).map((l) => l.entry), waiting);
      assert.deepEqual(await store.findLeaf(hashLeafText(second[2]!)), { index: 8 });
      assert.deepEqual(await store.findLeaf(hashLeafText(waiting[1]!)), { index: null });
      const carried = await verifyLog(store, [logKey.publicKey], { knownHeads: oldHeads });
      assert.ok(carried.ok && carried.treeSize === 11 && carried.pending === 4, JSON.stringify(carried));
      // The old names read the same rows (read-only views).
      assert.deepEqual((await db.all<{ entry: string }>('SELECT entry FROM log_queue ORDER BY id')).map((r) => r.entry), waiting);
      assert.equal(Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM log_entries'))!.n), 11);

      // Written after the migration: new ids above the carried ones; then all is sequenced, in order, once.
      const later = [entry('n0'), entry('n1')];
      for (const t of later) await insertLogEntry(db, t, clock.ms);
      await drainSequencer(sequencer(db, clock), db, clock);
      assert.deepEqual(await sequenced(db), [...first, ...second, ...waiting, ...later].map((e, index) => ({ index, entry: e })));
      const done = await verifyLog(store, [logKey.publicKey], { knownHeads: oldHeads });
      assert.ok(done.ok && done.treeSize === 17 && done.pending === 0, JSON.stringify(done));
      assert.equal(Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM log_queue'))!.n), 0);
    });

    test('an entry whose transaction commits after later entries were sequenced is sequenced then, once; one rolled back never', async () => {
      const [db, writer] = env.dbs as [Database, Database];
      const clock = { ms: Date.UTC(2026, 11, 7) };
      await db.migrate(MIGRATIONS);
      const seq = sequencer(db, clock);
      await drainSequencer(seq, db, clock);
      const before = (await sequenced(db)).length;
      const [early, late, undone] = [entry('early'), entry('late'), entry('undone')];
      let commit!: () => void;
      let inserted!: () => void;
      const holding = new Promise<void>((r) => {
        inserted = r;
      });
      // Takes its id first and commits last.
      const open = writer.transaction(async (tx) => {
        await insertLogEntry(tx, early, clock.ms);
        inserted();
        await new Promise<void>((r) => {
          commit = r;
        });
      });
      await holding;
      let waiting: Promise<void> = Promise.resolve();
      if (db.dialect === 'postgres') {
        // A later writer commits first, and a batch sequences it past the open transaction's id.
        await insertLogEntry(db, late, clock.ms);
        await drainSequencer(seq, db, clock);
        assert.deepEqual((await sequenced(db)).slice(before).map((l) => l.entry), [late]);
      } else {
        // SQLite has one writer: the batch waits for the open transaction.
        waiting = seq.tick();
      }
      commit();
      await open;
      await waiting;
      if (db.dialect === 'sqlite') await insertLogEntry(db, late, clock.ms);
      // Rolled back: never stored, never sequenced.
      await assert.rejects(
        writer.transaction(async (tx) => {
          await insertLogEntry(tx, undone, clock.ms);
          throw new Error('rolled back');
        }),
        /rolled back/,
      );
      await drainSequencer(seq, db, clock);
      const added = (await sequenced(db)).slice(before).map((l) => l.entry);
      assert.deepEqual(added, db.dialect === 'postgres' ? [late, early] : [early, late]);
      const ids = await db.all<{ id: number; entry: string }>('SELECT id, entry FROM log_leaves WHERE entry IN (?, ?) ORDER BY id', [early, late]);
      assert.deepEqual(ids.map((r) => r.entry), [early, late], 'the early entry has the lower id');
      const verified = await verifyLog(createLogStore(db), [logKey.publicKey]);
      assert.ok(verified.ok && verified.pending === 0, JSON.stringify(verified));
      await seq.release();
    });

    test('the newest index row deleted: its leaf is not sequenced again (SQLite would see it waiting) and the log is not extended over the hole', async () => {
      const db = env.dbs[0]!;
      const clock = { ms: Date.UTC(2026, 11, 8) };
      await db.migrate(MIGRATIONS);
      const seq = sequencer(db, clock);
      await drainSequencer(seq, db, clock);
      // An even tree size: the next head's right edge needs no leaf hash of the last entry, only stored nodes.
      for (let n = (await sequenced(db)).length; n % 2 !== 0 || n < 8; n++) await insertLogEntry(db, entry(`x${n}`), clock.ms);
      await drainSequencer(seq, db, clock);
      const store = createLogStore(db);
      const size = (await store.latestHead())!.treeSize;
      const last = await db.get<{ leaf_id: number }>('SELECT leaf_id FROM log_index WHERE idx = ?', [size - 1]);
      await db.run('DELETE FROM log_index WHERE idx = ?', [size - 1]);
      await insertLogEntry(db, entry('after'), clock.ms);
      // Refused, typed, by the holder that stored the tree and by a new one that reads it afresh.
      const refused = async (s: Sequencer) => {
        for (let i = 0; i < 3; i++) {
          await assert.rejects(s.tick(), (e: { code?: string }) => e.code === 'log.entry_missing');
          clock.ms += 10;
        }
        await s.release();
      };
      await refused(seq);
      const fresh = sequencer(db, clock);
      await refused(fresh);
      const leaves = await sequenced(db);
      assert.equal(new Set(leaves.map((l) => l.entry)).size, leaves.length, 'an entry sequenced twice');
      assert.equal((await store.latestHead())!.treeSize, size, 'the log was extended over a missing entry');
      // Put back, the log goes on from where it was.
      await db.run('INSERT INTO log_index (idx, leaf_id) VALUES (?, ?)', [size - 1, last!.leaf_id]);
      // The newest entry's text deleted, its index row kept: refused too.
      const body = (await db.get<{ id: number; leaf_hash: string; entry: string; created_ms: number }>('SELECT id, leaf_hash, entry, created_ms FROM log_leaves WHERE id = ?', [last!.leaf_id]))!;
      await db.run('DELETE FROM log_leaves WHERE id = ?', [body.id]);
      await refused(fresh);
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO log_leaves (id, leaf_hash, entry, created_ms) VALUES (?, ?, ?, ?)', [body.id, body.leaf_hash, body.entry, body.created_ms]);
        // PostgreSQL's trigger marks an inserted leaf as waiting; this one has its index.
        if (db.dialect === 'postgres') await tx.run('DELETE FROM log_pending WHERE id = ?', [body.id]);
      });
      await drainSequencer(fresh, db, clock);
      const verified = await verifyLog(store, [logKey.publicKey]);
      assert.ok(verified.ok && verified.treeSize === size + 1 && verified.pending === 0, JSON.stringify(verified));
      await fresh.release();
    });
  });
}

describe('transparency log layout (migration 215): postgres, migrated out of band while replicas of the version before still write', { skip: pgSkip }, () => {
  test('an entry a writer of the version before commits while 215 runs is carried over, not dropped with log_queue', async () => {
    const t = await createTestDatabase();
    const [old, migrating] = [await openDatabase(t.url, { poolSize: 2 }), await openDatabase(t.url, { poolSize: 2 })];
    try {
      await old.migrate(MIGRATIONS.filter((m) => m.id < 215 || m.id >= 220));
      const early = entry('before');
      const racing = entry('racing');
      await old.run('INSERT INTO log_queue (leaf_hash, entry, created_ms) VALUES (?, ?, ?)', [hashLeafText(early).toString('hex'), early, 1]);
      // A writer of the version before: its INSERT into log_queue is made, its commit not yet.
      let commit!: () => void;
      let inserted!: () => void;
      const holding = new Promise<void>((r) => {
        inserted = r;
      });
      const writer = old.transaction(async (tx) => {
        await tx.run('INSERT INTO log_queue (leaf_hash, entry, created_ms) VALUES (?, ?, ?)', [hashLeafText(racing).toString('hex'), racing, 2]);
        inserted();
        await new Promise<void>((r) => {
          commit = r;
        });
      });
      await holding;
      const migrated = migrating.migrate(MIGRATIONS);
      // The migration waits for the writer's table lock (wherever in 215 it asks for it).
      for (let i = 0; ; i++) {
        const w = await old.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE NOT l.granted AND c.relname IN ('log_queue', 'log_entries')");
        if (Number(w?.n ?? 0) > 0) break;
        if (i > 500) assert.fail('the migration never waited for the writer');
        await new Promise((r) => setTimeout(r, 10));
      }
      commit();
      await writer;
      assert.equal(await migrated, 4);
      const store = createLogStore(migrating);
      assert.deepEqual((await store.pendingLeaves(10)).map((l) => l.entry), [early, racing], 'an acknowledged entry was lost by the migration');
    } finally {
      await old.close();
      await migrating.close();
      await t.drop();
    }
  });
});
