/**
 * What every part of the vault service shares: its ports, the clock, the permission check, the audited
 * `perform` wrapper, and the lookup of a key by name in any case. The parts (key lifecycle, crypto and
 * release, rotation and purge, access control, full backup) are built on one core.
 */
import type { KeyObject } from 'node:crypto';
import { ConclaveError, fail, isConclaveError } from '../core/errors.js';
import type { ApiVersion } from './api-version.js';
import type { AuditRecord } from './audit.js';
import { type DeletionInfo, familyOf, type KeyVersion, type KeyView } from './key.js';
import type { BackupTarget, KeyProtector, KeyRef } from './ports.js';
import type { GetJwks } from './release/index.js';
import { BUILT_IN_ROLES, isPermitted, type Permission, type Principal, type RoleDefinition } from './roles.js';
import type { AuditEntry, VaultStore } from './store.js';

export type AuditDraft = { -readonly [K in keyof Omit<AuditRecord, 'seq' | 'detail'>]: AuditRecord[K] } & { detail: Record<string, unknown> };

/** Seals whole-key backups under the master key (src/hsm/master-key.ts). */
export interface BackupSealer {
  seal(plaintext: Uint8Array, aad: string): Uint8Array;
  open(sealed: Uint8Array, aad: string): Uint8Array;
}

/** The release-signing identity of one vault host: its certificate chain (leaf first) and a signing function. */
export type ReleaseKeySource = (
  subject: string,
  host: string,
) => Promise<{
  readonly certDer: Uint8Array;
  readonly chainDer?: readonly Uint8Array[];
  readonly alg?: 'RS256' | 'ES256' | 'ES384';
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** The node:crypto key `sign` signs with, where another thread may sign with it too (ReleaseSigner.privateKey). */
  readonly privateKey?: KeyObject;
}>;

/** Soft delete: how long a deleted key stays recoverable, and whether it may be purged before that. */
export interface SoftDeleteSettings {
  /** 7–90 days (AKV's range). */
  readonly recoverableDays: number;
  /** Purge before the scheduled purge date is refused. */
  readonly purgeProtection: boolean;
}

