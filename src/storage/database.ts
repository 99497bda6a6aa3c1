import { isConclaveError } from '../core/errors.js';

/**
 * The store port: one small SQL interface that both SQLite (embedded default) and PostgreSQL
 * (scale-out) implement. SQL is written once with `?` placeholders and the portable types below;
 * each driver adapts placeholders and type names.
 *
 * Portable values: TEXT ↔ string, {{bigint}} ↔ number (a JS safe integer; larger values come back as
 * `bigint` on both drivers), {{blob}} ↔ Buffer (Uint8Array accepted as a parameter), NULL ↔ null,
 * booleans are stored as INTEGER 0/1 (a boolean parameter is sent as 0/1 on both drivers).
 *
 * Failures of the store itself surface as `store.unavailable` (503); serialization failures and
 * deadlocks as `store.conflict` (409), which {@link withRetry} retries.
 */
export interface SqlExecutor {
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
}

/** The executor handed to a transaction body. */
export type Transaction = SqlExecutor & {
  /**
   * Takes an exclusive lock named `name` until the transaction ends (PostgreSQL: a transaction-scoped
   * advisory lock; SQLite: a no-op, since its writers are already serialised).
   */
  lock(name: string): Promise<void>;
};

export interface TransactionOptions {
  /**
   * Whether calls on the database object itself from inside the body (code that does not hold `tx`, a
   * nested `transaction()`) join this transaction (default true). The store recognises them by the body's
   * asynchronous context (AsyncLocalStorage), which, while such a transaction is open, costs a hook on
   * every promise the process makes. `false`, for a body that calls nothing but `tx` (no domain code):
   * the context is not followed, and a call on the database from inside it is not its own (SQLite: it
   * waits for the transaction to end; PostgreSQL: it runs on another connection).
   */
  readonly joinable?: boolean;
}

export interface Database extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one transaction (SQLite: BEGIN IMMEDIATE, serialised; PostgreSQL: READ COMMITTED
   * plus explicit row/advisory locks where a domain needs them). Commits when `fn` resolves, rolls
   * back when it throws, so a failed body leaves no partial write.
   *
   * The join guard: a call on the database from inside the body (by its asynchronous context) joins the
   * transaction, a call from anywhere else never does (SQLite: it waits for the transaction to end), and
   * `tx` used after the transaction ended throws (`internal`) instead of running outside it or inside
   * another one. Between transactions the store follows no asynchronous context (no promise hooks).
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /** Applies pending migrations under a lock so replicas starting together do not race. */
  migrate(migrations: readonly Migration[]): Promise<number>;
  /**
   * Resolves once every commit made before the call is on the disk. SQLite: its WAL file flushed (shared
   * with the commits of the same moment); absent on PostgreSQL, where a commit returns durable
   * (synchronous_commit on). Autocommitted writes (`run` outside a transaction) call it when they must be.
   */
  durable?(): Promise<void>;
  /**
   * SQLite only (absent on PostgreSQL, whose replicas and other connections this process cannot watch this
   * cheaply): returns a counter that moves whenever the data may have changed, for caches of reads that
   * must never outlive a change (a revoked role, a disabled key): on every commit by another connection,
   * another process included (`PRAGMA data_version`, read at each call), and on every write statement of
   * this connection, before it runs, except a plain INSERT / UPDATE / DELETE of one of `ignoredTables`
   * (any other write, a migration, a statement it cannot read the table of, counts). A value read, then
   * a read made, is still current while the counter shows the same number.
   */
  changeCounter?(ignoredTables: readonly string[]): () => number;
  /** Cheap liveness probe of the store; throws `store.unavailable`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A versioned schema change. `sql` may use `{{blob}}` (BLOB/BYTEA), `{{bigint}}` (INTEGER/BIGINT) and
 * `{{serial}}` (INTEGER PRIMARY KEY AUTOINCREMENT / BIGSERIAL PRIMARY KEY); statements between
 * `{{postgres}}` and `{{/postgres}}` run on PostgreSQL only, those between `{{sqlite}}` and `{{/sqlite}}` on SQLite only.
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

export function renderSql(sql: string, dialect: 'sqlite' | 'postgres'): string {
  sql = sql.replace(/\{\{(sqlite|postgres)\}\}([\s\S]*?)\{\{\/\1\}\}/g, (_, on: string, only: string) => (on === dialect ? only : ''));
  return dialect === 'sqlite'
    ? sql.replaceAll('{{blob}}', 'BLOB').replaceAll('{{bigint}}', 'INTEGER').replaceAll('{{serial}}', 'INTEGER PRIMARY KEY AUTOINCREMENT')
    : sql.replaceAll('{{blob}}', 'BYTEA').replaceAll('{{bigint}}', 'BIGINT').replaceAll('{{serial}}', 'BIGSERIAL PRIMARY KEY');
}


export interface RetryOptions {
  /** Total tries, the first included (default 5). */
  readonly attempts?: number;
  /** Delay before the second try; doubles each time, with jitter (default 10 ms). */
  readonly baseDelayMs?: number;
}

/**
 * Runs `fn` again when it fails with `store.conflict` (a serialization failure or deadlock that
 * PostgreSQL resolved by aborting this transaction), up to `attempts` tries with jittered
 * exponential back-off; the last conflict is rethrown. `fn` must be a whole transaction, so that a
 * retry repeats every read the write depended on.
 */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const base = opts.baseDelayMs ?? 10;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !isConclaveError(e, 'store.conflict')) throw e;
      await sleep(base * 2 ** (i - 1) * (0.5 + Math.random()));
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Change versions: the generic cache-invalidation mechanism for replicas. A domain that caches
 * derived state (compiled policies, parsed keys) bumps its named version in the same transaction as
 * the change, and every replica compares the version it cached against {@link readVersion} before it
 * trusts the cache (or at most every N seconds; see docs/scale-out.md). Table: migration 10.
 */
export async function bumpVersion(tx: SqlExecutor, name: string): Promise<number> {
  const row = await tx.get<{ version: number | bigint }>(
    'INSERT INTO change_versions (name, version) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET version = change_versions.version + 1 RETURNING version',
    [name],
  );
  return Number(row?.version ?? 0);
}

/** The current version of `name`; 0 when it never changed. */
export async function readVersion(db: SqlExecutor, name: string): Promise<number> {
  const row = await db.get<{ version: number | bigint }>('SELECT version FROM change_versions WHERE name = ?', [name]);
  return Number(row?.version ?? 0);
}

/**
 * A cache of one derived value that is rebuilt when the named change version moves. The version is
 * read at most once per `maxStalenessMs` (0: on every call), which bounds how long a replica can
 * serve a value another replica has already replaced.
 */
export function versionedCache<T>(db: SqlExecutor, name: string, load: () => Promise<T>, opts: { maxStalenessMs: number; now: () => number }): { get(): Promise<T>; invalidate(): void } {
  let cached: { version: number; value: T; checkedAt: number } | undefined;
  return {
    async get() {
      const t = opts.now();
      if (cached && t - cached.checkedAt < opts.maxStalenessMs) return cached.value;
      const version = await readVersion(db, name);
      if (cached && cached.version === version) {
        cached.checkedAt = t;
        return cached.value;
      }
      const value = await load();
      cached = { version, value, checkedAt: t };
      return value;
    },
    invalidate() {
      cached = undefined;
    },
  };
}
