/**
 * Role-based access control of the keys data plane, as Managed HSM's local RBAC has it: role
 * definitions (built-in and custom) grant data actions; role assignments give a definition to a
 * principal at a scope (`/`, `/keys`, `/keys/{name}`). Built-in roles carry Azure's ids and names: Key
 * Vault's five (`Microsoft.KeyVault/vaults/keys/…` actions) and Managed HSM's (`…/managedHsm/…`). Both
 * spellings of an action mean the same operation here.
 *
 * Deliberately unlike Azure: release (`keys/release/action`) and export are granted only by naming them.
 * No wildcard grants them, and no built-in management role carries them (Azure's Managed HSM Crypto User
 * and Key Vault's `keys/*` roles do), so managing a key never silently implies the right to export it.
 */
import { fail } from '../core/errors.js';

/** Who is calling: an OAuth client of ours, or a subject of a trusted external OIDC issuer. */
export interface Principal {
  /** Stable id: the client id, or `<issuer>#<sub>` for external tokens. */
  readonly id: string;
  readonly displayName: string;
  /** The bootstrap administrator created on first start. */
  readonly isAdmin: boolean;
}

const MHSM = 'Microsoft.KeyVault/managedHsm';

/** The data actions Conclave enforces, in Managed HSM's spelling (Python KeyVaultDataAction, MHSM's built-in roles). */
export const DataActions = {
  read: `${MHSM}/keys/read/action`,
  write: `${MHSM}/keys/write/action`,
  create: `${MHSM}/keys/create`,
  delete: `${MHSM}/keys/delete`,
  import: `${MHSM}/keys/import/action`,
  rotate: `${MHSM}/keys/rotate/action`,
  backup: `${MHSM}/keys/backup/action`,
  restore: `${MHSM}/keys/restore/action`,
  encrypt: `${MHSM}/keys/encrypt/action`,
  decrypt: `${MHSM}/keys/decrypt/action`,
  wrapKey: `${MHSM}/keys/wrap/action`,
  unwrapKey: `${MHSM}/keys/unwrap/action`,
  sign: `${MHSM}/keys/sign/action`,
  verify: `${MHSM}/keys/verify/action`,
  derive: `${MHSM}/keys/derive/action`,
  release: `${MHSM}/keys/release/action`,
  export: `${MHSM}/keys/export/action`,
  readDeleted: `${MHSM}/keys/deletedKeys/read/action`,
  recover: `${MHSM}/keys/deletedKeys/recover/action`,
  purge: `${MHSM}/keys/deletedKeys/delete`,
  rng: `${MHSM}/rng/action`,
  readAssignments: `${MHSM}/roleAssignments/read/action`,
  writeAssignments: `${MHSM}/roleAssignments/write/action`,
  deleteAssignments: `${MHSM}/roleAssignments/delete/action`,
  readDefinitions: `${MHSM}/roleDefinitions/read/action`,
  writeDefinitions: `${MHSM}/roleDefinitions/write/action`,
  deleteDefinitions: `${MHSM}/roleDefinitions/delete/action`,
  startBackup: `${MHSM}/backup/start/action`,
  backupStatus: `${MHSM}/backup/status/action`,
  startRestore: `${MHSM}/restore/start/action`,
  restoreStatus: `${MHSM}/restore/status/action`,
} as const;
export type Permission = keyof typeof DataActions;

/** Managed HSM actions Conclave accepts in definitions but has no operation for (security domain). */
const INERT_ACTIONS = [
  `${MHSM}/securitydomain/download/action`,
  `${MHSM}/securitydomain/download/read`,
  `${MHSM}/securitydomain/upload/action`,
  `${MHSM}/securitydomain/upload/read`,
  `${MHSM}/securitydomain/transferkey/read`,
];

