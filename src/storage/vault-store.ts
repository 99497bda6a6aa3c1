/**
 * The vault's SQL: keys and versions, role assignments, trusted authorities, the audit chain. Portable
 * to SQLite and PostgreSQL; every multi-row change runs in one transaction.
 */
import type { Database, SqlExecutor } from './database.js';
import { type AuditRecord, auditHash, canonicalJson, GENESIS_HASH, type StoredAuditRow } from '../vault/audit.js';
import type { DeletionInfo, KeyOperation, KeyType, KeyVersion } from '../vault/key.js';
import type { CurveName } from '../vault/ports.js';
import type { RoleAssignment, RoleName } from '../vault/roles.js';
import type { KeyState, Page, VaultStore } from '../vault/store.js';

export type { KeyState, Page, VaultStore } from '../vault/store.js';

type Tx = SqlExecutor & { lock(name: string): Promise<void> };

interface VersionRow {
  name: string;
  version: string;
  seq: number | string;
  kty: string;
  key_size: number | null;
  crv: string | null;
  key_ops: string;
  public_jwk: string;
  protected_key: Uint8Array;
  provider: string;
  enabled: number;
  nbf: number | string | null;
  exp: number | string | null;
  exportable: number;
  created: number | string;
  updated: number | string;
  tags: string | null;
  release_policy: string | null;
  policy_immutable: number;
}

const VERSION_COLUMNS =
  'v.name, v.version, v.seq, v.kty, v.key_size, v.crv, v.key_ops, v.public_jwk, v.protected_key, v.provider, v.enabled, v.nbf, v.exp, v.exportable, v.created, v.updated, v.tags, v.release_policy, v.policy_immutable';

const num = (v: number | string | null): number | undefined => (v === null || v === undefined ? undefined : Number(v));

function fromRow(r: VersionRow): KeyVersion {
  const nbf = num(r.nbf);
  const exp = num(r.exp);
  return {
    name: r.name,
    version: r.version,
    kty: r.kty as KeyType,
    ...(r.key_size !== null ? { keySize: Number(r.key_size) } : {}),
    ...(r.crv !== null ? { crv: r.crv as CurveName } : {}),
    keyOps: JSON.parse(r.key_ops) as KeyOperation[],
    publicJwk: JSON.parse(r.public_jwk),
    handle: new Uint8Array(r.protected_key),
    provider: r.provider,
    attributes: {
      enabled: Boolean(Number(r.enabled)),
      exportable: Boolean(Number(r.exportable)),
      created: Number(r.created),
      updated: Number(r.updated),
      ...(nbf !== undefined ? { nbf } : {}),
      ...(exp !== undefined ? { exp } : {}),
    },
    ...(r.tags !== null ? { tags: JSON.parse(r.tags) } : {}),
    ...(r.release_policy !== null ? { releasePolicy: { json: r.release_policy, immutable: Boolean(Number(r.policy_immutable)) } } : {}),
  };
}

function versionParams(k: KeyVersion, seq: number): unknown[] {
  return [
    k.name,
    k.version,
    seq,
    k.kty,
    k.keySize ?? null,
    k.crv ?? null,
    JSON.stringify(k.keyOps),
    JSON.stringify(k.publicJwk),
    Buffer.from(k.handle),
    k.provider,
    k.attributes.enabled ? 1 : 0,
    k.attributes.nbf ?? null,
    k.attributes.exp ?? null,
    k.attributes.exportable ? 1 : 0,
    k.attributes.created,
    k.attributes.updated,
    k.tags ? JSON.stringify(k.tags) : null,
    k.releasePolicy?.json ?? null,
    k.releasePolicy?.immutable ? 1 : 0,
  ];
}

const INSERT_VERSION =
  'INSERT INTO vault_key_versions (name, version, seq, kty, key_size, crv, key_ops, public_jwk, protected_key, provider, enabled, nbf, exp, exportable, created, updated, tags, release_policy, policy_immutable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

