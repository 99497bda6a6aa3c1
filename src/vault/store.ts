/**
 * The vault's storage port: keys and versions, role assignments, trusted authorities and the audit
 * chain. The SQL implementation (SQLite and PostgreSQL) is src/storage/vault-store.ts. Every mutation
 * takes the audit record of its success and writes both in one transaction, so a key change is never
 * stored without its audit record.
 */
import type { AuditRecord, StoredAuditRow } from './audit.js';
import type { DeletionInfo, KeyVersion } from './key.js';
import type { RoleAssignment } from './roles.js';

export type KeyState = { readonly state: 'absent' } | { readonly state: 'live' } | { readonly state: 'deleted'; readonly deletion: DeletionInfo };

export interface Page<T> {
  readonly items: T[];
  readonly next?: number;
}

/** An audit record before the store gives it its sequence number. */
export type AuditEntry = Omit<AuditRecord, 'seq'>;

export interface VaultStore {
  keyState(name: string): Promise<KeyState>;
  /** Latest (or the given) version of a live or deleted key. */
  getVersion(name: string, version: string | undefined): Promise<KeyVersion | undefined>;
  /**
   * Adds a version and makes it `latest`, creating the key if absent; concurrent versions of one key are
   * serialised so none is lost and `latest` is the highest. `'deleted'` when the key is deleted.
   */
  addVersion(key: KeyVersion, nowSeconds: number, audit?: AuditEntry): Promise<'ok' | 'deleted'>;
  /**
   * Read-modify-write of one version under the per-key lock, `apply` seeing the version as it is inside
   * the lock; `apply` may throw to refuse. Undefined when the key or version is gone.
   */
  updateVersion(name: string, version: string, apply: (current: KeyVersion) => KeyVersion, audit: AuditEntry): Promise<KeyVersion | undefined>;
  /** Live (or deleted) keys, latest version each, ordered by name, `offset`-paged. */
  listKeys(deleted: boolean, offset: number, limit: number): Promise<Page<{ key: KeyVersion; deletion?: DeletionInfo }>>;
  listVersions(name: string, offset: number, limit: number): Promise<Page<KeyVersion>>;
  allVersions(name: string): Promise<KeyVersion[]>;
  /** Soft delete (with `deletion`) or recover (without); false when the key was not in the expected state. */
  setDeleted(name: string, deletion: DeletionInfo | undefined, audit: AuditEntry): Promise<boolean>;
  purge(name: string, audit: AuditEntry): Promise<boolean>;
  /** Restores all versions of a backup under its name; false when the name is taken (live or deleted). */
  restore(versions: readonly KeyVersion[], latest: string, nowSeconds: number, audit: AuditEntry): Promise<boolean>;

  assignmentsOf(principalId: string): Promise<Pick<RoleAssignment, 'role' | 'scope'>[]>;
  listAssignments(): Promise<RoleAssignment[]>;
  addAssignment(a: RoleAssignment, audit: AuditEntry): Promise<RoleAssignment>;
  removeAssignment(id: string, audit: AuditEntry): Promise<boolean>;

  authorities(): Promise<string[]>;
  setAuthorities(list: readonly string[], nowSeconds: number, audit: AuditEntry): Promise<void>;

  /** Appends one record to the audit chain. */
  audit(record: AuditEntry): Promise<void>;
  /** Audit rows in order from `fromSeq` (for `conclave audit verify` and the admin API). */
  auditRows(fromSeq?: number, limit?: number): Promise<StoredAuditRow[]>;
}
