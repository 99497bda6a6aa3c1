/**
 * The transparency log's SQL (SQLite and PostgreSQL; tables of migrations 210–214, docs/audit.md).
 *
 * Writers: {@link insertLogEntry}, one INSERT into `log_queue` (a table with its key and a leaf-hash index,
 * which inclusion lookups of queued entries search), no lock, in the caller's transaction or on its own (autocommit). Sequencer:
 * the lease row and one transaction per batch, which moves queued entries into `log_entries` with their
 * index. Readers: heads, nodes, entries.
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { fail } from '../core/errors.js';
import { hashLeafText, type NodeId } from '../log/merkle.js';
import type { ChainRecord, LogReader, LogStore, PendingLeaf, PreparedBatch, SealedBatch, SequencerLease, StoredLeaf, TreeState } from '../log/ports.js';
import type { SignedTreeHead, TreeHead } from '../log/tree-head.js';
import type { Database, SqlExecutor } from './database.js';
import { type GroupCommitStats, groupCommit } from './group-commit.js';

/** What an operation learns of its entry: enough to ask for its inclusion proof and to check it. */
export interface LogReceipt {
  /** Hex RFC 9162 leaf hash: SHA-256(0x00 ‖ entry). */
  readonly leafHash: string;
  /** The exact entry text that was hashed. */
  readonly entry: string;
}

/**
 * Stores one log entry in the caller's transaction (a mutation and its record commit together). There is
 * no ordering lock: the sequencer gives the index later. An entry of its own goes through a
 * {@link LogAppender} instead.
 */
export async function insertLogEntry(ex: SqlExecutor, entry: string, createdMs: number): Promise<LogReceipt> {
  const leafHash = hashLeafText(entry).toString('hex');
  await ex.run('INSERT INTO log_queue (leaf_hash, entry, created_ms) VALUES (?, ?, ?)', [leafHash, entry, createdMs]);
  return { leafHash, entry };
}

/** Appends entries that stand alone (a release, a read, a refusal), many writers to one commit. */
export interface LogAppender {
  /** Resolves once the entry is durably stored (SQLite: its WAL flushed; PostgreSQL: committed with synchronous_commit on). */
  append(entry: string, createdMs: number): Promise<LogReceipt>;
  readonly stats: Readonly<GroupCommitStats>;
}

/**
 * The group-commit writer of `log_queue`: concurrent appends share one transaction (one multi-row
 * INSERT) and so one flush of the store's log, and each is answered when that commit returned
 * (src/storage/group-commit.ts). The leaf hash is computed by the caller's turn, before it queues.
 */
export function createLogAppender(db: Database, opts: { maxBatch?: number } = {}): LogAppender {
  const insert = (n: number) => `INSERT INTO log_queue (leaf_hash, entry, created_ms) VALUES ${Array.from({ length: n }, () => '(?, ?, ?)').join(', ')}`;
  const flush = db.durable?.bind(db);
  const writer = groupCommit<{ leafHash: string; entry: string; createdMs: number }, LogReceipt>(
    async (items) => {
      if (flush && items.length <= CHUNK) {
        // SQLite: one multi-row INSERT is one (autocommitted) transaction; then the shared WAL flush.
        await db.run(insert(items.length), items.flatMap((i) => [i.leafHash, i.entry, i.createdMs]));
        await flush();
      } else {
        await db.transaction(async (tx) => {
          // The audit is acknowledged as durable: never by an asynchronous commit, whatever the role's default.
          if (db.dialect === 'postgres') await tx.run('SET LOCAL synchronous_commit = on');
          for (const part of chunks(items)) await tx.run(insert(part.length), part.flatMap((i) => [i.leafHash, i.entry, i.createdMs]));
          // The body calls nothing but tx: not joinable, so a commit per batch turns on no promise hooks.
        }, { joinable: false });
      }
      return items.map((i) => ({ leafHash: i.leafHash, entry: i.entry }));
    },
    // SQLite: one batch at a time, so that the batch taken when a flush ends holds everything that came
    // during it (one INSERT per flush; a second batch in flight would only wait for the same next flush).
    // PostgreSQL: two, so that its own group commit can merge their WAL flushes.
    { ...opts, inFlight: flush ? 1 : 2 },
  );
  return {
    append(entry, createdMs) {
      return writer.add({ leafHash: hashLeafText(entry).toString('hex'), entry, createdMs });
    },
    stats: writer.stats,
  };
}

