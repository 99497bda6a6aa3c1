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
 * `commit` stores a batch in one durable transaction and returns one result per item, in order. At most
 * `inFlight` commits run at once (default 1): a store whose commits are serialised anyway and whose
 * flushes are shared (SQLite here) can take the next batch while the last one waits for the disk.
 */
export function groupCommit<T, R>(commit: (items: readonly T[]) => Promise<readonly R[]>, opts: { maxBatch?: number; inFlight?: number } = {}): GroupCommitter<T, R> {
  const maxBatch = Math.max(1, opts.maxBatch ?? 256);
  const inFlight = Math.max(1, opts.inFlight ?? 1);
  const queue: Waiter<T, R>[] = [];
  const stats: GroupCommitStats = { commits: 0, items: 0, largestBatch: 0 };
  let running = 0;
  let scheduled = false;

  async function run(batch: Waiter<T, R>[]): Promise<void> {
    try {
      const results = await commit(batch.map((w) => w.item));
      if (results.length !== batch.length) throw new Error(`group commit returned ${results.length} results for ${batch.length} items`);
      for (const [i, w] of batch.entries()) w.resolve(results[i] as R);
    } catch (e) {
      for (const w of batch) w.reject(e);
    } finally {
      running--;
      start();
    }
  }

  /** Starts batches while writers wait and fewer than `inFlight` commits run. */
  function start(): void {
    while (queue.length > 0 && running < inFlight) {
      const batch = queue.splice(0, maxBatch);
      stats.commits++;
      stats.items += batch.length;
      stats.largestBatch = Math.max(stats.largestBatch, batch.length);
      running++;
      void run(batch);
    }
  }

  return {
    add(item: T): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (scheduled) return;
        scheduled = true;
        // Started after the current synchronous burst, so writers of the same tick share one commit.
        queueMicrotask(() => {
          scheduled = false;
          start();
        });
      });
    },
    stats,
  };
}
