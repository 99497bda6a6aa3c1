/**
 * The vault service: the AKV keys REST API (family 'akv', challenge-based bearer auth as Azure SDKs
 * expect, azure-sdk-clients.md §1.2) and its administration API under /admin (family 'conclave').
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail, isConclaveError } from '../../core/errors.js';
import { type ApiVersion, checkApiVersion, requireFeature } from '../../vault/api-version.js';
import { checkKeyVersion } from '../../vault/key.js';
import { releaseAnswerJson } from '../../vault/release/release-jws.js';
import type { Principal } from '../auth.js';
import type { AppContext } from '../context.js';
import { registerAccessControlRoutes } from './access-control.js';
import { logPlugin } from '../log/plugin.js';
import { registerBackupRoutes } from './backup.js';
import { registerSettingsRoutes } from './settings.js';
import { b64url } from '../../core/bytes.js';
import type { RouteTypes, WireRoute } from '../../wire/schema.js';
import { VAULT } from '../../wire/vault.js';
import { authOnce } from '../wire-input.js';

/** The tenant the challenge names: any GUID works for the SDK, which passes it to the credential as `tenantId`. */
export const CHALLENGE_TENANT = '00000000-0000-0000-0000-000000000000';
const DEFAULT_PAGE = 25;

/**
 * The challenge `resource`: the parent domain of the vault host (`myvault.vault.localtest` →
 * `https://vault.localtest`), so the SDKs' check "vault host ends with '.' + resource host" passes. A
 * non-default port goes into the resource: the Python SDK compares host and port (`netloc`), the JS SDK
 * the host only, so `https://myvault.vault.localtest:8443` → `https://vault.localtest:8443` passes both.
 * For an IP or single-label host there is no parent: `https://vault.localtest`, and clients disable the
 * check (docs/vault.md).
 */
export function challengeResource(baseUrl: string): string {
  const url = new URL(baseUrl);
  const host = url.hostname;
  const labels = host.split('.');
  const port = url.port === '' ? '' : `:${url.port}`;
  if (/^[\d.]+$/.test(host) || host.includes(':') || labels.length < 3) return `https://vault.localtest${port}`;
  return `https://${labels.slice(1).join('.')}${port}`;
}

function query(request: FastifyRequest): URLSearchParams {
  // Azure SDKs send `api%2Dversion=`: URLSearchParams decodes the key, a raw matcher would not.
  const i = request.url.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : request.url.slice(i + 1));
}

function paging(q: URLSearchParams): { offset: number; limit: number } {
  const max = q.get('maxresults');
  const limit = max === null ? DEFAULT_PAGE : Number(max);
  if (!Number.isInteger(limit) || limit < 1 || limit > 25) throw fail('request.invalid', 'maxresults must be an integer from 1 to 25', { field: 'maxresults' });
  const token = q.get('$skiptoken');
  // Our own nextLink's token: base64url of a decimal offset. Anything else (a huge number, a fraction, an
  // exponent) is refused before it reaches the store as an OFFSET it cannot bind.
  const decoded = token === null ? '0' : Buffer.from(token, 'base64url').toString('utf8');
  const offset = /^\d{1,15}$/.test(decoded) ? Number(decoded) : Number.NaN;
  if (!Number.isSafeInteger(offset)) throw fail('request.invalid', 'invalid $skiptoken', { field: '$skiptoken' });
  return { offset, limit };
}

function nextLink(base: string, path: string, apiVersion: string, limit: number, next: number | undefined): string | null {
  if (next === undefined) return null;
  const q = new URLSearchParams({ 'api-version': apiVersion, $skiptoken: b64url(String(next)), maxresults: String(limit) });
  return `${base}${path}?${q.toString()}`;
}