export interface VaultServiceDeps {
  readonly store: VaultStore;
  readonly protector: KeyProtector;
  readonly getJwks: GetJwks;
  /** The release-signing key: in the PKCS#11 token with --hsm, a software service key otherwise. */
  readonly releaseKey: ReleaseKeySource;
  readonly sealer: BackupSealer;
  /** The clock. */
  readonly now: () => Date;
  /** The vault's public base URL (known once the server listens): kid URLs, the built-in trusted authority. */
  readonly baseUrl: () => string;
  /** Authorities trusted by configuration, besides the vault itself and those the operator stored. */
  readonly trustedAuthorities: readonly string[];
  /** Whether this server runs with --simulate: only then do tokens from simulated evidence release keys. */
  readonly simulate: boolean;
  readonly softDelete: SoftDeleteSettings;
  /** Where full backups go (Managed HSM's /backup); without it full backup is refused. */
  readonly backupTarget?: BackupTarget;
  /** Where a failed audit append of a failed operation, and background failures, are reported. */
  readonly logger: { error(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

/** The principal of the vault's own background work (scheduled rotation and purge). */
export const MAINTENANCE_PRINCIPAL = 'conclave:maintenance';

export function bindingOf(name: string, version: string): string {
  return `vault-key:${name}/${version}`;
}

export function refOf(k: KeyVersion): KeyRef {
  return { family: familyOf(k.kty), handle: k.handle, binding: bindingOf(k.name, k.version), publicJwk: k.publicJwk };
}

/**
 * Refuses a restore with `backup.foreign` before anything is written when a version's material is not
 * where this vault's key protector can use it: a backup carries a PKCS#11 token's handle, not the key, so
 * it restores only into a vault on that token (with the same master key).
 */
export async function requireMaterialHeld(protector: KeyProtector, versions: readonly KeyVersion[]): Promise<void> {
  for (const v of versions) {
    if (await protector.holds(refOf(v))) continue;
    throw fail(
      'backup.foreign',
      `Key ${v.name} version ${v.version} (${v.provider}) is held in a PKCS#11 token this vault does not use (another token, or none), or its object is no longer in the token: a backup of a key in a token restores only into a vault with the same master key on the same token.`,
      { name: v.name, version: v.version, provider: v.provider },
    );
  }
}

export function finish(draft: AuditDraft): AuditEntry {
  const { detail, ...rest } = draft;
  return Object.keys(detail).length ? { ...rest, detail } : rest;
}

export function keyNotFound(name: string, version?: string): ConclaveError {
  return fail(
    'key.not_found',
    `A key with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`,
    { name, ...(version ? { version } : {}) },
  );
}

/**
 * The most of a failure's message its audit record keeps (characters). Messages quote the offending value
 * (a key_ops entry, a curve, a policy property) as the caller sent it; the record is kept for good, so a
 * longer one is cut here, its length noted (the caller's answer still carries it whole).
 */
export const MAX_AUDITED_MESSAGE_CHARS = 1024;

/** `text` as an audit record keeps it: at most `max` characters, cut with its length noted. */
export function auditedText(text: string, max = MAX_AUDITED_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  // Never between the two halves of a surrogate pair (a character outside the BMP): the record keeps whole characters.
  const last = text.charCodeAt(max - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? max - 1 : max;
  return `${text.slice(0, end)}… (${text.length} characters)`;
}

/** The built-in role definitions by id (built once: every authorised request looks its roles up here). */
const BUILT_IN_BY_ID: ReadonlyMap<string, RoleDefinition> = new Map(BUILT_IN_ROLES.map((r) => [r.name, r] as const));

export function createVaultCore(deps: VaultServiceDeps) {
  const { store } = deps;
  const nowSeconds = () => Math.floor(deps.now().getTime() / 1000);

  function view(api: ApiVersion): KeyView {
    return { baseUrl: deps.baseUrl(), api, recoverableDays: deps.softDelete.recoverableDays, purgeProtection: deps.softDelete.purgeProtection };
  }

  /** Built-in and custom role definitions by id; the custom ones read only when an assignment names one. */
  async function definitionsFor(ids: readonly string[]): Promise<(id: string) => RoleDefinition | undefined> {
    const builtIn = BUILT_IN_BY_ID;
    const custom = ids.some((id) => !builtIn.has(id)) ? new Map((await store.customRoles()).map((r) => [r.name, r] as const)) : new Map<string, RoleDefinition>();
    return (id) => builtIn.get(id) ?? custom.get(id);
  }

  async function authorize(p: Principal, permission: Permission, keyName: string | undefined): Promise<void> {
    const assignments = await store.assignmentsOf(p.id);
    const definitions = await definitionsFor(assignments.map((a) => a.roleDefinitionId));
    if (!isPermitted(assignments, definitions, permission, keyName, p.isAdmin)) {
      const hint = permission === 'release' ? ' Release requires a role that names keys/release/action, such as Key Vault (or Managed HSM) Crypto Service Release User, also for administrators.' : '';
      throw fail('auth.forbidden', `Caller ${p.displayName} (${p.id}) is not authorized to perform action '${permission}' on ${keyName ? `key ${keyName}` : 'this vault'}.${hint}`, {
        permission,
        scope: keyName ? `/keys/${keyName}` : '/',
      });
    }
  }

  /**
   * Runs one audited operation. `selfAudited`: the operation appends its success record inside its own
   * transaction (mutations); otherwise success is appended after it returns. Every call, granted,
   * denied or failed, leaves one record.
   */
  async function perform<T>(
    p: Principal,
    operation: string,
    permission: Permission | undefined,
    key: { name?: string; version?: string },
    fn: (draft: AuditDraft) => Promise<T>,
    selfAudited = false,
  ): Promise<T> {
    const draft: AuditDraft = {
      time: deps.now().toISOString(),
      principal: p.id,
      operation,
      ...(key.name !== undefined ? { key: key.name } : {}),
      ...(key.version !== undefined ? { version: key.version } : {}),
      result: 'success',
      status: 200,
      detail: {},
    };
    let result: T;
    try {
      if (permission) await authorize(p, permission, key.name);
      result = await fn(draft);
    } catch (e) {
      const err = isConclaveError(e) ? e : new ConclaveError('internal', 'internal error', undefined, { cause: e });
      const denied = err.status === 401 || err.status === 403;
      await store
        .audit({ ...draft, result: denied ? 'denied' : 'failed', status: err.status, code: err.code, message: auditedText(err.message), ...(Object.keys(draft.detail).length ? { detail: draft.detail } : {}) })
        .catch((ae) => deps.logger.error({ err: ae }, 'audit append failed'));
      throw e;
    }
    if (!selfAudited) await store.audit(finish(draft));
    return result;
  }

  /** The live key `name` (any case) at its latest or the given version; the draft learns its stored name. */
  async function live(name: string, version?: string, draft?: AuditDraft): Promise<KeyVersion> {
    const k = await store.liveVersion(name, version);
    if (!k) throw keyNotFound(name, version);
    if (draft) draft.key = k.name;
    return k;
  }

  async function deleted(name: string, draft?: AuditDraft): Promise<{ key: KeyVersion; deletion: DeletionInfo }> {
    const st = await store.keyState(name);
    const key = st.state === 'deleted' ? await store.getVersion(st.name, undefined) : undefined;
    if (st.state !== 'deleted' || !key) throw fail('key.not_found', `Deleted Key not found: ${name}`, { name });
    if (draft) draft.key = key.name;
    return { key, deletion: st.deletion };
  }

  return { deps, store, protector: deps.protector, nowSeconds, view, authorize, definitionsFor, perform, live, deleted };
}

export type VaultCore = ReturnType<typeof createVaultCore>;
