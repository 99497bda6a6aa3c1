/**
 * The sequencer: one per cluster, elected through the store by a lease. Every `batchMs` the holder takes
 * the entries that writers stored since the last batch (no writer waits for it or takes a lock), gives
 * them the next indices in one transaction, stores the perfect subtree nodes they complete, and signs a
 * new tree head. Replicas that do not hold the lease check it every `leaseMs / 3` and take it over when
 * its holder stopped renewing it (it died or lost the store); the lease's epoch fences a holder that
 * paused past its lease out of the next batch, so two sequencers never extend the tree. The head is
 * signed only inside the batch's transaction, after the lease was renewed there (its row stays locked
 * until commit, so the lease cannot change hands while the holder signs): a stale holder signs nothing,
 * and every head the log key signs is one stored for `audit verify` to check.
 *
 * The tree's right edge (a compact range) stays in memory between batches; a new holder reads it from the
 * stored nodes and checks it against the latest signed head before it appends anything.
 */
import { fail } from '../core/errors.js';
import { CompactRange, EMPTY_ROOT, perfectSubtrees } from './merkle.js';
import type { LogStore, PendingLeaf, PreparedBatch, SequencerLease, TreeState } from './ports.js';
import { type LogSigner, type SignedTreeHead, signTreeHead } from './tree-head.js';

export interface SequencerOptions {
  readonly store: LogStore;
  /** The log key (loaded once, on first use). */
  readonly signer: () => Promise<LogSigner>;
  readonly nowMs: () => number;
  /** This replica's name in the lease row (unique per process). */
  readonly holder: string;
  /** How often the holder cuts a batch; the bound on inclusion latency besides the batch's own time. */
  readonly batchMs: number;
  /** How long a lease lasts without renewal: the longest a dead holder delays sequencing. */
  readonly leaseMs: number;
  /** Most entries per batch (a backlog is worked off in consecutive batches without waiting). */
  readonly maxBatch: number;
  /** After each stored batch: the new size, its entry count and each entry's inclusion latency. */
  readonly onBatch?: (b: { readonly treeSize: number; readonly leaves: number; readonly latenciesMs: readonly number[] }) => void;
  readonly onLeadership?: (leader: boolean) => void;
}

/**
 * The sequencer's rounds; the composition root runs them on a timer (the domain keeps none), waiting
 * {@link Sequencer.nextDelayMs} between them.
 */
export interface Sequencer {
  /** One round: take or renew the lease, cut a batch. A failed round changed nothing; the next re-reads the state. */
  tick(): Promise<void>;
  /** How long to wait before the next round: 0 while a backlog remains, the batch interval while holding the lease, a third of the lease otherwise; after failed rounds, doubling from the batch interval up to a third of the lease. */
  nextDelayMs(): number;
  /** Gives the lease up (a clean shutdown), so another replica takes over at once. Call after the last round. */
  release(): Promise<void>;
  readonly leader: boolean;
}

