import type { Sequencer } from '../../src/log/sequencer.js';
import type { Database, SqlExecutor } from '../../src/storage/database.js';
import { createLogStore } from '../../src/storage/log-store.js';

/**
 * Waits until every stored log entry is in a signed tree head (the sequencer runs every --log-batch-ms);
 * returns the tree size. Throws after `timeoutMs`.
 */
export async function waitSequenced(db: SqlExecutor, timeoutMs = 20_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const row = await db.get<{ n: number; queued: number; signed: number | null }>('SELECT (SELECT COUNT(*) FROM log_index) AS n, (SELECT COUNT(*) FROM log_leaves l WHERE NOT EXISTS (SELECT 1 FROM log_index i WHERE i.leaf_id = l.id)) AS queued, (SELECT MAX(tree_size) FROM log_heads) AS signed');
    const n = Number(row?.n ?? 0);
    if (Number(row?.queued) === 0 && row?.signed !== null && row?.signed !== undefined && Number(row.signed) === n) return n;
    if (Date.now() > until) throw new Error(`log not sequenced within ${timeoutMs} ms: ${n} entries, signed head ${row?.signed}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Ticks a sequencer driven by a test clock (10 ms a tick) until no entry waits and the latest head covers
 * every stored one; throws after 100 ticks.
 */
export async function drainSequencer(seq: Sequencer, db: Database, clock: { ms: number }): Promise<void> {
  const store = createLogStore(db);
  for (let i = 0; i < 100; i++) {
    await seq.tick();
    clock.ms += 10;
    const head = await store.latestHead();
    if (head && (await store.pendingCount(head.treeSize)) === 0) return;
  }
  throw new Error('the sequencer did not drain the log');
}
