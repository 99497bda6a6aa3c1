/**
 * The transparency log's SQL (SQLite and PostgreSQL; tables of migrations 210–215, docs/audit.md).
 *
 * Writers: {@link insertLogEntry}, one INSERT into `log_leaves` (a table with its key and a leaf-hash index,
 * which inclusion lookups search), no lock, in the caller's transaction or on its own (autocommit); the
 * entry stays there. Sequencer: the lease row and one transaction per batch, which gives waiting leaves
 * their index, one `log_index` row each (and on PostgreSQL takes them off `log_pending`). Readers: heads,
 * nodes, entries.
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
  await ex.run('INSERT INTO log_leaves (leaf_hash, entry, created_ms) VALUES (?, ?, ?)', [leafHash, entry, createdMs]);
  return { leafHash, entry };
}

/** Appends entries that stand alone (a release, a read, a refusal), many writers to one commit. */
export interface LogAppender {
  /** Resolves once the entry is durably stored (SQLite: its WAL flushed; PostgreSQL: committed with synchronous_commit on). */
  append(entry: string, createdMs: number): Promise<LogReceipt>;
  readonly stats: Readonly<GroupCommitStats>;
}

/**
 * The group-commit writer of `log_leaves`: concurrent appends share one transaction (one multi-row
 * INSERT) and so one flush of the store's log, and each is answered when that commit returned
 * (src/storage/group-commit.ts). The leaf hash is computed by the caller's turn, before it queues.
 */
export function createLogAppender(db: Database, opts: { maxBatch?: number } = {}): LogAppender {
  const insert = (n: number) => `INSERT INTO log_leaves (leaf_hash, entry, created_ms) VALUES ${Array.from({ length: n }, () => '(?, ?, ?)').join(', ')}`;
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
 * Stores a batch's entries and nodes: waiting leaves get their index, one `log_index` row each (and leave
 * `log_pending` on PostgreSQL), the bodies staying where their writers put them (`migrated` false); or
 * migrated chain records, indexed already, get the leaf hash just computed. Its head is stored first, by
 * {@link storeHead}.
 */
async function storeBatch(tx: SqlExecutor, dialect: Dialect, batch: PreparedBatch, migrated: boolean): Promise<void> {
  for (const part of chunks(batch.leaves)) {
    if (migrated) {
      const values = part.map(() => '(CAST(? AS BIGINT), CAST(? AS TEXT))').join(', ');
      await tx.run(`WITH v (id, leaf_hash) AS (VALUES ${values}) UPDATE log_leaves SET leaf_hash = v.leaf_hash FROM v WHERE log_leaves.id = v.id`, part.flatMap((l) => [l.id, l.leafHash.toString('hex')]));
    } else {
      // A plain INSERT: SQLite's change counter knows its table, a log table, so a batch does not expire
      // what the vault store remembered of roles and keys (src/storage/vault-store.ts). A leaf indexed
      // already (which the lease rules out) fails the batch on log_index's unique leaf id.
      await tx.run(`INSERT INTO log_index (idx, leaf_id) VALUES ${part.map(() => '(?, ?)').join(', ')}`, part.flatMap((l) => [l.index, l.id]));
      if (dialect === 'postgres') {
        const r = await tx.run(`DELETE FROM log_pending WHERE id IN (${placeholders(part.length)})`, part.map((l) => l.id));
        if (r.changes !== part.length) throw fail('internal', 'a log batch named leaves that no longer wait for an index', { expected: part.length, found: r.changes });
      }
    }
  }
  for (const part of chunks(batch.nodes)) {
    if (dialect === 'sqlite') await tx.run(`INSERT INTO log_nodes (pos, level, idx, hash) VALUES ${part.map(() => '(?, ?, ?, ?)').join(', ')}`, part.flatMap((n) => [nodePos(n.node), n.node.level, n.node.index, n.hash.toString('hex')]));
    else await tx.run(`INSERT INTO log_nodes (level, idx, hash) VALUES ${part.map(() => '(?, ?, ?)').join(', ')}`, part.flatMap((n) => [n.node.level, n.node.index, n.hash.toString('hex')]));
  }
}

/**
 * SQLite's key of a tree node (migration 217): the index of the leaf that completes it, times 64, plus its
 * level. It grows with every node the sequencer adds, so a batch appends its nodes to one b-tree.
 */
export function nodePos(node: NodeId): number {
  const pos = ((node.index + 1) * 2 ** node.level - 1) * 64 + node.level;
  if (!Number.isSafeInteger(pos) || node.level >= 48) throw new RangeError(`tree node (level ${node.level}, index ${node.index}) is beyond the log's range`);
  return pos;
}