export function createSequencer(o: SequencerOptions): Sequencer {
  let lease: SequencerLease | undefined;
  let range: CompactRange | undefined;
  let renewedAt = 0;
  let backlog = false;
  /** The last round stored entries: under load the next one goes straight to its batch, without asking first whether any wait. */
  let busy = false;
  /** The head this holder stored last (with `range`, the tree as it knows it): the next batch need not read it back. */
  let stored: SignedTreeHead | undefined;
  /** Rounds failed in a row: the next waits longer (a store outage, a deleted head), not every batch interval. */
  let failures = 0;

  function lose(): void {
    lease = undefined;
    range = undefined;
    stored = undefined;
    busy = false;
    o.onLeadership?.(false);
  }

  /** The stored right edge of the tree, checked against the head the state names. */
  async function load(state: TreeState): Promise<CompactRange> {
    const r = new CompactRange(state.size, state.size === 0 ? [] : await o.store.readNodes(perfectSubtrees({ start: 0, end: state.size })));
    const want = state.head?.rootHash ?? EMPTY_ROOT;
    if (!r.root().equals(want)) throw fail('log.root_mismatch', `the stored tree nodes do not give the root of the signed head of size ${state.size}`, { treeSize: state.size });
    return r;
  }

  /** Computes a batch over the state read before the transaction (hashes only: it is signed under the lease); `sealed` is its edge, ours once stored. */
  let sealed: CompactRange | undefined;
  async function prepare(state: TreeState, pending: readonly PendingLeaf[]): Promise<PreparedBatch | undefined> {
    if (!range || range.size !== state.size || !range.root().equals(state.head?.rootHash ?? EMPTY_ROOT)) range = await load(state);
    if (pending.length === 0 && state.head) return undefined;
    const next = range.clone();
    const nodes: PreparedBatch['nodes'][number][] = [];
    const leaves = pending.map((p) => {
      const index = next.size;
      next.append(p.leafHash, (node, hash) => nodes.push({ node, hash }));
      return { id: p.id, index, leafHash: p.leafHash };
    });
    // Timestamps never go back, whatever the clock of the replica that holds the lease now.
    const timestamp = Math.max(o.nowMs(), state.head?.timestamp ?? 0);
    sealed = next;
    return { leaves, nodes, head: { treeSize: next.size, timestamp, rootHash: next.root() } };
  }

  async function round(): Promise<void> {
    const now = o.nowMs();
    if (!lease) {
      lease = await o.store.acquire(o.holder, now, o.leaseMs);
      if (!lease) return;
      renewedAt = now;
      range = undefined;
      o.onLeadership?.(true);
    }
    if (range && !busy && !(await o.store.hasPending(range.size))) {
      if (now - renewedAt >= o.leaseMs / 3) {
        if (await o.store.renew(lease, now, o.leaseMs)) renewedAt = now;
        else lose();
      }
      return;
    }
    const createdMs = new Map<number, number>();
    sealed = undefined;
    // The key is loaded before the batch, so that its transaction waits for no key store, only for the signature.
    const signer = await o.signer();
    const batch = (known: TreeState | undefined) =>
      o.store.sequence(
        lease!,
        now,
        o.leaseMs,
        o.maxBatch,
        async (state, pending) => {
          createdMs.clear();
          for (const p of pending) createdMs.set(p.id, p.createdMs);
          return prepare(state, pending);
        },
        (head) => signTreeHead(head, signer),
        known,
      );
    let result = await batch(range && stored?.treeSize === range.size ? { size: range.size, head: stored } : undefined);
    if (result === 'stale') {
      // The stored tree is not the one this holder left (a head deleted or restored): read it afresh, now.
      range = undefined;
      stored = undefined;
      sealed = undefined;
      result = await batch(undefined);
    }
    renewedAt = now;
    busy = typeof result === 'object' && result.leaves.length > 0;
    if (result === 'lost' || result === 'stale') return lose();
    backlog = result !== undefined && result.leaves.length >= o.maxBatch;
    if (!result) return;
    range = sealed;
    stored = result.head;
    const done = o.nowMs();
    o.onBatch?.({ treeSize: result.head.treeSize, leaves: result.leaves.length, latenciesMs: result.leaves.map((l) => done - (createdMs.get(l.id) ?? done)) });
  }

  return {
    async tick() {
      try {
        await round();
        failures = 0;
      } catch (e) {
        range = undefined;
        stored = undefined;
        backlog = false;
        busy = false;
        failures++;
        throw e;
      }
    },
    nextDelayMs() {
      const idle = Math.max(o.batchMs, Math.floor(o.leaseMs / 3));
      // Doubling from the batch interval, never beyond a third of the lease: a holder that recovers renews it in time.
      if (failures > 0) return Math.min(idle, o.batchMs * 2 ** Math.min(failures, 20));
      return lease ? (backlog ? 0 : o.batchMs) : idle;
    },
    async release() {
      if (!lease) return;
      const held = lease;
      lose();
      await o.store.release(held);
    },
    get leader() {
      return lease !== undefined;
    },
  };
}