/** Key Vault's spelling of the key actions (Azure built-in roles page) → the Managed HSM one. */
const VAULT_ACTIONS: Record<string, string> = {
  'Microsoft.KeyVault/vaults/keys/read': DataActions.read,
  'Microsoft.KeyVault/vaults/keys/update/action': DataActions.write,
  'Microsoft.KeyVault/vaults/keys/create/action': DataActions.create,
  'Microsoft.KeyVault/vaults/keys/import/action': DataActions.import,
  'Microsoft.KeyVault/vaults/keys/delete': DataActions.delete,
  'Microsoft.KeyVault/vaults/keys/backup/action': DataActions.backup,
  'Microsoft.KeyVault/vaults/keys/restore/action': DataActions.restore,
  'Microsoft.KeyVault/vaults/keys/recover/action': DataActions.recover,
  'Microsoft.KeyVault/vaults/keys/purge/action': DataActions.purge,
  'Microsoft.KeyVault/vaults/keys/rotate/action': DataActions.rotate,
  'Microsoft.KeyVault/vaults/keys/encrypt/action': DataActions.encrypt,
  'Microsoft.KeyVault/vaults/keys/decrypt/action': DataActions.decrypt,
  'Microsoft.KeyVault/vaults/keys/wrap/action': DataActions.wrapKey,
  'Microsoft.KeyVault/vaults/keys/unwrap/action': DataActions.unwrapKey,
  'Microsoft.KeyVault/vaults/keys/sign/action': DataActions.sign,
  'Microsoft.KeyVault/vaults/keys/verify/action': DataActions.verify,
  'Microsoft.KeyVault/vaults/keys/release/action': DataActions.release,
  'Microsoft.KeyVault/vaults/deletedKeys/read': DataActions.readDeleted,
};

const KNOWN_ACTIONS = new Set<string>([...Object.values(DataActions), ...INERT_ACTIONS, ...Object.keys(VAULT_ACTIONS)]);
/** Granted only when named exactly, never through a wildcard. */
const EXPLICIT_ONLY = new Set<string>([DataActions.release, DataActions.export]);

export interface RolePermission {
  readonly actions: readonly string[];
  readonly notActions: readonly string[];
  readonly dataActions: readonly string[];
  readonly notDataActions: readonly string[];
}

export interface RoleDefinition {
  /** A GUID: the definition's name in URLs and in `roleDefinitionId`. */
  readonly name: string;
  readonly roleName: string;
  readonly description: string;
  readonly type: 'AKVBuiltInRole' | 'CustomRole';
  readonly permissions: readonly RolePermission[];
  readonly assignableScopes: readonly string[];
}

/** Azure's built-in "Attestation Reader" role id. */
export const ATTESTATION_READER_ROLE_ID = 'fd1bd22b-8476-40bc-a0bc-69b95687b9f3';

export interface RoleAssignment {
  /** A GUID: the assignment's name. */
  readonly id: string;
  readonly principalId: string;
  /** The role definition's name (GUID). */
  readonly roleDefinitionId: string;
  readonly scope: string;
  readonly createdAt: number;
}

const allow = (dataActions: readonly string[]): RolePermission[] => [{ actions: [], notActions: [], dataActions, notDataActions: [] }];
const builtIn = (name: string, roleName: string, description: string, dataActions: readonly string[]): RoleDefinition => ({
  name,
  roleName,
  description,
  type: 'AKVBuiltInRole',
  permissions: allow(dataActions),
  assignableScopes: ['/'],
});

const A = DataActions;
const KEY_MANAGEMENT = [A.read, A.write, A.create, A.delete, A.import, A.rotate, A.backup, A.restore, A.readDeleted, A.recover, A.purge];
const KEY_CRYPTO = [A.encrypt, A.decrypt, A.wrapKey, A.unwrapKey, A.sign, A.verify, A.rng];
const ROLE_MANAGEMENT = [A.readAssignments, A.writeAssignments, A.deleteAssignments, A.readDefinitions, A.writeDefinitions, A.deleteDefinitions];
const FULL_BACKUP = [A.startBackup, A.backupStatus, A.startRestore, A.restoreStatus];

/**
 * Built-in roles with Azure's ids and names. Managed HSM's data actions as its service returns them
 * (an azure-sdk-for-js recording of `GET /providers/Microsoft.Authorization/roleDefinitions`), except that
 * Crypto User lacks release (see the module comment). Key Vault's five grant what they always granted here.
 */
