import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { fail } from '../core/errors.js';
import { type Database, type Migration, type SqlExecutor, renderSql } from './database.js';

/**
 * SQLite through better-sqlite3: WAL, one writer. better-sqlite3 is synchronous, so a transaction is
 * serialised through a promise chain: async domain code inside `transaction()` never interleaves with
 * another transaction's statements on the shared connection.
 */
export function openSqlite(path: string): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  let db: BetterSqlite3.Database;
  try {
    db = new BetterSqlite3(path);
  } catch (e) {
    throw fail('store.unavailable', `cannot open SQLite database ${path}`, undefined, e);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  const stmts = new Map<string, BetterSqlite3.Statement>();
  const prep = (sql: string) => {
    let s = stmts.get(sql);
    if (!s) {
      s = db.prepare(sql);
      stmts.set(sql, s);
    }
    return s;
  };
  const conv = (params: readonly unknown[] | undefined) =>
    (params ?? []).map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p) : p));
  const exec: SqlExecutor = {
    async all<T>(sql: string, params?: readonly unknown[]) {
      return prep(sql).all(...conv(params)) as T[];
    },
    async get<T>(sql: string, params?: readonly unknown[]) {
      return prep(sql).get(...conv(params)) as T | undefined;
    },
    async run(sql: string, params?: readonly unknown[]) {
      return { changes: prep(sql).run(...conv(params)).changes };
    },
  };
  let chain: Promise<unknown> = Promise.resolve();
  let inTx = false;
  const database: Database = {
    dialect: 'sqlite',
    ...exec,
    async run(sql, params) {
      // A write outside a transaction waits for the open one, so it cannot land inside it.
      if (inTx) await chain.catch(() => undefined);
      return exec.run(sql, params);
    },
    transaction<T>(fn: (tx: SqlExecutor & { lock(name: string): Promise<void> }) => Promise<T>): Promise<T> {
      const next = chain.catch(() => undefined).then(async () => {
        inTx = true;
        db.prepare('BEGIN IMMEDIATE').run();
        try {
          const r = await fn({ ...exec, lock: async () => undefined });
          db.prepare('COMMIT').run();
          return r;
        } catch (e) {
          if (db.inTransaction) db.prepare('ROLLBACK').run();
          throw e;
        } finally {
          inTx = false;
        }
      });
      chain = next;
      return next;
    },
    async migrate(migrations: readonly Migration[]) {
      db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
      let applied = 0;
      const done = new Set((db.prepare('SELECT id FROM schema_migrations').all() as { id: number }[]).map((r) => r.id));
      for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
        if (done.has(m.id)) continue;
        db.transaction(() => {
          db.exec(renderSql(m.sql, 'sqlite'));
          db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(m.id, m.name, new Date().toISOString());
        }).immediate();
        applied++;
      }
      return applied;
    },
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      await chain.catch(() => undefined);
      db.close();
    },
  };
  return database;
}