type Dialect = 'sqlite' | 'postgres';

/**
 * The leaves waiting for an index (as `l`), oldest first when ordered by `l.id`. SQLite: those above the
 * highest indexed leaf id, since its ids grow in commit order (one writer at a time, max(id) + 1) and are
 * never given twice (migration 216 refuses to delete the newest leaf while it is indexed, or to change an
 * id, and 218 a new entry whose id is not above every indexed one; src/storage/log-ids.test.ts), and a
 * read outside a transaction sees only committed rows. PostgreSQL draws ids
 * before commit (a lower one may commit after higher ones were indexed): `log_pending`, which a trigger
 * fills in the writer's transaction (migration 215).
 */
const WAITING: Record<Dialect, string> = {
  sqlite: 'log_leaves l WHERE l.id > (SELECT COALESCE(MAX(leaf_id), 0) FROM log_index)',
  postgres: 'log_pending p JOIN log_leaves l ON l.id = p.id',
};

export function createLogStore(db: Database): LogStore & LogReader {
  const waiting = WAITING[db.dialect];
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
      if (await db.get(`SELECT 1 AS x FROM ${waiting} LIMIT 1`)) return true;
      return !migrationDone && (await db.get('SELECT 1 AS x FROM log_index WHERE idx >= ? LIMIT 1', [treeSize])) !== undefined;
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
        : await db.all<{ id: number; idx: number; entry: string | null; record: string | null }>('SELECT i.leaf_id AS id, i.idx, l.entry, a.record FROM log_index i LEFT JOIN log_leaves l ON l.id = i.leaf_id LEFT JOIN vault_audit a ON a.seq = i.idx + 1 WHERE i.idx >= ? ORDER BY i.idx LIMIT ?', [size, limit]);
      let pending: PendingLeaf[];
      if (migrated.length > 0) {
        migrated.forEach((r, i) => {
          if (r.entry === null || r.record !== r.entry) throw fail('log.head_missing', `log entry ${r.idx} has an index beyond the latest signed head (size ${size}) but is not the audit-chain record migrated there: a signed head was deleted; the log is not extended until it is restored`, { index: Number(r.idx), treeSize: size });
          if (Number(r.idx) !== size + i) throw fail('log.entry_missing', `migrated log entry ${size + i} is missing (the next stored is ${r.idx})`, { index: size + i });
        });
        pending = migrated.map((r) => ({ id: Number(r.id), leafHash: hashLeafText(r.entry!), createdMs: nowMs }));
      } else {
        // The batch size in the text, not bound: SQLite re-prepares a statement every time a bound LIMIT is
        // bound (the planner may use its value), ≈ 40 µs a batch. One text per sequencer (its maxBatch).
        if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`a log batch holds at least one entry (got ${limit})`);
        const rows = await db.all<{ id: number; leaf_hash: string; created_ms: number }>(`SELECT l.id, l.leaf_hash, l.created_ms FROM ${waiting} ORDER BY l.id LIMIT ${limit}`);
        pending = rows.map((r) => ({ id: Number(r.id), leafHash: Buffer.from(r.leaf_hash, 'hex'), createdMs: Number(r.created_ms) }));
      }
      const batch = await prepare({ size, head }, pending);
      const stored = db.transaction(async (tx): Promise<SealedBatch | 'lost' | 'stale' | undefined> => {
        // Renewing first locks the lease row until commit (on SQLite the transaction is the one writer): a
        // replica taking the lease over waits for this batch, and a holder whose lease was taken finds no
        // row to renew, and signs and stores nothing.
        // The same statement reads the tree's size under the lock (one round trip), and whether the tree's
        // last entry is still there, with its index row: on SQLite a leaf whose index row was deleted as the newest
        // waits again (above the highest indexed id) and would be signed a second time, at a new index;
        // on either store the log would be extended over the hole.
        const held = await tx.get<{ size: number | string; last: number | string | null }>(
          'UPDATE log_sequencer SET lease_until_ms = ? WHERE id = 1 AND holder = ? AND epoch = ? RETURNING (SELECT COALESCE(MAX(tree_size), 0) FROM log_heads) AS size, (SELECT i.leaf_id FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id WHERE i.idx = ?) AS last',
          [nowMs + leaseMs, lease.holder, lease.epoch, size - 1],
        );
        if (!held) return 'lost';
        if (!batch) return undefined;
        // Another holder extended the tree since it was read (this one was fenced out meanwhile), or the
        // tree is not the one this holder last stored (a head deleted meanwhile): sign nothing.
        if (Number(held.size) !== size) return known ? 'stale' : 'lost';
        if (size > 0 && held.last === null) throw fail('log.entry_missing', `log entry ${size - 1}, the last of the latest signed head (size ${size}), is missing (its index row or its leaf): the log is not extended until it is restored`, { index: size - 1, treeSize: size });
        // Signed only now, with the lease ours until commit; stored only under the same epoch.
        const sealed = { ...batch, head: await sign(batch.head) };
        if (!(await storeHead(tx, sealed.head, lease))) return 'lost';
        await storeBatch(tx, db.dialect, sealed, migrated.length > 0);
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
        const stray = await db.get<{ idx: number }>('SELECT idx FROM log_index WHERE idx >= ? ORDER BY idx LIMIT 1', [signed]).catch(() => undefined);
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
            ? await db.all<{ idx: number; hash: string }>(`SELECT i.idx, l.leaf_hash AS hash FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id WHERE i.idx IN (${placeholders(indices.length)})`, indices)
            : db.dialect === 'sqlite'
              ? await db.all<{ idx: number; hash: string }>(`SELECT idx, hash FROM log_nodes WHERE pos IN (${placeholders(indices.length)}) AND level = ?`, [...indices.map((index) => nodePos({ level, index })), level])
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
      const rows = await db.all<{ idx: number; leaf_hash: string; entry: string }>('SELECT i.idx, l.leaf_hash, l.entry FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id WHERE i.idx >= ? ORDER BY i.idx LIMIT ?', [start, limit]);
      return rows.map((r) => ({ index: Number(r.idx), leafHash: Buffer.from(r.leaf_hash, 'hex'), entry: r.entry }));
    },

    async pendingLeaves(limit: number) {
      const rows = await db.all<{ leaf_hash: string; entry: string }>(`SELECT l.leaf_hash, l.entry FROM ${waiting} ORDER BY l.id LIMIT ?`, [limit]);
      return rows.map((r) => ({ leafHash: Buffer.from(r.leaf_hash, 'hex'), entry: r.entry }));
    },

    async findLeaf(leafHash: Buffer) {
      const hex = leafHash.toString('hex');
      // By the leaf-hash index, sequenced or waiting alike: the backlog does not set the cost. The first
      // index when the same entry was stored twice; null while none has one.
      const r = await db.get<{ idx: number | null; n: number }>('SELECT MIN(log_index.idx) AS idx, COUNT(*) AS n FROM log_leaves LEFT JOIN log_index ON log_index.leaf_id = log_leaves.id WHERE log_leaves.leaf_hash = ?', [hex]);
      if (!r || Number(r.n) === 0) return undefined;
      return { index: r.idx === null ? null : Number(r.idx) };
    },

    async heads(fromSize: number, limit: number): Promise<SignedTreeHead[]> {
      return (await db.all<HeadRow>(`SELECT ${HEAD_COLUMNS} FROM log_heads WHERE tree_size >= ? ORDER BY tree_size LIMIT ?`, [fromSize, limit])).map(headOf);
    },

    async levelNodes(level: number, from: number, to: number) {
      // SQLite: the positions between the first node's and the last's (those of lower levels completed
      // meanwhile are read and passed over); ordered by position is ordered by index within a level.
      const rows =
        db.dialect === 'sqlite'
          ? from > to
            ? []
            : await db.all<{ idx: number; hash: string }>('SELECT idx, hash FROM log_nodes WHERE pos >= ? AND pos <= ? AND level = ? ORDER BY pos', [nodePos({ level, index: from }), nodePos({ level, index: to }), level])
          : await db.all<{ idx: number; hash: string }>('SELECT idx, hash FROM log_nodes WHERE level = ? AND idx >= ? AND idx <= ? ORDER BY idx', [level, from, to]);
      return rows.map((r) => ({ index: Number(r.idx), hash: Buffer.from(r.hash, 'hex') }));
    },

    async chain(fromSeq: number, limit: number): Promise<ChainRecord[]> {
      const rows = await db.all<{ seq: number; record: string; prev_hash: string; hash: string }>('SELECT seq, record, prev_hash, hash FROM vault_audit WHERE seq >= ? ORDER BY seq LIMIT ?', [fromSeq, limit]);
      return rows.map((r) => ({ seq: Number(r.seq), record: r.record, prevHash: r.prev_hash, hash: r.hash }));
    },

    async pendingCount(treeSize: number) {
      const r = await db.get<{ n: number | string }>(`SELECT (SELECT COUNT(*) FROM ${waiting}) + (SELECT COUNT(*) FROM log_index WHERE idx >= ?) AS n`, [treeSize]);
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
