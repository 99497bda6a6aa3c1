import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { fail, isConclaveError } from '../core/errors.js';
import { type Database, type Migration, type SqlExecutor, type Transaction, type TransactionOptions, renderSql } from './database.js';

/** `?` placeholders → `$1…$n` (our SQL never has a literal `?` inside strings). */
function toPg(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

/** Network errors of the socket to the server. */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
/**
 * SQLSTATEs (PostgreSQL Appendix A) that mean the server is not usable now: class 08 connection
 * exception, 57P01–57P03 shutdown / cannot connect now, 53300 too many connections, 3D000 no such
 * database.
 */
const UNAVAILABLE_STATES = /^(08...|57P0[1-3]|53300|3D000)$/;
/** 40001 serialization_failure, 40P01 deadlock_detected: the server aborted us; retrying may succeed. */
const CONFLICT_STATES = new Set(['40001', '40P01']);
/**
 * 22021 character_not_in_repertoire: a NUL byte in text (the driver sends JavaScript strings as valid UTF-8,
 * so nothing else raises it). Not 22P05 untranslatable_character: a UTF8 database never raises it for our
 * parameters, and one of another encoding (LATIN1) refusing a character is the deployment's fault.
 */
const TEXT_REFUSED_STATES = new Set(['22021']);
/** pg's own messages for a pool or client whose connection is gone (they carry no code). */
const CONNECTION_GONE = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Client was closed/i;

export function classifyPgError(e: unknown): unknown {
  if (isConclaveError(e)) return e;
  const code = String((e as { code?: unknown }).code ?? '');
  if (NETWORK.has(code) || UNAVAILABLE_STATES.test(code) || (!code && CONNECTION_GONE.test(String((e as Error)?.message)))) {
    return fail('store.unavailable', 'the PostgreSQL store cannot be reached', code ? { reason: code } : undefined, e);
  }
  if (CONFLICT_STATES.has(code)) return fail('store.conflict', 'concurrent update conflict; retry', { reason: code }, e);
  // Text a request brought that PostgreSQL cannot hold (its text types refuse U+0000): the request's fault.
  if (TEXT_REFUSED_STATES.has(code)) return fail('request.invalid', 'the request holds a character the store cannot keep (U+0000)', { reason: code }, e);
  return e;
}

function rethrow(e: unknown): never {
  throw classifyPgError(e);
}

function toParams(params: readonly unknown[] | undefined): unknown[] {
  // Booleans are stored as INTEGER 0/1 (portable with SQLite); pg would send 'true', which INTEGER rejects.
  return (params ?? []).map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
}

function executor(q: (text: string, values: unknown[]) => Promise<pg.QueryResult>): SqlExecutor {
  return {
    async all<T>(sql: string, params?: readonly unknown[]) {
      return (await q(toPg(sql), toParams(params)).catch(rethrow)).rows as T[];
    },
    async get<T>(sql: string, params?: readonly unknown[]) {
      return (await q(toPg(sql), toParams(params)).catch(rethrow)).rows[0] as T | undefined;
    },
    async run(sql: string, params?: readonly unknown[]) {
      return { changes: (await q(toPg(sql), toParams(params)).catch(rethrow)).rowCount ?? 0 };
    },
  };
}

/** Stable 63-bit key for pg_advisory_(xact_)lock from a lock name (FNV-1a). */
export function lockKey(name: string): string {
  let h = 1469598103934665603n;
  for (const c of Buffer.from(name)) h = ((h ^ BigInt(c)) * 1099511628211n) & 0x7fffffffffffffffn;
  return h.toString();
}

/** Integer text → number when exact, else bigint (the same contract as the SQLite driver). */
function parseInteger(v: string): number | bigint {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : BigInt(v);
}

const INT8 = 20;
const NUMERIC = 1700;
/**
 * Per-pool type parsers (not pg's global registry): BIGINT (and integral NUMERIC, which SUM(bigint)
 * yields) come back as numbers like SQLite's INTEGER instead of pg's default text.
 */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8) return parseInteger;
    if (oid === NUMERIC) return (v: string) => (/^-?\d+$/.test(v) ? parseInteger(v) : Number(v));
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as unknown as pg.CustomTypesConfig;

