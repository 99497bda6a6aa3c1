/**
 * Managed HSM's access control API (`/{scope}/providers/Microsoft.Authorization/roleAssignments` and
 * `/roleDefinitions`, api-versions 7.2+), which the official KeyVaultAccessControlClient drives, and
 * Conclave's administration API for role assignments (`conclave role …`) on the same store. Every change
 * is audited in the transaction that makes it.
 */
import { randomUUID } from 'node:crypto';
import { fail } from '../core/errors.js';
import { type ApiVersion, requireFeature } from './api-version.js';
import { finish, type VaultCore } from './core.js';
import {
  BUILT_IN_ROLES,
  builtInRole,
  isGuid,
  parseRoleDefinition,
  parseScope,
  type Principal,
  type RoleAssignment,
  type RoleDefinition,
  roleAssignmentWire,
  roleDefinitionRef,
  roleDefinitionWire,
} from './roles.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether an assignment at `scope` lies within `assignable` (`/` holds everything, `/keys` every key). */
function within(scope: string, assignable: readonly string[]): boolean {
  return assignable.some((a) => a === '/' || a.toLowerCase() === scope.toLowerCase() || (a === '/keys' && scope.startsWith('/keys/')));
}

/** Assignments related to `scope`: at it, above it, or below it (ARM's list-for-scope without atScope()). */
function related(a: RoleAssignment, scope: string): boolean {
  const x = a.scope.toLowerCase();
  const s = scope.toLowerCase();
  return s === '/' || x === '/' || x === s || x.startsWith(`${s}/`) || s.startsWith(`${x}/`);
}

/** The `$filter`s Azure documents for these lists: `principalId eq '…'`, `roleName eq '…'`, `atScope()`. */
function parseFilter(filter: string | null): { principalId?: string; roleName?: string; atScope?: boolean } {
  if (filter === null || filter.trim() === '') return {};
  const out: { principalId?: string; roleName?: string; atScope?: boolean } = {};
  for (const part of filter.split(/\s+and\s+/i)) {
    const m = /^\s*(principalId|roleName)\s+eq\s+'([^']{1,1024})'\s*$/i.exec(part);
    if (m) {
      if (m[1]!.toLowerCase() === 'principalid') out.principalId = m[2]!;
      else out.roleName = m[2]!;
    } else if (/^\s*atScope\(\)\s*$/i.test(part)) out.atScope = true;
    else throw fail('role.invalid', `unsupported $filter ${JSON.stringify(filter)}: use principalId eq '…', roleName eq '…' or atScope()`, { field: '$filter' });
  }
  return out;
}

