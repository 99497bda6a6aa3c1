import type { Migration } from '../database.js';

/**
 * The transparency log (ids 210–219; docs/audit.md). Since 215 writers append entries to `log_leaves`
 * (indexed by leaf hash), where they stay; the sequencer gives them their index in batches, one small
 * row each in `log_index` (index → leaf). Before, writers appended to `log_queue` (212–214; before that to
 * `log_entries` with `idx` NULL) and the sequencer moved them into `log_entries` with their index. `log_nodes` keeps the perfect subtree hashes
 * of level ≥ 1 (leaf hashes stay in `log_entries`), from which proofs are served; `log_heads` every signed
 * tree head; `log_sequencer` the one lease row.
 *
 * The audit hash chain (`vault_audit`) becomes the log's prefix: its records are copied verbatim as
 * entries 0…n−1 (index = seq − 1) with their leaf hash still to compute, which the first sequencer does
 * before it sequences anything else. `vault_audit` stays as it was (no longer appended to), so the chain
 * and its head remain verifiable against the log (`conclave audit verify`).
 */
export const LOG_MIGRATIONS: readonly Migration[] = [
  {
    id: 210,
    name: 'transparency log: entries, tree nodes, signed heads, sequencer lease; the audit chain as its prefix',
    sql: `
CREATE TABLE IF NOT EXISTS log_entries (
  id {{serial}},
  leaf_hash TEXT NOT NULL,
  entry TEXT NOT NULL,
  created_ms {{bigint}} NOT NULL,
  idx {{bigint}} UNIQUE
);
CREATE INDEX IF NOT EXISTS log_entries_pending ON log_entries (id) WHERE idx IS NULL;
CREATE INDEX IF NOT EXISTS log_entries_leaf_hash ON log_entries (leaf_hash);
CREATE TABLE IF NOT EXISTS log_nodes (
  level INTEGER NOT NULL,
  idx {{bigint}} NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS log_heads (
  tree_size {{bigint}} PRIMARY KEY,
  root_hash TEXT NOT NULL,
  timestamp_ms {{bigint}} NOT NULL,
  key_id TEXT NOT NULL,
  signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_sequencer (
  id INTEGER PRIMARY KEY,
  holder TEXT,
  epoch {{bigint}} NOT NULL,
  lease_until_ms {{bigint}} NOT NULL
);
INSERT INTO log_sequencer (id, holder, epoch, lease_until_ms) VALUES (1, NULL, 0, 0) ON CONFLICT (id) DO NOTHING;
INSERT INTO log_entries (leaf_hash, entry, created_ms, idx) SELECT '', record, 0, seq - 1 FROM vault_audit ORDER BY seq;`,
  },
  {
    id: 211,
    name: 'transparency log: drop the partial index of pending entries',
    // The unique index on idx already finds the pending (NULL) entries; a second index only made every
    // write and every sequencing update dearer.
    sql: 'DROP INDEX IF EXISTS log_entries_pending;',
  },
  {
    id: 212,
    name: 'transparency log: writers append to a queue that holds nothing but its key',
    // An entry written into log_entries touched three b-trees (the table, the index of log indices, the
    // leaf-hash index). Writers now insert into log_queue (its key only), the cheapest durable write; the
    // sequencer moves each batch into log_entries with its index, in one transaction.
    sql: `
CREATE TABLE IF NOT EXISTS log_queue (
  id {{serial}},
  leaf_hash TEXT NOT NULL,
  entry TEXT NOT NULL,
  created_ms {{bigint}} NOT NULL
);
INSERT INTO log_queue (leaf_hash, entry, created_ms) SELECT leaf_hash, entry, created_ms FROM log_entries WHERE idx IS NULL ORDER BY id;
DELETE FROM log_entries WHERE idx IS NULL;`,
  },
  {
    id: 213,
    name: 'transparency log: index the queue by leaf hash',
    // GET /log/proof/inclusion (public) looks a leaf up in the queue when it is not sequenced yet; without
    // an index that is a scan of the whole queue, whose length the backlog sets, for every request. The
    // writers pay one more b-tree insert per entry (and the sequencer one delete) for bounded reads.
    sql: 'CREATE INDEX IF NOT EXISTS log_queue_leaf_hash ON log_queue (leaf_hash);',
  },
  {
    id: 214,
    name: 'transparency log: each signed head records the sequencer lease epoch it was signed and stored under',
    // A head is stored only while its sequencer's lease epoch is the lease row's (in the transaction that
    // renewed it), and keeps that epoch: which holder signed which heads stays visible to an operator.
    // Heads from before have none.
    sql: 'ALTER TABLE log_heads ADD COLUMN epoch {{bigint}};',
  },
  {
    id: 215,
    name: 'transparency log: an entry is written once, where its writer put it; the sequencer stores only its index',
    // With log_queue every entry body went to the store's log three times (queued, copied into
    // log_entries, deleted from the queue) and through seven b-trees. Now writers insert into log_leaves
    // (the table, its leaf-hash index) and the sequencer adds one row of two integers per entry to
    // log_index (idx → leaf id; a leaf is indexed at most once). Which leaves wait for an index: on SQLite,
    // those with an id above the highest indexed one (ids grow in commit order: one writer at a time, and
    // AUTOINCREMENT never hands an id out twice); on PostgreSQL, where ids are drawn before commit and a
    // lower one may commit after higher ones were sequenced, those in log_pending, which a trigger fills in
    // the writer's own transaction and the sequencer empties in its batch's.
    // Existing data: sequenced entries keep their index (leaf id = index + 1), queued ones follow in order.
    // The old tables' names stay as read-only views (sequenced entries with their index; waiting ones), for
    // whoever reads them with SQL of their own.
    // PostgreSQL: replicas of the version before may still write and sequence while this runs (`conclave db
    // migrate` before a rolling upgrade, docs/scale-out.md); the old tables are locked first, so that what
    // they commit meanwhile is either in them when they are copied or refused after (they are views then),
    // never dropped with them. In the order the old sequencer takes them (log_entries, then log_queue).
    sql: `
{{postgres}}LOCK TABLE log_entries, log_queue IN ACCESS EXCLUSIVE MODE;{{/postgres}}
CREATE TABLE IF NOT EXISTS log_leaves (
  id {{serial}},
  leaf_hash TEXT NOT NULL,
  entry TEXT NOT NULL,
  created_ms {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS log_leaves_leaf_hash ON log_leaves (leaf_hash);
CREATE TABLE IF NOT EXISTS log_index (
  idx {{bigint}} PRIMARY KEY,
  leaf_id {{bigint}} NOT NULL UNIQUE
);
INSERT INTO log_leaves (id, leaf_hash, entry, created_ms) SELECT idx + 1, leaf_hash, entry, created_ms FROM log_entries WHERE idx IS NOT NULL ORDER BY idx;
INSERT INTO log_index (idx, leaf_id) SELECT idx, idx + 1 FROM log_entries WHERE idx IS NOT NULL ORDER BY idx;
INSERT INTO log_leaves (id, leaf_hash, entry, created_ms) SELECT (SELECT COALESCE(MAX(idx), -1) + 1 FROM log_entries) + q.id, q.leaf_hash, q.entry, q.created_ms FROM log_queue q ORDER BY q.id;
{{postgres}}
CREATE TABLE IF NOT EXISTS log_pending (id BIGINT PRIMARY KEY);
INSERT INTO log_pending (id) SELECT l.id FROM log_leaves l WHERE NOT EXISTS (SELECT 1 FROM log_index i WHERE i.leaf_id = l.id);
SELECT setval(pg_get_serial_sequence('log_leaves', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM log_leaves), false);
CREATE OR REPLACE FUNCTION log_leaves_pending() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log_pending (id) SELECT id FROM added; RETURN NULL; END $$;
CREATE TRIGGER log_leaves_pending AFTER INSERT ON log_leaves REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION log_leaves_pending();
{{/postgres}}
DROP TABLE log_queue;
DROP TABLE log_entries;
CREATE VIEW log_entries AS SELECT l.id, l.leaf_hash, l.entry, l.created_ms, i.idx FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id;
{{sqlite}}CREATE VIEW log_queue AS SELECT l.id, l.leaf_hash, l.entry, l.created_ms FROM log_leaves l WHERE l.id > (SELECT COALESCE(MAX(leaf_id), 0) FROM log_index);{{/sqlite}}
{{postgres}}CREATE VIEW log_queue AS SELECT l.id, l.leaf_hash, l.entry, l.created_ms FROM log_pending p JOIN log_leaves l ON l.id = p.id;{{/postgres}}`,
  },
  {
    id: 216,
    name: 'transparency log (SQLite): log_leaves ids without AUTOINCREMENT; its newest indexed leaf cannot be deleted nor an id changed',
    // AUTOINCREMENT wrote sqlite_sequence's page in every writer's commit: one 4 KiB WAL frame of the ~4.5
    // that a commit of one release's entry writes (and flushes). Without it SQLite gives max(id) + 1, which
    // grows in commit order too (one writer at a time); it hands an id out again only after the row with the
    // highest id was deleted (or its id changed). Harmless while that leaf waits for its index (it is gone
    // either way, and the next one still waits above the highest indexed id), but not once it is indexed: a
    // new entry would take its id, stand in for it at its index and never be sequenced itself. So that
    // delete is refused, as is any change of an id (ids are never changed); a leaf whose index row is
    // deleted first is no longer indexed, and the sequencer refuses to extend the tree without it
    // (log.entry_missing). Rebuilt by copy (SQLite cannot drop AUTOINCREMENT in place), ids kept; the views
    // over the table are made again as 215 made them. A store whose newest leaves were deleted before has
    // max(id) below ids handed out then: any of them still indexed is missing, which the sequencer refuses
    // as before. PostgreSQL: unchanged (a sequence, no extra page; 215's log_pending).
    sql: `
{{sqlite}}
DROP VIEW log_entries;
DROP VIEW log_queue;
CREATE TABLE log_leaves_216 (
  id INTEGER PRIMARY KEY,
  leaf_hash TEXT NOT NULL,
  entry TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
INSERT INTO log_leaves_216 (id, leaf_hash, entry, created_ms) SELECT id, leaf_hash, entry, created_ms FROM log_leaves ORDER BY id;
DROP TABLE log_leaves;
ALTER TABLE log_leaves_216 RENAME TO log_leaves;
CREATE INDEX log_leaves_leaf_hash ON log_leaves (leaf_hash);
CREATE TRIGGER log_leaves_newest_indexed_kept BEFORE DELETE ON log_leaves
  WHEN OLD.id = (SELECT MAX(id) FROM log_leaves) AND EXISTS (SELECT 1 FROM log_index WHERE leaf_id = OLD.id)
  BEGIN SELECT RAISE(ABORT, 'the newest log leaf is indexed: deleting it would hand its id out again'); END;
CREATE TRIGGER log_leaves_id_kept BEFORE UPDATE OF id ON log_leaves
  BEGIN SELECT RAISE(ABORT, 'a log leaf id is never changed'); END;
CREATE VIEW log_entries AS SELECT l.id, l.leaf_hash, l.entry, l.created_ms, i.idx FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id;
CREATE VIEW log_queue AS SELECT l.id, l.leaf_hash, l.entry, l.created_ms FROM log_leaves l WHERE l.id > (SELECT COALESCE(MAX(leaf_id), 0) FROM log_index);
{{/sqlite}}`,
  },
  {
    id: 217,
    name: 'transparency log (SQLite): tree nodes keyed by the position at which the tree completes them, so that a batch appends them',
    // Keyed by (level, idx), a batch's new nodes went to one place per level, in the table and in its
    // index: ~13 of the ~20 pages (4 KiB WAL frames, then checkpoint copies) a batch of 40 entries wrote.
    // A node (level, idx) is completed by leaf (idx + 1)·2^level − 1; pos = that leaf · 64 + level grows
    // with every node the sequencer adds, so a batch's nodes are appended to one rowid table (the key is
    // the row id: no second b-tree). level and idx stay, for readers; the CHECK keeps pos their function
    // (a node is stored once, as before). PostgreSQL: unchanged (replicas of the version before write it).
    sql: `
{{sqlite}}
CREATE TABLE log_nodes_217 (
  pos INTEGER PRIMARY KEY,
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash TEXT NOT NULL,
  CHECK (level >= 0 AND level < 48 AND idx >= 0 AND pos = ((idx + 1) * (1 << level) - 1) * 64 + level)
);
INSERT INTO log_nodes_217 (pos, level, idx, hash) SELECT ((idx + 1) * (1 << level) - 1) * 64 + level, level, idx, hash FROM log_nodes ORDER BY 1;
DROP TABLE log_nodes;
ALTER TABLE log_nodes_217 RENAME TO log_nodes;
{{/sqlite}}`,
  },
  {
    id: 218,
    name: 'transparency log (SQLite): a new entry never takes the id of an indexed leaf',
    // 216's trigger keeps the newest leaf while it is indexed, but an indexed leaf can still become the
    // newest-but-gone: a leaf stored above it lets it be deleted (it is not the newest then), and that leaf
    // may go next (it waits); a store whose newest indexed leaf was deleted before 216 (AUTOINCREMENT kept
    // its id from the next entry then) is in that state already. SQLite then gives the next entry that id:
    // it stands in for the sequenced leaf at its index (the sequencer finds the last entry present and goes
    // on) and, never above the highest indexed id, is never sequenced itself, though its writer was told it
    // was stored. Refused here, in the writer's statement (nothing is acknowledged): a new leaf that is the
    // newest (as every writer's is: max(id) + 1) at or below the highest indexed id. A leaf put back under
    // its own id below a newer one (an operator restoring a deleted one) is not refused; the sequencer
    // refuses the hole as it did under AUTOINCREMENT (log.entry_missing). Two seeks (the table's last row,
    // log_index's leaf_id index) per new entry. PostgreSQL draws ids from a sequence: unchanged.
    sql: `
{{sqlite}}
CREATE TRIGGER log_leaves_id_fresh AFTER INSERT ON log_leaves
  WHEN NEW.id = (SELECT MAX(id) FROM log_leaves) AND NEW.id <= (SELECT MAX(leaf_id) FROM log_index)
  BEGIN SELECT RAISE(ABORT, 'a log leaf id of an indexed entry would be handed out again (an indexed leaf was deleted): restore the log'); END;
{{/sqlite}}`,
  },
];
