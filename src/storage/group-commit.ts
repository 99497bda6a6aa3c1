/**
 * Group commit: many concurrent writers share one durable commit. Each {@link GroupCommitter.add} waits
 * in a queue; one commit at a time takes everything queued (up to `maxBatch`) and stores it in one
 * transaction, and every writer of that batch is answered only when that commit has returned, so nothing
 * is acknowledged before it is durable. Writers that arrive while a commit is in flight form the next
 * batch: under load the batches grow by themselves and the commits per second stay near the store's
 * commit rate, with no timer and no added wait when the store is idle. A failed commit fails every
 * writer of its batch with its error (none of them was stored: the batch is one transaction).
 */

export interface GroupCommitStats {
  /** Commits issued (each one transaction). */
  commits: number;
  /** Items committed or failed. */
  items: number;
  /** The largest batch so far. */
  largestBatch: number;
}

export interface GroupCommitter<T, R> {
  /** Queues `item`; resolves with its result once the commit that stored it returned. */
  add(item: T): Promise<R>;
  readonly stats: Readonly<GroupCommitStats>;
}

interface Waiter<T, R> {
  readonly item: T;
  resolve(r: R): void;
  reject(e: unknown): void;
}

/**
 * `commit` stores a batch in one durable transaction and returns one result per item, in order; it runs
 * once at a time.
 */
export function groupCommit<T, R>(commit: (items: readonly T[]) => Promise<readonly R[]>, opts: { maxBatch?: number } = {}): GroupCommitter<T, R> {
  const maxBatch = Math.max(1, opts.maxBatch ?? 256);
  const queue: Waiter<T, R>[] = [];
  const stats: GroupCommitStats = { commits: 0, items: 0, largestBatch: 0 };
  let running = false;

  async function drain(): Promise<void> {
    for (;;) {
      // Checked and cleared in one step: a writer arriving after this starts the next drain itself.
      if (queue.length === 0) {
        running = false;
        return;
      }
      const batch = queue.splice(0, maxBatch);
      stats.commits++;
      stats.items += batch.length;
      stats.largestBatch = Math.max(stats.largestBatch, batch.length);
      try {
        const results = await commit(batch.map((w) => w.item));
        if (results.length !== batch.length) throw new Error(`group commit returned ${results.length} results for ${batch.length} items`);
        for (const [i, w] of batch.entries()) w.resolve(results[i] as R);
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
  }

  return {
    add(item: T): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (running) return;
        running = true;
        // Started after the current synchronous burst, so writers of the same tick share the first commit.
        queueMicrotask(() => void drain());
      });
    },
    stats,
  };
}