export function createVaultStore(db: Database): VaultStore {
  async function keyState(ex: SqlExecutor, name: string): Promise<KeyState> {
    const row = await ex.get<{ deleted_at: number | string | null; scheduled_purge_at: number | string | null }>('SELECT deleted_at, scheduled_purge_at FROM vault_keys WHERE name = ?', [name]);
    if (!row) return { state: 'absent' };
    if (row.deleted_at === null) return { state: 'live' };
    return { state: 'deleted', deletion: { deletedDate: Number(row.deleted_at), scheduledPurgeDate: Number(row.scheduled_purge_at) } };
  }

  return {
    keyState: (name: string) => keyState(db, name),

    /** Latest (or the given) version of a live or deleted key. */
    async getVersion(name: string, version: string | undefined, ex: SqlExecutor = db): Promise<KeyVersion | undefined> {
      const row = version
        ? await ex.get<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v WHERE v.name = ? AND v.version = ?`, [name, version])
        : await ex.get<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v JOIN vault_keys k ON k.name = v.name AND k.latest_version = v.version WHERE v.name = ?`, [name]);
      return row ? fromRow(row) : undefined;
    },

    /**
     * Adds a version and makes it `latest`. The key row is created if absent; the per-key lock (an
     * advisory lock on PostgreSQL, the single writer on SQLite) serialises concurrent versions of one
     * key so none is lost and `latest` is the highest sequence. Returns false when the key is deleted.
     */
    async addVersion(key: KeyVersion, nowSeconds: number, audit?: Omit<AuditRecord, 'seq'>): Promise<'ok' | 'deleted'> {
      return db.transaction(async (tx) => {
        await tx.lock(`vault-key:${key.name}`);
        await tx.run('INSERT INTO vault_keys (name, latest_version, deleted_at, scheduled_purge_at, created_at) VALUES (?, NULL, NULL, NULL, ?) ON CONFLICT (name) DO NOTHING', [key.name, nowSeconds]);
        const st = await keyState(tx, key.name);
        if (st.state === 'deleted') return 'deleted';
        const max = await tx.get<{ m: number | string | null }>('SELECT MAX(seq) AS m FROM vault_key_versions WHERE name = ?', [key.name]);
        const seq = Number(max?.m ?? 0) + 1;
        await tx.run(INSERT_VERSION, versionParams(key, seq));
        await tx.run('UPDATE vault_keys SET latest_version = ? WHERE name = ?', [key.version, key.name]);
        if (audit) await appendAudit(tx, audit);
        return 'ok';
      });
    },

    /**
     * Read-modify-write of one version under the per-key lock, `apply` seeing the row as it is inside
     * the lock: computed from a read made before a concurrent update committed, an update would undo
     * it (re-enable a disabled key, replace a policy just made immutable). `apply` may throw to refuse.
     */
    async updateVersion(name: string, version: string, apply: (current: KeyVersion) => KeyVersion, audit: Omit<AuditRecord, 'seq'>): Promise<KeyVersion | undefined> {
      return db.transaction(async (tx) => {
        await tx.lock(`vault-key:${name}`);
        if ((await keyState(tx, name)).state !== 'live') return undefined;
        const row = await tx.get<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v WHERE v.name = ? AND v.version = ?`, [name, version]);
        if (!row) return undefined;
        const key = apply(fromRow(row));
        await tx.run(
          'UPDATE vault_key_versions SET key_ops = ?, enabled = ?, nbf = ?, exp = ?, updated = ?, tags = ?, release_policy = ?, policy_immutable = ? WHERE name = ? AND version = ?',
          [
            JSON.stringify(key.keyOps),
            key.attributes.enabled ? 1 : 0,
            key.attributes.nbf ?? null,
            key.attributes.exp ?? null,
            key.attributes.updated,
            key.tags ? JSON.stringify(key.tags) : null,
            key.releasePolicy?.json ?? null,
            key.releasePolicy?.immutable ? 1 : 0,
            key.name,
            key.version,
          ],
        );
        await appendAudit(tx, audit);
        return key;
      });
    },

    /** Live keys (latest version each), ordered by name, `offset`-paged. */
    async listKeys(deleted: boolean, offset: number, limit: number): Promise<Page<{ key: KeyVersion; deletion?: DeletionInfo }>> {
      const rows = await db.all<VersionRow & { deleted_at: number | string | null; scheduled_purge_at: number | string | null }>(
        `SELECT ${VERSION_COLUMNS}, k.deleted_at, k.scheduled_purge_at FROM vault_keys k JOIN vault_key_versions v ON v.name = k.name AND v.version = k.latest_version WHERE k.deleted_at IS ${deleted ? 'NOT ' : ''}NULL ORDER BY k.name LIMIT ? OFFSET ?`,
        [limit + 1, offset],
      );
      const items = rows.slice(0, limit).map((r) => ({
        key: fromRow(r),
        ...(r.deleted_at !== null ? { deletion: { deletedDate: Number(r.deleted_at), scheduledPurgeDate: Number(r.scheduled_purge_at) } } : {}),
      }));
      return rows.length > limit ? { items, next: offset + limit } : { items };
    },

    async listVersions(name: string, offset: number, limit: number): Promise<Page<KeyVersion>> {
      const rows = await db.all<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v WHERE v.name = ? ORDER BY v.seq LIMIT ? OFFSET ?`, [name, limit + 1, offset]);
      const items = rows.slice(0, limit).map(fromRow);
      return rows.length > limit ? { items, next: offset + limit } : { items };
    },

    async allVersions(name: string, ex: SqlExecutor = db): Promise<KeyVersion[]> {
      return (await ex.all<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v WHERE v.name = ? ORDER BY v.seq`, [name])).map(fromRow);
    },

    /** Soft delete / recover / purge: one statement each, with their audit record in the same transaction. */
    async setDeleted(name: string, deletion: DeletionInfo | undefined, audit: Omit<AuditRecord, 'seq'>): Promise<boolean> {
      return db.transaction(async (tx) => {
        const r = deletion
          ? await tx.run('UPDATE vault_keys SET deleted_at = ?, scheduled_purge_at = ? WHERE name = ? AND deleted_at IS NULL', [deletion.deletedDate, deletion.scheduledPurgeDate, name])
          : await tx.run('UPDATE vault_keys SET deleted_at = NULL, scheduled_purge_at = NULL WHERE name = ? AND deleted_at IS NOT NULL', [name]);
        if (r.changes === 1) await appendAudit(tx, audit);
        return r.changes === 1;
      });
    },

    async purge(name: string, audit: Omit<AuditRecord, 'seq'>): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx.run('DELETE FROM vault_key_versions WHERE name = ? AND EXISTS (SELECT 1 FROM vault_keys WHERE name = ? AND deleted_at IS NOT NULL)', [name, name]);
        const r = await tx.run('DELETE FROM vault_keys WHERE name = ? AND deleted_at IS NOT NULL', [name]);
        if (r.changes === 1) await appendAudit(tx, audit);
        return r.changes === 1;
      });
    },

    /** Restores all versions of a backup under its name; false when the name is taken (live or deleted). */
    async restore(versions: readonly KeyVersion[], latest: string, nowSeconds: number, audit: Omit<AuditRecord, 'seq'>): Promise<boolean> {
      const name = versions[0]!.name;
      return db.transaction(async (tx) => {
        await tx.lock(`vault-key:${name}`);
        const ins = await tx.run('INSERT INTO vault_keys (name, latest_version, deleted_at, scheduled_purge_at, created_at) VALUES (?, ?, NULL, NULL, ?) ON CONFLICT (name) DO NOTHING', [name, latest, nowSeconds]);
        if (ins.changes !== 1) return false;
        let seq = 0;
        for (const v of versions) await tx.run(INSERT_VERSION, versionParams(v, ++seq));
        await appendAudit(tx, audit);
        return true;
      });
    },

    // ── roles ──
    async assignmentsOf(principalId: string): Promise<Pick<RoleAssignment, 'role' | 'scope'>[]> {
      return db.all<{ role: RoleName; scope: string }>('SELECT role, scope FROM vault_role_assignments WHERE principal_id = ?', [principalId]);
    },
    async listAssignments(): Promise<RoleAssignment[]> {
      const rows = await db.all<{ id: string; principal_id: string; role: RoleName; scope: string; created_at: number | string }>('SELECT id, principal_id, role, scope, created_at FROM vault_role_assignments ORDER BY created_at, id');
      return rows.map((r) => ({ id: r.id, principalId: r.principal_id, role: r.role, scope: r.scope, createdAt: Number(r.created_at) }));
    },
    async addAssignment(a: RoleAssignment, audit: Omit<AuditRecord, 'seq'>): Promise<RoleAssignment> {
      return db.transaction(async (tx) => {
        await tx.run('INSERT INTO vault_role_assignments (id, principal_id, role, scope, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (principal_id, role, scope) DO NOTHING', [a.id, a.principalId, a.role, a.scope, a.createdAt]);
        const row = await tx.get<{ id: string; created_at: number | string }>('SELECT id, created_at FROM vault_role_assignments WHERE principal_id = ? AND role = ? AND scope = ?', [a.principalId, a.role, a.scope]);
        await appendAudit(tx, audit);
        return { ...a, id: row!.id, createdAt: Number(row!.created_at) };
      });
    },
    async removeAssignment(id: string, audit: Omit<AuditRecord, 'seq'>): Promise<boolean> {
      return db.transaction(async (tx) => {
        const r = await tx.run('DELETE FROM vault_role_assignments WHERE id = ?', [id]);
        if (r.changes === 1) await appendAudit(tx, audit);
        return r.changes === 1;
      });
    },

    // ── authorities ──
    async authorities(): Promise<string[]> {
      return (await db.all<{ authority: string }>('SELECT authority FROM vault_authorities ORDER BY authority')).map((r) => r.authority);
    },
    async setAuthorities(list: readonly string[], nowSeconds: number, audit: Omit<AuditRecord, 'seq'>): Promise<void> {
      await db.transaction(async (tx) => {
        await tx.run('DELETE FROM vault_authorities');
        for (const a of new Set(list)) await tx.run('INSERT INTO vault_authorities (authority, added_at) VALUES (?, ?)', [a, nowSeconds]);
        await appendAudit(tx, audit);
      });
    },

    // ── audit ──
    async audit(record: Omit<AuditRecord, 'seq'>): Promise<void> {
      await db.transaction((tx) => appendAudit(tx, record));
    },
    auditRows: (fromSeq, limit) => readAuditRows(db, fromSeq, limit),
  };
}

/** Appends one record under the `audit` lock, chained to the current head. */
export async function appendAudit(tx: Tx, record: Omit<AuditRecord, 'seq'>): Promise<number> {
  await tx.lock('vault-audit');
  const head = await tx.get<{ seq: number | string; hash: string }>('SELECT seq, hash FROM vault_audit ORDER BY seq DESC LIMIT 1');
  const seq = head ? Number(head.seq) + 1 : 1;
  const prev = head?.hash ?? GENESIS_HASH;
  const json = canonicalJson({ ...record, seq });
  await tx.run('INSERT INTO vault_audit (seq, record, prev_hash, hash) VALUES (?, ?, ?, ?)', [seq, json, prev, auditHash(prev, json)]);
  return seq;
}

/** All audit rows in order (for `conclave audit verify` and the admin API). */
export async function readAuditRows(db: SqlExecutor, fromSeq = 1, limit = Number.MAX_SAFE_INTEGER): Promise<StoredAuditRow[]> {
  const rows = await db.all<{ seq: number | string; record: string; prev_hash: string; hash: string }>('SELECT seq, record, prev_hash, hash FROM vault_audit WHERE seq >= ? ORDER BY seq LIMIT ?', [fromSeq, Math.min(limit, 1_000_000_000)]);
  return rows.map((r) => ({ seq: Number(r.seq), record: r.record, prevHash: r.prev_hash, hash: r.hash }));
}
