/**
 * The vault's SQL: keys and versions, role assignments, trusted authorities, and the audit records it
 * writes into the transparency log. Portable to SQLite and PostgreSQL; every multi-row change runs in
 * one transaction, with its log entry.
 */
import { BoundedMap } from '../core/bounded-map.js';
import { fail } from '../core/errors.js';
import { createHexIdPool } from '../core/random-id.js';
import { type RowMac, integrityOf } from './row-mac.js';

export type { RowMac } from './row-mac.js';
import type { Database, SqlExecutor } from './database.js';

type Tx = SqlExecutor & { lock(name: string): Promise<void> };
import { createLogAppender, insertLogEntry, type LogReceipt } from './log-store.js';
import { type AuditRecord, canonicalJson } from '../vault/audit.js';
import type { DeletionInfo, KeyOperation, KeyType, KeyVersion } from '../vault/key.js';
import type { CurveName } from '../vault/ports.js';
import type { RoleAssignment, RoleDefinition } from '../vault/roles.js';
import { deserializeRotationPolicy, type RotationPolicy, serializeRotationPolicy } from '../vault/rotation.js';
import type { AuditEntry, BackupJob, KeySnapshot, KeyState, Page, RotationCandidate, RotationPlan, VaultSnapshot, VaultStore } from '../vault/store.js';

export type { KeyState, Page, VaultStore } from '../vault/store.js';


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
  integrity: string | null;
}

const VERSION_COLUMNS =
  'v.name, v.version, v.seq, v.kty, v.key_size, v.crv, v.key_ops, v.public_jwk, v.protected_key, v.provider, v.enabled, v.nbf, v.exp, v.exportable, v.created, v.updated, v.tags, v.release_policy, v.policy_immutable, v.integrity';

const num = (v: number | string | null): number | undefined => (v === null || v === undefined ? undefined : Number(v));

function keyVersionOf(r: VersionRow): KeyVersion {
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

function versionParams(k: KeyVersion, seq: number, integrity: string | null): unknown[] {
  const r = rowOf(k);
  return [r.name, r.version, seq, r.kty, r.key_size, r.crv, r.key_ops, r.public_jwk, r.protected_key, r.provider, r.enabled, r.nbf, r.exp, r.exportable, r.created, r.updated, r.tags, r.release_policy, r.policy_immutable, integrity];
}

const INSERT_VERSION =
  'INSERT INTO vault_key_versions (name, version, seq, kty, key_size, crv, key_ops, public_jwk, protected_key, provider, enabled, nbf, exp, exportable, created, updated, tags, release_policy, policy_immutable, integrity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

/** A version row's sealed columns: all but `seq` (which the store assigns) and the MAC itself. */
function versionFields(r: Omit<VersionRow, 'seq' | 'integrity'>): unknown[] {
  const n = (v: number | string | null) => (v === null ? null : Number(v));
  return [r.name, r.version, r.kty, n(r.key_size), r.crv, r.key_ops, r.public_jwk, r.protected_key, r.provider, Number(r.enabled), n(r.nbf), n(r.exp), Number(r.exportable), Number(r.created), Number(r.updated), r.tags, r.release_policy, Number(r.policy_immutable)];
}

function rowOf(k: KeyVersion): Omit<VersionRow, 'seq' | 'integrity'> {
  return {
    name: k.name,
    version: k.version,
    kty: k.kty,
    key_size: k.keySize ?? null,
    crv: k.crv ?? null,
    key_ops: JSON.stringify(k.keyOps),
    public_jwk: JSON.stringify(k.publicJwk),
    protected_key: Buffer.from(k.handle),
    provider: k.provider,
    enabled: k.attributes.enabled ? 1 : 0,
    nbf: k.attributes.nbf ?? null,
    exp: k.attributes.exp ?? null,
    exportable: k.attributes.exportable ? 1 : 0,
    created: k.attributes.created,
    updated: k.attributes.updated,
    tags: k.tags ? JSON.stringify(k.tags) : null,
    release_policy: k.releasePolicy?.json ?? null,
    policy_immutable: k.releasePolicy?.immutable ? 1 : 0,
  };
}

/** The columns `updateVersion` writes (the material, type, public key, exportability and creation time never change). */
function updatedColumns(k: KeyVersion): Pick<VersionRow, 'key_ops' | 'enabled' | 'nbf' | 'exp' | 'updated' | 'tags' | 'release_policy' | 'policy_immutable'> {
  const r = rowOf(k);
  return { key_ops: r.key_ops, enabled: r.enabled, nbf: r.nbf, exp: r.exp, updated: r.updated, tags: r.tags, release_policy: r.release_policy, policy_immutable: r.policy_immutable };
}

const PURPOSE = { version: 'vault-key-version', assignment: 'vault-role-assignment', definition: 'vault-role-definition', authority: 'vault-authority' } as const;

/**
 * Gives every vault row without a MAC one: run once, when a store made before row MACs first meets its
 * master key's check value (src/main.ts); afterwards a row without a MAC is refused like a changed one.
 */
export async function adoptVaultRows(db: Database, mac: RowMac): Promise<number> {
  const integrity = integrityOf(mac);
  let n = 0;
  for (const r of await db.all<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v WHERE v.integrity IS NULL`)) {
    n += (await db.run('UPDATE vault_key_versions SET integrity = ? WHERE name = ? AND version = ? AND integrity IS NULL', [integrity.compute(PURPOSE.version, versionFields(r)), r.name, r.version])).changes;
  }
  for (const r of await db.all<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM vault_role_assignments WHERE integrity IS NULL`)) {
    n += (await db.run('UPDATE vault_role_assignments SET integrity = ? WHERE id = ? AND integrity IS NULL', [integrity.compute(PURPOSE.assignment, assignmentFields(r)), r.id])).changes;
  }
  for (const r of await db.all<DefinitionRow>(`SELECT ${DEFINITION_COLUMNS} FROM vault_role_definitions WHERE integrity IS NULL`)) {
    n += (await db.run('UPDATE vault_role_definitions SET integrity = ? WHERE name = ? AND integrity IS NULL', [integrity.compute(PURPOSE.definition, definitionFields(r)), r.name])).changes;
  }
  for (const r of await db.all<{ authority: string }>('SELECT authority FROM vault_authorities WHERE integrity IS NULL')) {
    n += (await db.run('UPDATE vault_authorities SET integrity = ? WHERE authority = ? AND integrity IS NULL', [integrity.compute(PURPOSE.authority, [r.authority]), r.authority])).changes;
  }
  return n;
}

