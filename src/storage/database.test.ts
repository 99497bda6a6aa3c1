import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, postgresUnavailable, type TestDatabase } from '../../test/helpers/postgres.js';
import { signal } from '../../test/helpers/signal.js';
import { isConclaveError } from '../core/errors.js';
import { type Database, type Migration, type Transaction, bumpVersion, readVersion, renderSql, versionedCache, withRetry } from './database.js';
import { openDatabase } from './open.js';
import { MIGRATIONS } from './migrations/index.js';

const SCHEMA: readonly Migration[] = [
  {
    id: 1,
    name: 'contract tables',
    sql: `
CREATE TABLE items (
  id TEXT PRIMARY KEY,
  n {{bigint}},
  body {{blob}},
  note TEXT,
  flag INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value {{bigint}} NOT NULL);
CREATE TABLE seqs (id {{serial}}, label TEXT NOT NULL);`,
  },
  { id: 2, name: 'change versions', sql: 'CREATE TABLE change_versions (name TEXT PRIMARY KEY, version {{bigint}} NOT NULL);' },
];

interface Backend {
  readonly name: 'sqlite' | 'postgres';
  /** A fresh, empty database; `reopen` opens another connection (pool) on the same one. */
  fresh(): Promise<{ db: Database; reopen(): Promise<Database>; dispose(): Promise<void> }>;
}