export function createAccessControl(core: VaultCore) {
  const { store, perform, nowSeconds } = core;

  async function allDefinitions(): Promise<RoleDefinition[]> {
    return [...BUILT_IN_ROLES, ...(await store.customRoles())];
  }

  async function definition(name: string): Promise<RoleDefinition | undefined> {
    const lower = name.toLowerCase();
    return (await allDefinitions()).find((d) => d.name === lower);
  }

  async function resolveRole(v: unknown): Promise<RoleDefinition> {
    const custom = await store.customRoles();
    const id = roleDefinitionRef(v, (roleName) => custom.find((c) => c.roleName.toLowerCase() === roleName.toLowerCase())?.name);
    const def = BUILT_IN_ROLES.find((r) => r.name === id) ?? custom.find((r) => r.name === id);
    if (!def) throw fail('role.definition_not_found', `Role definition ${id} does not exist.`, { roleDefinitionId: id });
    return def;
  }

  /**
   * Shared by the Managed HSM API and `conclave role assign`: `reuse` returns an equal assignment made
   * before. `status` is what the route answers on success (Managed HSM's PUT 201, ours 200), for the audit.
   */
  async function assign(p: Principal, a: { id: string; principalId: string; role: unknown; scope: string }, reuse: boolean, status: 200 | 201): Promise<{ assignment: RoleAssignment; created: boolean }> {
    return perform(p, 'roleAssign', 'writeAssignments', {}, async (draft) => {
      draft.status = status;
      if (typeof a.principalId !== 'string' || a.principalId.length === 0 || a.principalId.length > 1024) throw fail('role.invalid', 'principalId (1–1024 characters) is required', { field: 'principalId' });
      const def = await resolveRole(a.role);
      if (!within(a.scope, def.assignableScopes)) throw fail('role.invalid', `Role ${def.roleName} is not assignable at ${a.scope}`, { field: 'scope', assignableScopes: def.assignableScopes });
      const wanted: RoleAssignment = { id: a.id, principalId: a.principalId, roleDefinitionId: def.name, scope: a.scope, createdAt: nowSeconds() };
      Object.assign(draft.detail, { id: a.id, principalId: a.principalId, roleDefinitionId: def.name, roleName: def.roleName, scope: a.scope });
      // A custom role is confirmed where the assignment is written: another request may delete or narrow it meanwhile.
      const r = await store.addAssignment(wanted, finish(draft), def.type === 'CustomRole' ? def : undefined);
      const same = r.assignment.principalId === wanted.principalId && r.assignment.roleDefinitionId === wanted.roleDefinitionId && r.assignment.scope === wanted.scope;
      if (!r.created && !(same && (reuse || r.assignment.id === wanted.id))) {
        throw fail('role.conflict', r.assignment.id === wanted.id ? `Role assignment ${wanted.id} exists with other properties.` : `The role assignment already exists as ${r.assignment.id}.`, { existing: r.assignment.id });
      }
      if (!r.created) {
        // The equal assignment made before: nothing was written, but this call still leaves its record.
        Object.assign(draft.detail, { id: r.assignment.id, existing: true });
        await store.audit(finish(draft));
      }
      return r;
    }, true);
  }

  /** `status`: what the route answers on success (Managed HSM's DELETE 200 with the assignment, ours 204), for the audit. */
  async function remove(p: Principal, id: string, scope: string | undefined, status: 200 | 204): Promise<RoleAssignment> {
    return perform(p, 'roleRemove', 'deleteAssignments', {}, async (draft) => {
      draft.status = status;
      const existing = await store.getAssignment(id);
      if (!existing || (scope !== undefined && existing.scope.toLowerCase() !== scope.toLowerCase())) throw fail('role.assignment_not_found', `Requested role assignment ${id} not found.`, { id });
      draft.detail.id = id;
      draft.detail.principalId = existing.principalId;
      draft.detail.roleDefinitionId = existing.roleDefinitionId;
      if (!(await store.removeAssignment(id, finish(draft)))) throw fail('role.assignment_not_found', `Requested role assignment ${id} not found.`, { id });
      return existing;
    }, true);
  }

  return {
    // ── Managed HSM API ──
    async listRoleDefinitions(p: Principal, api: ApiVersion, rawScope: string, filter: string | null) {
      requireFeature(api, 'mhsm', 'listRoleDefinitions');
      const scope = parseScope(rawScope);
      return perform(p, 'listRoleDefinitions', 'readDefinitions', {}, async () => {
        const f = parseFilter(filter);
        return (await allDefinitions())
          .filter((d) => within(scope, d.assignableScopes) && (f.roleName === undefined || d.roleName.toLowerCase() === f.roleName.toLowerCase()))
          .map(roleDefinitionWire);
      });
    },

    async getRoleDefinition(p: Principal, api: ApiVersion, rawScope: string, name: string) {
      requireFeature(api, 'mhsm', 'getRoleDefinition');
      parseScope(rawScope);
      return perform(p, 'getRoleDefinition', 'readDefinitions', {}, async () => {
        const d = await definition(name);
        if (!d) throw fail('role.definition_not_found', `Role definition ${name} does not exist.`, { name });
        return roleDefinitionWire(d);
      });
    },

    async putRoleDefinition(p: Principal, api: ApiVersion, rawScope: string, name: string, body: unknown) {
      requireFeature(api, 'mhsm', 'setRoleDefinition');
      if (parseScope(rawScope) !== '/') throw fail('role.invalid', 'role definitions are made at scope "/" (as in Managed HSM)', { field: 'scope' });
      return perform(p, 'setRoleDefinition', 'writeDefinitions', {}, async (draft) => {
        draft.status = 201; // as Managed HSM's PUT answers (server/vault/access-control.ts)
        const d = parseRoleDefinition(name, body);
        if (builtInRole(d.name) || builtInRole(d.roleName)) throw fail('role.conflict', `${d.roleName} is (the name of) a built-in role, which cannot be changed.`, { name: d.name });
        const clash = (await store.customRoles()).find((c) => c.name !== d.name && c.roleName.toLowerCase() === d.roleName.toLowerCase());
        if (clash) throw fail('role.conflict', `A role definition named ${d.roleName} exists already (${clash.name}).`, { existing: clash.name });
        Object.assign(draft.detail, { name: d.name, roleName: d.roleName, permissions: d.permissions, assignableScopes: d.assignableScopes });
        await store.putCustomRole(d, nowSeconds(), finish(draft));
        return roleDefinitionWire(d);
      }, true);
    },

    async deleteRoleDefinition(p: Principal, api: ApiVersion, rawScope: string, name: string) {
      requireFeature(api, 'mhsm', 'deleteRoleDefinition');
      parseScope(rawScope);
      return perform(p, 'deleteRoleDefinition', 'deleteDefinitions', {}, async (draft) => {
        if (!isGuid(name)) throw fail('role.definition_not_found', `Role definition ${name} does not exist.`, { name });
        if (builtInRole(name)) throw fail('role.conflict', 'A built-in role cannot be deleted.', { name });
        const d = await definition(name);
        if (!d) throw fail('role.definition_not_found', `Role definition ${name} does not exist.`, { name });
        draft.detail.name = d.name;
        draft.detail.roleName = d.roleName;
        const r = await store.deleteCustomRole(d.name, finish(draft));
        if (r === 'in_use') throw fail('role.conflict', `Role definition ${d.roleName} is still assigned; remove its assignments first.`, { name: d.name });
        if (r === 'absent') throw fail('role.definition_not_found', `Role definition ${name} does not exist.`, { name });
        return roleDefinitionWire(d);
      }, true);
    },

    async listRoleAssignments(p: Principal, api: ApiVersion, rawScope: string, filter: string | null) {
      requireFeature(api, 'mhsm', 'listRoleAssignments');
      const scope = parseScope(rawScope);
      return perform(p, 'listRoleAssignments', 'readAssignments', {}, async () => {
        const f = parseFilter(filter);
        return (await store.listAssignments())
          .filter((a) => (f.atScope ? a.scope.toLowerCase() === scope.toLowerCase() : related(a, scope)) && (f.principalId === undefined || a.principalId === f.principalId))
          .map(roleAssignmentWire);
      });
    },

    async getRoleAssignment(p: Principal, api: ApiVersion, rawScope: string, name: string) {
      requireFeature(api, 'mhsm', 'getRoleAssignment');
      const scope = parseScope(rawScope);
      return perform(p, 'getRoleAssignment', 'readAssignments', {}, async () => {
        const a = await store.getAssignment(name);
        if (!a || a.scope.toLowerCase() !== scope.toLowerCase()) throw fail('role.assignment_not_found', `Requested role assignment ${name} not found.`, { name });
        return roleAssignmentWire(a);
      });
    },

    async putRoleAssignment(p: Principal, api: ApiVersion, rawScope: string, name: string, body: unknown) {
      requireFeature(api, 'mhsm', 'createRoleAssignment');
      const scope = parseScope(rawScope);
      if (!isGuid(name)) throw fail('role.invalid', `a role assignment name must be a GUID, got ${JSON.stringify(name)}`, { field: 'roleAssignmentName' });
      const props = isObject(body) && isObject(body.properties) ? body.properties : undefined;
      if (!props) throw fail('role.invalid', 'the body must be {properties: {roleDefinitionId, principalId}}', { field: 'properties' });
      const r = await assign(p, { id: name.toLowerCase(), principalId: props.principalId as string, role: props.roleDefinitionId, scope }, false, 201);
      return roleAssignmentWire(r.assignment);
    },

    async deleteRoleAssignment(p: Principal, api: ApiVersion, rawScope: string, name: string) {
      requireFeature(api, 'mhsm', 'deleteRoleAssignment');
      return roleAssignmentWire(await remove(p, name.toLowerCase(), parseScope(rawScope), 200));
    },

    // ── Conclave's administration API (bootstrap administrator; `conclave role …`) ──
    async listAssignments() {
      const defs = new Map((await allDefinitions()).map((d) => [d.name, d] as const));
      return (await store.listAssignments()).map((a) => ({ id: a.id, principalId: a.principalId, role: defs.get(a.roleDefinitionId)?.roleName ?? a.roleDefinitionId, roleDefinitionId: a.roleDefinitionId, scope: a.scope, createdAt: a.createdAt }));
    },
    async assign(p: Principal, body: unknown) {
      const b = (body ?? {}) as Record<string, unknown>;
      const r = await assign(p, { id: randomUUID(), principalId: b.principalId as string, role: b.role, scope: parseScope(b.scope) }, true, 200);
      const def = await definition(r.assignment.roleDefinitionId);
      return { id: r.assignment.id, principalId: r.assignment.principalId, role: def?.roleName ?? r.assignment.roleDefinitionId, roleDefinitionId: r.assignment.roleDefinitionId, scope: r.assignment.scope, createdAt: r.assignment.createdAt };
    },
    async unassign(p: Principal, id: string): Promise<void> {
      await remove(p, id, undefined, 204);
    },
  };
}
