import type { Database } from './database.js';
import { type RowMac, integrityOf } from './row-mac.js';

/** One registered OAuth client; its secret is kept only as a SHA-256 hash. */
export interface ClientRecord {
  readonly clientId: string;
  readonly secretSha256: string;
  readonly displayName: string;
  readonly createdAt: number;
}

/** The OAuth clients of the token endpoint (table `clients`). */
export interface ClientStore {
  get(clientId: string): Promise<Pick<ClientRecord, 'secretSha256' | 'displayName'> | undefined>;
  /** Adds a client; `ifAbsent` keeps an existing row with the same id instead of failing. */
  add(client: ClientRecord, opts?: { ifAbsent?: boolean }): Promise<void>;
  remove(clientId: string): Promise<void>;
}

const PURPOSE = 'oauth-client';
const fieldsOf = (clientId: string, secretSha256: string, displayName: string) => [clientId, secretSha256, displayName];

/**
 * With `mac` (the server's), every row carries a MAC under the master key over its id, secret hash and
 * name: a client added, or a secret hash replaced, with store access alone is refused (store.integrity).
 */
export function createClientStore(db: Database, mac?: RowMac): ClientStore {
  const integrity = integrityOf(mac);
  return {
    async get(clientId) {
      const row = await db.get<{ secret_sha256: string; display_name: string; integrity: string | null }>('SELECT secret_sha256, display_name, integrity FROM clients WHERE client_id = ?', [clientId]);
      if (!row) return undefined;
      integrity.check(PURPOSE, fieldsOf(clientId, row.secret_sha256, row.display_name), row.integrity, `OAuth client ${clientId}`);
      return { secretSha256: row.secret_sha256, displayName: row.display_name };
    },
    async add(c, opts = {}) {
      await db.run(`INSERT INTO clients (client_id, secret_sha256, display_name, created_at, integrity) VALUES (?, ?, ?, ?, ?)${opts.ifAbsent ? ' ON CONFLICT (client_id) DO NOTHING' : ''}`, [
        c.clientId,
        c.secretSha256,
        c.displayName,
        c.createdAt,
        integrity.compute(PURPOSE, fieldsOf(c.clientId, c.secretSha256, c.displayName)),
      ]);
    },
    async remove(clientId) {
      await db.run('DELETE FROM clients WHERE client_id = ?', [clientId]);
    },
  };
}

/** Gives every client row without a MAC one (once, for a store made before row MACs; see adoptVaultRows). */
export async function adoptClientRows(db: Database, mac: RowMac): Promise<number> {
  const integrity = integrityOf(mac);
  let n = 0;
  for (const r of await db.all<{ client_id: string; secret_sha256: string; display_name: string }>('SELECT client_id, secret_sha256, display_name FROM clients WHERE integrity IS NULL')) {
    n += (await db.run('UPDATE clients SET integrity = ? WHERE client_id = ? AND integrity IS NULL', [integrity.compute(PURPOSE, fieldsOf(r.client_id, r.secret_sha256, r.display_name)), r.client_id])).changes;
  }
  return n;
}
