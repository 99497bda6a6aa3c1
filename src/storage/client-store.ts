import type { Database } from './database.js';

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

export function createClientStore(db: Database): ClientStore {
  return {
    async get(clientId) {
      const row = await db.get<{ secret_sha256: string; display_name: string }>('SELECT secret_sha256, display_name FROM clients WHERE client_id = ?', [clientId]);
      return row ? { secretSha256: row.secret_sha256, displayName: row.display_name } : undefined;
    },
    async add(c, opts = {}) {
      await db.run(`INSERT INTO clients (client_id, secret_sha256, display_name, created_at) VALUES (?, ?, ?, ?)${opts.ifAbsent ? ' ON CONFLICT (client_id) DO NOTHING' : ''}`, [c.clientId, c.secretSha256, c.displayName, c.createdAt]);
    },
    async remove(clientId) {
      await db.run('DELETE FROM clients WHERE client_id = ?', [clientId]);
    },
  };
}