const sqlite: Backend = {
  name: 'sqlite',
  async fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-store-'));
    const url = `sqlite:${join(dir, 'store.db')}`;
    const opened: Database[] = [];
    const open = async () => {
      const d = await openDatabase(url);
      opened.push(d);
      return d;
    };
    return {
      db: await open(),
      reopen: open,
      async dispose() {
        for (const d of opened) await d.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const postgres: Backend = {
  name: 'postgres',
  async fresh() {
    const t: TestDatabase = await createTestDatabase();
    const opened: Database[] = [];
    const open = async () => {
      const d = await openDatabase(t.url, { poolSize: 12 });
      opened.push(d);
      return d;
    };
    return {
      db: await open(),
      reopen: open,
      async dispose() {
        for (const d of opened) await d.close();
        await t.drop();
      },
    };
  },
};

const pgSkip = await postgresUnavailable();

for (const backend of [sqlite, postgres]) {
  describe(`store contract: ${backend.name}`, { skip: backend.name === 'postgres' ? pgSkip : undefined }, () => {
    let db: Database;
    let env: Awaited<ReturnType<Backend['fresh']>>;
    before(async () => {
      env = await backend.fresh();
      db = env.db;
      assert.equal(await db.migrate(SCHEMA), 2);
    });
    after(async () => {
      await env?.dispose();
    });

    test('reports its dialect', () => {
      assert.equal(db.dialect, backend.name);
    });

    test('round-trips every portable type', async () => {
      const big = 2 ** 40 + 7; // > 2^31: must not be truncated to 32 bits
      const body = Buffer.from([0, 1, 2, 255, 254]);
      await db.run('INSERT INTO items (id, n, body, note, flag) VALUES (?, ?, ?, ?, ?)', ['a', big, body, 'héllo', true]);
      await db.run('INSERT INTO items (id, n, body, note, flag) VALUES (?, ?, ?, ?, ?)', ['b', null, new Uint8Array([9, 8]), null, false]);
      await db.run('INSERT INTO items (id, n) VALUES (?, ?)', ['max', Number.MAX_SAFE_INTEGER]);
      await db.run('INSERT INTO items (id, n) VALUES (?, ?)', ['huge', 2n ** 62n]);
      const a = await db.get<{ n: number; body: Uint8Array; note: string; flag: number }>('SELECT n, body, note, flag FROM items WHERE id = ?', ['a']);
      assert.deepEqual({ n: a?.n, body: Buffer.from(a?.body ?? []), note: a?.note, flag: a?.flag }, { n: big, body, note: 'héllo', flag: 1 });
      assert.equal(typeof a?.n, 'number');
      const b = await db.get<{ n: unknown; body: Uint8Array; note: unknown; flag: number }>('SELECT n, body, note, flag FROM items WHERE id = ?', ['b']);
      assert.deepEqual({ n: b?.n, body: [...(b?.body ?? [])], note: b?.note, flag: b?.flag }, { n: null, body: [9, 8], note: null, flag: 0 });
      assert.equal((await db.get<{ n: number }>('SELECT n FROM items WHERE id = ?', ['max']))?.n, Number.MAX_SAFE_INTEGER);
      assert.equal((await db.get<{ n: bigint }>('SELECT n FROM items WHERE id = ?', ['huge']))?.n, 2n ** 62n);
      const count = await db.get<{ c: number; s: number }>('SELECT COUNT(*) AS c, SUM(n) AS s FROM items WHERE id IN (?, ?)', ['a', 'max']);
      // Past 2^53 both drivers answer an exact bigint rather than a rounded number.
      assert.deepEqual(count, { c: 2, s: BigInt(big) + BigInt(Number.MAX_SAFE_INTEGER) });
      assert.equal(typeof count?.c, 'number');
      const rows = await db.all<{ id: string }>('SELECT id FROM items ORDER BY id');
      assert.deepEqual(rows.map((r) => r.id), ['a', 'b', 'huge', 'max']);
      assert.equal((await db.run('UPDATE items SET note = ? WHERE id IN (?, ?)', ['x', 'a', 'b'])).changes, 2);
      assert.equal((await db.run('DELETE FROM items WHERE id = ?', ['nope'])).changes, 0);
      assert.equal(await db.get('SELECT id FROM items WHERE id = ?', ['nope']), undefined);
    });

    test('ON CONFLICT upserts insert once, then update or do nothing', async () => {
      const upsert = 'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value';
      await db.run(upsert, ['u', 5]);
      await db.run(upsert, ['u', 7]);
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['u']))?.value, 12);
      const r = await db.run('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', ['u', 100]);
      assert.equal(r.changes, 0);
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['u']))?.value, 12);
    });

    test('serial keys are assigned in order', async () => {
      await db.run('INSERT INTO seqs (label) VALUES (?)', ['first']);
      await db.run('INSERT INTO seqs (label) VALUES (?)', ['second']);
      const rows = await db.all<{ id: number; label: string }>('SELECT id, label FROM seqs ORDER BY id');
      assert.deepEqual(rows.map((r) => r.label), ['first', 'second']);
      assert.ok(rows[0] && rows[1] && typeof rows[0].id === 'number' && rows[1].id > rows[0].id);
    });

    test('a transaction commits all its writes', async () => {
      const r = await db.transaction(async (tx) => {
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['t1', 1]);
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['t2', 2]);
        return (await tx.get<{ c: number }>("SELECT COUNT(*) AS c FROM counters WHERE name IN ('t1', 't2')"))?.c;
      });
      assert.equal(r, 2);
      assert.equal((await db.get<{ c: number }>("SELECT COUNT(*) AS c FROM counters WHERE name IN ('t1', 't2')"))?.c, 2);
    });

    test('a transaction whose body throws midway leaves no partial write', async () => {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['r1', 1]);
          await tx.run('UPDATE counters SET value = 99 WHERE name = ?', ['t1']);
          await new Promise((resolve) => setTimeout(resolve, 5));
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await db.get('SELECT name FROM counters WHERE name = ?', ['r1']), undefined);
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['t1']))?.value, 1);
      // A failing statement (duplicate key) also rolls back what came before it.
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['r2', 1]);
          await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['t1', 1]);
        }),
      );
      assert.equal(await db.get('SELECT name FROM counters WHERE name = ?', ['r2']), undefined);
    });

    test('reads outside a transaction never see its uncommitted writes', async () => {
      const [gate, release] = signal();
      const [didInsert, inserted] = signal();
      const tx = db.transaction(async (t) => {
        await t.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['dirty', 1]);
        inserted();
        await gate;
        throw new Error('abort');
      });
      await didInsert;
      const read = db.get('SELECT name FROM counters WHERE name = ?', ['dirty']);
      release();
      await assert.rejects(tx, /abort/);
      assert.equal(await read, undefined);
    });

    test('a call on the database from inside the body joins its transaction, twice in a row', async () => {
      for (const round of [1, 2]) {
        await assert.rejects(
          db.transaction(async (tx) => {
            await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', [`join${round}`, 1]);
            await new Promise((resolve) => setTimeout(resolve, 2));
            // Code without tx: it sees the uncommitted write, and a nested transaction is this one.
            assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', [`join${round}`]))?.value, 1);
            await db.transaction(async (inner) => {
              await inner.run('INSERT INTO counters (name, value) VALUES (?, ?)', [`nested${round}`, 1]);
            });
            await db.run('INSERT INTO counters (name, value) VALUES (?, ?)', [`bare${round}`, 1]);
            throw new Error('roll back');
          }),
          /roll back/,
        );
        // All of it rolled back with the transaction it joined.
        for (const n of [`join${round}`, `nested${round}`, `bare${round}`]) assert.equal(await db.get('SELECT name FROM counters WHERE name = ?', [n]), undefined);
      }
    });

    test('a transaction handle used after its transaction ended runs nothing, even inside another transaction', async () => {
      let leaked!: Transaction;
      await db.transaction(async (tx) => {
        leaked = tx;
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['leak0', 1]);
      });
      await assert.rejects(leaked.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['leak1', 1]), (e) => isConclaveError(e, 'internal'));
      await assert.rejects(leaked.get('SELECT 1 AS x'), (e) => isConclaveError(e, 'internal'));
      await assert.rejects(leaked.lock('leak'), (e) => isConclaveError(e, 'internal'));
      // Used while another transaction is open, it must not land in that one either.
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['leak2', 1]);
          await assert.rejects(leaked.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['leak3', 1]), (e) => isConclaveError(e, 'internal'));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['leak0']))?.value, 1);
      for (const n of ['leak1', 'leak2', 'leak3']) assert.equal(await db.get('SELECT name FROM counters WHERE name = ?', [n]), undefined);
    });

    test('a continuation left from an ended transaction does not join the next one', async () => {
      const [gate, release] = signal();
      let leftover!: Promise<unknown>;
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['left0', 1]);
        // Started in this transaction's context, not awaited: it runs after the transaction ended.
        leftover = (async () => {
          await gate;
          return db.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['left1', 1]);
        })();
      });
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['left2', 1]);
          release();
          await new Promise((resolve) => setTimeout(resolve, 20));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      await leftover;
      // The leftover write stood on its own: not rolled back with the transaction open when it ran.
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['left1']))?.value, 1);
      assert.equal(await db.get('SELECT name FROM counters WHERE name = ?', ['left2']), undefined);
    });

    test('a statement that waited behind one transaction does not land in the next one', async () => {
      const [gate, release] = signal();
      const [isOpen, opened] = signal();
      const first = db.transaction(async (tx) => {
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['wait0', 1]);
        opened();
        await gate;
      });
      await isOpen;
      // From outside, while the first is open (SQLite: it waits), and a second transaction queued behind it.
      const outside = db.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['wait1', 1]);
      const second = db.transaction(async (tx) => {
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['wait2', 1]);
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new Error('roll back');
      });
      release();
      await first;
      assert.equal((await outside).changes, 1);
      await assert.rejects(second, /roll back/);
      // Acknowledged on its own: the rollback of a transaction it was no part of does not undo it.
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['wait1']))?.value, 1);
      assert.equal(await db.get('SELECT name FROM counters WHERE name = ?', ['wait2']), undefined);
    });

    test('of two transactions open at once, the first ending leaves the second joined, and its leftovers join neither', async () => {
      const [firstGate, endFirst] = signal();
      const [firstDone, firstEnded] = signal();
      const [leftGo, go] = signal();
      let leftover!: Promise<unknown>;
      const first = db.transaction(async (tx) => {
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['both1', 1]);
        // Started in the first's context, not awaited: it runs while only the second is open.
        leftover = (async () => {
          await leftGo;
          return db.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['bothleft', 1]);
        })();
        await firstGate;
      });
      const second = db.transaction(async (tx) => {
        await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['both2', 1]);
        endFirst();
        await firstDone;
        go();
        await new Promise((resolve) => setTimeout(resolve, 20));
        // Bare calls from inside the second, after the first ended (PostgreSQL: the join guard still follows the second).
        assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['both2']))?.value, 1);
        await db.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['both3', 1]);
        await db.transaction(async (inner) => {
          await inner.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['both4', 1]);
        });
        throw new Error('roll back');
      });
      // SQLite serialises them: the second opens once the first ended.
      if (backend.name === 'sqlite') endFirst();
      await first;
      firstEnded();
      await assert.rejects(second, /roll back/);
      await leftover;
      for (const n of ['both2', 'both3', 'both4']) assert.equal(await db.get('SELECT name FROM counters WHERE name = ?', [n]), undefined, n);
      for (const n of ['both1', 'bothleft']) assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', [n]))?.value, 1, n);
    });

    test('joinable: false: a call on the database from inside the body is not part of the transaction', async () => {
      let read!: Promise<unknown>;
      await assert.rejects(
        db.transaction(
          async (tx) => {
            await tx.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['unjoined', 1]);
            // Not awaited here: on SQLite it waits for this transaction to end.
            read = db.get('SELECT name FROM counters WHERE name = ?', ['unjoined']);
            await new Promise((resolve) => setTimeout(resolve, 10));
            throw new Error('roll back');
          },
          { joinable: false },
        ),
        /roll back/,
      );
      assert.equal(await read, undefined);
    });

    test('10 concurrent tasks × 50 increments give exactly 500', async () => {
      await db.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['race', 0]);
      const other = await env.reopen(); // a second pool/connection, like a second replica
      const task = async (d: Database) => {
        for (let i = 0; i < 50; i++) {
          await db.dialect; // keep the loop async even where a driver resolves synchronously
          await d.transaction(async (tx) => {
            await tx.lock('counter:race');
            const row = await tx.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['race']);
            await new Promise((resolve) => setImmediate(resolve)); // widen the read-modify-write window
            await tx.run('UPDATE counters SET value = ? WHERE name = ?', [Number(row?.value) + 1, 'race']);
          });
        }
      };
      await Promise.all(Array.from({ length: 10 }, (_, i) => task(i % 2 === 0 ? db : other)));
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['race']))?.value, 500);
    });

    test('migrations are idempotent and record what ran', async () => {
      assert.equal(await db.migrate(SCHEMA), 0);
      const extra: Migration = { id: 3, name: 'extra', sql: 'CREATE TABLE extra (k TEXT PRIMARY KEY);' };
      assert.equal(await db.migrate([...SCHEMA, extra]), 1);
      assert.equal(await db.migrate([...SCHEMA, extra]), 0);
      const ids = await db.all<{ id: number }>('SELECT id FROM schema_migrations ORDER BY id');
      assert.deepEqual(ids.map((r) => r.id), [1, 2, 3]);
    });

    test('a failing migration applies nothing of itself and is not recorded', async () => {
      const bad: Migration = { id: 4, name: 'bad', sql: 'CREATE TABLE half (k TEXT); CREATE TABLE half (k TEXT);' };
      await assert.rejects(db.migrate([...SCHEMA, bad]));
      assert.equal(await db.get('SELECT id FROM schema_migrations WHERE id = ?', [4]), undefined);
      // The first statement was rolled back with the migration, so a corrected one applies cleanly.
      assert.equal(await db.migrate([...SCHEMA, { id: 4, name: 'fixed', sql: 'CREATE TABLE half (k TEXT);' }]), 1);
    });

    test('change versions bump in the transaction and are read by every connection', async () => {
      assert.equal(await readVersion(db, 'contract'), 0);
      assert.equal(await db.transaction((tx) => bumpVersion(tx, 'contract')), 1);
      assert.equal(await db.transaction((tx) => bumpVersion(tx, 'contract')), 2);
      await assert.rejects(
        db.transaction(async (tx) => {
          await bumpVersion(tx, 'contract');
          throw new Error('rolled back');
        }),
      );
      const other = await env.reopen();
      assert.equal(await readVersion(other, 'contract'), 2);
      let t = 0;
      let loads = 0;
      const cache = versionedCache(other, 'contract', async () => ++loads, { maxStalenessMs: 1000, now: () => t });
      assert.equal(await cache.get(), 1);
      await db.transaction((tx) => bumpVersion(tx, 'contract'));
      assert.equal(await cache.get(), 1, 'within the staleness bound the cached value may be served');
      t = 1000;
      assert.equal(await cache.get(), 2, 'past the bound the new version is seen');
      assert.equal(await cache.get(), 2);
    });

    test('a serialization failure is store.conflict, and withRetry repeats the transaction', { skip: backend.name !== 'postgres' }, async () => {
      await db.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['ser', 0]);
      let tries = 0;
      const both = Array.from({ length: 2 }, () => {
        let entered!: () => void;
        return { ready: new Promise<void>((r) => (entered = r)), entered: () => entered() };
      });
      const bump = (me: number) =>
        db.transaction(async (tx) => {
          tries++;
          await tx.run('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
          const row = await tx.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['ser']);
          both[me]?.entered();
          await Promise.all(both.map((b) => b.ready)); // both have read before either writes
          await tx.run('UPDATE counters SET value = ? WHERE name = ?', [Number(row?.value) + 1, 'ser']);
        });
      const results = await Promise.allSettled([bump(0), bump(1)]);
      const rejected = results.filter((r) => r.status === 'rejected');
      assert.equal(rejected.length, 1);
      assert.ok(isConclaveError((rejected[0] as PromiseRejectedResult).reason, 'store.conflict'));
      tries = 0;
      await withRetry(() =>
        db.transaction(async (tx) => {
          tries++;
          await tx.run('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
          const row = await tx.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['ser']);
          await tx.run('UPDATE counters SET value = ? WHERE name = ?', [Number(row?.value) + 1, 'ser']);
        }),
      );
      assert.equal(tries, 1);
      assert.equal((await db.get<{ value: number }>('SELECT value FROM counters WHERE name = ?', ['ser']))?.value, 2);
    });

    test('ping answers while the store is up', async () => {
      await db.ping();
    });

    test('the project migrations apply on this backend, twice', async () => {
      const e = await backend.fresh();
      try {
        assert.ok((await e.db.migrate(MIGRATIONS)) >= 2);
        assert.equal(await e.db.migrate(MIGRATIONS), 0);
      } finally {
        await e.dispose();
      }
    });

    test('4 concurrent migrate calls on a fresh database apply each migration once', async () => {
      const e = await backend.fresh();
      try {
        const dbs = [e.db, await e.reopen(), await e.reopen(), await e.reopen()];
        const counts = await Promise.all(dbs.map((d) => d.migrate(MIGRATIONS)));
        assert.equal(
          counts.reduce((a, b) => a + b, 0),
          MIGRATIONS.length,
        );
        const ids = await e.db.all<{ id: number }>('SELECT id FROM schema_migrations ORDER BY id');
        assert.deepEqual(
          ids.map((r) => r.id),
          [...MIGRATIONS].map((m) => m.id).sort((a, b) => a - b),
        );
      } finally {
        await e.dispose();
      }
    });

    test('after close, calls fail with store.unavailable', async () => {
      const e = await backend.fresh();
      await e.db.close();
      await assert.rejects(e.db.ping(), (err: unknown) => isConclaveError(err, 'store.unavailable'));
      await assert.rejects(e.db.get('SELECT 1'), (err: unknown) => isConclaveError(err, 'store.unavailable'));
      await e.dispose();
    });
  });
}

