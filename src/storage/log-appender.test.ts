/**
 * The group-commit appender of the transparency log on both stores: concurrent appends share commits,
 * every acknowledged entry is stored (read back through another connection), a failed commit fails
 * every writer of its batch and stores none of it; on SQLite an append is answered only after the WAL
 * flush that covers its commit, and a failed flush fails the store.
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, postgresUnavailable } from '../../test/helpers/postgres.js';
import { signal } from '../../test/helpers/signal.js';
import { hashLeaf } from '../log/merkle.js';
import { createSequencer } from '../log/sequencer.js';
import { type LogSigner, logKeyId } from '../log/tree-head.js';
import type { Database } from './database.js';
import { createLogAppender, createLogStore } from './log-store.js';
import { MIGRATIONS } from './migrations/index.js';
import { openDatabase } from './open.js';
import { openSqlite } from './sqlite.js';
import { generateEcKeyPair } from '../core/keygen.js';

const entry = (i: number) => JSON.stringify({ operation: 'release', n: i, entryId: `${process.pid}-${i}-${Math.random()}` });

async function queued(db: Database): Promise<Set<string>> {
  return new Set((await db.all<{ leaf_hash: string }>('SELECT leaf_hash FROM log_queue')).map((r) => r.leaf_hash));
}

/** Makes the INSERT of an entry that contains "poison" fail inside the store. */
async function poisonTrigger(db: Database): Promise<void> {
  if (db.dialect === 'sqlite') {
    await db.run(`CREATE TRIGGER poison BEFORE INSERT ON log_leaves WHEN NEW.entry LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poisoned entry'); END`);
  } else {
    await db.run(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.entry LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned entry'; END IF; RETURN NEW; END $$`);
    await db.run('CREATE TRIGGER poison BEFORE INSERT ON log_leaves FOR EACH ROW EXECUTE FUNCTION poison()');
  }
}

const pgSkip = await postgresUnavailable();
const backends = [
  {
    name: 'sqlite (WAL file)',
    skip: undefined as string | undefined,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'conclave-appender-'));
      const url = `sqlite:${join(dir, 'store.db')}`;
      const db = await openDatabase(url);
      // A second connection to the same file: it sees only what was committed.
      const other = () => openDatabase(url);
      return { db, other, dispose: async () => {
          await db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    skip: pgSkip,
    async open() {
      const t = await createTestDatabase();
      const db = await openDatabase(t.url, { poolSize: 4 });
      return { db, other: () => openDatabase(t.url, { poolSize: 1 }), dispose: async () => {
          await db.close();
          await t.drop();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`log appender (group commit): ${backend.name}`, { skip: backend.skip }, () => {
    let env: Awaited<ReturnType<(typeof backends)[number]['open']>>;
    before(async () => {
      env = await backend.open();
      await env.db.migrate(MIGRATIONS);
    });
    after(() => env?.dispose());

    test('64 concurrent appends share fewer than 64 commits; every acknowledged entry is stored with its leaf hash', async () => {
      const appender = createLogAppender(env.db);
      const entries = Array.from({ length: 64 }, (_, i) => entry(i));
      const receipts = await Promise.all(entries.map((e) => appender.append(e, Date.now())));
      assert.ok(appender.stats.commits < 64, `${appender.stats.commits} commits for 64 appends`);
      assert.equal(appender.stats.items, 64);
      receipts.forEach((r, i) => {
        assert.equal(r.entry, entries[i]);
        assert.equal(r.leafHash, hashLeaf(Buffer.from(entries[i]!, 'utf8')).toString('hex'));
      });
      const reader = await env.other();
      try {
        const stored = await queued(reader);
        for (const r of receipts) assert.ok(stored.has(r.leafHash), `entry ${r.leafHash} acknowledged but not stored`);
      } finally {
        await reader.close();
      }
    });

    test('appends arriving while a commit is in flight share the next one', async () => {
      const appender = createLogAppender(env.db);
      const waves = [];
      for (let w = 0; w < 4; w++) {
        waves.push(...Array.from({ length: 16 }, (_, i) => appender.append(entry(100 + w * 16 + i), Date.now())));
        await new Promise((r) => setImmediate(r));
      }
      await Promise.all(waves);
      assert.ok(appender.stats.commits < 64 && appender.stats.largestBatch > 1, JSON.stringify(appender.stats));
    });

    test('a failed commit fails every append of its batch and stores none of them; the next batch commits', async () => {
      await poisonTrigger(env.db);
      const appender = createLogAppender(env.db);
      const batch = [entry(200), 'poison', entry(201)];
      const results = await Promise.allSettled(batch.map((e) => appender.append(e, Date.now())));
      assert.deepEqual(
        results.map((r) => r.status),
        ['rejected', 'rejected', 'rejected'],
      );
      assert.equal(appender.stats.commits, 1);
      const stored = await queued(env.db);
      for (const e of batch) assert.ok(!stored.has(hashLeaf(Buffer.from(e, 'utf8')).toString('hex')), 'a failed batch stored an entry');
      const ok = await appender.append(entry(202), Date.now());
      assert.ok((await queued(env.db)).has(ok.leafHash));
    });

    test('an append that waited behind one transaction is not made part of the next: its rollback leaves the acknowledged entry stored', async () => {
      const appender = createLogAppender(env.db);
      const [gate, release] = signal();
      const [isOpen, opened] = signal();
      // A transaction open when the append comes (the sequencer's, a key operation's), a second one queued behind it.
      const first = env.db.transaction(async (tx) => {
        await tx.get('SELECT 1 AS x');
        opened();
        await gate;
      });
      await isOpen;
      const appended = appender.append(entry(300), Date.now());
      await new Promise((r) => setImmediate(r));
      const second = assert.rejects(
        env.db.transaction(async () => {
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      release();
      await first;
      const receipt = await appended;
      await second;
      const reader = await env.other();
      try {
        assert.ok((await queued(reader)).has(receipt.leafHash), 'acknowledged as durable, then rolled back with a transaction it was no part of');
      } finally {
        await reader.close();
      }
    });
  });
}

describe('SQLite durability: an append is answered only after the WAL flush that covers it', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'conclave-durable-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A flush the test opens (or fails) by hand; `flushes` counts the flushes of the WAL (fd) asked for. */
  function heldFlush() {
    const waiting: Array<{ resolve(): void; reject(e: Error): void }> = [];
    let flushes = 0;
    return {
      waiting,
      get flushes() {
        return flushes;
      },
      fsync: (_fd: number) =>
        new Promise<void>((resolve, reject) => {
          flushes++;
          waiting.push({ resolve, reject });
        }),
      async openAll() {
        while (waiting.length > 0) {
          waiting.shift()!.resolve();
          await new Promise((r) => setImmediate(r));
        }
      },
    };
  }

  const tick = () => new Promise((r) => setTimeout(r, 20));

  test('committed but not flushed: not acknowledged; one flush acknowledges a whole batch', async () => {
    const path = join(dir, 'held.db');
    const plain = openSqlite(path);
    await plain.migrate(MIGRATIONS);
    await plain.close();
    const flush = heldFlush();
    const db = openSqlite(path, { fsync: flush.fsync });
    const appender = createLogAppender(db);
    let answered = 0;
    const appends = Array.from({ length: 32 }, (_, i) => appender.append(entry(300 + i), Date.now()).then((r) => {
        answered++;
        return r;
      }),
    );
    await tick();
    // The batch is committed (another connection reads it) but its flush has not returned: nobody is answered.
    const reader = openSqlite(path);
    assert.equal((await queued(reader)).size, 32);
    assert.equal(answered, 0);
    assert.ok(flush.waiting.length >= 1);
    await flush.openAll();
    const receipts = await Promise.all(appends);
    assert.equal(answered, 32);
    assert.equal(receipts.length, 32);
    // The directory entry once, then the WAL once for the batch of 32.
    assert.ok(flush.flushes <= 3, `${flush.flushes} flushes for one batch`);
    await reader.close();
    await db.close();
  });

  test('a failed flush fails every append waiting on it, and every later commit (the page cache is in doubt)', async () => {
    const path = join(dir, 'failing.db');
    const plain = openSqlite(path);
    await plain.migrate(MIGRATIONS);
    await plain.close();
    const flush = heldFlush();
    const db = openSqlite(path, { fsync: flush.fsync });
    const appender = createLogAppender(db);
    const appends = Array.from({ length: 8 }, (_, i) => appender.append(entry(400 + i), Date.now()));
    await tick();
    while (flush.waiting.length > 0) flush.waiting.shift()!.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const results = await Promise.allSettled(appends);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'store.unavailable');
    }
    await assert.rejects(appender.append(entry(499), Date.now()), (e: { code?: string }) => e.code === 'store.unavailable');
    await assert.rejects(
      db.transaction(async (tx) => tx.run('DELETE FROM log_leaves')),
      (e: { code?: string }) => e.code === 'store.unavailable',
    );
    await db.close();
  });

  test('a WAL file removed from outside fails the store at a later flush: nothing after it is acknowledged', async () => {
    const path = join(dir, 'removed.db');
    const db = openSqlite(path);
    await db.migrate(MIGRATIONS);
    const appender = createLogAppender(db);
    await appender.append(entry(500), Date.now());
    // SQLite goes on writing the removed file; flushing it would make nothing durable under the WAL's name.
    rmSync(`${path}-wal`);
    // Past the interval at which a flush looks at the WAL file (src/storage/sqlite.ts, WAL_CHECK_MS).
    await new Promise((r) => setTimeout(r, 60));
    await assert.rejects(appender.append(entry(501), Date.now()), (e: { code?: string }) => e.code === 'store.unavailable');
    await assert.rejects(appender.append(entry(502), Date.now()), (e: { code?: string }) => e.code === 'store.unavailable');
    await db.close();
  });
  test('attack: a WAL file removed and another put under its name (a second process opening the store creates one): nothing after it is acknowledged', async () => {
    const path = join(dir, 'replaced.db');
    const db = openSqlite(path, { checkpoint: { walCheckMs: 0 } });
    await db.migrate(MIGRATIONS);
    const appender = createLogAppender(db);
    await appender.append(entry(600), Date.now());
    // SQLite goes on writing the removed file (its descriptor); flushing the new one makes none of it durable.
    rmSync(`${path}-wal`);
    writeFileSync(`${path}-wal`, '', { mode: 0o600 });
    await assert.rejects(appender.append(entry(601), Date.now()), (e: { code?: string }) => e.code === 'store.unavailable');
    await assert.rejects(appender.append(entry(602), Date.now()), (e: { code?: string }) => e.code === 'store.unavailable');
    await db.close();
  });
});

describe('no store lock while the sequencer reads and hashes its batch (SQLite: one writer)', () => {
  // The head's signature is the one step inside the batch's transaction: it must be made under the lease
  // (test/integration/scaleout/stale-sequencer.test.ts), so writers wait for one signature per batch.
  // Everything before it (reading the state, the tree's edge and the queue, the Merkle hashes) holds no lock.
  test('appends commit while the sequencer reads the tree it extends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-seq-lock-'));
    const db = openSqlite(join(dir, 'store.db'));
    try {
      await db.migrate(MIGRATIONS);
      const appender = createLogAppender(db);
      const { privateKey, publicKey } = generateEcKeyPair('P-256');
      const signer: LogSigner = { keyId: logKeyId(publicKey), publicKey, sign: async (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) };
      const options = { signer: async () => signer, nowMs: () => Date.now(), batchMs: 5, leaseMs: 60_000, maxBatch: 50 };
      // A first sequencer signs a head over three entries and gives the lease up.
      for (let i = 0; i < 3; i++) await appender.append(entry(500 + i), Date.now());
      const first = createSequencer({ ...options, store: createLogStore(db), holder: 'a' });
      await first.tick();
      await first.release();
      // The next one reads the stored edge of that tree before it appends; the read is held there.
      await appender.append(entry(503), Date.now());
      const [read, reading] = signal();
      const [held, release] = signal();
      const inner = createLogStore(db);
      const store = {
        ...inner,
        async readNodes(nodes: Parameters<typeof inner.readNodes>[0]) {
          reading();
          await held;
          return inner.readNodes(nodes);
        },
      };
      const seq = createSequencer({ ...options, store, holder: 'b' });
      const tick = seq.tick();
      await read;
      const during = await Promise.race([appender.append(entry(504), Date.now()).then(() => 'stored'), new Promise((r) => setTimeout(() => r('waited for the sequencer'), 2000))]);
      release();
      await tick;
      assert.equal(during, 'stored');
      const head = await db.get<{ tree_size: number }>('SELECT MAX(tree_size) AS tree_size FROM log_heads');
      assert.ok(Number(head?.tree_size) >= 4, `the batch was stored (head ${head?.tree_size})`);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
