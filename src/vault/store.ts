/**
 * The vault's storage port: keys and versions, role assignments, trusted authorities and the audit
 * records, which are entries of the transparency log (docs/audit.md). The SQL implementation (SQLite and
 * PostgreSQL) is src/storage/vault-store.ts. Every mutation takes the audit record of its success and
 * writes both in one transaction, so a key change is never stored without its audit record.
 */
import type { AuditRecord } from './audit.js';
import type { DeletionInfo, KeyVersion } from './key.js';
import type { RoleAssignment, RoleDefinition } from './roles.js';
import type { RotationPolicy } from './rotation.js';

/**
 * A key's state, found by name in any case (AKV key names are case-insensitive); `name` is the name as
 * stored, in the case of its creation, which every later call uses.
 */
export type KeyState =
  | { readonly state: 'absent' }
  | { readonly state: 'live'; readonly name: string }
  | { readonly state: 'deleted'; readonly name: string; readonly deletion: DeletionInfo };

/** What the rotator needs of a key with a rotation policy, or with an expiry that AKV's default policy counts back from. */
export interface RotationCandidate {
  readonly name: string;
  /** The stored policy; undefined: none stored, AKV's default (Notify 30 days before expiry) applies. */
  readonly policy: RotationPolicy | undefined;
  readonly latest: KeyVersion;
  /** Whether the latest version's Notify has been recorded already. */
  readonly noticed: boolean;
}

/** One key as a full backup holds it: every version (material still sealed to its binding), its state and policy. */
export interface KeySnapshot {
  readonly name: string;
  readonly latest: string;
  readonly createdAt: number;
  readonly deletion?: DeletionInfo;
  readonly versions: readonly KeyVersion[];
  readonly rotationPolicy?: RotationPolicy;
}

/** The vault's state as one full backup holds it (the audit chain stays with the vault that wrote it). */
export interface VaultSnapshot {
  readonly keys: readonly KeySnapshot[];
  readonly customRoles: readonly RoleDefinition[];
  readonly assignments: readonly RoleAssignment[];
  readonly authorities: readonly string[];
}

/** A full backup or restore job (Managed HSM's `/backup`, `/restore`, `/keys/{name}/restore`). */
export interface BackupJob {
  readonly jobId: string;
  readonly kind: 'backup' | 'restore' | 'selectiveRestore';
  readonly status: 'InProgress' | 'Succeeded' | 'Failed';
  readonly statusDetails?: string;
  readonly error?: { readonly code: string; readonly message: string };
  readonly startTime: number;
  readonly endTime?: number;
  /** The backup folder (backup: written; restore: read). */
  readonly folderUri?: string;
  readonly principal: string;
}

/** The plan of one rotation, made under the key's lock from its latest version and policy. */
export type RotationPlan = (latest: KeyVersion, policy: RotationPolicy) => Promise<{ readonly version: KeyVersion; readonly audit: AuditEntry } | undefined>;

export interface Page<T> {
  readonly items: T[];
  readonly next?: number;
}

/** An audit record as an operation writes it (the log gives it its index later). */
export type AuditEntry = Omit<AuditRecord, 'seq'>;

/** What an operation learns of its stored log entry: its RFC 9162 leaf hash (hex) and the exact text hashed. */
export interface AuditReceipt {
  readonly leafHash: string;
  readonly entry: string;
}

export interface VaultStore {
  keyState(name: string): Promise<KeyState>;
  /**
   * The latest (or the given) version of the key `name` names (any case, as {@link keyState} chooses it)
   * when that key is live: keyState and getVersion in one read.
   */
  liveVersion(name: string, version: string | undefined): Promise<KeyVersion | undefined>;
  /** Latest (or the given) version of a live or deleted key, by its stored name. */
  getVersion(name: string, version: string | undefined): Promise<KeyVersion | undefined>;
  /**
   * Adds a version and makes it `latest`, creating the key if absent; concurrent versions of one key are
   * serialised so none is lost and `latest` is the highest. `'deleted'` when the key is deleted;
   * `'renamed'` when a key of the same name in another case was created meanwhile (retry).
   */
  addVersion(key: KeyVersion, nowSeconds: number, audit?: AuditEntry): Promise<'ok' | 'deleted' | 'renamed'>;
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
  /** Purges a deleted key (all versions, its policy); with `dueBy`, only if its purge date is not after it. */
  purge(name: string, audit: AuditEntry, dueBy?: number): Promise<boolean>;
  /** Names of deleted keys whose scheduled purge date is not after `nowSeconds`, oldest first. */
  duePurges(nowSeconds: number, limit: number): Promise<string[]>;
  /** Restores all versions of a backup under its name; false when the name is taken (live or deleted, any case). */
  restore(versions: readonly KeyVersion[], latest: string, nowSeconds: number, audit: AuditEntry, rotationPolicy?: RotationPolicy): Promise<boolean>;

