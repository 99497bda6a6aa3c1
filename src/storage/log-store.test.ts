/**
 * The transparency log on both stores: lock-free writers and the batching sequencer, proofs served from
 * stored nodes, the migrated audit chain as the log's prefix, tampering detected with typed codes, and
 * the lease between two sequencers (hand-over, a dead holder, a stale holder fenced out).
 */
import assert from 'node:assert/strict';
import { createHash, type KeyObject, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, postgresUnavailable } from '../../test/helpers/postgres.js';
import { hashLeaf, verifyConsistency, verifyInclusion } from '../log/merkle.js';
import { createSequencer, type Sequencer } from '../log/sequencer.js';
import { createLogService } from '../log/service.js';
import { checkTreeHead, encodeTreeHead, type LogSigner, logKeyId, parseTreeHeadWire, type SignedTreeHead } from '../log/tree-head.js';
import { verifyLog } from '../log/verify.js';
import type { Database } from './database.js';
import { createLogStore, insertLogEntry } from './log-store.js';
import { MIGRATIONS } from './migrations/index.js';
import { openDatabase } from './open.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../core/keygen.js';

function signerOf(kind: 'ec' | 'rsa'): LogSigner & { privateKey: KeyObject } {
  const { publicKey, privateKey } = kind === 'ec' ? generateEcKeyPair('P-256') : generateRsaKeyPair(2048);
  return {
    keyId: logKeyId(publicKey),
    publicKey,
    privateKey,
    sign: async (data) => (kind === 'ec' ? sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) : sign('sha256', data, privateKey)),
  };
}

const logKey = signerOf('ec');
const otherKey = signerOf('ec');
const hex = (s: string) => Buffer.from(s, 'hex');

function sequencer(db: Database, holder: string, clock: { ms: number }, signer: LogSigner = logKey, maxBatch = 50): Sequencer {
  return createSequencer({ store: createLogStore(db), signer: async () => signer, nowMs: () => clock.ms, holder, batchMs: 5, leaseMs: 1000, maxBatch });
}

/** Ticks until every stored entry is in a signed head. */
async function drain(seq: Sequencer, db: Database): Promise<number> {
  for (let i = 0; i < 200; i++) {
    await seq.tick();
    const r = await db.get<{ n: number; q: number; s: number | null }>('SELECT (SELECT COUNT(*) FROM log_leaves) AS n, (SELECT COUNT(*) FROM log_leaves l WHERE NOT EXISTS (SELECT 1 FROM log_index i WHERE i.leaf_id = l.id)) AS q, (SELECT MAX(tree_size) FROM log_heads) AS s');
    if (r && Number(r.q) === 0 && r.s !== null && Number(r.s) === Number(r.n)) return Number(r.n);
  }
  throw new Error('the sequencer did not drain the log');
}

const entry = (i: number) => JSON.stringify({ operation: 'test', n: i, entryId: createHash('sha256').update(String(Math.random())).digest('hex') });

/** Writes `n` entries concurrently, each in its own autocommitted insert into the queue (no lock, no log index). */
async function write(db: Database, n: number): Promise<string[]> {
  return (await Promise.all(Array.from({ length: n }, (_, i) => insertLogEntry(db, entry(i), Date.now())))).map((r) => r.leafHash);
}

/** The audit chain as the pre-log vault wrote it (SHA-256(prev ‖ record), prev of seq 1 = 64 zeros). */
async function writeLegacyChain(db: Database, n: number): Promise<string> {
  let prev = '0'.repeat(64);
  for (let seq = 1; seq <= n; seq++) {
    const record = JSON.stringify({ operation: 'create', result: 'success', seq, time: new Date(2026, 0, seq).toISOString() });
    const hash = createHash('sha256').update(prev).update(record).digest('hex');
    await db.run('INSERT INTO vault_audit (seq, record, prev_hash, hash) VALUES (?, ?, ?, ?)', [seq, record, prev, hash]);
    prev = hash;
  }
  return prev;
}