/** Key versions read by the hot lookup (liveVersion), remembered per store by their row MAC. */
const READ_VERSIONS_LIMIT = 256;

/** Freezes a key version's plain parts (not the handle: a typed array cannot be frozen), so a shared one cannot be changed. */
function frozen<T>(v: T): T {
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v) || Object.isFrozen(v)) return v;
  for (const x of Object.values(v)) frozen(x);
  return Object.freeze(v);
}

/** Whether two rows' sealed columns are the same values of the same types (bytes compared as bytes). */
function sameFields(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x instanceof Uint8Array || y instanceof Uint8Array) {
      if (!(x instanceof Uint8Array && y instanceof Uint8Array && Buffer.compare(x, y) === 0)) return false;
    } else if (x !== y) return false;
  }
  return true;
}

/** The per-key lock: one name in any case is one key. */
const keyLock = (name: string) => `vault-key:${name.toLowerCase()}`;

/**
 * The transparency log's tables: the audit append of every operation and the sequencer write them, and
 * nothing the vault's cached reads depend on.
 */
const LOG_TABLES = ['log_leaves', 'log_index', 'log_pending', 'log_nodes', 'log_heads', 'log_sequencer'];

/** Bounds of the read caches (entries; the oldest goes first). */
const CACHED_PRINCIPALS = 1024;
const CACHED_KEYS = 256;

