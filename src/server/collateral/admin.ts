/** The collateral cache's administration API (administrator's bearer token): status, refresh, baseline, AMD host, bundles. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseBaselinePolicy } from '../../collateral/baseline.js';
import { hexParameter as hex } from '../../collateral/lookup.js';
import { fail } from '../../core/errors.js';
import type { AppContext } from '../context.js';
import { product } from './kds.js';
import { ADMIN, type CollateralRoutes } from './routes.js';
import { COLLATERAL } from '../../wire/collateral.js';
import type { RouteTypes } from '../../wire/schema.js';
import { authOnce } from '../wire-input.js';

export function registerCollateralAdminRoutes(app: FastifyInstance, ctx: AppContext, k: CollateralRoutes): void {
  const { ops, now } = k;
  const memo = { clear: k.clearMemo };

  const admin = authOnce(async (request: FastifyRequest): Promise<void> => {
    const p = await ctx.auth.authenticate(request.headers.authorization, Math.floor(now() / 1000));
    if (!p.isAdmin) throw fail('auth.forbidden', 'the collateral admin API is for the administrator');
  });

  app.get('/admin/collateral/status', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.status }, schema: { summary: 'Cached collateral: source, age, next refresh', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    return { mode: ctx.config.collateralMode, upstreams: { intel: ctx.config.upstreamIntel ?? null, amd: ctx.config.upstreamAmd ?? null, nvidiaRim: ctx.config.upstreamNvidiaRim ?? null, nvidiaOcsp: ctx.config.upstreamNvidiaOcsp ?? null }, items: await ops.status() };
  });

  app.post<RouteTypes<typeof COLLATERAL.refreshNow>>('/admin/collateral/refresh', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.refreshNow }, schema: { summary: 'Refresh cached collateral now', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const refreshed = await ops.refresh(request.query.key ?? undefined);
    memo.clear();
    return { refreshed };
  });

  app.get('/admin/collateral/baseline', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.getBaseline }, schema: { summary: 'Current baseline policy and what it serves', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    return ops.baseline();
  });

  app.put('/admin/collateral/baseline', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.setBaseline }, schema: { summary: 'Set the baseline policy', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const result = await ops.setBaseline(parseBaselinePolicy(request.body));
    memo.clear();
    return result;
  });

  app.post<RouteTypes<typeof COLLATERAL.dryRunBaseline>>('/admin/collateral/baseline/dry-run', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.dryRunBaseline }, schema: { summary: 'Which recently seen platforms change status under a candidate baseline', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const { days } = request.query;
    const candidate = parseBaselinePolicy(request.body);
    return ops.dryRun(candidate, Number(days ?? 90));
  });

  app.put<RouteTypes<typeof COLLATERAL.setAmdHost>>('/admin/collateral/amd/host', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.setAmdHost }, schema: { summary: 'Set the AMD host identity THIM answers for', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const b = request.body;
    const id = { product: product(b.product).toString(), chipId: hex(b.chipId, 128, 'chipId'), tcbm: hex(b.tcbm, 16, 'tcbm') };
    await ops.setAmdHost(id);
    memo.clear();
    return id;
  });

  app.get('/admin/collateral/bundle', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.exportBundle }, schema: { summary: 'Export every cached item as an offline bundle', tags: ['Collateral admin'] } }, async (request, reply) => {
    await admin(request);
    const bundle = await ops.exportBundle();
    reply.header('content-type', 'application/json');
    return reply.send(bundle);
  });

  app.post('/admin/collateral/bundle', { config: { ...ADMIN, auth: admin, wire: COLLATERAL.importBundle }, bodyLimit: 256 << 20, schema: { summary: 'Import an offline bundle (all items verified, one transaction)', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const body = request.body;
    const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body);
    const imported = await ops.importBundle(text);
    memo.clear();
    return { imported };
  });}
