import { fail } from '../core/errors.js';

/**
 * A token bucket per client address: `burst` requests at once, refilled at `perSecond`. IPv6 clients are
 * counted by their /64, the usual allocation to one host or site (RFC 6177), so that rotating through
 * addresses within it buys nothing.
 *
 * Memory is bounded at `maxKeys` buckets, and no bucket is forgotten while it still limits anyone: a bucket
 * is dropped only once it has been idle long enough to refill to `burst` (then it equals a fresh one). While
 * every tracked bucket is still refilling, clients without one share a single overflow bucket, so that an
 * attacker who cycles through many addresses gains at most that one bucket, never a reset of its own.
 */
export interface RateLimiter {
  /** Takes one token for the client at address `ip`, or throws `request.rate_limited` (429) naming `what`. */
  take(ip: string, what: string): void;
  /** How many buckets are tracked (never more than `maxKeys`). */
  readonly size: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The key a client is limited by: its IPv4 address (also when IPv4-mapped), or the /64 of an IPv6 address. */
export function clientKey(ip: string): string {
  // The address comes from the socket: only an IPv6 address holds a colon.
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  // The eight groups in full (`::` stands for the zeros missing, a trailing dotted IPv4 for two groups); the first four are the /64.
  const [head = '', tail] = ip.replace(/%.*$/, '').split('::');
  const before = head === '' ? [] : head.split(':');
  const after = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - before.length - after.length - (after.at(-1)?.includes('.') ? 1 : 0);
  const groups = [...before, ...Array<string>(zeros).fill('0'), ...after];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

export function createRateLimiter(opts: { perSecond: number; burst: number; maxKeys?: number; now?: () => number }): RateLimiter {
  const now = opts.now ?? (() => performance.now());
  const maxKeys = opts.maxKeys ?? 10_000;
  // A bucket idle this long has refilled to the burst, whatever it held.
  const refillMs = (opts.burst / opts.perSecond) * 1000;
  // Least recently used first: every take moves its bucket to the end.
  const buckets = new Map<string, Bucket>();
  let overflow: Bucket | undefined;

  /** Forgets buckets that have refilled, oldest first; the first one still refilling ends the sweep. */
  const forgetRefilled = (t: number) => {
    for (const [key, b] of buckets) {
      if (t - b.at < refillMs) break;
      buckets.delete(key);
    }
  };

  return {
    get size() {
      return buckets.size;
    },
    take(ip, what) {
      const t = now();
      const key = clientKey(ip);
      let b = buckets.get(key);
      if (b !== undefined) buckets.delete(key);
      else {
        if (buckets.size >= maxKeys) forgetRefilled(t);
        if (buckets.size >= maxKeys) b = overflow ??= { tokens: opts.burst, at: t };
      }
      if (b === undefined) b = { tokens: opts.burst, at: t };
      else {
        b.tokens = Math.min(opts.burst, b.tokens + ((t - b.at) / 1000) * opts.perSecond);
        b.at = t;
      }
      if (b !== overflow) buckets.set(key, b);
      if (b.tokens < 1) {
        const retryAfterSeconds = Math.max(1, Math.ceil((1 - b.tokens) / opts.perSecond));
        throw fail('request.rate_limited', `too many ${what} from this client; retry after ${retryAfterSeconds} s`, { retryAfterSeconds });
      }
      b.tokens -= 1;
    },
  };
}
