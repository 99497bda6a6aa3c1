import type { Database } from './database.js';

/**
 * Opens the store a URL names: `sqlite:<path>` (embedded default) or a PostgreSQL URL. The drivers
 * load on demand, so a SQLite deployment never loads pg and the other way round.
 */
export async function openDatabase(url: string, opts: { poolSize?: number } = {}): Promise<Database> {
  if (url.startsWith('sqlite:')) {
    const { openSqlite } = await import('./sqlite.js');
    return openSqlite(url.slice('sqlite:'.length));
  }
  const { openPostgres } = await import('./postgres.js');
  return openPostgres(url, opts.poolSize ?? 10);
}
