import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { fail, isConclaveError } from '../core/errors.js';
import { exchange } from '../sdk/http.js';

/**
 * A generic upstream GET/POST client: a total deadline per attempt (connect to last byte, so a slow-drip
 * body cannot hold a request), an overall deadline across retries, bounded retries with backoff and
 * Retry-After for GET (POST only when the caller says it is idempotent), a response size limit, and
 * coalescing of concurrent GETs.
 */
export interface HttpResult {
  readonly url: string;
  readonly status: number;
  /** Lowercased header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Attempts made (1 = no retry). */
  readonly attempts: number;
}

export interface HttpClientOptions {
  /** Per attempt, connect to last byte (a total deadline, not an idle timeout). */
  readonly timeoutMs?: number;
  /** All attempts and the waits between them; default twice `timeoutMs`. */
  readonly overallTimeoutMs?: number;
  /** Retries after the first attempt on network errors, 429, 502, 503, 504. */
  readonly retries?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for; the answer is returned as is. */
  readonly maxRetryAfterMs?: number;
  /** Extra trusted CA (PEM), on top of the system roots, for https upstreams. */
  readonly ca?: string | Buffer | undefined;
  readonly maxBytes?: number;
  /** Sent with every request (e.g. Ocp-Apim-Subscription-Key). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface HttpClient {
  /** POST is sent once unless `idempotent` (a retried POST could act twice). */
  request(method: 'GET' | 'POST', url: string, opts?: { headers?: Record<string, string>; body?: string | Buffer; idempotent?: boolean }): Promise<HttpResult>;
  /** GET where concurrent calls for the same URL share one upstream exchange. */
  get(url: string, headers?: Record<string, string>): Promise<HttpResult>;
  /** How many GETs are in flight (coalesced ones count once). */
  inFlight(): number;
  close(): void;
}

const RETRIABLE = new Set([429, 502, 503, 504]);

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function retryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs);
}

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const overallMs = options.overallTimeoutMs ?? 2 * timeoutMs;
  const retries = options.retries ?? 3;
  const baseDelay = options.baseDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5_000;
  const maxRetryAfter = options.maxRetryAfterMs ?? 30_000;
  const maxBytes = options.maxBytes ?? 8 << 20;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 16, ...(options.ca ? { ca: [...rootCertificates, options.ca.toString()] } : {}) });
  const inflight = new Map<string, Promise<HttpResult>>();

  /** One attempt through the shared exchange (src/sdk/http.ts), with the upstream's error words. */
  async function once(method: string, url: string, headers: Record<string, string>, body: string | Buffer | undefined, budgetMs: number): Promise<Omit<HttpResult, 'attempts'>> {
    const limit = Math.max(1, Math.min(timeoutMs, budgetMs));
    const https = url.startsWith('https:');
    const r = await exchange(url, {
      method,
      headers: { accept: '*/*', ...options.headers, ...headers },
      ...(body !== undefined ? { body } : {}),
      agent: https ? httpsAgent : httpAgent,
      timeoutMs: limit,
      maxBytes,
      plainHttp: 'any',
      fault: (reason, _u, d) => {
        if (reason === 'too_large') return fail('upstream.unavailable', `upstream answer exceeds the size limit of ${maxBytes} bytes`, { url, maxBytes, reason: 'too_large' });
        if (reason === 'deadline') return fail('upstream.unavailable', `upstream gave no complete answer within ${limit} ms`, { url, timeoutMs: limit });
        if (reason === 'idle') return fail('upstream.unavailable', `upstream did not answer within ${limit} ms`, { url });
        return d.cause ?? fail('upstream.unavailable', `upstream ${new URL(url).host} failed`, { url });
      },
    });
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : v;
    return { url, status: r.status, headers: h, body: r.body };
  }

  async function request(method: 'GET' | 'POST', url: string, opts: { headers?: Record<string, string>; body?: string | Buffer; idempotent?: boolean } = {}): Promise<HttpResult> {
    let lastError: unknown;
    let lastAnswer: HttpResult | undefined;
    const maxRetries = method === 'GET' || opts.idempotent === true ? retries : 0;
    const end = Date.now() + overallMs;
    for (let attempt = 1; ; attempt++) {
      let wait: number | undefined;
      try {
        const r = await once(method, url, opts.headers ?? {}, opts.body, end - Date.now());
        if (!RETRIABLE.has(r.status) || attempt > maxRetries) return { ...r, attempts: attempt };
        const ra = r.status === 429 || r.status === 503 ? retryAfterMs(r.headers['retry-after'], Date.now()) : undefined;
        if (ra !== undefined && ra > maxRetryAfter) return { ...r, attempts: attempt };
        wait = ra;
        lastAnswer = { ...r, attempts: attempt };
      } catch (e) {
        lastError = e;
        // An attempt cut by the overall deadline (its timer may fire a few ms early) says nothing new of the
        // upstream: the last answer stands.
        // One that failed with time left (refused, reset, its own timeout) is the upstream's latest state.
        if (Date.now() < end - 10) lastAnswer = undefined;
        // An oversized answer will be oversized again: not retried.
        if (attempt > maxRetries || (e as { detail?: { reason?: string } }).detail?.reason === 'too_large') break;
      }
      // Exponential backoff with full jitter, unless the upstream said how long to wait; never past the
      // overall deadline (then the last answer stands).
      const delay = wait ?? Math.min(maxDelay, baseDelay * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      if (Date.now() + delay >= end) break;
      await sleep(delay);
    }
    if (lastAnswer) return lastAnswer;
    const why = isConclaveError(lastError) ? `: ${lastError.message}` : '';
    throw fail('upstream.unavailable', `upstream ${new URL(url).host} is unreachable${why}`, { url }, lastError);
  }


  return {
    request,
    get(url, headers) {
      const key = headers ? `${url}\n${JSON.stringify(headers)}` : url;
      let p = inflight.get(key);
      if (!p) {
        p = request('GET', url, headers ? { headers } : {}).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      return p;
    },
    inFlight: () => inflight.size,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
