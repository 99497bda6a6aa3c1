import type { Migration } from '../database.js';

/** Store-layer tables shared by every domain. Ids 10–99 (core range). */
export const STORE_MIGRATIONS: readonly Migration[] = [
  {
    id: 10,
    name: 'change versions',
    sql: `
CREATE TABLE IF NOT EXISTS change_versions (
  name TEXT PRIMARY KEY,
  version {{bigint}} NOT NULL
);`,
  },
  {
    id: 11,
    name: 'store metadata',
    sql: `
CREATE TABLE IF NOT EXISTS store_meta (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);`,
  },
];