export function createVaultStore(db: Database, mac?: RowMac): VaultStore {
  const appender = createLogAppender(db);
  const integrity = integrityOf(mac);
  /**
   * The reads every authorised request and every release makes (the caller's role assignments, the key,
   * the trusted authorities, custom roles) are remembered on SQLite while its change counter stands still:
   * it moves on any commit by another connection or process and on any write of this one but the log's
   * (src/storage/sqlite.ts), so a revoked role, a disabled or deleted key or a removed authority is read
   * afresh by the next request. Not on PostgreSQL: another replica's change would not be seen.
   */
  const changes = db.changeCounter?.(LOG_TABLES);
  const remembered = <V>(cache: BoundedMap<string, { at: number; value: V }>, key: string, read: () => Promise<V>, keep: (v: V) => boolean = () => true): Promise<V> => {
    if (!changes) return read();
    // The counter first, then the read: a change between them moves the counter past `at`.
    const at = changes();
    const hit = cache.get(key);
    if (hit !== undefined && hit.at === at) return Promise.resolve(hit.value);
    return read().then((value) => {
      if (keep(value)) cache.set(key, { at, value });
      return value;
    });
  };
  const assignmentsRead = new BoundedMap<string, { at: number; value: Pick<RoleAssignment, 'roleDefinitionId' | 'scope'>[] }>(CACHED_PRINCIPALS);
  const liveRead = new BoundedMap<string, { at: number; value: KeyVersion | undefined }>(CACHED_KEYS);
  const authoritiesRead = new BoundedMap<string, { at: number; value: string[] }>(1);
  const customRolesRead = new BoundedMap<string, { at: number; value: RoleDefinition[] }>(1);
  /** A version row as the domain sees it, after its MAC is checked. */
  const fromRow = (r: VersionRow): KeyVersion => {
    integrity.check(PURPOSE.version, versionFields(r), r.integrity, `vault key ${r.name} version ${r.version}`);
    return keyVersionOf(r);
  };
  /**
   * liveVersion's rows: a version row passed its MAC check and was parsed once is given out again, frozen,
   * while the row read is that same text under that same MAC (a key released or used again and again);
   * any change to the row (an update, a new latest version, a row changed outside Conclave) is another
   * text and goes through fromRow, its check and its parse, again.
   */
  const readVersions = new BoundedMap<string, { fields: readonly unknown[]; key: KeyVersion }>(READ_VERSIONS_LIMIT);
  const liveRow = (r: VersionRow): KeyVersion => {
    if (!mac || r.integrity === null) return fromRow(r);
    // Compared column by column (the same values of the same types: the same row text), without
    // writing the text (the material's base64 and all) again.
    const fields = versionFields(r);
    const seen = readVersions.get(r.integrity);
    if (seen !== undefined && sameFields(seen.fields, fields)) return seen.key;
    const key = frozen(fromRow(r));
    readVersions.set(r.integrity, { fields, key });
    return key;
  };
  const paramsOf = (k: KeyVersion, seq: number) => versionParams(k, seq, integrity.compute(PURPOSE.version, versionFields(rowOf(k))));
  const assignment = (r: AssignmentRow): RoleAssignment => {
    integrity.check(PURPOSE.assignment, assignmentFields(r), r.integrity, `role assignment ${r.id}`);
    return assignmentOf(r);
  };
  const definition = (r: DefinitionRow): RoleDefinition => {
    integrity.check(PURPOSE.definition, definitionFields(r), r.integrity, `role definition ${r.name}`);
    return { name: r.name, roleName: r.role_name, description: r.description, type: 'CustomRole' as const, permissions: JSON.parse(r.permissions), assignableScopes: JSON.parse(r.assignable_scopes) };
  };
  const authority = (r: { authority: string; integrity: string | null }): string => {
    integrity.check(PURPOSE.authority, [r.authority], r.integrity, `trusted authority ${r.authority}`);
    return r.authority;
  };
  const assignmentMac = (a: RoleAssignment) => integrity.compute(PURPOSE.assignment, assignmentFields({ id: a.id, principal_id: a.principalId, role: a.roleDefinitionId, scope: a.scope, created_at: a.createdAt, integrity: null }));
  const definitionRow = (d: RoleDefinition, created: number, updated: number): unknown[] => {
    const r = { name: d.name, role_name: d.roleName, description: d.description, permissions: JSON.stringify(d.permissions), assignable_scopes: JSON.stringify(d.assignableScopes), integrity: null };
    return [r.name, r.role_name, r.description, r.permissions, r.assignable_scopes, created, updated, integrity.compute(PURPOSE.definition, definitionFields(r))];
  };
  /** The key named `name` in any case; the exact spelling wins where a pre-201 store holds several. */
  async function keyState(ex: SqlExecutor, name: string): Promise<KeyState> {
    const row = await ex.get<{ name: string; deleted_at: number | string | null; scheduled_purge_at: number | string | null }>(
      'SELECT name, deleted_at, scheduled_purge_at FROM vault_keys WHERE name_lower = ? ORDER BY CASE WHEN name = ? THEN 0 ELSE 1 END, created_at, name LIMIT 1',
      [name.toLowerCase(), name],
    );
    if (!row) return { state: 'absent' };
    if (row.deleted_at === null) return { state: 'live', name: row.name };
    return { state: 'deleted', name: row.name, deletion: { deletedDate: Number(row.deleted_at), scheduledPurgeDate: Number(row.scheduled_purge_at) } };
  }

  async function insertVersion(tx: Tx, key: KeyVersion): Promise<void> {
    const max = await tx.get<{ m: number | string | null }>('SELECT MAX(seq) AS m FROM vault_key_versions WHERE name = ?', [key.name]);
    await tx.run(INSERT_VERSION, paramsOf(key, Number(max?.m ?? 0) + 1));
    await tx.run('UPDATE vault_keys SET latest_version = ? WHERE name = ?', [key.version, key.name]);
  }

  async function readPolicy(ex: SqlExecutor, name: string): Promise<RotationPolicy | undefined> {
    const row = await ex.get<{ policy: string }>('SELECT policy FROM vault_rotation_policies WHERE name = ?', [name]);
    return row ? deserializeRotationPolicy(row.policy) : undefined;
  }

  async function writePolicy(tx: Tx, name: string, policy: RotationPolicy): Promise<void> {
    await tx.run('INSERT INTO vault_rotation_policies (name, policy, updated) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, updated = excluded.updated', [name, serializeRotationPolicy(policy), policy.updated]);
  }

  /** The key row keyState chooses (the exact spelling first, then the first created), if live, joined to its version. */
  const chosenKey = 'SELECT name, latest_version, deleted_at FROM vault_keys WHERE name_lower = ? ORDER BY CASE WHEN name = ? THEN 0 ELSE 1 END, created_at, name LIMIT 1';
  const LIVE_LATEST = `SELECT ${VERSION_COLUMNS} FROM (${chosenKey}) k JOIN vault_key_versions v ON v.name = k.name AND v.version = k.latest_version WHERE k.deleted_at IS NULL`;
  const LIVE_VERSION = `SELECT ${VERSION_COLUMNS} FROM (${chosenKey}) k JOIN vault_key_versions v ON v.name = k.name AND v.version = ? WHERE k.deleted_at IS NULL`;

  return {
    keyState: (name: string) => keyState(db, name),

    liveVersion(name: string, version: string | undefined): Promise<KeyVersion | undefined> {
      // Keyed by the name as asked (the exact spelling decides among names that differ in case); absent keys are not remembered.
      return remembered(
        liveRead,
        `${name}\0${version ?? ''}`,
        async () => {
          const row = version
            ? await db.get<VersionRow>(LIVE_VERSION, [name.toLowerCase(), name, version])
            : await db.get<VersionRow>(LIVE_LATEST, [name.toLowerCase(), name]);
          return row ? frozen(liveRow(row)) : undefined;
        },
        (k) => k !== undefined,
      );
    },

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
    async addVersion(key: KeyVersion, nowSeconds: number, audit?: Omit<AuditRecord, 'seq'>): Promise<'ok' | 'deleted' | 'renamed'> {
      return db.transaction(async (tx) => {
        await tx.lock(keyLock(key.name));
        const st = await keyState(tx, key.name);
        if (st.state === 'deleted') return 'deleted';
        // The version's material is bound to the name it was made for: another spelling is another key.
        if (st.state === 'live' && st.name !== key.name) return 'renamed';
        if (st.state === 'absent') {
          await tx.run('INSERT INTO vault_keys (name, name_lower, latest_version, deleted_at, scheduled_purge_at, created_at) VALUES (?, ?, NULL, NULL, NULL, ?)', [key.name, key.name.toLowerCase(), nowSeconds]);
        }
        await insertVersion(tx, key);
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
        await tx.lock(keyLock(name));
        if ((await keyState(tx, name)).state !== 'live') return undefined;
        const row = await tx.get<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v WHERE v.name = ? AND v.version = ?`, [name, version]);
        if (!row) return undefined;
        const key = apply(fromRow(row));
        await tx.run(
          'UPDATE vault_key_versions SET key_ops = ?, enabled = ?, nbf = ?, exp = ?, updated = ?, tags = ?, release_policy = ?, policy_immutable = ?, integrity = ? WHERE name = ? AND version = ?',
          [
            JSON.stringify(key.keyOps),
            key.attributes.enabled ? 1 : 0,
            key.attributes.nbf ?? null,
            key.attributes.exp ?? null,
            key.attributes.updated,
            key.tags ? JSON.stringify(key.tags) : null,
            key.releasePolicy?.json ?? null,
            key.releasePolicy?.immutable ? 1 : 0,
            // The row as it will be: the material and the columns the update leaves alone, as read.
            integrity.compute(PURPOSE.version, versionFields({ ...row, ...updatedColumns(key) })),
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

    /**
     * Soft delete / recover: one statement each, with their audit record in the same transaction, under
     * the per-key lock: a purge (two statements, each reading what has committed when it starts) must not
     * see a recover commit between them, nor a new version be added to a key being deleted.
     */
    async setDeleted(name: string, deletion: DeletionInfo | undefined, audit: Omit<AuditRecord, 'seq'>): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx.lock(keyLock(name));
        const r = deletion
          ? await tx.run('UPDATE vault_keys SET deleted_at = ?, scheduled_purge_at = ? WHERE name = ? AND deleted_at IS NULL', [deletion.deletedDate, deletion.scheduledPurgeDate, name])
          : await tx.run('UPDATE vault_keys SET deleted_at = NULL, scheduled_purge_at = NULL WHERE name = ? AND deleted_at IS NOT NULL', [name]);
        if (r.changes === 1) await appendAudit(tx, audit);
        return r.changes === 1;
      });
    },

    async purge(name: string, audit: Omit<AuditRecord, 'seq'>, dueBy?: number): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx.lock(keyLock(name));
        // One statement decides: of replicas purging the same key, exactly one deletes the row and audits.
        const due = dueBy === undefined ? '' : ' AND scheduled_purge_at <= ?';
        const args = dueBy === undefined ? [name] : [name, dueBy];
        const versions = await tx.run(`DELETE FROM vault_key_versions WHERE name = ? AND EXISTS (SELECT 1 FROM vault_keys WHERE name = ? AND deleted_at IS NOT NULL${due})`, [name, ...args]);
        const r = await tx.run(`DELETE FROM vault_keys WHERE name = ? AND deleted_at IS NOT NULL${due}`, args);
        // Versions gone but the key row kept (it was recovered between the statements, by a writer that
        // took no key lock): undo both rather than leave a live key without its material.
        if (r.changes !== 1 && versions.changes > 0) throw fail('store.conflict', `Key ${name} changed while it was purged; nothing was purged`, { name });
        if (r.changes === 1) await appendAudit(tx, audit);
        return r.changes === 1;
      });
    },

    async duePurges(nowSeconds: number, limit: number): Promise<string[]> {
      const rows = await db.all<{ name: string }>('SELECT name FROM vault_keys WHERE deleted_at IS NOT NULL AND scheduled_purge_at <= ? ORDER BY scheduled_purge_at, name LIMIT ?', [nowSeconds, limit]);
      return rows.map((r) => r.name);
    },

    /** Restores all versions of a backup under its name; false when the name is taken (live or deleted). */
    async restore(versions: readonly KeyVersion[], latest: string, nowSeconds: number, audit: Omit<AuditRecord, 'seq'>, rotationPolicy?: RotationPolicy): Promise<boolean> {
      const name = versions[0]!.name;
      return db.transaction(async (tx) => {
        await tx.lock(keyLock(name));
        if ((await keyState(tx, name)).state !== 'absent') return false;
        await tx.run('INSERT INTO vault_keys (name, name_lower, latest_version, deleted_at, scheduled_purge_at, created_at) VALUES (?, ?, ?, NULL, NULL, ?)', [name, name.toLowerCase(), latest, nowSeconds]);
        let seq = 0;
        for (const v of versions) await tx.run(INSERT_VERSION, paramsOf(v, ++seq));
        if (rotationPolicy) await writePolicy(tx, name, rotationPolicy);
        await appendAudit(tx, audit);
        return true;
      });
    },

    // ── rotation ──
    rotationPolicy: (name: string) => readPolicy(db, name),

    async setRotationPolicy(name: string, policy: RotationPolicy, audit: AuditEntry): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx.lock(keyLock(name));
        if ((await keyState(tx, name)).state !== 'live') return false;
        await writePolicy(tx, name, policy);
        await appendAudit(tx, audit);
        return true;
      });
    },

    async rotationCandidates(after: string | undefined, limit: number): Promise<RotationCandidate[]> {
      const rows = await db.all<VersionRow & { policy: string | null; noticed: number | string | null }>(
        `SELECT ${VERSION_COLUMNS}, p.policy, n.notified_at AS noticed FROM vault_keys k JOIN vault_key_versions v ON v.name = k.name AND v.version = k.latest_version
         LEFT JOIN vault_rotation_policies p ON p.name = k.name LEFT JOIN vault_rotation_notices n ON n.name = k.name AND n.version = k.latest_version
         WHERE k.deleted_at IS NULL AND (p.policy IS NOT NULL OR v.exp IS NOT NULL) AND k.name > ? ORDER BY k.name LIMIT ?`,
        [after ?? '', limit],
      );
      return rows.map((r) => ({ name: r.name, policy: r.policy === null ? undefined : deserializeRotationPolicy(r.policy), latest: fromRow(r), noticed: r.noticed !== null }));
    },

    async rotateIfDue(name: string, plan: RotationPlan): Promise<KeyVersion | undefined> {
      return db.transaction(async (tx) => {
        await tx.lock(keyLock(name));
        const st = await keyState(tx, name);
        if (st.state !== 'live') return undefined;
        const policy = await readPolicy(tx, st.name);
        const row = await tx.get<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v JOIN vault_keys k ON k.name = v.name AND k.latest_version = v.version WHERE v.name = ?`, [st.name]);
        if (!policy || !row) return undefined;
        const next = await plan(fromRow(row), policy);
        if (!next) return undefined;
        await insertVersion(tx, next.version);
        await appendAudit(tx, next.audit);
        return next.version;
      });
    },

    async recordNotice(name: string, version: string, nowSeconds: number, audit: AuditEntry): Promise<boolean> {
      return db.transaction(async (tx) => {
        const r = await tx.run('INSERT INTO vault_rotation_notices (name, version, notified_at) VALUES (?, ?, ?) ON CONFLICT (name, version) DO NOTHING', [name, version, nowSeconds]);
        if (r.changes === 1) await appendAudit(tx, audit);
        return r.changes === 1;
      });
    },

    // ── roles ──
    assignmentsOf(principalId: string): Promise<Pick<RoleAssignment, 'roleDefinitionId' | 'scope'>[]> {
      return remembered(assignmentsRead, principalId, async () => {
        const rows = await db.all<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM vault_role_assignments WHERE principal_id = ?`, [principalId]);
        return frozen(rows.map(assignment).map((a) => ({ roleDefinitionId: a.roleDefinitionId, scope: a.scope })));
      });
    },
    async listAssignments(): Promise<RoleAssignment[]> {
      return (await db.all<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM vault_role_assignments ORDER BY created_at, id`)).map(assignment);
    },
    async getAssignment(id: string): Promise<RoleAssignment | undefined> {
      const row = await db.get<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM vault_role_assignments WHERE id = ?`, [id]);
      return row ? assignment(row) : undefined;
    },
    async addAssignment(a: RoleAssignment, audit: Omit<AuditRecord, 'seq'>, custom?: RoleDefinition): Promise<{ assignment: RoleAssignment; created: boolean }> {
      return db.transaction(async (tx) => {
        await tx.lock('vault-roles');
        if (custom !== undefined) {
          // Under the lock every change of role definitions takes: the role as the caller checked it, or
          // nothing (it was deleted, which an assignment would have prevented, or narrowed, since).
          const row = await tx.get<DefinitionRow>(`SELECT ${DEFINITION_COLUMNS} FROM vault_role_definitions WHERE name = ?`, [custom.name]);
          const now = row ? definition(row) : undefined;
          if (now === undefined || JSON.stringify([now.permissions, now.assignableScopes]) !== JSON.stringify([custom.permissions, custom.assignableScopes])) {
            throw fail('role.conflict', `Role definition ${custom.roleName} was deleted or changed while it was being assigned; nothing was assigned. Ask again.`, { roleDefinitionId: custom.name });
          }
        }
        const existing = await tx.get<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM vault_role_assignments WHERE id = ? OR (principal_id = ? AND role = ? AND scope = ?) ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1`, [
          a.id,
          a.principalId,
          a.roleDefinitionId,
          a.scope,
          a.id,
        ]);
        if (existing) return { assignment: assignment(existing), created: false };
        await tx.run('INSERT INTO vault_role_assignments (id, principal_id, role, scope, created_at, integrity) VALUES (?, ?, ?, ?, ?, ?)', [a.id, a.principalId, a.roleDefinitionId, a.scope, a.createdAt, assignmentMac(a)]);
        await appendAudit(tx, audit);
        return { assignment: a, created: true };
      });
    },
    async removeAssignment(id: string, audit: Omit<AuditRecord, 'seq'>): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx.lock('vault-roles');
        const r = await tx.run('DELETE FROM vault_role_assignments WHERE id = ?', [id]);
        if (r.changes === 1) await appendAudit(tx, audit);
        return r.changes === 1;
      });
    },
    customRoles(): Promise<RoleDefinition[]> {
      return remembered(customRolesRead, '', async () => frozen((await db.all<DefinitionRow>(`SELECT ${DEFINITION_COLUMNS} FROM vault_role_definitions ORDER BY role_name, name`)).map(definition)));
    },
    async putCustomRole(d: RoleDefinition, nowSeconds: number, audit: Omit<AuditRecord, 'seq'>): Promise<void> {
      await db.transaction(async (tx) => {
        await tx.lock('vault-roles');
        await tx.run(
          'INSERT INTO vault_role_definitions (name, role_name, description, permissions, assignable_scopes, created_at, updated_at, integrity) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role_name = excluded.role_name, description = excluded.description, permissions = excluded.permissions, assignable_scopes = excluded.assignable_scopes, updated_at = excluded.updated_at, integrity = excluded.integrity',
          definitionRow(d, nowSeconds, nowSeconds),
        );
        await appendAudit(tx, audit);
      });
    },
    async deleteCustomRole(name: string, audit: Omit<AuditRecord, 'seq'>): Promise<'deleted' | 'in_use' | 'absent'> {
      return db.transaction(async (tx) => {
        await tx.lock('vault-roles');
        if (await tx.get('SELECT 1 AS x FROM vault_role_assignments WHERE role = ? LIMIT 1', [name])) return 'in_use';
        const r = await tx.run('DELETE FROM vault_role_definitions WHERE name = ?', [name]);
        if (r.changes !== 1) return 'absent';
        await appendAudit(tx, audit);
        return 'deleted';
      });
    },

    // ── authorities ──
    authorities(): Promise<string[]> {
      return remembered(authoritiesRead, '', async () => frozen((await db.all<{ authority: string; integrity: string | null }>('SELECT authority, integrity FROM vault_authorities ORDER BY authority')).map(authority)));
    },
    async setAuthorities(list: readonly string[], nowSeconds: number, audit: Omit<AuditRecord, 'seq'>): Promise<void> {
      await db.transaction(async (tx) => {
        // One replacement at a time: under READ COMMITTED a second DELETE would not see the rows a first
        // inserted after it began, and both lists would be kept.
        await tx.lock('vault-authorities');
        await tx.run('DELETE FROM vault_authorities');
        for (const a of new Set(list)) await tx.run('INSERT INTO vault_authorities (authority, added_at, integrity) VALUES (?, ?, ?)', [a, nowSeconds, integrity.compute(PURPOSE.authority, [a])]);
        await appendAudit(tx, audit);
      });
    },

    // ── full backup and restore ──
    async exportVault(): Promise<VaultSnapshot> {
      return db.transaction(async (tx) => {
        // One snapshot of every table: PostgreSQL's READ COMMITTED would let a write land between reads.
        if (db.dialect === 'postgres') await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        const keyRows = await tx.all<{ name: string; latest_version: string; deleted_at: number | string | null; scheduled_purge_at: number | string | null; created_at: number | string }>(
          'SELECT name, latest_version, deleted_at, scheduled_purge_at, created_at FROM vault_keys WHERE latest_version IS NOT NULL ORDER BY name',
        );
        const versions = (await tx.all<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM vault_key_versions v ORDER BY v.name, v.seq`)).map(fromRow);
        const policies = new Map((await tx.all<{ name: string; policy: string }>('SELECT name, policy FROM vault_rotation_policies')).map((r) => [r.name, deserializeRotationPolicy(r.policy)] as const));
        const keys: KeySnapshot[] = keyRows.map((k) => ({
          name: k.name,
          latest: k.latest_version,
          createdAt: Number(k.created_at),
          ...(k.deleted_at !== null ? { deletion: { deletedDate: Number(k.deleted_at), scheduledPurgeDate: Number(k.scheduled_purge_at) } } : {}),
          versions: versions.filter((v) => v.name === k.name),
          ...(policies.has(k.name) ? { rotationPolicy: policies.get(k.name)! } : {}),
        }));
        return {
          keys,
          customRoles: (await tx.all<DefinitionRow>(`SELECT ${DEFINITION_COLUMNS} FROM vault_role_definitions ORDER BY name`)).map(definition),
          assignments: (await tx.all<AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM vault_role_assignments ORDER BY id`)).map(assignment),
          authorities: (await tx.all<{ authority: string; integrity: string | null }>('SELECT authority, integrity FROM vault_authorities ORDER BY authority')).map(authority),
        };
      });
    },

    async importVault(snapshot: VaultSnapshot, nowSeconds: number, audit: AuditEntry, onlyKey?: string): Promise<{ conflicts: string[]; keys: number }> {
      return db.transaction(async (tx) => {
        const keys = onlyKey === undefined ? snapshot.keys : snapshot.keys.filter((k) => k.name.toLowerCase() === onlyKey.toLowerCase());
        const conflicts: string[] = [];
        for (const k of keys) {
          await tx.lock(keyLock(k.name));
          if ((await keyState(tx, k.name)).state !== 'absent') conflicts.push(k.name);
        }
        if (onlyKey === undefined) {
          await tx.lock('vault-roles');
          // The authorities it merges in: after a replacement of the list or before it, never inside it (setAuthorities).
          await tx.lock('vault-authorities');
          for (const r of snapshot.customRoles) {
            const have = await tx.get<{ role_name: string; permissions: string }>('SELECT role_name, permissions FROM vault_role_definitions WHERE name = ?', [r.name]);
            if (have && (have.role_name !== r.roleName || have.permissions !== JSON.stringify(r.permissions))) conflicts.push(`role definition ${r.name}`);
          }
          for (const a of snapshot.assignments) {
            const have = await tx.get<AssignmentRow>('SELECT id, principal_id, role, scope, created_at FROM vault_role_assignments WHERE id = ?', [a.id]);
            if (have && (have.principal_id !== a.principalId || have.role !== a.roleDefinitionId || have.scope !== a.scope)) conflicts.push(`role assignment ${a.id}`);
          }
        }
        if (conflicts.length > 0) return { conflicts, keys: 0 };
        for (const k of keys) {
          await tx.run('INSERT INTO vault_keys (name, name_lower, latest_version, deleted_at, scheduled_purge_at, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
            k.name,
            k.name.toLowerCase(),
            k.latest,
            k.deletion?.deletedDate ?? null,
            k.deletion?.scheduledPurgeDate ?? null,
            k.createdAt,
          ]);
          let seq = 0;
          for (const v of k.versions) await tx.run(INSERT_VERSION, paramsOf(v, ++seq));
          if (k.rotationPolicy) await writePolicy(tx, k.name, k.rotationPolicy);
        }
        if (onlyKey === undefined) {
          for (const r of snapshot.customRoles) {
            await tx.run('INSERT INTO vault_role_definitions (name, role_name, description, permissions, assignable_scopes, created_at, updated_at, integrity) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING', definitionRow(r, nowSeconds, nowSeconds));
          }
          for (const a of snapshot.assignments) {
            await tx.run('INSERT INTO vault_role_assignments (id, principal_id, role, scope, created_at, integrity) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING', [a.id, a.principalId, a.roleDefinitionId, a.scope, a.createdAt, assignmentMac(a)]);
          }
          for (const a of snapshot.authorities) await tx.run('INSERT INTO vault_authorities (authority, added_at, integrity) VALUES (?, ?, ?) ON CONFLICT (authority) DO NOTHING', [a, nowSeconds, integrity.compute(PURPOSE.authority, [a])]);
        }
        await appendAudit(tx, audit);
        return { conflicts: [], keys: keys.length };
      });
    },

    async putBackupJob(job: BackupJob): Promise<void> {
      await db.run(
        'INSERT INTO vault_backup_jobs (job_id, kind, status, status_details, error_code, error_message, start_time, end_time, folder_uri, principal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, status_details = excluded.status_details, error_code = excluded.error_code, error_message = excluded.error_message, end_time = excluded.end_time, folder_uri = excluded.folder_uri',
        [job.jobId, job.kind, job.status, job.statusDetails ?? null, job.error?.code ?? null, job.error?.message ?? null, job.startTime, job.endTime ?? null, job.folderUri ?? null, job.principal],
      );
    },

    async backupJob(jobId: string): Promise<BackupJob | undefined> {
      const r = await db.get<{ job_id: string; kind: string; status: string; status_details: string | null; error_code: string | null; error_message: string | null; start_time: number | string; end_time: number | string | null; folder_uri: string | null; principal: string }>(
        'SELECT job_id, kind, status, status_details, error_code, error_message, start_time, end_time, folder_uri, principal FROM vault_backup_jobs WHERE job_id = ?',
        [jobId],
      );
      if (!r) return undefined;
      return {
        jobId: r.job_id,
        kind: r.kind as BackupJob['kind'],
        status: r.status as BackupJob['status'],
        ...(r.status_details !== null ? { statusDetails: r.status_details } : {}),
        ...(r.error_code !== null ? { error: { code: r.error_code, message: r.error_message ?? '' } } : {}),
        startTime: Number(r.start_time),
        ...(r.end_time !== null ? { endTime: Number(r.end_time) } : {}),
        ...(r.folder_uri !== null ? { folderUri: r.folder_uri } : {}),
        principal: r.principal,
      };
    },

    // ── audit ──
    /** A record of its own (a read, a release, a refusal): group-committed with the records of concurrent operations. */
    audit: (record: Omit<AuditRecord, 'seq'>) => appender.append(auditEntry(record), Date.now()),
  };
}

