/**
 * Benchmark helpers for the transparency log: switch entry writes off and on (for the same path with
 * logging disabled), and read inclusion latencies back from the store.
 *
 * "Logging disabled" is a trigger that turns the entry INSERT into a no-op (SQLite `RAISE(IGNORE)`,
 * PostgreSQL a BEFORE trigger returning NULL): the release path is otherwise byte for byte the same,
 * the statement still runs, nothing is stored and the sequencer has nothing to do. It exists only in
 * benchmarks; the server has no switch to turn its log off.
 */
import type { SqlExecutor } from '../../src/storage/database.js';

/**
 * The table writers append entries to: `log_leaves` (migration 215 on), `log_queue` before (so that a
 * baseline checkout run by `--root` is switched the same way).
 */
async function entryTable(db: SqlExecutor & { readonly dialect: 'sqlite' | 'postgres' }): Promise<string> {
  const found =
    db.dialect === 'sqlite'
      ? await db.get("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'log_leaves'")
      : await db.get("SELECT 1 AS x FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'log_leaves'");
  return found ? 'log_leaves' : 'log_queue';
}

export async function setLogging(db: SqlExecutor & { readonly dialect: 'sqlite' | 'postgres' }, on: boolean): Promise<void> {
  const table = await entryTable(db);
  if (db.dialect === 'sqlite') {
    await db.run(on ? 'DROP TRIGGER IF EXISTS bench_log_off' : `CREATE TRIGGER IF NOT EXISTS bench_log_off BEFORE INSERT ON ${table} BEGIN SELECT RAISE(IGNORE); END`);
    return;
  }
  if (on) {
    await db.run(`DROP TRIGGER IF EXISTS bench_log_off ON ${table}`);
    return;
  }
  await db.run('CREATE OR REPLACE FUNCTION bench_log_off() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$');
  await db.run(`DROP TRIGGER IF EXISTS bench_log_off ON ${table}`);
  await db.run(`CREATE TRIGGER bench_log_off BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION bench_log_off()`);
}

export interface InclusionLatency {
  readonly entries: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * For entries stored from `sinceMs` on: the time from the writer's insert to the signing of the first
 * tree head that includes them (its timestamp), the inclusion latency a client waiting for its proof sees
 * (plus the commit of that batch). Entries not yet in a head are not counted.
 */
export async function inclusionLatency(db: SqlExecutor & { readonly dialect: 'sqlite' | 'postgres' }, sinceMs: number): Promise<InclusionLatency> {
  const signed = (idx: string) => `(SELECT MIN(h.timestamp_ms) FROM log_heads h WHERE h.tree_size > ${idx}) AS signed_ms`;
  const rows = await db.all<{ created_ms: number; signed_ms: number | null }>(
    (await entryTable(db)) === 'log_leaves'
      ? `SELECT l.created_ms, ${signed('i.idx')} FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id WHERE l.created_ms >= ?`
      : `SELECT e.created_ms, ${signed('e.idx')} FROM log_entries e WHERE e.idx IS NOT NULL AND e.created_ms >= ?`,
    [sinceMs],
  );
  const ms = rows.filter((r) => r.signed_ms !== null).map((r) => Number(r.signed_ms) - Number(r.created_ms)).sort((a, b) => a - b);
  const at = (p: number) => (ms.length ? ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))]! : Number.NaN);
  return { entries: ms.length, p50Ms: at(50), p99Ms: at(99), maxMs: ms.at(-1) ?? Number.NaN };
}