interface HeadRow {
  tree_size: number | string;
  root_hash: string;
  timestamp_ms: number | string;
  key_id: string;
  signature: string;
}

const HEAD_COLUMNS = 'tree_size, root_hash, timestamp_ms, key_id, signature';

function headOf(r: HeadRow): SignedTreeHead {
  return { treeSize: Number(r.tree_size), rootHash: Buffer.from(r.root_hash, 'hex'), timestamp: Number(r.timestamp_ms), keyId: r.key_id, signature: Buffer.from(r.signature, 'base64') };
}

/** Rows per multi-row statement (bounded by the parameter limits of both drivers). */
const CHUNK = 500;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

async function latestHead(ex: SqlExecutor): Promise<SignedTreeHead | undefined> {
  const r = await ex.get<HeadRow>(`SELECT ${HEAD_COLUMNS} FROM log_heads ORDER BY tree_size DESC LIMIT 1`);
  return r ? headOf(r) : undefined;
}

/**
 * Stores a signed head, fenced by the lease: only while `lease` (holder and epoch) is the lease row's, and
 * with the epoch it was signed under. False (nothing stored) when the lease changed hands.
 */
async function storeHead(tx: SqlExecutor, h: SignedTreeHead, lease: SequencerLease): Promise<boolean> {
  const r = await tx.run(`INSERT INTO log_heads (${HEAD_COLUMNS}, epoch) SELECT ?, ?, ?, ?, ?, epoch FROM log_sequencer WHERE id = 1 AND holder = ? AND epoch = ?`, [
    h.treeSize,
    h.rootHash.toString('hex'),
    h.timestamp,
    h.keyId,
    h.signature.toString('base64'),
    lease.holder,
    lease.epoch,
  ]);
  return r.changes === 1;
}

/**
 * Stores a batch's entries and nodes: queued entries move into `log_entries` with their index
 * (`migrated` false), or migrated chain records, already there with their index, get the leaf hash just
 * computed. Its head is stored first, by {@link storeHead}.
 */
async function storeBatch(tx: SqlExecutor, batch: PreparedBatch, migrated: boolean): Promise<void> {
  for (const part of chunks(batch.leaves)) {
    if (migrated) {
      const values = part.map(() => '(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT))').join(', ');
      await tx.run(`WITH v (id, idx, leaf_hash) AS (VALUES ${values}) UPDATE log_entries SET idx = v.idx, leaf_hash = v.leaf_hash FROM v WHERE log_entries.id = v.id`, part.flatMap((l) => [l.id, l.index, l.leafHash.toString('hex')]));
    } else {
      const values = part.map(() => '(CAST(? AS BIGINT), CAST(? AS BIGINT))').join(', ');
      const params = part.flatMap((l) => [l.id, l.index]);
      // A plain INSERT (no WITH clause; VALUES names its columns column1, column2 on both stores): SQLite's
      // change counter knows its table, a log table, so a batch does not expire what the vault store
      // remembered of roles and keys (src/storage/vault-store.ts) and the next release need not read it again.
      await tx.run(`INSERT INTO log_entries (leaf_hash, entry, created_ms, idx) SELECT q.leaf_hash, q.entry, q.created_ms, v.column2 FROM log_queue q JOIN (VALUES ${values}) AS v ON v.column1 = q.id ORDER BY v.column2`, params);
      await tx.run(`DELETE FROM log_queue WHERE id IN (${placeholders(part.length)})`, part.map((l) => l.id));
    }
  }
  for (const part of chunks(batch.nodes)) {
    await tx.run(`INSERT INTO log_nodes (level, idx, hash) VALUES ${part.map(() => '(?, ?, ?)').join(', ')}`, part.flatMap((n) => [n.node.level, n.node.index, n.hash.toString('hex')]));
  }
}