interface AssignmentRow {
  id: string;
  principal_id: string;
  role: string;
  scope: string;
  created_at: number | string;
  integrity: string | null;
}

const ASSIGNMENT_COLUMNS = 'id, principal_id, role, scope, created_at, integrity';

function assignmentFields(r: AssignmentRow): unknown[] {
  return [r.id, r.principal_id, r.role, r.scope, Number(r.created_at)];
}

interface DefinitionRow {
  name: string;
  role_name: string;
  description: string;
  permissions: string;
  assignable_scopes: string;
  integrity: string | null;
}

const DEFINITION_COLUMNS = 'name, role_name, description, permissions, assignable_scopes, integrity';

function definitionFields(r: DefinitionRow): unknown[] {
  return [r.name, r.role_name, r.description, r.permissions, r.assignable_scopes];
}

function assignmentOf(r: AssignmentRow): RoleAssignment {
  return { id: r.id, principalId: r.principal_id, roleDefinitionId: r.role, scope: r.scope, createdAt: Number(r.created_at) };
}

/**
 * Writes one audit record as a log entry, in the caller's transaction when it has one: no lock, no read
 * of a chain head; the sequencer gives the entry its index. `entryId` (128 random bits) makes every
 * entry, and so every leaf hash, unique, so a leaf hash names one entry.
 */
export async function appendAudit(ex: SqlExecutor, record: Omit<AuditRecord, 'seq'>): Promise<LogReceipt> {
  return insertLogEntry(ex, auditEntry(record), Date.now());
}

/** entryId is no secret (it is published with the entry), only unique: drawn from a pool of CSPRNG bytes. */
const nextEntryId = createHexIdPool(16);

function auditEntry(record: Omit<AuditRecord, 'seq'>): string {
  return canonicalJson({ ...record, entryId: nextEntryId() });
}
