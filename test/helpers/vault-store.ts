import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/storage/database.js';
import { MIGRATIONS } from '../../src/storage/migrations/index.js';
import { openDatabase } from '../../src/storage/open.js';
import { type VaultStore, createVaultStore } from '../../src/storage/vault-store.js';

/**
 * Runs `fn` on a vault store with row MACs (under a random key) over a fresh, migrated SQLite file (`path`),
 * then closes the database and removes the file's directory.
 */
export async function withMacVaultStore(fn: (s: { db: Database; path: string; store: VaultStore }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-vs-'));
  const path = join(dir, 'v.db');
  const db = await openDatabase(`sqlite:${path}`);
  const macKey = randomBytes(32);
  const store = createVaultStore(db, (purpose, text) => createHmac('sha256', macKey).update(purpose).update('\0').update(text).digest('hex'));
  try {
    await db.migrate(MIGRATIONS);
    await fn({ db, path, store });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
