/**
 * Azure RBAC for the keys data plane, reduced to the built-in roles a vault of keys needs. Scopes are
 * `/` (the vault) or `/keys/{name}`. Names and ids as Azure publishes them (built-in roles page).
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

export const ROLE_NAMES = [
  'Key Vault Administrator',
  'Key Vault Crypto Officer',
  'Key Vault Crypto User',
  'Key Vault Crypto Service Release User',
  'Key Vault Reader',
] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

/** Azure's role definition ids (stable across tenants). */
export const ROLE_IDS: Record<RoleName, string> = {
  'Key Vault Administrator': '00482a5a-887f-4fb3-b363-3b7fe8e74483',
  'Key Vault Crypto Officer': '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
  'Key Vault Crypto User': '12338af0-0e69-4776-bea7-57ae8d297424',
  'Key Vault Crypto Service Release User': '08bbd89e-9f13-488c-ac41-acfcb10c90ab',
  'Key Vault Reader': '21090545-7ca7-4776-b22c-e363652d74d2',
};

/** Data actions of the keys API, named after `Microsoft.KeyVault/vaults/keys/*` actions. */
export type Permission = 'read' | 'create' | 'import' | 'update' | 'delete' | 'recover' | 'purge' | 'backup' | 'restore' | 'rotate' | 'crypto' | 'release' | 'rng';

const MANAGE: readonly Permission[] = ['read', 'create', 'import', 'update', 'delete', 'recover', 'purge', 'backup', 'restore', 'rotate', 'crypto', 'rng'];

/**
 * Release is granted only by Key Vault Crypto Service Release User. Azure's Administrator and Crypto
 * Officer wildcards (`keys/*`) would include `keys/release/action`; Conclave deliberately requires the
 * explicit release role, so managing a key never silently implies the right to export it.
 */
const GRANTS: Record<RoleName, readonly Permission[]> = {
  'Key Vault Administrator': MANAGE,
  'Key Vault Crypto Officer': MANAGE,
  'Key Vault Crypto User': ['read', 'crypto', 'rng'],
  'Key Vault Crypto Service Release User': ['release'],
  'Key Vault Reader': ['read'],
};

export interface RoleAssignment {
  readonly id: string;
  readonly principalId: string;
  readonly role: RoleName;
  readonly scope: string;
  readonly createdAt: number;
}

export function parseRoleName(v: unknown): RoleName {
  const match = typeof v === 'string' ? ROLE_NAMES.find((r) => r.toLowerCase() === v.toLowerCase() || ROLE_IDS[r] === v) : undefined;
  if (!match) throw fail('request.invalid', `unknown role ${JSON.stringify(v)}; expected one of: ${ROLE_NAMES.join(', ')}`, { field: 'role' });
  return match;
}

export function parseScope(v: unknown): string {
  if (v === undefined || v === null || v === '' || v === '/') return '/';
  if (typeof v === 'string') {
    const m = /^\/keys\/([0-9a-zA-Z-]{1,127})\/?$/.exec(v);
    if (m) return `/keys/${m[1]}`;
  }
  throw fail('request.invalid', `scope must be "/" (the vault) or "/keys/{name}", got ${JSON.stringify(v)}`, { field: 'scope' });
}

/** Whether the assignments grant `permission` on `keyName` (vault-scoped operations pass undefined). */
export function isPermitted(assignments: readonly Pick<RoleAssignment, 'role' | 'scope'>[], permission: Permission, keyName: string | undefined): boolean {
  return assignments.some((a) => (a.scope === '/' || (keyName !== undefined && a.scope.toLowerCase() === `/keys/${keyName}`.toLowerCase())) && GRANTS[a.role].includes(permission));
}

/**
 * The bootstrap administrator implicitly holds Key Vault Administrator at `/` (not the release role).
 */
export function effectiveAssignments(assignments: readonly Pick<RoleAssignment, 'role' | 'scope'>[], isAdmin: boolean): Pick<RoleAssignment, 'role' | 'scope'>[] {
  return isAdmin ? [...assignments, { role: 'Key Vault Administrator', scope: '/' }] : [...assignments];
}