describe('SQLite shared with another process', () => {
  test('SQLITE_BUSY from another connection is waited out, not failed', async () => {
    const { default: BetterSqlite3 } = await import('better-sqlite3');
    const env = await sqlite.fresh();
    try {
      await env.db.migrate(SCHEMA);
      const file = (await env.db.get<{ file: string }>("SELECT file FROM pragma_database_list WHERE name = 'main'"))?.file ?? '';
      const other = new BetterSqlite3(file); // stands in for another process on the same file
      other.exec('BEGIN IMMEDIATE');
      other.prepare('INSERT INTO counters (name, value) VALUES (?, ?)').run('other', 1);
      const started = Date.now();
      setTimeout(() => {
        other.exec('COMMIT');
        other.close();
      }, 300);
      await env.db.run('INSERT INTO counters (name, value) VALUES (?, ?)', ['mine', 2]);
      await env.db.transaction((tx) => tx.run('UPDATE counters SET value = value + 1 WHERE name = ?', ['mine']));
      assert.ok(Date.now() - started >= 250, 'the write should have waited for the other writer');
      const rows = await env.db.all<{ name: string; value: number }>('SELECT name, value FROM counters ORDER BY name');
      assert.deepEqual(rows, [
        { name: 'mine', value: 3 },
        { name: 'other', value: 1 },
      ]);
    } finally {
      await env.dispose();
    }
  });
});