export const BUILT_IN_ROLES: readonly RoleDefinition[] = [
  builtIn('00482a5a-887f-4fb3-b363-3b7fe8e74483', 'Key Vault Administrator', 'All key management and cryptographic operations (not release).', [...KEY_MANAGEMENT, ...KEY_CRYPTO]),
  builtIn('14b46e9e-c2b7-41b4-b07b-48a6ebf60603', 'Key Vault Crypto Officer', 'All key management and cryptographic operations (not release).', [...KEY_MANAGEMENT, ...KEY_CRYPTO]),
  builtIn('12338af0-0e69-4776-bea7-57ae8d297424', 'Key Vault Crypto User', 'Read keys and use them for cryptographic operations.', [A.read, ...KEY_CRYPTO]),
  builtIn('08bbd89e-9f13-488c-ac41-acfcb10c90ab', 'Key Vault Crypto Service Release User', 'Release keys to attested TEEs.', [A.release]),
  builtIn('21090545-7ca7-4776-b22c-e363652d74d2', 'Key Vault Reader', 'Read key metadata.', [A.read]),
  builtIn('a290e904-7015-4bba-90c8-60543313cdb4', 'Managed HSM Administrator', 'Security domain, full backup and restore, role management.', [...ROLE_MANAGEMENT, ...INERT_ACTIONS, ...FULL_BACKUP]),
  builtIn('515eb02d-2335-4d2d-92f2-b1cbdf9c3778', 'Managed HSM Crypto Officer', 'Role management, purge or recover deleted keys, export.', [...ROLE_MANAGEMENT, A.readDeleted, A.purge, A.recover, A.export]),
  builtIn('21dbd100-6940-42c2-9190-5d6cb909625b', 'Managed HSM Crypto User', 'All key management except purge, recover and export; all cryptographic operations (not release).', [
    A.readDefinitions,
    A.readAssignments,
    A.read,
    A.write,
    A.delete,
    A.create,
    A.rotate,
    A.import,
    A.backup,
    A.restore,
    A.encrypt,
    A.decrypt,
    A.wrapKey,
    A.unwrapKey,
    A.sign,
    A.verify,
    A.derive,
    A.rng,
  ]),
  builtIn('4bd23610-cdcf-4971-bdee-bdc562cc28e4', 'Managed HSM Policy Administrator', 'Create and delete role assignments and definitions.', ROLE_MANAGEMENT),
  builtIn('2c18b078-7c48-4d3a-af88-5a3a1b3f82b3', 'Managed HSM Crypto Auditor', 'Read (but not use) key attributes.', [A.readAssignments, A.readDefinitions, A.read, A.readDeleted]),
  builtIn('33413926-3206-4cdd-b39a-83574fe37a17', 'Managed HSM Crypto Service Encryption User', 'Use a key for service encryption (wrap/unwrap).', [A.read, A.wrapKey, A.unwrapKey]),
  builtIn('21dbd100-6940-42c2-9190-5d6cb909625c', 'Managed HSM Crypto Service Release User', 'Release keys to attested TEEs.', [A.release]),
  builtIn('7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8', 'Managed HSM Backup User', 'Single-key and full backup.', [A.startBackup, A.backupStatus, A.backup]),
  builtIn('6efe6056-5259-49d2-8b3d-d3d73544b20b', 'Managed HSM Restore User', 'Single-key and full restore.', [A.startRestore, A.restoreStatus, A.restore]),
  // The attestation service's reader (GET /policies/{type}); it grants nothing on keys.
  builtIn(ATTESTATION_READER_ROLE_ID, 'Attestation Reader', 'Read attestation policies; no key permission.', []),
];

/** What the bootstrap administrator holds implicitly at `/`: everything but release and export. */
const BOOTSTRAP: RoleDefinition = builtIn('00000000-0000-0000-0000-00000000b007', 'Conclave bootstrap administrator', '', [...KEY_MANAGEMENT, ...KEY_CRYPTO, ...ROLE_MANAGEMENT, ...FULL_BACKUP]);

export const ROLE_NAMES: readonly string[] = BUILT_IN_ROLES.map((r) => r.roleName);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(v: unknown): v is string {
  return typeof v === 'string' && GUID.test(v);
}

export function builtInRole(nameOrId: string): RoleDefinition | undefined {
  return BUILT_IN_ROLES.find((r) => r.name === nameOrId.toLowerCase() || r.roleName.toLowerCase() === nameOrId.toLowerCase());
}

/**
 * A role definition reference as clients give it: the GUID, `…/roleDefinitions/{guid}` (Managed HSM's
 * `roleDefinitionId`), or (Conclave's admin API and CLI) a role name. Returns the GUID.
 */
