/**
 * The collateral cache's HTTP face: Intel PCS and THIM (pcs.ts), PCCS (pccs.ts), AMD KDS and THIM AMD
 * (kds.ts), NVIDIA RIMs and OCSP (nvidia.ts), the administration API (admin.ts) and its metrics
 * (metrics.ts). Every route translates HTTP to a call of the collateral domain (src/collateral/).
 */
import type { FastifyInstance } from 'fastify';
import { canonicalPcesvn } from '../../collateral/intel/pck.js';
import { tcbFromTcbm } from '../../collateral/lookup.js';
import type { AppContext } from '../context.js';
import { pcsRequestId } from '../wire-errors.js';
import { registerCollateralAdminRoutes } from './admin.js';
import { registerKdsRoutes } from './kds.js';
import { registerCollateralMetrics } from './metrics.js';
import { registerNvidiaCollateralRoutes } from './nvidia.js';
import { registerPcsRoutes } from './pcs.js';
import { pccsRoutes } from './pccs.js';
import { createCollateralRoutes, isMetadata } from './routes.js';

const PCS_PATH = /^\/(sgx|tdx|vcek|vlek|metadata\/THIM)\//i;
const THIM_PATH = /^\/metadata\/THIM\//i;

export { canonicalPcesvn, tcbFromTcbm };

export async function collateralPlugin(app: FastifyInstance, ctx: AppContext): Promise<void> {
  if (!ctx.services.collateral) throw new Error('collateral plugin registered without a collateral service');
  const { service: svc, lookup, admin: ops, platforms } = ctx.services.collateral;
  const now = () => ctx.now().getTime();
  const k = createCollateralRoutes({ svc, lookup, ops, platforms, now });

  // Not async: the hot path costs no promise (a callback hook that answers does not call done).
  app.addHook('onRequest', (request, reply, done) => {
    const url = request.url;
    // The route the router matched, by its registered path: the router matches the percent-decoded path,
    // so the raw URL alone (/metadata/%54HIM/…) does not tell a THIM route.
    const route = request.routeOptions.url ?? '';
    // PCS and PCCS put a Request-ID on every answer, errors included (PCCS middleware/addRequestId.js).
    if (PCS_PATH.test(url) || PCS_PATH.test(route)) reply.header('Request-ID', pcsRequestId(request));
    // A warm GET (the memo holds this URL's answer, made after the same URL passed its edge check and
    // handler) is answered here, without the edge check and the handler again. THIM still needs its
    // header; a route that authenticates is never memoized, and is not answered here either.
    const thim = THIM_PATH.test(url) || THIM_PATH.test(route);
    if (request.method === 'GET' && request.routeOptions.config?.auth === undefined && (!thim || isMetadata(request)) && k.replay(request, reply)) return;
    done();
  });

  registerCollateralMetrics(ctx.metrics, svc, now);
  const mounts = registerPcsRoutes(app, k);
  pccsRoutes(app, ctx, { svc, platforms, serve: k.serve, cached: k.cached, clearMemo: k.clearMemo, asClient: lookup.asClient, mounts });
  registerKdsRoutes(app, k);
  registerNvidiaCollateralRoutes(app, { svc, serve: k.serve, cached: k.cached, failing: k.failing, now, asClient: lookup.asClient });
  registerCollateralAdminRoutes(app, ctx, k);
}
