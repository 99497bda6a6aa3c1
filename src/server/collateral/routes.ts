import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CollateralAdmin } from '../../collateral/admin.js';
import type { CollateralItem } from '../../collateral/cache/item.js';
import type { CollateralLookup } from '../../collateral/lookup.js';
import type { PlatformService } from '../../collateral/platforms.js';
import type { CollateralService } from '../../collateral/service.js';
import { fail } from '../../core/errors.js';
import type { Prepared } from './responses.js';

export type Query = Record<string, string | undefined>;
export const PCS = { family: 'pcs' as const };
export const ADMIN = { family: 'conclave' as const };
const MEMO_LIMIT = 20_000;
/** The baseline's default depends on the date: a prepared answer is rebuilt after this long. */
const MEMO_MAX_AGE_MS = 60_000;

/** What every collateral route family shares: the services, and the memo of prepared answers. */
export interface CollateralRoutes {
  readonly svc: CollateralService;
  readonly lookup: CollateralLookup;
  readonly ops: CollateralAdmin;
  readonly platforms: PlatformService;
  readonly now: () => number;
  /**
   * Answers a cacheable GET from the memo of prepared answers, building it on a miss. A URL's answer is
   * memoized only once its request passed the route's edge check and handler, and later GETs of the same
   * URL are replayed before routing goes further ({@link replay}, in the onRequest hook): a route that
   * serves must check nothing but its wire schema and THIM's `Metadata: true` (no authentication).
   */
  serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<Prepared>): Promise<FastifyReply>;
  /**
   * Sends the memo's answer for this request's URL if it holds a current one (what serve() would send
   * without building), and says whether it did.
   */
  replay(request: FastifyRequest, reply: FastifyReply): boolean;
  cached: CollateralLookup['cached'];
  failing(item: CollateralItem): boolean;
  /** Forgets every prepared answer (after an operator changed what the cache serves). */
  clearMemo(): void;
}

/**
 * The hot path: one map lookup per cached GET; the store and JSON are touched only on a miss. The memo
 * empties when the cache changes (another replica's write, a refresh, a new baseline).
 */
export function createCollateralRoutes(d: Omit<CollateralRoutes, 'serve' | 'replay' | 'cached' | 'failing' | 'clearMemo'>): CollateralRoutes {
  const { svc, lookup, now } = d;
  const memo = new Map<string, Prepared & { builtAt: number }>();
  svc.onChange(() => memo.clear());
  /** The memo's answer for this URL at time `t`, if it holds one that need not be rebuilt. */
  const current = (url: string, t: number): (Prepared & { builtAt: number }) | undefined => {
    const p = memo.get(url);
    return !p || (p.staleAt !== null && !p.stale && t > p.staleAt) || t - p.builtAt > MEMO_MAX_AGE_MS ? undefined : p;
  };
  const send = (p: Prepared, reply: FastifyReply, t: number): FastifyReply => {
    if (p.item && p.staleAt !== null && t > p.staleAt) svc.refreshSoon(p.item);
    reply.code(p.status).headers(p.headers);
    return reply.send(p.body);
  };
  return {
    ...d,
    async serve(request, reply, build) {
      const t = now();
      let p = current(request.url, t);
      if (!p) {
        p = { ...(await lookup.asClient(request.ip, build)), builtAt: t };
        if (memo.size >= MEMO_LIMIT) memo.clear();
        memo.set(request.url, p);
      }
      return send(p, reply, t);
    },
    replay(request, reply) {
      if (memo.size === 0) return false;
      const t = now();
      const p = current(request.url, t);
      if (!p) return false;
      send(p, reply, t);
      return true;
    },
    cached: lookup.cached,
    failing: (item) => lookup.failing(item),
    clearMemo: () => memo.clear(),
  };
}

/** THIM's host-local routes answer only requests that carry `Metadata: true`. */
export function requireMetadata(request: FastifyRequest): void {
  if (!isMetadata(request)) throw fail('request.invalid', 'THIM requires the header Metadata: true');
}

export function isMetadata(request: FastifyRequest): boolean {
  return String(request.headers.metadata ?? '').toLowerCase() === 'true';
}
