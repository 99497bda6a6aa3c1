import { fail } from '../core/errors.js';
import type { SqlExecutor } from './database.js';

/**
 * Facts about a store as a whole (table `store_meta`, migration 11), recorded once by the first server
 * that uses it and checked by every server after.
 */
export async function readStoreMeta(db: SqlExecutor, name: string): Promise<string | undefined> {
  const row = await db.get<{ value: string }>('SELECT value FROM store_meta WHERE name = ?', [name]);
  return row?.value;
}

/** Records `value` under `name` unless a value is there already; returns the value in force. */
export async function recordStoreMeta(db: SqlExecutor, name: string, value: string): Promise<string> {
  await db.run('INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, value]);
  return (await readStoreMeta(db, name)) ?? value;
}

export type TrustMode = 'simulate' | 'real';

/**
 * Binds the store to one trust mode. A store first used with `--simulate` holds keys created for, and a
 * signing key of, simulated TEEs; a store first used without it holds production keys. Either one opened
 * in the other mode would let simulated evidence reach real keys, so the server refuses to start
 * (a replica in the other mode cannot join a shared store either). `where` names the store in the message.
 */
export async function checkTrustMode(db: SqlExecutor, mode: TrustMode, where: string): Promise<void> {
  const recorded = await recordStoreMeta(db, 'mode', mode);
  if (recorded === mode) return;
  const flag = recorded === 'simulate' ? 'with --simulate' : 'without --simulate';
  throw fail(
    'store.mode_mismatch',
    `the store ${where} was initialised ${flag} (mode ${recorded}); this server runs ${mode === 'simulate' ? 'with' : 'without'} --simulate. Simulated and real trust never mix: start ${flag}, or use a fresh --data-dir/--db`,
    { recorded, mode },
  );
}

/** The store's location for messages: a SQLite path, or a PostgreSQL host and database without credentials. */
export function describeStore(url: string): string {
  if (url.startsWith('sqlite:')) return url;
  try {
    const u = new URL(url);
    return `postgres://${u.host}${u.pathname}`;
  } catch {
    return 'postgres store';
  }
}
