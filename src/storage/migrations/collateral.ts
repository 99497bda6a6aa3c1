import type { Migration } from '../database.js';

/**
 * Collateral cache (ids 100–199). Every upstream answer is kept with what is needed to replay it byte for
 * byte, plus the signed dates inside it. `version` is a store-wide counter (collateral_state) bumped on every
 * write, so replicas notice changes by polling one number and reload only newer rows.
 */
export const COLLATERAL_MIGRATIONS: readonly Migration[] = [
  {
    id: 100,
    name: 'collateral cache, baseline, platforms, registrations',
    sql: `
CREATE TABLE IF NOT EXISTS collateral_items (
  item_key TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  scope TEXT NOT NULL,
  eval_number {{bigint}},
  selector TEXT,
  meta TEXT NOT NULL,
  body {{blob}} NOT NULL,
  source TEXT NOT NULL,
  fetched_at {{bigint}} NOT NULL,
  issue_date {{bigint}},
  next_update {{bigint}},
  version {{bigint}} NOT NULL
);
CREATE INDEX IF NOT EXISTS collateral_items_version ON collateral_items (version);
CREATE TABLE IF NOT EXISTS collateral_state (
  id INTEGER PRIMARY KEY,
  version {{bigint}} NOT NULL
);
INSERT INTO collateral_state (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS collateral_settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS collateral_platforms (
  platform_key TEXT PRIMARY KEY,
  tee TEXT NOT NULL,
  fmspc TEXT NOT NULL,
  cpusvn TEXT NOT NULL,
  pcesvn INTEGER NOT NULL,
  tee_tcb_svn TEXT,
  source TEXT NOT NULL,
  first_seen {{bigint}} NOT NULL,
  last_seen {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS collateral_registrations (
  qe_id TEXT NOT NULL,
  pce_id TEXT NOT NULL,
  cpu_svn TEXT,
  pce_svn TEXT,
  enc_ppid TEXT,
  platform_manifest TEXT,
  state TEXT NOT NULL,
  created_at {{bigint}} NOT NULL,
  PRIMARY KEY (qe_id, pce_id)
);`,
  },
  {
    id: 101,
    name: 'collateral items by scope (the rollback guard reads them in the transaction that writes)',
    sql: 'CREATE INDEX IF NOT EXISTS collateral_items_scope ON collateral_items (scope);',
  },
];
