import type { Migration } from '../database.js';

/**
 * The web console's sign-in codes and sessions (ids 400–409; docs/console.md). Both are keyed by the
 * SHA-256 of their secret, so the store never holds a usable code or session id.
 */
export const CONSOLE_MIGRATIONS: readonly Migration[] = [
  {
    id: 400,
    name: 'console sign-in codes and sessions',
    sql: `
CREATE TABLE IF NOT EXISTS console_sign_in_codes (
  code_sha256 TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  created_ms {{bigint}} NOT NULL,
  expires_ms {{bigint}} NOT NULL,
  used_ms {{bigint}}
);
CREATE TABLE IF NOT EXISTS console_sessions (
  id_sha256 TEXT PRIMARY KEY,
  principal TEXT NOT NULL,
  method TEXT NOT NULL,
  created_ms {{bigint}} NOT NULL,
  expires_ms {{bigint}} NOT NULL,
  seen_ms {{bigint}} NOT NULL
);`,
  },
  {
    id: 405,
    name: 'console sign-in codes and sessions carry a MAC under the master key (#14 item 4)',
    // Codes and sessions made before are short-lived: without a MAC they no longer authenticate.
    sql: `
ALTER TABLE console_sign_in_codes ADD COLUMN integrity TEXT;
ALTER TABLE console_sessions ADD COLUMN integrity TEXT;`,
  },
];
