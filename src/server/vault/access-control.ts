/**
 * HTTP of Managed HSM's access control API: `/{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]`
 * and `/roleDefinitions[/{name}]`, scope `/`, `/keys` or `/keys/{name}` (the SDKs strip the leading
 * slashes of `//providers/…`). PUT answers 201 and DELETE 200 with the deleted object, as the service
 * does and the generated clients require.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiVersion } from '../../vault/api-version.js';
import type { VaultService } from '../../vault/service.js';
import type { Principal } from '../auth.js';
import type { RouteTypes, WireRoute } from '../../wire/schema.js';
import { VAULT } from '../../wire/vault.js';

export type AkvAuth = (request: FastifyRequest, reply: FastifyReply) => Promise<{ p: Principal; v: ApiVersion; q: URLSearchParams }>;

const PROVIDER = 'providers/Microsoft.Authorization';

export function registerAccessControlRoutes(app: FastifyInstance, service: VaultService, akv: AkvAuth): void {
  const route = (summary: string, wire: WireRoute) => ({ config: { family: 'akv' as const, wire, auth: akv }, schema: { summary, tags: ['vault access control'] } });
  type P = { key?: string | null };
  const prefixes: { path: string; scope: (params: P) => string }[] = [
    { path: '', scope: () => '/' },
    { path: '/keys', scope: () => '/keys' },
    { path: '/keys/:key', scope: (params) => `/keys/${params.key}` },
  ];
  for (const { path, scope } of prefixes) {
    const at = `${path}/${PROVIDER}`;
    app.get<RouteTypes<typeof VAULT.listRoleAssignments>>(`${at}/roleAssignments`, route('List role assignments', VAULT.listRoleAssignments), async (req, reply) => {
      const { p, v, q } = await akv(req, reply);
      return { value: await service.listRoleAssignments(p, v, scope(req.params), q.get('$filter')), nextLink: null };
    });
    app.get<RouteTypes<typeof VAULT.getRoleAssignment>>(`${at}/roleAssignments/:name`, route('Get a role assignment', VAULT.getRoleAssignment), async (req, reply) => {
      const { p, v } = await akv(req, reply);
      return service.getRoleAssignment(p, v, scope(req.params), req.params.name);
    });
    app.put<RouteTypes<typeof VAULT.putRoleAssignment>>(`${at}/roleAssignments/:name`, route('Create a role assignment', VAULT.putRoleAssignment), async (req, reply) => {
      const { p, v } = await akv(req, reply);
      const body = await service.putRoleAssignment(p, v, scope(req.params), req.params.name, req.body);
      return reply.status(201).send(body);
    });
    app.delete<RouteTypes<typeof VAULT.deleteRoleAssignment>>(`${at}/roleAssignments/:name`, route('Delete a role assignment', VAULT.deleteRoleAssignment), async (req, reply) => {
      const { p, v } = await akv(req, reply);
      return service.deleteRoleAssignment(p, v, scope(req.params), req.params.name);
    });
    app.get<RouteTypes<typeof VAULT.listRoleDefinitions>>(`${at}/roleDefinitions`, route('List role definitions', VAULT.listRoleDefinitions), async (req, reply) => {
      const { p, v, q } = await akv(req, reply);
      return { value: await service.listRoleDefinitions(p, v, scope(req.params), q.get('$filter')), nextLink: null };
    });
    app.get<RouteTypes<typeof VAULT.getRoleDefinition>>(`${at}/roleDefinitions/:name`, route('Get a role definition', VAULT.getRoleDefinition), async (req, reply) => {
      const { p, v } = await akv(req, reply);
      return service.getRoleDefinition(p, v, scope(req.params), req.params.name);
    });
    app.put<RouteTypes<typeof VAULT.putRoleDefinition>>(`${at}/roleDefinitions/:name`, route('Create or update a custom role definition', VAULT.putRoleDefinition), async (req, reply) => {
      const { p, v } = await akv(req, reply);
      const body = await service.putRoleDefinition(p, v, scope(req.params), req.params.name, req.body);
      return reply.status(201).send(body);
    });
    app.delete<RouteTypes<typeof VAULT.deleteRoleDefinition>>(`${at}/roleDefinitions/:name`, route('Delete a custom role definition', VAULT.deleteRoleDefinition), async (req, reply) => {
      const { p, v } = await akv(req, reply);
      return service.deleteRoleDefinition(p, v, scope(req.params), req.params.name);
    });
  }
}
