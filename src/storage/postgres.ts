import pg from 'pg';
import { fail } from '../core/errors.js';
import { type Database, type Migration, type SqlExecutor, renderSql } from './database.js';

/** `?` placeholders → `$1…$n` (our SQL never has a literal `?` inside strings). */
function toPg(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

function storeError(e: unknown): never {
  const code = (e as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === '57P01' || code === '57P03' || /terminat|connect/i.test(String((e as Error).message))) {
    throw fail('store.unavailable', 'the PostgreSQL store cannot be reached', undefined, e);
  }
  if (code === '40001' || code === '40P01') throw fail('store.conflict', 'concurrent update conflict; retry', undefined, e);
  throw e;
}

function executor(q: (text: string, values: unknown[]) => Promise<pg.QueryResult>): SqlExecutor {
  return {
    async all<T>(sql: string, params?: readonly unknown[]) {
      return (await q(toPg(sql), [...(params ?? [])]).catch(storeError)).rows as T[];
    },
    async get<T>(sql: string, params?: readonly unknown[]) {
      return (await q(toPg(sql), [...(params ?? [])]).catch(storeError)).rows[0] as T | undefined;
    },
    async run(sql: string, params?: readonly unknown[]) {
      return { changes: (await q(toPg(sql), [...(params ?? [])]).catch(storeError)).rowCount ?? 0 };
    },
  };
}

/** Stable 63-bit key for pg_advisory_xact_lock from a lock name. */
function lockKey(name: string): string {
  let h = 1469598103934665603n;
  for (const c of Buffer.from(name)) h = ((h ^ BigInt(c)) * 1099511628211n) & 0x7fffffffffffffffn;
  return h.toString();
}

// BIGINT comes back as text by default; our values (epoch seconds, sequence numbers) fit a double.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
  pool.on('error', () => undefined); // idle client errors surface on the next query as store.unavailable
  const base = executor((t, v) => pool.query(t, v));
  const db: Database = {
    dialect: 'postgres',
    ...base,
    async transaction(fn) {
      const client = await pool.connect().catch(storeError);
      try {
        await client.query('BEGIN');
        const ex = executor((t, v) => client.query(t, v));
        const r = await fn({ ...ex, lock: async (name: string) => void (await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey(name)])) });
        await client.query('COMMIT');
        return r;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    async migrate(migrations: readonly Migration[]) {
      const client = await pool.connect().catch(storeError);
      let applied = 0;
      try {
        await client.query('SELECT pg_advisory_lock($1)', [lockKey('conclave.migrations')]);
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
        const done = new Set((await client.query('SELECT id FROM schema_migrations')).rows.map((r: { id: number }) => r.id));
        for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
          if (done.has(m.id)) continue;
          await client.query('BEGIN');
          try {
            await client.query(renderSql(m.sql, 'postgres'));
            await client.query('INSERT INTO schema_migrations (id, name, applied_at) VALUES ($1, $2, $3)', [m.id, m.name, new Date().toISOString()]);
            await client.query('COMMIT');
          } catch (e) {
            await client.query('ROLLBACK');
            throw e;
          }
          applied++;
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [lockKey('conclave.migrations')]).catch(() => undefined);
        client.release();
      }
      return applied;
    },
    async ping() {
      await base.get('SELECT 1 AS ok');
    },
    async close() {
      await pool.end();
    },
  };
  return db;
}