/** Every statement `fn` issues through `db` (get, all, run), with its parameters. */
async function statementsOf(db: Database, fn: (spy: Database) => Promise<unknown>): Promise<{ sql: string; params: readonly unknown[] }[]> {
  const seen: { sql: string; params: readonly unknown[] }[] = [];
  const spy = new Proxy(db, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop);
      if (typeof v !== 'function') return v;
      if (prop === 'get' || prop === 'all' || prop === 'run')
        return (sql: string, params: readonly unknown[] = []) => {
          seen.push({ sql, params });
          return (v as (s: string, p: readonly unknown[]) => unknown).call(target, sql, params);
        };
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  await fn(spy);
  return seen;
}

/**
 * The plan of a statement, one line per step. PostgreSQL plans with sequential scans off, so that a
 * table as small as a test's still shows an index where one serves the query (and a Seq Scan where none does).
 */
async function planOf(db: Database, sql: string, params: readonly unknown[]): Promise<string> {
  if (db.dialect === 'sqlite') return (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join('\n');
  return db.transaction(async (tx) => {
    await tx.run('SET LOCAL enable_seqscan = off');
    return (await tx.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).map((r) => r['QUERY PLAN']).join('\n');
  });
}

/** Whether a plan finds rows of `table` through an index on leaf_hash (a bounded search), never by scanning the table. */
function searchesByLeafHash(plan: string, table: string): boolean {
  const sqlite = new RegExp(`^SEARCH ${table} USING (COVERING )?INDEX \\w+ \\(leaf_hash=\\?\\)`, 'm');
  // PostgreSQL: an index scan of the table, or a bitmap heap scan of it fed by an index scan; either way the index condition is the leaf hash.
  const postgres = new RegExp(`(Index Scan|Index Only Scan|Bitmap Heap Scan) (using \\w+ )?on ${table}`);
  return !/Seq Scan|^SCAN /m.test(plan) && (sqlite.test(plan) || (postgres.test(plan) && /Index Cond: \(leaf_hash = /.test(plan)));
}

/**
 * Whether a plan's work is bounded by what it returns, not by a table's size: every table is reached
 * through an index condition, or (a statement with no WHERE) walked in index order and stopped by its
 * LIMIT, with no sort of the whole table.
 */
function boundedPlan(plan: string, sql: string): boolean {
  if (/Seq Scan/.test(plan)) return false;
  if (/\bWHERE\b/.test(sql)) return !/^SCAN /m.test(plan) && (/^SEARCH /m.test(plan) || /Index Cond:/.test(plan));
  return /\bLIMIT\b/.test(sql) && !/TEMP B-TREE|Sort/.test(plan);
}

const pgSkip = await postgresUnavailable();
const backends: { name: string; skip: string | undefined; open(): Promise<{ db: Database; open(): Promise<Database>; dispose(): Promise<void> }> }[] = [
  {
    name: 'sqlite',
    skip: undefined,
    async open() {
      const db = await openDatabase('sqlite::memory:');
      return { db, open: async () => db, dispose: () => db.close() };
    },
  },
  {
    name: 'postgres',
    skip: pgSkip,
    async open() {
      const t = await createTestDatabase();
      const opened: Database[] = [];
      const open = async () => {
        const d = await openDatabase(t.url, { poolSize: 8 });
        opened.push(d);
        return d;
      };
      return {
        db: await open(),
        open,
        async dispose() {
          for (const d of opened) await d.close();
          await t.drop();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`transparency log store: ${backend.name}`, { skip: backend.skip }, () => {
    let env: Awaited<ReturnType<(typeof backends)[number]['open']>>;
    let db: Database;
    let chainHead: string;
    const clock = { ms: Date.UTC(2026, 11, 1) };
    before(async () => {
      env = await backend.open();
      db = env.db;
      // The store as it was before the log: the audit chain with 7 records, then the log's migration.
      await db.migrate(MIGRATIONS.filter((m) => m.id < 210 || m.id >= 220));
      chainHead = await writeLegacyChain(db, 7);
      assert.equal(await db.migrate(MIGRATIONS), 9);
    });
    after(async () => env?.dispose());

    test('the migrated audit chain becomes entries 0…6 verbatim, and the chain stays verifiable as the prefix', async () => {
      // Before any sequencer ran: the migrated records verify against the chain, awaiting their batch.
      const waiting = await verifyLog(createLogStore(db), [logKey.publicKey]);
      assert.ok(waiting.ok && waiting.pending === 7 && waiting.entries === 0, JSON.stringify(waiting));
      assert.deepEqual(waiting.chain, { records: 7, head: chainHead });
      const e4 = (await db.get<{ entry: string }>('SELECT entry FROM log_leaves WHERE id = (SELECT leaf_id FROM log_index WHERE idx = 4)'))!.entry;
      await db.run('UPDATE log_leaves SET entry = ? WHERE id = (SELECT leaf_id FROM log_index WHERE idx = 4)', [e4.replace('"create"', '"delete"')]);
      const changed = await verifyLog(createLogStore(db), [logKey.publicKey]);
      assert.equal(changed.ok ? 'ok' : changed.code, 'log.entry_mismatch');
      await db.run('UPDATE log_leaves SET entry = ? WHERE id = (SELECT leaf_id FROM log_index WHERE idx = 4)', [e4]);
      const seq = sequencer(db, 'a', clock);
      assert.equal(await drain(seq, db), 7);
      const result = await verifyLog(createLogStore(db), [logKey.publicKey]);
      assert.ok(result.ok, JSON.stringify(result));
      assert.deepEqual(result.chain, { records: 7, head: chainHead });
      const records = await db.all<{ record: string }>('SELECT record FROM vault_audit ORDER BY seq');
      const leaves = await createLogStore(db).leaves(0, 100);
      assert.deepEqual(leaves.map((l) => l.entry), records.map((r) => r.record));
      assert.deepEqual(leaves.map((l) => l.leafHash.toString('hex')), records.map((r) => hashLeaf(Buffer.from(r.record)).toString('hex')));
      await seq.release();
    });

    test('writers insert with no lock; the sequencer batches them and every proof verifies against a signed head', async () => {
      const seq = sequencer(db, 'a', clock);
      const first = await createLogStore(db).latestHead();
      const leaves = await write(db, 120);
      assert.equal(await createLogStore(db).pendingCount(7), 120);
      clock.ms += 10;
      // What the vault store remembers (roles, keys) stays valid while the sequencer writes only the log's tables.
      const changes = db.changeCounter?.(['log_leaves', 'log_index', 'log_pending', 'log_nodes', 'log_heads', 'log_sequencer']);
      const changedBefore = changes?.();
      const size = await drain(seq, db);
      assert.equal(size, 127);
      assert.equal(changes?.(), changedBefore, 'a sequencer batch counts as a change to the tables the vault store remembers');
      const service = createLogService(createLogStore(db));
      const sth = parseTreeHeadWire(await service.sth());
      checkTreeHead(sth, logKey.publicKey);
      assert.equal(sth.treeSize, 127);
      for (const leaf of [leaves[0]!, leaves[57]!, leaves[119]!]) {
        const p = await service.inclusion(leaf, undefined);
        assert.ok(verifyInclusion(hex(leaf), p.leafIndex, p.treeSize, p.inclusionPath.map(hex), sth.rootHash));
        assert.ok(!verifyInclusion(hex(leaf), p.leafIndex, p.treeSize, p.inclusionPath.map(hex), first!.rootHash));
      }
      const heads = await createLogStore(db).heads(0, 1000);
      assert.ok(heads.length >= 4, 'a batch of at most 50 entries makes one head each');
      for (const h of heads.filter((x) => x.treeSize > 0 && x.treeSize < sth.treeSize)) {
        const c = await service.consistency(h.treeSize, sth.treeSize);
        assert.ok(verifyConsistency(h.treeSize, sth.treeSize, h.rootHash, sth.rootHash, c.consistencyPath.map(hex)), `consistency ${h.treeSize} → ${sth.treeSize}`);
      }
      const page = await service.entries(0, 5000);
      assert.equal(page.entries.length, 127);
      assert.ok(page.entries.every((e) => hashLeaf(Buffer.from(e.entry)).toString('hex') === e.leafHash));
      const verified = await verifyLog(createLogStore(db), [logKey.publicKey]);
      assert.ok(verified.ok && verified.entries === 127 && verified.heads === heads.length, JSON.stringify(verified));
      await seq.release();
    });

    test('under load a batch reads only the waiting leaves outside its transaction (the holder knows its head); a head deleted under it is still met (log.head_missing)', async () => {
      const outside: string[] = [];
      const spy = new Proxy(db, {
        get(target, prop) {
          const v: unknown = Reflect.get(target, prop);
          if (typeof v !== 'function') return v;
          if (prop === 'get' || prop === 'all' || prop === 'run')
            return (sql: string, params: readonly unknown[] = []) => {
              outside.push(sql);
              return (v as (s: string, p: readonly unknown[]) => unknown).call(target, sql, params);
            };
          return (v as (...a: unknown[]) => unknown).bind(target);
        },
      });
      const seq = sequencer(spy, 'a', clock);
      await write(db, 3);
      await drain(seq, db);
      await write(db, 3);
      outside.length = 0;
      await seq.tick();
      // The waiting leaves: SQLite's above the highest indexed id, PostgreSQL's in log_pending.
      assert.deepEqual(outside.map((q) => q.replace(/ .*/, '') + (q.match(/FROM (\w+)/)?.[1] ?? '')), [`SELECT${db.dialect === 'sqlite' ? 'log_leaves' : 'log_pending'}`], outside.join('\n'));
      // A head deleted under the holder: the batch finds its tree changed, reads it afresh and meets the gap.
      await write(db, 3);
      const latest = (await createLogStore(db).latestHead())!;
      const row = await db.get<{ root_hash: string; timestamp_ms: number; key_id: string; signature: string; epoch: number }>('SELECT root_hash, timestamp_ms, key_id, signature, epoch FROM log_heads WHERE tree_size = ?', [latest.treeSize]);
      await db.run('DELETE FROM log_heads WHERE tree_size = ?', [latest.treeSize]);
      await assert.rejects(seq.tick(), (e: { code?: string }) => e.code === 'log.head_missing');
      assert.equal((await createLogStore(db).latestHead())!.treeSize < latest.treeSize, true, 'nothing stored over the deleted head');
      assert.equal(seq.leader, true, 'the lease is kept');
      await db.run('INSERT INTO log_heads (tree_size, root_hash, timestamp_ms, key_id, signature, epoch) VALUES (?, ?, ?, ?, ?, ?)', [latest.treeSize, row!.root_hash, row!.timestamp_ms, row!.key_id, row!.signature, row!.epoch]);
      await drain(seq, db);
      const verified = await verifyLog(createLogStore(db), [logKey.publicKey]);
      assert.ok(verified.ok && verified.pending === 0, JSON.stringify(verified));
      await seq.release();
    });

    test('bad ranges are typed 400s; an unknown or unsequenced leaf is log.leaf_not_found', async () => {
      const service = createLogService(createLogStore(db));
      const code = async (p: Promise<unknown>, c: string) => assert.rejects(p, (e: { code?: string }) => e.code === c);
      await code(service.entries(5, 4), 'log.range_invalid');
      await code(service.entries(10_000, 10_001), 'log.range_invalid');
      await code(service.consistency(0, 5), 'log.range_invalid');
      await code(service.consistency(6, 5), 'log.range_invalid');
      await code(service.consistency(1, 10_000), 'log.range_invalid');
      await code(service.inclusion('zz', undefined), 'log.range_invalid');
      await code(service.inclusion('00'.repeat(32), undefined), 'log.leaf_not_found');
      const [pending] = await write(db, 1);
      await assert.rejects(service.inclusion(pending!, undefined), (e: { code?: string; detail?: { sequenced?: boolean } }) => e.code === 'log.leaf_not_found' && e.detail?.sequenced === false);
      const seq = sequencer(db, 'a', clock);
      await drain(seq, db);
      await seq.release();
      await code(service.inclusion(pending!, 5), 'log.leaf_not_found');
    });

    test('an inclusion lookup is an index search by leaf hash, of sequenced and waiting entries alike (bounded work per unauthenticated request)', async () => {
      const [queued] = await write(db, 3);
      const statements = await statementsOf(db, async (spy) => assert.deepEqual(await createLogStore(spy).findLeaf(hex(queued!)), { index: null }));
      assert.deepEqual(statements.map((s) => /FROM (log_\w+)/.exec(s.sql)?.[1]), ['log_leaves']);
      for (const s of statements) {
        const table = /FROM (log_\w+)/.exec(s.sql)![1]!;
        const plan = await planOf(db, s.sql, s.params);
        assert.ok(searchesByLeafHash(plan, table), `${s.sql}\n→ ${plan}`);
      }
      const seq = sequencer(db, 'a', clock);
      await drain(seq, db);
      await seq.release();
    });

    test('every statement of the public routes (head, inclusion of a sequenced and a queued entry, consistency) is bounded by an index', async () => {
      const [queued] = await write(db, 1);
      const head = (await createLogStore(db).latestHead())!;
      const sequenced = (await createLogStore(db).leaves(head.treeSize - 1, 1))[0]!.leafHash.toString('hex');
      const statements = await statementsOf(db, async (spy) => {
        const service = createLogService(createLogStore(spy));
        await service.sth();
        await service.inclusion(sequenced, undefined);
        await service.inclusion(sequenced, head.treeSize);
        await assert.rejects(service.inclusion(queued!, undefined), (e: { detail?: { sequenced?: boolean } }) => e.detail?.sequenced === false);
        await service.consistency(3, head.treeSize);
      });
      assert.ok(statements.length >= 10, String(statements.length));
      for (const s of statements) {
        const plan = await planOf(db, s.sql, s.params);
        assert.ok(boundedPlan(plan, s.sql), `${s.sql}\n→ ${plan}`);
      }
      // The check can fail: a lookup by a column no index serves is a scan.
      const scan = 'SELECT 1 AS x FROM log_leaves WHERE created_ms = ? LIMIT 1';
      assert.equal(boundedPlan(await planOf(db, scan, [0]), scan), false);
      const seq = sequencer(db, 'a', clock);
      await drain(seq, db);
      await seq.release();
    });

    test('a changed, deleted or reordered entry, a forked head, a head signed by another key and a bad tree node are each typed', async () => {
      const seq = sequencer(db, 'a', clock);
      await drain(seq, db);
      await seq.release();
      const store = createLogStore(db);
      const check = async (code: string) => {
        const r = await verifyLog(store, [logKey.publicKey]);
        assert.equal(r.ok ? 'ok' : r.code, code, JSON.stringify(r));
      };
      await check('ok');
      const row = async (idx: number) => (await db.get<{ leaf_hash: string; entry: string }>('SELECT leaf_hash, entry FROM log_leaves WHERE id = (SELECT leaf_id FROM log_index WHERE idx = ?)', [idx]))!;
      const put = (idx: number, r: { leaf_hash: string; entry: string }) => db.run('UPDATE log_leaves SET leaf_hash = ?, entry = ? WHERE id = (SELECT leaf_id FROM log_index WHERE idx = ?)', [r.leaf_hash, r.entry, idx]);
      const [e20, e21] = [await row(20), await row(21)];

      await put(20, { ...e20, entry: e20.entry.replace('"test"', '"tset"') });
      await check('log.entry_mismatch');
      // Changed with its leaf hash recomputed: the signed heads catch it.
      const forged = e20.entry.replace('"test"', '"tset"');
      await put(20, { entry: forged, leaf_hash: hashLeaf(Buffer.from(forged)).toString('hex') });
      await check('log.root_mismatch');
      await put(20, e21);
      await put(21, e20);
      await check('log.root_mismatch');
      await put(20, e20);
      await put(21, e21);
      await check('ok');

      // A migrated entry that differs from the chain record it came from.
      const e3 = await row(3);
      const legacy = e3.entry.replace('"create"', '"delete"');
      await put(3, { entry: legacy, leaf_hash: hashLeaf(Buffer.from(legacy)).toString('hex') });
      await check('log.entry_mismatch');
      await put(3, e3);

      const latest = (await store.latestHead())!;
      const headRow = await db.get<{ root_hash: string; signature: string; key_id: string }>('SELECT root_hash, signature, key_id FROM log_heads WHERE tree_size = ?', [latest.treeSize]);
      // A forked head: another root for the same size, validly signed.
      const forkRoot = createHash('sha256').update('fork').digest();
      const forkSig = sign('sha256', encodeTreeHead({ ...latest, rootHash: forkRoot }), { key: logKey.privateKey, dsaEncoding: 'ieee-p1363' });
      await db.run('UPDATE log_heads SET root_hash = ?, signature = ? WHERE tree_size = ?', [forkRoot.toString('hex'), forkSig.toString('base64'), latest.treeSize]);
      await check('log.root_mismatch');
      // The right root, signed by another key (named as itself, or as the log key).
      const otherSig = Buffer.from(await otherKey.sign(encodeTreeHead(latest))).toString('base64');
      await db.run('UPDATE log_heads SET root_hash = ?, signature = ?, key_id = ? WHERE tree_size = ?', [headRow!.root_hash, otherSig, otherKey.keyId, latest.treeSize]);
      await check('log.signature_invalid');
      await db.run('UPDATE log_heads SET key_id = ? WHERE tree_size = ?', [logKey.keyId, latest.treeSize]);
      await check('log.signature_invalid');
      await db.run('UPDATE log_heads SET signature = ? WHERE tree_size = ?', [headRow!.signature, latest.treeSize]);
      await check('ok');

      // A stored node that proofs would be served from.
      const node = await db.get<{ level: number; idx: number; hash: string }>('SELECT level, idx, hash FROM log_nodes WHERE level = 3 ORDER BY idx LIMIT 1');
      await db.run('UPDATE log_nodes SET hash = ? WHERE level = ? AND idx = ?', ['11'.repeat(32), node!.level, node!.idx]);
      await check('log.root_mismatch');
      await db.run('UPDATE log_nodes SET hash = ? WHERE level = ? AND idx = ?', [node!.hash, node!.level, node!.idx]);

      const last = await row(latest.treeSize - 1);
      const lastId = (await db.get<{ leaf_id: number }>('SELECT leaf_id FROM log_index WHERE idx = ?', [latest.treeSize - 1]))!.leaf_id;
      await db.run('DELETE FROM log_index WHERE idx = ?', [latest.treeSize - 1]);
      await check('log.entry_missing');
      await db.run('INSERT INTO log_index (idx, leaf_id) VALUES (?, ?)', [latest.treeSize - 1, lastId]);
      await check('ok');
      // Another entry (with its own leaf hash) in its place.
      await put(latest.treeSize - 1, e20);
      await check('log.root_mismatch');
      await put(latest.treeSize - 1, last);
      await check('ok');
    });

    test('a deleted signed head: the verifier names it (log.head_missing), and no sequencer signs over the entries beyond it', async () => {
      // A sequencer that has stored batches, and keeps running.
      const running = sequencer(db, 'a', clock);
      await write(db, 3);
      await drain(running, db);
      const store = createLogStore(db);
      const latest = (await store.latestHead())!;
      const row = await db.get<{ root_hash: string; timestamp_ms: number; key_id: string; signature: string }>('SELECT root_hash, timestamp_ms, key_id, signature FROM log_heads WHERE tree_size = ?', [latest.treeSize]);
      await db.run('DELETE FROM log_heads WHERE tree_size = ?', [latest.treeSize]);
      const r = await verifyLog(store, [logKey.publicKey]);
      assert.equal(r.ok ? 'ok' : r.code, 'log.head_missing', JSON.stringify(r));
      // The running sequencer does not extend the tree over the gap either.
      await write(db, 1);
      await assert.rejects(running.tick(), (e: { code?: string }) => e.code === 'log.head_missing');
      await running.release();
      // A replica started now (it has never sequenced) must not take those entries for migrated chain records and sign them.
      const fresh = sequencer(db, 'fresh', clock);
      await assert.rejects(fresh.tick(), (e: { code?: string }) => e.code === 'log.head_missing');
      assert.ok((await store.latestHead())!.treeSize < latest.treeSize, 'no head was signed over the unsigned entries');
      await fresh.release();
      await db.run('INSERT INTO log_heads (tree_size, root_hash, timestamp_ms, key_id, signature) VALUES (?, ?, ?, ?, ?)', [latest.treeSize, row!.root_hash, row!.timestamp_ms, row!.key_id, row!.signature]);
      const ok = await verifyLog(store, [logKey.publicKey]);
      assert.ok(ok.ok, JSON.stringify(ok));
    });

    test('the lease: one holder at a time, hand-over on stop, take-over after a dead holder, a stale holder fenced out', async () => {
      const d1 = await env.open();
      const d2 = await env.open();
      // The sequencers of the tests above stopped and gave the lease up.
      const a = sequencer(d1, 'replica-a', clock);
      const b = sequencer(d2, 'replica-b', clock);
      await a.tick();
      await b.tick();
      assert.equal(a.leader, true);
      assert.equal(b.leader, false);
      await write(db, 10);
      await b.tick();
      assert.equal(b.leader, false);
      await a.tick();
      // Hand-over: a stops cleanly; b takes the lease at once.
      await a.release();
      await b.tick();
      assert.equal(b.leader, true);
      // b dies (no release); a new replica c waits until the lease expires, then takes over.
      const c = sequencer(d1, 'replica-c', clock);
      await c.tick();
      assert.equal(c.leader, false);
      clock.ms += 1001;
      await c.tick();
      assert.equal(c.leader, true);
      // b wakes up believing it holds the lease: its batch finds the epoch moved and stores nothing.
      await write(db, 5);
      await b.tick();
      assert.equal(b.leader, false);
      await drain(c, db);
      const r = await verifyLog(createLogStore(db), [logKey.publicKey]);
      assert.ok(r.ok && r.pending === 0, JSON.stringify(r));
      await c.release();
    });

    test('a truncated log verifies from the store alone, but not against a head kept from before (log.inconsistent); a kept head must be signed', async () => {
      const store = createLogStore(db);
      const heads = await store.heads(0, 10_000);
      const kept = heads.at(-1)!;
      const cut = heads.at(-3)!;
      // Whoever can write the store cuts the log back to an earlier head: entries, nodes and heads beyond it.
      await db.run('DELETE FROM log_heads WHERE tree_size > ?', [cut.treeSize]);
      // Index rows first: on SQLite the newest leaf cannot be deleted while indexed (migration 216).
      const cutLeaves = await db.all<{ leaf_id: number }>('SELECT leaf_id FROM log_index WHERE idx >= ?', [cut.treeSize]);
      await db.run('DELETE FROM log_index WHERE idx >= ?', [cut.treeSize]);
      for (const l of cutLeaves) await db.run('DELETE FROM log_leaves WHERE id = ?', [l.leaf_id]);
      const nodes = await db.all<{ level: number; idx: number }>('SELECT level, idx FROM log_nodes');
      for (const n of nodes.filter((x) => (Number(x.idx) + 1) * 2 ** Number(x.level) > cut.treeSize)) await db.run('DELETE FROM log_nodes WHERE level = ? AND idx = ?', [n.level, n.idx]);
      const alone = await verifyLog(store, [logKey.publicKey]);
      assert.ok(alone.ok && alone.treeSize === cut.treeSize, JSON.stringify(alone));
      const against = async (known: SignedTreeHead) => {
        const r = await verifyLog(store, [logKey.publicKey], { knownHeads: [known] });
        return r.ok ? 'ok' : r.code;
      };
      assert.equal(await against(kept), 'log.inconsistent');
      assert.equal(await against(cut), 'ok');
      // A head of a size the log has, with another root: a fork.
      const forkRoot = createHash('sha256').update('fork').digest();
      const fork = { ...heads.at(-4)!, rootHash: forkRoot };
      const forkSig = sign('sha256', encodeTreeHead(fork), { key: logKey.privateKey, dsaEncoding: 'ieee-p1363' });
      assert.equal(await against({ ...fork, signature: forkSig }), 'log.inconsistent');
      // A kept head that the log key did not sign proves nothing.
      assert.equal(await against({ ...kept, signature: Buffer.from(await otherKey.sign(encodeTreeHead(kept))) }), 'log.signature_invalid');
    });
  });
}
