import { fail } from '../core/errors.js';

/**
 * A token bucket per client key (an IP address): `burst` requests at once, refilled at `perSecond`.
 * Buckets of idle clients are forgotten once `maxKeys` are tracked, so the limiter's memory is bounded.
 */
export interface RateLimiter {
  /** Takes one token for `key`, or throws `request.rate_limited` (429) naming `what`. */
  take(key: string, what: string): void;
}

export function createRateLimiter(opts: { perSecond: number; burst: number; maxKeys?: number; now?: () => number }): RateLimiter {
  const now = opts.now ?? (() => performance.now());
  const maxKeys = opts.maxKeys ?? 10_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key, what) {
      const t = now();
      let b = buckets.get(key);
      if (b === undefined) {
        if (buckets.size >= maxKeys) buckets.clear();
        b = { tokens: opts.burst, at: t };
        buckets.set(key, b);
      } else {
        b.tokens = Math.min(opts.burst, b.tokens + ((t - b.at) / 1000) * opts.perSecond);
        b.at = t;
      }
      if (b.tokens < 1) {
        const retryAfterSeconds = Math.max(1, Math.ceil((1 - b.tokens) / opts.perSecond));
        throw fail('request.rate_limited', `too many ${what} from this client; retry after ${retryAfterSeconds} s`, { retryAfterSeconds });
      }
      b.tokens -= 1;
    },
  };
}