export async function vaultPlugin(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const service = ctx.services.vault?.service;
  if (!service) throw new Error('vault plugin registered without a vault service');
  await logPlugin(app, ctx, ctx.services.vault!.log);

  /** AKV: bearer or a challenge (401 + WWW-Authenticate), then the api-version check. */
  const akv = authOnce(async (request: FastifyRequest, reply: FastifyReply): Promise<{ p: Principal; v: ApiVersion; q: URLSearchParams }> => {
    let p: Principal;
    try {
      p = await ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000));
    } catch (e) {
      if (isConclaveError(e, 'auth.unauthenticated')) {
        reply.header('WWW-Authenticate', `Bearer authorization="${ctx.baseUrl()}/${CHALLENGE_TENANT}", resource="${challengeResource(ctx.baseUrl())}"`);
      }
      throw e;
    }
    const q = query(request);
    return { p, v: checkApiVersion(q.get('api-version')), q };
  });

  const admin = authOnce(async (request: FastifyRequest): Promise<Principal> => {
    const p = await ctx.auth.authenticate(request.headers.authorization, Math.floor(ctx.now().getTime() / 1000));
    if (!p.isAdmin) throw fail('auth.forbidden', 'only the administrator may use the administration API');
    return p;
  });

  type P = { name: string; version?: string };
  /**
   * The `{version}` segment: 32 hex digits, or empty for the latest. Anything else is an operation this
   * vault does not have (`…/rotationpolicy` of an older build, a typo), never a version to look up.
   */
  const version = (req: FastifyRequest<{ Params: P }>) => {
    const v = req.params.version;
    if (v === undefined || v === '') return undefined;
    if (!/^[0-9a-f]{32}$/i.test(v)) throw fail('request.not_found', `no operation ${JSON.stringify(v)} on keys: ${req.method} ${req.url.split('?')[0]}`, { segment: v });
    return checkKeyVersion(v);
  };
  const akvRoute = (summary: string, wire: WireRoute) => ({ config: { family: 'akv' as const, wire, auth: akv }, schema: { summary, tags: ['vault'] } });
  const adminRoute = (summary: string, wire: WireRoute) => ({ config: { family: 'conclave' as const, wire, auth: admin }, schema: { summary, tags: ['vault admin'] } });

  app.post<RouteTypes<typeof VAULT.createKey>>('/keys/:name/create', akvRoute('Create a key (or a new version of it)', VAULT.createKey), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.create(p, v, req.params.name, req.body);
  });
  app.put<RouteTypes<typeof VAULT.importKey>>('/keys/:name', akvRoute('Import a key (a JWK, or a BYOK key transfer blob in key.key_hsm)', VAULT.importKey), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.import(p, v, req.params.name, req.body);
  });
  app.get<RouteTypes<typeof VAULT.listKeys>>('/keys', akvRoute('List keys', VAULT.listKeys), async (req, reply) => {
    const { p, v, q } = await akv(req, reply);
    const { offset, limit } = paging(q);
    const page = await service.list(p, v, offset, limit);
    return { value: page.items, nextLink: nextLink(ctx.baseUrl(), '/keys', v.value, limit, page.next) };
  });
  app.get<RouteTypes<typeof VAULT.listVersions>>('/keys/:name/versions', akvRoute('List the versions of a key', VAULT.listVersions), async (req, reply) => {
    const { p, v, q } = await akv(req, reply);
    const { offset, limit } = paging(q);
    const page = await service.listVersions(p, v, req.params.name, offset, limit);
    return { value: page.items, nextLink: nextLink(ctx.baseUrl(), `/keys/${req.params.name}/versions`, v.value, limit, page.next) };
  });
  app.get<RouteTypes<typeof VAULT.getRotationPolicy>>('/keys/:name/rotationpolicy', akvRoute('Get the rotation policy of a key', VAULT.getRotationPolicy), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.getRotationPolicy(p, v, req.params.name);
  });
  app.put<RouteTypes<typeof VAULT.setRotationPolicy>>('/keys/:name/rotationpolicy', akvRoute('Set the rotation policy of a key', VAULT.setRotationPolicy), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.setRotationPolicy(p, v, req.params.name, req.body);
  });
  app.get<RouteTypes<typeof VAULT.getKey>>('/keys/:name', akvRoute('Get the latest version of a key', VAULT.getKey), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.get(p, v, req.params.name, undefined);
  });
  app.get<RouteTypes<typeof VAULT.getKeyVersion>>('/keys/:name/:version', akvRoute('Get a key version', VAULT.getKeyVersion), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.get(p, v, req.params.name, version(req));
  });
  // The api-version's feature is checked before the path's version segment, as the handler always did.
  const keyAttestationRoute = akvRoute('Key attestation (not offered: see docs/vault.md)', VAULT.keyAttestation);
  const attestationFeature = async (req: FastifyRequest, reply: FastifyReply) => {
    const r = await akv(req, reply);
    requireFeature(r.v, 'attestation', 'getKeyAttestation');
    return r;
  };
  app.get<RouteTypes<typeof VAULT.keyAttestation>>('/keys/:name/:version/attestation', { ...keyAttestationRoute, config: { ...keyAttestationRoute.config, auth: attestationFeature } }, async (req, reply) => {
    const { v } = await akv(req, reply);
    requireFeature(v, 'attestation', 'getKeyAttestation');
    version(req);
    throw fail('key.attestation_unavailable', 'Key attestation is not offered: the key protectors of this vault (software, PKCS#11) have no vendor attestation of where a key was generated.');
  });
  app.patch<RouteTypes<typeof VAULT.updateKeyVersion>>('/keys/:name/:version', akvRoute('Update a key version', VAULT.updateKeyVersion), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.update(p, v, req.params.name, version(req), req.body);
  });
  app.patch<RouteTypes<typeof VAULT.updateKey>>('/keys/:name', akvRoute('Update the latest version of a key', VAULT.updateKey), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.update(p, v, req.params.name, undefined, req.body);
  });
  app.post<RouteTypes<typeof VAULT.rotateKey>>('/keys/:name/rotate', akvRoute('Rotate a key', VAULT.rotateKey), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.rotate(p, v, req.params.name);
  });
  app.delete<RouteTypes<typeof VAULT.deleteKey>>('/keys/:name', akvRoute('Delete a key (soft delete)', VAULT.deleteKey), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.delete(p, v, req.params.name);
  });
  app.get<RouteTypes<typeof VAULT.listDeleted>>('/deletedkeys', akvRoute('List deleted keys', VAULT.listDeleted), async (req, reply) => {
    const { p, v, q } = await akv(req, reply);
    const { offset, limit } = paging(q);
    const page = await service.listDeleted(p, v, offset, limit);
    return { value: page.items, nextLink: nextLink(ctx.baseUrl(), '/deletedkeys', v.value, limit, page.next) };
  });
  app.get<RouteTypes<typeof VAULT.getDeleted>>('/deletedkeys/:name', akvRoute('Get a deleted key', VAULT.getDeleted), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.getDeleted(p, v, req.params.name);
  });
  app.post<RouteTypes<typeof VAULT.recoverDeleted>>('/deletedkeys/:name/recover', akvRoute('Recover a deleted key', VAULT.recoverDeleted), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.recover(p, v, req.params.name);
  });
  app.delete<RouteTypes<typeof VAULT.purgeDeleted>>('/deletedkeys/:name', akvRoute('Purge a deleted key', VAULT.purgeDeleted), async (req, reply) => {
    const { p } = await akv(req, reply);
    await service.purge(p, req.params.name);
    return reply.status(204).send();
  });
  app.post<RouteTypes<typeof VAULT.backupKey>>('/keys/:name/backup', akvRoute('Back up a key', VAULT.backupKey), async (req, reply) => {
    const { p } = await akv(req, reply);
    return service.backup(p, req.params.name);
  });
  app.post<RouteTypes<typeof VAULT.restoreKey>>('/keys/restore', akvRoute('Restore a key backup', VAULT.restoreKey), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.restore(p, v, req.body);
  });
  for (const op of ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'] as const) {
    const handler = async (req: FastifyRequest<{ Params: P }>, reply: FastifyReply) => {
      const { p } = await akv(req, reply);
      return service.cipher(p, req.params.name, version(req), op, req.body);
    };
    app.post<{ Params: P }>(`/keys/:name/:version/${op}`, akvRoute(`${op} with a key version`, VAULT.keyOperation), handler);
    app.post<{ Params: P }>(`/keys/:name/${op}`, akvRoute(`${op} with the latest key version`, VAULT.keyOperationLatest), handler);
  }
  for (const op of ['sign', 'verify'] as const) {
    const handler = async (req: FastifyRequest<{ Params: P }>, reply: FastifyReply) => {
      const { p } = await akv(req, reply);
      return op === 'sign' ? service.sign(p, req.params.name, version(req), req.body) : service.verify(p, req.params.name, version(req), req.body);
    };
    app.post<{ Params: P }>(`/keys/:name/:version/${op}`, akvRoute(`${op} a digest`, op === 'sign' ? VAULT.keyOperation : VAULT.verify), handler);
    app.post<{ Params: P }>(`/keys/:name/${op}`, akvRoute(`${op} a digest with the latest key version`, op === 'sign' ? VAULT.keyOperationLatest : VAULT.verifyLatest), handler);
  }
  const release = async (req: FastifyRequest<{ Params: P }>, reply: FastifyReply) => {
    const { p, v } = await akv(req, reply);
    const answer = await service.release(p, v, req.params.name, version(req), req.body);
    // The JSON text written once around the JWS (fastify would stringify the whole answer, JWS included, again).
    reply.type('application/json; charset=utf-8');
    return releaseAnswerJson(answer);
  };
  app.post<RouteTypes<typeof VAULT.release>>('/keys/:name/release', akvRoute('Secure Key Release of the latest version', VAULT.release), release);
  app.post<RouteTypes<typeof VAULT.releaseVersion>>('/keys/:name/:version/release', akvRoute('Secure Key Release of a key version', VAULT.releaseVersion), release);
  app.post<RouteTypes<typeof VAULT.random>>('/rng', akvRoute('Random bytes', VAULT.random), async (req, reply) => {
    const { p, v } = await akv(req, reply);
    return service.random(p, v, req.body);
  });
  registerAccessControlRoutes(app, service, akv);
  registerBackupRoutes(app, service, akv, ctx.baseUrl);
  registerSettingsRoutes(app, service, akv);
  app.post<RouteTypes<typeof VAULT.maintenance>>('/admin/vault/maintenance', adminRoute('Run due rotations, rotation notices and purges now', VAULT.maintenance), async (req) => {
    await admin(req);
    return service.runMaintenance();
  });

  // ── administration ──
  app.get<RouteTypes<typeof VAULT.adminListAssignments>>('/admin/vault/roleAssignments', adminRoute('List role assignments', VAULT.adminListAssignments), async (req) => {
    await admin(req);
    return { value: await service.listAssignments() };
  });
  app.put<RouteTypes<typeof VAULT.adminAssign>>('/admin/vault/roleAssignments', adminRoute('Assign a role at vault or key scope', VAULT.adminAssign), async (req) => service.assign(await admin(req), req.body));
  app.delete<RouteTypes<typeof VAULT.adminUnassign>>('/admin/vault/roleAssignments/:id', adminRoute('Remove a role assignment', VAULT.adminUnassign), async (req, reply) => {
    await service.unassign(await admin(req), req.params.id);
    return reply.status(204).send();
  });
  app.get<RouteTypes<typeof VAULT.authorities>>('/admin/vault/authorities', adminRoute('Trusted attestation authorities for key release', VAULT.authorities), async (req) => {
    await admin(req);
    return service.authorities();
  });
  app.put<RouteTypes<typeof VAULT.setAuthorities>>('/admin/vault/authorities', adminRoute('Replace the operator-managed trusted authorities', VAULT.setAuthorities), async (req) => service.setAuthorities(await admin(req), req.body));
  app.post<RouteTypes<typeof VAULT.registerClient>>('/admin/clients', adminRoute('Register an OAuth client (client credentials)', VAULT.registerClient), async (req, reply) => {
    await admin(req);
    reply.status(201);
    return ctx.auth.registerClient(req.body.displayName, Math.floor(ctx.now().getTime() / 1000));
  });
}
