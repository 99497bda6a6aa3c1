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
  /** Answers a cacheable GET from the memo of prepared answers, building it on a miss. */
  serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<Prepared>): Promise<FastifyReply>;
  cached: CollateralLookup['cached'];
  failing(item: CollateralItem): boolean;
  /** Forgets every prepared answer (after an operator changed what the cache serves). */
  clearMemo(): void;
}

/**
 * The hot path: one map lookup per cached GET; the store and JSON are touched only on a miss. The memo
 * empties when the cache changes (another replica's write, a refresh, a new baseline).
 */
export function createCollateralRoutes(d: Omit<CollateralRoutes, 'serve' | 'cached' | 'failing' | 'clearMemo'>): CollateralRoutes {
  const { svc, lookup, now } = d;
  const memo = new Map<string, Prepared & { builtAt: number }>();
  svc.onChange(() => memo.clear());
  return {
    ...d,
    async serve(request, reply, build) {
      let p = memo.get(request.url);
      const t = now();
      if (!p || (p.staleAt !== null && !p.stale && t > p.staleAt) || t - p.builtAt > MEMO_MAX_AGE_MS) {
        p = { ...(await lookup.asClient(request.ip, build)), builtAt: t };
        if (memo.size >= MEMO_LIMIT) memo.clear();
        memo.set(request.url, p);
      }
      if (p.item && p.staleAt !== null && t > p.staleAt) svc.refreshSoon(p.item);
      reply.code(p.status).headers(p.headers);
      return reply.send(p.body);
    },
    cached: lookup.cached,
    failing: (item) => lookup.failing(item),
    clearMemo: () => memo.clear(),
  };
}

/** THIM's host-local routes answer only requests that carry `Metadata: true`. */
export function requireMetadata(request: FastifyRequest): void {
  if (String(request.headers.metadata ?? '').toLowerCase() !== 'true') throw fail('request.invalid', 'THIM requires the header Metadata: true');
}
