import type { Migration } from '../database.js';

/**
 * Vault tables, ids 200–299: keys and their versions (key material only as the protector's opaque
 * sealed handle), role assignments, operator-trusted attestation authorities and the hash-chained
 * audit log.
 */
export const VAULT_MIGRATIONS: readonly Migration[] = [
  {
    id: 200,
    name: 'vault keys, roles, authorities, audit',
    sql: `
CREATE TABLE IF NOT EXISTS vault_keys (
  name TEXT PRIMARY KEY,
  latest_version TEXT,
  deleted_at {{bigint}},
  scheduled_purge_at {{bigint}},
  created_at {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS vault_key_versions (
  name TEXT NOT NULL REFERENCES vault_keys (name) ON DELETE CASCADE,
  version TEXT NOT NULL,
  seq {{bigint}} NOT NULL,
  kty TEXT NOT NULL,
  key_size INTEGER,
  crv TEXT,
  key_ops TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  protected_key {{blob}} NOT NULL,
  provider TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  nbf {{bigint}},
  exp {{bigint}},
  exportable INTEGER NOT NULL,
  created {{bigint}} NOT NULL,
  updated {{bigint}} NOT NULL,
  tags TEXT,
  release_policy TEXT,
  policy_immutable INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (name, version),
  UNIQUE (name, seq)
);
CREATE TABLE IF NOT EXISTS vault_role_assignments (
  id TEXT PRIMARY KEY,
  principal_id TEXT NOT NULL,
  role TEXT NOT NULL,
  scope TEXT NOT NULL,
  created_at {{bigint}} NOT NULL,
  UNIQUE (principal_id, role, scope)
);
CREATE TABLE IF NOT EXISTS vault_authorities (
  authority TEXT PRIMARY KEY,
  added_at {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS vault_audit (
  seq {{bigint}} PRIMARY KEY,
  record TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);`,
  },
  {
    id: 201,
    name: 'vault: case-insensitive key names, rotation policies and notices',
    // Key names become case-insensitive (AKV's rule): `name` keeps the case of creation, `name_lower`
    // finds it in any case. Existing stores may hold names that differ only in case; they stay apart,
    // each reachable by its exact name (lookups prefer the exact match), so nothing is merged or lost.
    sql: `
ALTER TABLE vault_keys ADD COLUMN name_lower TEXT;
UPDATE vault_keys SET name_lower = lower(name);
CREATE INDEX IF NOT EXISTS vault_keys_name_lower ON vault_keys (name_lower);
CREATE TABLE IF NOT EXISTS vault_rotation_policies (
  name TEXT PRIMARY KEY REFERENCES vault_keys (name) ON DELETE CASCADE,
  policy TEXT NOT NULL,
  updated {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS vault_rotation_notices (
  name TEXT NOT NULL REFERENCES vault_keys (name) ON DELETE CASCADE,
  version TEXT NOT NULL,
  notified_at {{bigint}} NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS vault_keys_purge_due ON vault_keys (scheduled_purge_at);`,
  },
  {
    id: 202,
    name: 'vault: role definitions (custom roles); assignments name their definition by id',
    // Assignments made before named a built-in role by its name; from now on they hold the role
    // definition's GUID (Azure's ids), so custom roles can be assigned like built-in ones.
    sql: `
CREATE TABLE IF NOT EXISTS vault_role_definitions (
  name TEXT PRIMARY KEY,
  role_name TEXT NOT NULL,
  description TEXT NOT NULL,
  permissions TEXT NOT NULL,
  assignable_scopes TEXT NOT NULL,
  created_at {{bigint}} NOT NULL,
  updated_at {{bigint}} NOT NULL
);
UPDATE vault_role_assignments SET role = '00482a5a-887f-4fb3-b363-3b7fe8e74483' WHERE role = 'Key Vault Administrator';
UPDATE vault_role_assignments SET role = '14b46e9e-c2b7-41b4-b07b-48a6ebf60603' WHERE role = 'Key Vault Crypto Officer';
UPDATE vault_role_assignments SET role = '12338af0-0e69-4776-bea7-57ae8d297424' WHERE role = 'Key Vault Crypto User';
UPDATE vault_role_assignments SET role = '08bbd89e-9f13-488c-ac41-acfcb10c90ab' WHERE role = 'Key Vault Crypto Service Release User';
UPDATE vault_role_assignments SET role = '21090545-7ca7-4776-b22c-e363652d74d2' WHERE role = 'Key Vault Reader';`,
  },
  {
    id: 203,
    name: 'vault: full backup and restore jobs',
    sql: `
CREATE TABLE IF NOT EXISTS vault_backup_jobs (
  job_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  status_details TEXT,
  error_code TEXT,
  error_message TEXT,
  start_time {{bigint}} NOT NULL,
  end_time {{bigint}},
  folder_uri TEXT,
  principal TEXT NOT NULL
);`,
  },
  {
    id: 230,
    name: 'vault: row MACs under the master key on key versions, role assignments and definitions, trusted authorities (#14 item 4)',
    // Filled in by the server (it holds the master key): new rows are written with theirs, rows of an
    // older store get theirs once, when the store first meets its master key's check value (src/main.ts).
    sql: `
ALTER TABLE vault_key_versions ADD COLUMN integrity TEXT;
ALTER TABLE vault_role_assignments ADD COLUMN integrity TEXT;
ALTER TABLE vault_role_definitions ADD COLUMN integrity TEXT;
ALTER TABLE vault_authorities ADD COLUMN integrity TEXT;`,
  },
];
