import type { Migration } from '../database.js';

/** Foundation tables: OAuth clients and the service's own signing keys. Ids 1–99. */
export const CORE_MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'clients and service keys',
    sql: `
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL,
  display_name TEXT NOT NULL,
  created_at {{bigint}} NOT NULL
);
CREATE TABLE IF NOT EXISTS service_keys (
  name TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  sealed_private {{blob}} NOT NULL,
  cert_der {{blob}} NOT NULL,
  created_at {{bigint}} NOT NULL
);`,
  },
  {
    id: 20,
    name: 'OAuth clients carry a MAC under the master key (#14 item 4)',
    sql: 'ALTER TABLE clients ADD COLUMN integrity TEXT;',
  },
];
