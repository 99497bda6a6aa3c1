/** HTTP of Managed HSM's account settings: `GET /settings`, `GET`/`PATCH /settings/{name}` (docs/vault.md). */
import type { FastifyInstance } from 'fastify';
import type { VaultService } from '../../vault/service.js';
import type { RouteTypes, WireRoute } from '../../wire/schema.js';
import { VAULT } from '../../wire/vault.js';
import type { AkvAuth } from './access-control.js';

export function registerSettingsRoutes(app: FastifyInstance, service: VaultService, akv: AkvAuth): void {
  const route = (summary: string, wire: WireRoute) => ({ config: { family: 'akv' as const, wire, auth: akv }, schema: { summary, tags: ['vault settings'] } });
  app.get<RouteTypes<typeof VAULT.listSettings>>('/settings', route('List the account settings', VAULT.listSettings), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.listSettings(p, v);
  });
  app.get<RouteTypes<typeof VAULT.getSetting>>('/settings/:name', route('Get an account setting', VAULT.getSetting), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.getSetting(p, v, req.params.name);
  });
  app.patch<RouteTypes<typeof VAULT.updateSetting>>('/settings/:name', route('Update an account setting', VAULT.updateSetting), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.updateSetting(p, v, req.params.name, req.body);
  });
}