export function roleDefinitionRef(v: unknown, customByName: (roleName: string) => string | undefined): string {
  if (typeof v === 'string') {
    const m = /(?:^|\/roleDefinitions\/)([0-9a-fA-F-]{36})$/.exec(v);
    if (m && isGuid(m[1])) return m[1]!.toLowerCase();
    const named = builtInRole(v)?.name ?? customByName(v);
    if (named) return named;
  }
  throw fail('role.invalid', `unknown role ${JSON.stringify(v)}; give a role definition id or one of: ${ROLE_NAMES.join(', ')}`, { field: 'roleDefinitionId' });
}

/** Scopes: `/` (the vault), `/keys` (every key), `/keys/{name}` (one key). */
export function parseScope(v: unknown): string {
  if (v === undefined || v === null || v === '' || v === '/') return '/';
  if (typeof v === 'string') {
    if (/^\/?keys\/?$/i.test(v)) return '/keys';
    const m = /^\/?keys\/([0-9a-zA-Z-]{1,127})\/?$/i.exec(v);
    if (m) return `/keys/${m[1]}`;
  }
  throw fail('role.invalid', `scope must be "/" (the vault), "/keys" or "/keys/{name}", got ${JSON.stringify(v)}`, { field: 'scope' });
}

/** Whether an assignment at `scope` covers `keyName` (vault-wide operations pass undefined). */
function covers(scope: string, keyName: string | undefined, vaultWide: boolean): boolean {
  if (scope === '/') return true;
  if (vaultWide) return false;
  if (scope === '/keys') return true;
  return keyName !== undefined && scope.toLowerCase() === `/keys/${keyName}`.toLowerCase();
}

function normalised(action: string): string {
  return VAULT_ACTIONS[action] ?? action;
}

/** Each Managed HSM action's Key Vault spellings (what a Key Vault wildcard may prefix). */
const VAULT_SPELLINGS = new Map<string, string[]>();
for (const [vault, mhsm] of Object.entries(VAULT_ACTIONS)) VAULT_SPELLINGS.set(mhsm, [...(VAULT_SPELLINGS.get(mhsm) ?? []), vault]);

/**
 * Whether an action pattern names `action`: by name, or a wildcard that prefixes it in Managed HSM's spelling
 * or one of its Key Vault spellings. This is what a notDataActions entry takes away: release and export too (a
 * deny never covers less than it reads).
 */
function namesAction(pattern: string, action: string): boolean {
  const p = normalised(pattern);
  if (p === action) return true;
  if (!p.endsWith('*')) return false;
  const prefix = p.slice(0, -1);
  return action.startsWith(prefix) || (VAULT_SPELLINGS.get(action) ?? []).some((v) => v.startsWith(prefix));
}

/** Whether a dataActions entry grants `action`: as {@link namesAction}, but release and export only by name. */
function grantsAction(pattern: string, action: string): boolean {
  return EXPLICIT_ONLY.has(action) ? normalised(pattern) === action : namesAction(pattern, action);
}

/** Whether a definition grants `action`: some permission's dataActions match it and its notDataActions do not. */
export function grants(def: RoleDefinition, action: string): boolean {
  return def.permissions.some((p) => p.dataActions.some((d) => grantsAction(d, action)) && !p.notDataActions.some((d) => namesAction(d, action)));
}

/**
 * Whether the assignments grant `permission` on `keyName`. Key operations are covered by assignments at
 * `/`, `/keys` and `/keys/{name}`; vault-wide ones (roles, full backup, listing, rng) by `/` and, for key
 * listing and rng, `/keys`.
 */