describe('withRetry', () => {
  const conflict = async () => {
    const { fail } = await import('../core/errors.js');
    return fail('store.conflict', 'conflict');
  };
  test('retries store.conflict up to the bound, then rethrows it', async () => {
    let calls = 0;
    const err = await conflict();
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw err;
        },
        { attempts: 3, baseDelayMs: 1 },
      ),
      (e: unknown) => isConclaveError(e, 'store.conflict'),
    );
    assert.equal(calls, 3);
  });
  test('returns the first success and does not retry other errors', async () => {
    let calls = 0;
    const err = await conflict();
    assert.equal(
      await withRetry(
        async () => {
          if (++calls < 2) throw err;
          return 'ok';
        },
        { baseDelayMs: 1 },
      ),
      'ok',
    );
    calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw new Error('other');
      }),
      /other/,
    );
    assert.equal(calls, 1);
  });
});

test('renderSql: a {{sqlite}} or {{postgres}} section is kept on its own store only, with the type templates inside it', () => {
  const sql = 'CREATE TABLE t (id {{serial}});\n{{sqlite}}CREATE VIEW v AS SELECT id FROM t;{{/sqlite}}\n{{postgres}}CREATE TABLE p (id {{bigint}});\nSELECT 1;{{/postgres}}\nDROP TABLE x;';
  assert.equal(renderSql(sql, 'sqlite'), 'CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT);\nCREATE VIEW v AS SELECT id FROM t;\n\nDROP TABLE x;');
  assert.equal(renderSql(sql, 'postgres'), 'CREATE TABLE t (id BIGSERIAL PRIMARY KEY);\n\nCREATE TABLE p (id BIGINT);\nSELECT 1;\nDROP TABLE x;');
  // A section never spans into the other dialect's (non-greedy, matched by name).
  assert.equal(renderSql('{{postgres}}a{{/postgres}}b{{postgres}}c{{/postgres}}', 'sqlite'), 'b');
});