export function createLogStore(db: Database): LogStore & LogReader {
  // Migrated chain records are the only entries stored with an index; once a batch finds none at or
  // beyond the tree size, none can appear again, and that query is skipped from then on.
  let migrationDone = false;
  return {
    async acquire(holder: string, nowMs: number, leaseMs: number): Promise<SequencerLease | undefined> {
      const r = await db.get<{ epoch: number | string }>('UPDATE log_sequencer SET holder = ?, epoch = epoch + 1, lease_until_ms = ? WHERE id = 1 AND (holder IS NULL OR lease_until_ms < ?) RETURNING epoch', [holder, nowMs + leaseMs, nowMs]);
      return r ? { holder, epoch: Number(r.epoch) } : undefined;
    },
    async renew(lease, nowMs, leaseMs) {
      const r = await db.run('UPDATE log_sequencer SET lease_until_ms = ? WHERE id = 1 AND holder = ? AND epoch = ?', [nowMs + leaseMs, lease.holder, lease.epoch]);
      return r.changes === 1;
    },
    async release(lease) {
      await db.run('UPDATE log_sequencer SET holder = NULL, lease_until_ms = 0 WHERE id = 1 AND holder = ? AND epoch = ?', [lease.holder, lease.epoch]);
    },
    async hasPending(treeSize: number) {
      if (await db.get('SELECT 1 AS x FROM log_queue LIMIT 1')) return true;
      return !migrationDone && (await db.get('SELECT 1 AS x FROM log_entries WHERE idx >= ? LIMIT 1', [treeSize])) !== undefined;
    },

    async sequence(lease, nowMs, leaseMs, limit, prepare: (state: TreeState, pending: readonly PendingLeaf[]) => Promise<PreparedBatch | undefined>, sign: (head: TreeHead) => Promise<SignedTreeHead>, known?: TreeState) {
      // The batch is read and its Merkle hashes computed outside any transaction, so that no store lock is
      // held for that work (on SQLite a transaction is the one writer: appends would wait for it). Only the
      // lease holder changes the tree, so what was read still holds when the transaction below finds the
      // lease ours and the tree the size it was prepared from. The head is signed inside that transaction,
      // after the lease was renewed there: a holder that paused past its lease signs nothing.
      // The holder's own last head when it names one (checked inside the transaction like one read here).
      const head = known ? known.head : await latestHead(db);
      const size = known ? known.size : (head?.treeSize ?? 0);
      // Migrated audit-chain records carry their index already and come first, in order. An entry with an
      // index beyond the latest head that is not the chain record of that index is a sequenced entry whose
      // head was deleted: it is never signed again as if it were a migrated record.
      const migrated = migrationDone
        ? []
        : await db.all<{ id: number; idx: number; entry: string; record: string | null }>('SELECT e.id, e.idx, e.entry, a.record FROM log_entries e LEFT JOIN vault_audit a ON a.seq = e.idx + 1 WHERE e.idx >= ? ORDER BY e.idx LIMIT ?', [size, limit]);
      let pending: PendingLeaf[];
      if (migrated.length > 0) {
        migrated.forEach((r, i) => {
          if (r.record !== r.entry) throw fail('log.head_missing', `log entry ${r.idx} has an index beyond the latest signed head (size ${size}) but is not the audit-chain record migrated there: a signed head was deleted; the log is not extended until it is restored`, { index: Number(r.idx), treeSize: size });
          if (Number(r.idx) !== size + i) throw fail('log.entry_missing', `migrated log entry ${size + i} is missing (the next stored is ${r.idx})`, { index: size + i });
        });
        pending = migrated.map((r) => ({ id: Number(r.id), leafHash: hashLeafText(r.entry), createdMs: nowMs }));
      } else {
        const rows = await db.all<{ id: number; leaf_hash: string; created_ms: number }>('SELECT id, leaf_hash, created_ms FROM log_queue ORDER BY id LIMIT ?', [limit]);
        pending = rows.map((r) => ({ id: Number(r.id), leafHash: Buffer.from(r.leaf_hash, 'hex'), createdMs: Number(r.created_ms) }));
      }
      const batch = await prepare({ size, head }, pending);
      const stored = db.transaction(async (tx): Promise<SealedBatch | 'lost' | 'stale' | undefined> => {
        // Renewing first locks the lease row until commit (on SQLite the transaction is the one writer): a
        // replica taking the lease over waits for this batch, and a holder whose lease was taken finds no
        // row to renew, and signs and stores nothing.
        // The same statement reads the tree's size under the lock (one round trip).
        const held = await tx.get<{ size: number | string }>('UPDATE log_sequencer SET lease_until_ms = ? WHERE id = 1 AND holder = ? AND epoch = ? RETURNING (SELECT COALESCE(MAX(tree_size), 0) FROM log_heads) AS size', [
          nowMs + leaseMs,
          lease.holder,
          lease.epoch,
        ]);
        if (!held) return 'lost';
        if (!batch) return undefined;
        // Another holder extended the tree since it was read (this one was fenced out meanwhile), or the
        // tree is not the one this holder last stored (a head deleted meanwhile): sign nothing.
        if (Number(held.size) !== size) return known ? 'stale' : 'lost';
        // Signed only now, with the lease ours until commit; stored only under the same epoch.
        const sealed = { ...batch, head: await sign(batch.head) };
        if (!(await storeHead(tx, sealed.head, lease))) return 'lost';
        await storeBatch(tx, sealed, migrated.length > 0);
        if (migrated.length === 0) migrationDone = true;
        return sealed;
      });
      return stored.catch(async (e: unknown) => {
        // After a deleted head the batch collides with the entries already at its indices: say so, typed.
        // Probed only on this failure path, so a normal batch pays nothing for it; migrated chain records
        // (before the migration is done) are expected there, and an entry another holder sequenced
        // meanwhile is under its head, which is read afresh.
        if (!migrationDone) throw e;
        const now = await latestHead(db).catch(() => undefined);
        const signed = now?.treeSize ?? 0;
        const stray = await db.get<{ idx: number }>('SELECT idx FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT 1', [signed]).catch(() => undefined);
        if (stray) throw fail('log.head_missing', `log entry ${stray.idx} has an index beyond the latest signed head (size ${signed}): a signed head was deleted; the log is not extended until it is restored`, { index: Number(stray.idx), treeSize: signed }, e);
        throw e;
      });
    },

    latestHead: () => latestHead(db),

    async readNodes(nodes: readonly NodeId[]): Promise<Buffer[]> {
      const found = new Map<string, Buffer>();
      const byLevel = new Map<number, number[]>();
      for (const n of nodes) byLevel.set(n.level, [...(byLevel.get(n.level) ?? []), n.index]);
      for (const [level, indices] of byLevel) {
        const rows =
          level === 0
            ? await db.all<{ idx: number; hash: string }>(`SELECT idx, leaf_hash AS hash FROM log_entries WHERE idx IN (${placeholders(indices.length)})`, indices)
            : await db.all<{ idx: number; hash: string }>(`SELECT idx, hash FROM log_nodes WHERE level = ? AND idx IN (${placeholders(indices.length)})`, [level, ...indices]);
        for (const r of rows) found.set(`${level}/${Number(r.idx)}`, Buffer.from(r.hash, 'hex'));
      }
      return nodes.map((n) => {
        const h = found.get(`${n.level}/${n.index}`);
        if (h?.length !== 32) throw fail(n.level === 0 ? 'log.entry_missing' : 'log.root_mismatch', `the log store lacks tree node (level ${n.level}, index ${n.index})`, { level: n.level, index: n.index });
        return h;
      });
    },

    async leaves(start: number, limit: number): Promise<StoredLeaf[]> {
      const rows = await db.all<{ idx: number; leaf_hash: string; entry: string }>('SELECT idx, leaf_hash, entry FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?', [start, limit]);
      return rows.map((r) => ({ index: Number(r.idx), leafHash: Buffer.from(r.leaf_hash, 'hex'), entry: r.entry }));
    },

    async pendingLeaves(limit: number) {
      const rows = await db.all<{ leaf_hash: string; entry: string }>('SELECT leaf_hash, entry FROM log_queue ORDER BY id LIMIT ?', [limit]);
      return rows.map((r) => ({ leafHash: Buffer.from(r.leaf_hash, 'hex'), entry: r.entry }));
    },

    async findLeaf(leafHash: Buffer) {
      const hex = leafHash.toString('hex');
      const r = await db.get<{ idx: number }>('SELECT idx FROM log_entries WHERE leaf_hash = ? ORDER BY idx LIMIT 1', [hex]);
      if (r) return { index: Number(r.idx) };
      // Still queued? Searched by its leaf-hash index (migration 213): the backlog does not set the cost.
      return (await db.get('SELECT 1 AS x FROM log_queue WHERE leaf_hash = ? LIMIT 1', [hex])) ? { index: null } : undefined;
    },

    async heads(fromSize: number, limit: number): Promise<SignedTreeHead[]> {
      return (await db.all<HeadRow>(`SELECT ${HEAD_COLUMNS} FROM log_heads WHERE tree_size >= ? ORDER BY tree_size LIMIT ?`, [fromSize, limit])).map(headOf);
    },

    async levelNodes(level: number, from: number, to: number) {
      const rows = await db.all<{ idx: number; hash: string }>('SELECT idx, hash FROM log_nodes WHERE level = ? AND idx >= ? AND idx <= ? ORDER BY idx', [level, from, to]);
      return rows.map((r) => ({ index: Number(r.idx), hash: Buffer.from(r.hash, 'hex') }));
    },

    async chain(fromSeq: number, limit: number): Promise<ChainRecord[]> {
      const rows = await db.all<{ seq: number; record: string; prev_hash: string; hash: string }>('SELECT seq, record, prev_hash, hash FROM vault_audit WHERE seq >= ? ORDER BY seq LIMIT ?', [fromSeq, limit]);
      return rows.map((r) => ({ seq: Number(r.seq), record: r.record, prevHash: r.prev_hash, hash: r.hash }));
    },

    async pendingCount(treeSize: number) {
      const r = await db.get<{ n: number | string }>('SELECT (SELECT COUNT(*) FROM log_queue) + (SELECT COUNT(*) FROM log_entries WHERE idx >= ?) AS n', [treeSize]);
      return Number(r?.n ?? 0);
    },
  };
}

/** Service-key names of the log key: a software key, and the HSM token's (their certificates pin them). */
export const LOG_KEY_NAME = 'log-signing';
const LOG_KEY_ROWS = [LOG_KEY_NAME, `pkcs11:${LOG_KEY_NAME}`];

/**
 * The log keys the store knows (from their certificates; no private key is read). An auditor should
 * rather pin the key published when the log started (`--log-key`): whoever can write the store could
 * replace these rows.
 */
export async function storedLogKeys(db: SqlExecutor): Promise<KeyObject[]> {
  const rows = await db.all<{ cert_der: Uint8Array }>(`SELECT cert_der FROM service_keys WHERE name IN (?, ?) ORDER BY name`, LOG_KEY_ROWS);
  return rows.map((r) => createPublicKey(new X509Certificate(Buffer.from(r.cert_der)).publicKey.export({ type: 'spki', format: 'pem' })));
}