const MIGRATION_LOCK = 'conclave.migrations';

/**
 * PostgreSQL through a pg Pool. The pool reconnects by itself after an outage: every query takes a
 * fresh or healthy pooled connection, and a connection that failed is discarded, not reused.
 * Inside `transaction()`, calls on the database object itself (`db.get` from code that does not
 * hold `tx`) join the transaction's connection, as on SQLite, so they see its writes and cannot
 * starve the pool.
 */
export async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000, keepAlive: true, types: TYPES });
  pool.on('error', () => undefined); // an idle client died (server restart): the pool drops it; the next query reconnects
  const base = executor((t, v) => pool.query(t, v));
  /**
   * The join guard: the open joinable transactions' asynchronous contexts. An enabled AsyncLocalStorage
   * hooks every promise the process makes (Node 20), so it is followed only while at least one joinable
   * transaction is open (disabled when the last one ends, enabled again by the next one's run()); a
   * context whose transaction ended is no longer joined.
   */
  const scope = new AsyncLocalStorage<{ readonly tx: Transaction; live: boolean }>();
  let following = 0;
  const current = (): SqlExecutor => {
    const joined = scope.getStore();
    return joined?.live ? joined.tx : base;
  };
  const db: Database = {
    dialect: 'postgres',
    all: (sql, params) => current().all(sql, params),
    get: (sql, params) => current().get(sql, params),
    run: (sql, params) => current().run(sql, params),
    async transaction<T>(fn: (tx: Transaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      const joined = scope.getStore();
      if (joined?.live) return fn(joined.tx);
      const client = await pool.connect().catch(rethrow);
      let broken: unknown;
      const q = (t: string, v?: unknown[]) =>
        client.query(t, v).catch((e: unknown) => {
          const c = classifyPgError(e);
          if (isConclaveError(c, 'store.unavailable')) broken = c;
          throw c;
        });
      const ctx = { tx: undefined as unknown as Transaction, live: true };
      // The body's executor: once the transaction ended (its connection back in the pool, perhaps another
      // caller's by now) it refuses to run anything.
      const guarded = (t: string, v?: unknown[]) => (ctx.live ? q(t, v) : Promise.reject(fail('internal', 'a PostgreSQL transaction handle was used after its transaction ended')));
      const tx: Transaction = { ...executor(guarded), lock: async (name: string) => void (await guarded('SELECT pg_advisory_xact_lock($1)', [lockKey(name)])) };
      ctx.tx = tx;
      const joinable = opts.joinable !== false;
      if (joinable) following++;
      try {
        await q('BEGIN');
        const r = await (joinable ? scope.run(ctx, () => fn(tx)) : fn(tx));
        await q('COMMIT');
        return r;
      } catch (e) {
        if (!broken) await client.query('ROLLBACK').catch((r: unknown) => void (broken = r));
        throw classifyPgError(e);
      } finally {
        ctx.live = false;
        if (joinable && --following === 0) scope.disable();
        // A connection that failed is destroyed rather than handed to the next caller.
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    async migrate(migrations: readonly Migration[]) {
      const client = await pool.connect().catch(rethrow);
      let applied = 0;
      let broken: Error | undefined;
      try {
        // A session-level advisory lock: replicas starting together apply each migration once, in order.
        await client.query('SELECT pg_advisory_lock($1)', [lockKey(MIGRATION_LOCK)]);
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
            await client.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
          applied++;
        }
      } catch (e) {
        const c = classifyPgError(e);
        if (isConclaveError(c, 'store.unavailable')) broken = c;
        throw c;
      } finally {
        if (!broken) await client.query('SELECT pg_advisory_unlock($1)', [lockKey(MIGRATION_LOCK)]).catch((e: Error) => void (broken = e));
        // Releasing a broken connection closes it, which also drops the session lock.
        client.release(broken);
      }
      return applied;
    },
    async ping() {
      await base.get('SELECT 1 AS ok');
    },
    async close() {
      scope.disable();
      await pool.end().catch(() => undefined);
    },
  };
  return db;
}