  rotationPolicy(name: string): Promise<RotationPolicy | undefined>;
  /** Stores a key's rotation policy; false when the key is not live. */
  setRotationPolicy(name: string, policy: RotationPolicy, audit: AuditEntry): Promise<boolean>;
  /** Live keys with a stored rotation policy or a latest version that expires, by name, after `after` (keyset-paged). */
  rotationCandidates(after: string | undefined, limit: number): Promise<RotationCandidate[]>;
  /**
   * Under the key's lock (so that replicas agree), reads the live key's latest version and policy and,
   * when `plan` returns a version, adds it with its audit record in the same transaction. Undefined when
   * nothing was due (or the key is gone).
   */
  rotateIfDue(name: string, plan: RotationPlan): Promise<KeyVersion | undefined>;
  /** Records that a Notify action fired for a version; false when it already had (exactly once). */
  recordNotice(name: string, version: string, nowSeconds: number, audit: AuditEntry): Promise<boolean>;

  assignmentsOf(principalId: string): Promise<Pick<RoleAssignment, 'roleDefinitionId' | 'scope'>[]>;
  listAssignments(): Promise<RoleAssignment[]>;
  getAssignment(id: string): Promise<RoleAssignment | undefined>;
  /**
   * Adds an assignment unless its name, or its (principal, definition, scope), is taken: then the
   * existing assignment comes back with `created: false` and nothing is written. `custom`: the custom
   * role definition the caller checked the assignment against; it must still be stored as it was (not
   * deleted, its permissions and assignable scopes unchanged) when the assignment is written, or nothing
   * is written (`role.conflict`).
   */
  addAssignment(a: RoleAssignment, audit: AuditEntry, custom?: RoleDefinition): Promise<{ assignment: RoleAssignment; created: boolean }>;
  removeAssignment(id: string, audit: AuditEntry): Promise<boolean>;

  customRoles(): Promise<RoleDefinition[]>;
  /** Creates or replaces a custom role definition. */
  putCustomRole(d: RoleDefinition, nowSeconds: number, audit: AuditEntry): Promise<void>;
  /** Deletes a custom role definition; `'in_use'` while an assignment names it, `'absent'` when there is none. */
  deleteCustomRole(name: string, audit: AuditEntry): Promise<'deleted' | 'in_use' | 'absent'>;

  authorities(): Promise<string[]>;
  setAuthorities(list: readonly string[], nowSeconds: number, audit: AuditEntry): Promise<void>;

  /** The whole vault, read as one consistent snapshot. */
  exportVault(): Promise<VaultSnapshot>;
  /**
   * Writes a snapshot (or, with `onlyKey`, that one key) into the vault in one transaction with its audit
   * record. Nothing is written when a key of the snapshot exists already in any case (`conflicts` names
   * them); custom roles and assignments already present with the same content are kept, other clashes
   * are conflicts too.
   */
  importVault(snapshot: VaultSnapshot, nowSeconds: number, audit: AuditEntry, onlyKey?: string): Promise<{ readonly conflicts: string[]; readonly keys: number }>;
  putBackupJob(job: BackupJob): Promise<void>;
  backupJob(jobId: string): Promise<BackupJob | undefined>;

  /** Stores one record as a log entry (durable when this resolves; sequenced within the batch interval). */
  audit(record: AuditEntry): Promise<AuditReceipt>;
}