export function isPermitted(
  assignments: readonly Pick<RoleAssignment, 'roleDefinitionId' | 'scope'>[],
  definitions: (id: string) => RoleDefinition | undefined,
  permission: Permission,
  keyName: string | undefined,
  isAdmin: boolean,
): boolean {
  const action = DataActions[permission];
  const vaultWide = keyName === undefined && !(['read', 'readDeleted', 'rng', 'restore', 'import', 'create'] as Permission[]).includes(permission);
  if (isAdmin && grants(BOOTSTRAP, action)) return true;
  return assignments.some((a) => {
    const def = definitions(a.roleDefinitionId);
    return def !== undefined && covers(a.scope, keyName, vaultWide) && grants(def, action);
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function actionList(v: unknown, field: string, data: boolean): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > 100) throw fail('role.invalid', `${field} must be an array of at most 100 actions`, { field });
  return v.map((a) => {
    if (typeof a !== 'string' || a.length === 0 || a.length > 256) throw fail('role.invalid', `${field} holds a value that is not an action`, { field });
    if (!data) return a;
    const known = a.endsWith('*') ? [...KNOWN_ACTIONS].some((k) => k.startsWith(a.slice(0, -1))) : KNOWN_ACTIONS.has(a);
    if (!known) throw fail('role.invalid', `unknown data action ${JSON.stringify(a)} in ${field}`, { field, action: a });
    return a;
  });
}

/**
 * `PUT /{scope}/providers/Microsoft.Authorization/roleDefinitions/{name}` body
 * (RoleDefinitionCreateParameters): `properties.{roleName, description, type, permissions[], assignableScopes}`.
 * Every data action must be one this vault knows (a wildcard must match at least one).
 */
export function parseRoleDefinition(name: string, body: unknown): RoleDefinition {
  if (!isGuid(name)) throw fail('role.invalid', `a role definition name must be a GUID, got ${JSON.stringify(name)}`, { field: 'roleDefinitionName' });
  const props = isObject(body) ? body.properties : undefined;
  if (!isObject(props)) throw fail('role.invalid', 'the body must be {properties: {roleName, permissions, …}}', { field: 'properties' });
  if (props.type !== undefined && props.type !== null && props.type !== 'CustomRole') throw fail('role.invalid', 'only a CustomRole can be defined', { field: 'properties.type' });
  const roleName = props.roleName ?? name;
  if (typeof roleName !== 'string' || roleName.length === 0 || roleName.length > 256) throw fail('role.invalid', 'properties.roleName must be a string of 1–256 characters', { field: 'properties.roleName' });
  const description = props.description ?? '';
  if (typeof description !== 'string' || description.length > 1024) throw fail('role.invalid', 'properties.description must be a string of at most 1024 characters', { field: 'properties.description' });
  const perms = props.permissions ?? [];
  if (!Array.isArray(perms) || perms.length > 10) throw fail('role.invalid', 'properties.permissions must be an array of at most 10 permissions', { field: 'properties.permissions' });
  const permissions = perms.map((p, i) => {
    if (!isObject(p)) throw fail('role.invalid', `properties.permissions[${i}] must be an object`, { field: `properties.permissions[${i}]` });
    return {
      actions: actionList(p.actions, `properties.permissions[${i}].actions`, false),
      notActions: actionList(p.notActions, `properties.permissions[${i}].notActions`, false),
      dataActions: actionList(p.dataActions, `properties.permissions[${i}].dataActions`, true),
      notDataActions: actionList(p.notDataActions, `properties.permissions[${i}].notDataActions`, true),
    };
  });
  const scopes = props.assignableScopes ?? ['/'];
  if (!Array.isArray(scopes) || scopes.length === 0) throw fail('role.invalid', 'properties.assignableScopes must be a non-empty array', { field: 'properties.assignableScopes' });
  const assignableScopes = [...new Set(scopes.map((s) => parseScope(s)))];
  return { name: name.toLowerCase(), roleName, description, type: 'CustomRole', permissions, assignableScopes };
}

// ── wire shapes (Managed HSM) ────────────────────────────────────────────────────────────────────────

const PROVIDER = 'providers/Microsoft.Authorization';

export function roleDefinitionId(name: string): string {
  return `Microsoft.KeyVault/${PROVIDER}/roleDefinitions/${name}`;
}

export function roleDefinitionWire(d: RoleDefinition): Record<string, unknown> {
  return {
    id: roleDefinitionId(d.name),
    name: d.name,
    type: 'Microsoft.Authorization/roleDefinitions',
    properties: { roleName: d.roleName, description: d.description, type: d.type, permissions: d.permissions, assignableScopes: d.assignableScopes },
  };
}

export function roleAssignmentWire(a: RoleAssignment): Record<string, unknown> {
  return {
    id: `${a.scope === '/' ? '' : a.scope}/${PROVIDER}/roleAssignments/${a.id}`,
    name: a.id,
    type: 'Microsoft.Authorization/roleAssignments',
    properties: { scope: a.scope, roleDefinitionId: roleDefinitionId(a.roleDefinitionId), principalId: a.principalId },
  };
}
