/**
 * What the log needs from a store (src/storage/log-store.ts implements it on SQLite and PostgreSQL).
 *
 * Writers never appear here: an operation stores its entry with one plain INSERT (no log index, no lock),
 * in the transaction of the change it records. Only the sequencer, one per cluster by a lease, gives
 * entries their indices, in batches.
 */
import type { NodeId } from './merkle.js';
import type { SignedTreeHead, TreeHead } from './tree-head.js';

/** The sequencer's hold on the log: `epoch` grows with every change of holder and fences a stale one out. */
export interface SequencerLease {
  readonly holder: string;
  readonly epoch: number;
}

/** An entry waiting for its index: inserted by a writer, or a migrated audit-chain record. */
export interface PendingLeaf {
  readonly id: number;
  readonly leafHash: Buffer;
  /** When the writer stored it (its clock, ms): the start of its inclusion latency. */
  readonly createdMs: number;
}

/** What one batch adds: indices for its entries, the perfect nodes it completes, and the new tree head (not signed yet). */
export interface PreparedBatch {
  readonly leaves: readonly { readonly id: number; readonly index: number; readonly leafHash: Buffer }[];
  readonly nodes: readonly { readonly node: NodeId; readonly hash: Buffer }[];
  readonly head: TreeHead;
}

/** A stored batch: its head signed under the lease. */
export interface SealedBatch extends PreparedBatch {
  readonly head: SignedTreeHead;
}

/** The tree as the store holds it when a batch starts. */
export interface TreeState {
  readonly size: number;
  readonly head: SignedTreeHead | undefined;
}

export interface LogStore {
  /** Takes the lease when nobody holds it or it expired (at `nowMs`); undefined when another holder has it. */
  acquire(holder: string, nowMs: number, leaseMs: number): Promise<SequencerLease | undefined>;
  /** Extends a lease still held; false when it was lost. */
  renew(lease: SequencerLease, nowMs: number, leaseMs: number): Promise<boolean>;
  /** Gives the lease up (a clean shutdown) so another replica takes over at once. */
  release(lease: SequencerLease): Promise<void>;
  /**
   * Whether any entry waits for an index, or a migrated entry sits at or beyond `treeSize` (two index
   * probes, outside any transaction).
   */
  hasPending(treeSize: number): Promise<boolean>;
  /**
   * One batch: reads the state and up to `limit` pending entries and lets `prepare` compute the batch (its
   * Merkle hashes) outside any transaction. Then, in one transaction under the lease: renews it (which
   * locks the lease row until commit, so no replica can take the lease over meanwhile, and finds a holder
   * whose lease was taken), checks the tree is still the size it was prepared from, and only then lets
   * `sign` sign the head and stores the batch, the head fenced by the lease's epoch. A stale holder thus
   * neither signs nor stores a head. `'lost'` when the lease is no longer ours (or the tree moved under
   * another holder); undefined when `prepare` had nothing to add. `known`: the tree as this holder last
   * stored it, which spares reading the head again before each batch; `'stale'` (nothing stored, the
   * lease still ours) when the store's tree is not that size any more (a head deleted or restored meanwhile).
   */
  sequence(
    lease: SequencerLease,
    nowMs: number,
    leaseMs: number,
    limit: number,
    prepare: (state: TreeState, pending: readonly PendingLeaf[]) => Promise<PreparedBatch | undefined>,
    sign: (head: TreeHead) => Promise<SignedTreeHead>,
    known?: TreeState,
  ): Promise<SealedBatch | 'lost' | 'stale' | undefined>;
  /** Hashes of perfect subtrees (level 0: leaf hashes), one per id, in order; throws when one is missing. */
  readNodes(nodes: readonly NodeId[]): Promise<Buffer[]>;
  latestHead(): Promise<SignedTreeHead | undefined>;
}

/** A sequenced entry as stored: its index, leaf hash and the exact entry text that was hashed. */
export interface StoredLeaf {
  readonly index: number;
  readonly leafHash: Buffer;
  readonly entry: string;
}

/** A record of the audit hash chain the log replaced (its prefix): hash = SHA-256(prevHash ‖ record). */
export interface ChainRecord {
  readonly seq: number;
  readonly record: string;
  readonly prevHash: string;
  readonly hash: string;
}

/** What the read API and the verifier read; paged, ordered, bounded by `limit`. */
export interface LogReader {
  latestHead(): Promise<SignedTreeHead | undefined>;
  readNodes(nodes: readonly NodeId[]): Promise<Buffer[]>;
  /** Sequenced entries with index ≥ `start`, in index order. */
  leaves(start: number, limit: number): Promise<StoredLeaf[]>;
  /** Entries still waiting for an index, in the order they were stored. */
  pendingLeaves(limit: number): Promise<{ readonly leafHash: Buffer; readonly entry: string }[]>;
  /** Where the entry with this leaf hash is: its index, null while it waits for one, undefined when unknown. */
  findLeaf(leafHash: Buffer): Promise<{ readonly index: number | null } | undefined>;
  /** Signed heads with size ≥ `fromSize`, by size. */
  heads(fromSize: number, limit: number): Promise<SignedTreeHead[]>;
  /** Stored nodes of one level with index in [from, to], by index. */
  levelNodes(level: number, from: number, to: number): Promise<{ index: number; hash: Buffer }[]>;
  /** Audit-chain records with seq ≥ `fromSeq`, by seq (the log's migrated prefix). */
  chain(fromSeq: number, limit: number): Promise<ChainRecord[]>;
  /** Entries not yet in a signed head: those without an index, and migrated ones at or beyond `treeSize`. */
  pendingCount(treeSize: number): Promise<number>;
}
