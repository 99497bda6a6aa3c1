/**
 * The store port: one small SQL interface that both SQLite (embedded default) and PostgreSQL
 * (scale-out) implement. SQL is written once with `?` placeholders and the portable types below;
 * each driver adapts placeholders and type names.
 */
export interface SqlExecutor {
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
}

export interface Database extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one transaction (SQLite: BEGIN IMMEDIATE, serialised; PostgreSQL: SERIALIZABLE-free
   * READ COMMITTED plus explicit row/advisory locks where a domain needs them). Rolls back on throw.
   */
  transaction<T>(fn: (tx: SqlExecutor & { lock(name: string): Promise<void> }) => Promise<T>): Promise<T>;
  /** Applies pending migrations under a lock so replicas starting together do not race. */
  migrate(migrations: readonly Migration[]): Promise<number>;
  /** Cheap liveness probe of the store. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A versioned schema change. `sql` may use `{{blob}}` (BLOB/BYTEA), `{{bigint}}` (INTEGER/BIGINT) and
 * `{{serial}}` (INTEGER PRIMARY KEY AUTOINCREMENT / BIGSERIAL PRIMARY KEY).
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

export function renderSql(sql: string, dialect: 'sqlite' | 'postgres'): string {
  return dialect === 'sqlite'
    ? sql.replaceAll('{{blob}}', 'BLOB').replaceAll('{{bigint}}', 'INTEGER').replaceAll('{{serial}}', 'INTEGER PRIMARY KEY AUTOINCREMENT')
    : sql.replaceAll('{{blob}}', 'BYTEA').replaceAll('{{bigint}}', 'BIGINT').replaceAll('{{serial}}', 'BIGSERIAL PRIMARY KEY');
}

export async function openDatabase(url: string, opts: { poolSize?: number } = {}): Promise<Database> {
  if (url.startsWith('sqlite:')) {
    const { openSqlite } = await import('./sqlite.js');
    return openSqlite(url.slice('sqlite:'.length));
  }
  const { openPostgres } = await import('./postgres.js');
  return openPostgres(url, opts.poolSize ?? 10);
}
