/**
 * The upstream HTTP client against hostile answers on 127.0.0.1 (issues #13 and #23): a slow-drip body
 * is cut by the total deadline (an idle timeout never fires on it), POST is not retried unless
 * idempotent, oversized answers are refused without a retry, and retries stop at the overall deadline.
 * The node:test timeouts bound each case; a client without deadlines would hang past them.
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createHttpClient, retryAfterMs } from './http.js';

describe('upstream HTTP client deadlines, retries and limits', () => {
  let server: Server;
  let base = '';
  const hits = new Map<string, number>();
  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (path === '/drip') {
        // 2000 bytes at one byte per 100 ms: 200 s, never silent for long.
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => res.write(' '), 100);
        res.once('close', () => clearInterval(t));
      } else if (path === '/busy') {
        res.writeHead(503).end();
      } else if (path === '/busy-then-silent') {
        // 503 at once the first time; later attempts get no answer at all (an upstream stalling under load).
        if (hits.get(path) === 1) res.writeHead(503).end();
      } else if (path === '/huge') {
        res.writeHead(200, { 'content-length': String(64 << 20) });
        res.write(Buffer.alloc(1024));
      } else if (path === '/huge-chunked') {
        res.writeHead(200);
        const t = setInterval(() => res.write(Buffer.alloc(256 << 10)), 1);
        res.once('close', () => clearInterval(t));
      } else {
        res.writeHead(200).end('{}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('a slow-drip body is cut by the total deadline', { timeout: 20_000 }, async () => {
    const http = createHttpClient({ timeoutMs: 500, retries: 1, baseDelayMs: 10 });
    try {
      await assert.rejects(http.get(`${base}/drip`), (e: { code?: string }) => e.code === 'upstream.unavailable');
    } finally {
      http.close();
    }
  });

  test('POST is sent once unless idempotent; GET is retried', { timeout: 20_000 }, async () => {
    const http = createHttpClient({ timeoutMs: 2000, retries: 2, baseDelayMs: 1, maxDelayMs: 2 });
    try {
      hits.set('/busy', 0);
      assert.equal((await http.request('POST', `${base}/busy`, { body: '{}' })).status, 503);
      assert.equal(hits.get('/busy'), 1, 'POST not retried');
      hits.set('/busy', 0);
      assert.equal((await http.request('POST', `${base}/busy`, { body: '{}', idempotent: true })).status, 503);
      assert.equal(hits.get('/busy'), 3, 'an idempotent POST is retried');
      hits.set('/busy', 0);
      assert.equal((await http.get(`${base}/busy`)).status, 503);
      assert.equal(hits.get('/busy'), 3);
    } finally {
      http.close();
    }
  });

  test('oversized answers are refused (declared or streamed) and not retried', { timeout: 20_000 }, async () => {
    const http = createHttpClient({ timeoutMs: 5000, retries: 3, baseDelayMs: 1, maxBytes: 1 << 20 });
    try {
      hits.set('/huge', 0);
      await assert.rejects(http.get(`${base}/huge`), (e: { code?: string }) => e.code === 'upstream.unavailable');
      assert.equal(hits.get('/huge'), 1);
      hits.set('/huge-chunked', 0);
      await assert.rejects(http.get(`${base}/huge-chunked`), (e: { code?: string }) => e.code === 'upstream.unavailable');
      assert.equal(hits.get('/huge-chunked'), 1);
    } finally {
      http.close();
    }
  });

  test('an attempt cut by the overall deadline leaves the last answer standing', { timeout: 20_000 }, async () => {
    // The first attempt answers 503; the retry gets no answer before the overall deadline ends it. The
    // upstream's own answer (503) is what the caller gets, not the client's own deadline as 'unreachable'
    // (under load the last retry of 'retries stop at the overall deadline' started with 1 ms left and did so).
    const http = createHttpClient({ timeoutMs: 5000, overallTimeoutMs: 600, retries: 5, baseDelayMs: 20, maxDelayMs: 20 });
    try {
      hits.set('/busy-then-silent', 0);
      const r = await http.get(`${base}/busy-then-silent`);
      assert.equal(r.status, 503);
      assert.equal(hits.get('/busy-then-silent'), 2);
    } finally {
      http.close();
    }
  });

  test('retries stop at the overall deadline', { timeout: 20_000 }, async () => {
    const http = createHttpClient({ timeoutMs: 1000, overallTimeoutMs: 1500, retries: 50, baseDelayMs: 400, maxDelayMs: 400 });
    try {
      hits.set('/busy', 0);
      const r = await http.get(`${base}/busy`);
      assert.equal(r.status, 503);
      assert.ok((hits.get('/busy') ?? 0) <= 6, `${hits.get('/busy')} attempts within the overall deadline`);
    } finally {
      http.close();
    }
  });
});

describe('upstream HTTP client: retry, Retry-After, coalescing', () => {
  let server: Server;
  let base = '';
  const hits = new Map<string, number>();
  /** Answers queued per path; the last one repeats. */
  const script = new Map<string, { status: number; headers?: Record<string, string>; delayMs?: number }[]>();
  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      const answers = script.get(path) ?? [{ status: 200 }];
      const a = answers[Math.min(n, answers.length) - 1]!;
      setTimeout(() => res.writeHead(a.status, a.headers ?? {}).end(JSON.stringify({ n })), a.delayMs ?? 0);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** A client whose back-off sleeps are recorded instead of waited. */
  function client(opts: Parameters<typeof createHttpClient>[0] = {}) {
    const sleeps: number[] = [];
    const http = createHttpClient({ timeoutMs: 5000, sleep: async (ms) => void sleeps.push(ms), ...opts });
    return { http, sleeps };
  }

  test('502, 503 and 504 are retried with growing back-off until an answer; 404 is not retried', async () => {
    script.set('/flaky', [{ status: 502 }, { status: 503 }, { status: 504 }, { status: 200 }]);
    const { http, sleeps } = client({ retries: 3, baseDelayMs: 100, maxDelayMs: 10_000 });
    try {
      const r = await http.get(`${base}/flaky`);
      assert.equal(r.status, 200);
      assert.equal(r.attempts, 4);
      assert.equal(sleeps.length, 3);
      // Full jitter over 100·2^(n-1): each delay within [50 %, 100 %] of its step.
      for (const [i, ms] of sleeps.entries()) assert.ok(ms >= 50 * 2 ** i && ms <= 100 * 2 ** i, `delay ${i}: ${ms}`);
      script.set('/missing', [{ status: 404 }]);
      const missing = await http.get(`${base}/missing`);
      assert.equal(missing.status, 404);
      assert.equal(missing.attempts, 1);
    } finally {
      http.close();
    }
  });

  test('after the last retry the last answer stands', async () => {
    script.set('/down', [{ status: 503 }]);
    const { http } = client({ retries: 2 });
    try {
      const r = await http.get(`${base}/down`);
      assert.equal(r.status, 503);
      assert.equal(r.attempts, 3);
    } finally {
      http.close();
    }
  });

  test('Retry-After (seconds or an HTTP date) sets the wait; one beyond the limit is not waited for', async () => {
    script.set('/later', [{ status: 429, headers: { 'retry-after': '2' } }, { status: 200 }]);
    const a = client({ retries: 3, overallTimeoutMs: 60_000 });
    try {
      const r = await a.http.get(`${base}/later`);
      assert.equal(r.status, 200);
      assert.deepEqual(a.sleeps, [2000]);
    } finally {
      a.http.close();
    }
    script.set('/much-later', [{ status: 503, headers: { 'retry-after': '3600' } }, { status: 200 }]);
    const b = client({ retries: 3, maxRetryAfterMs: 30_000 });
    try {
      const r = await b.http.get(`${base}/much-later`);
      assert.equal(r.status, 503, 'an hour is not waited for: the answer is returned as is');
      assert.deepEqual(b.sleeps, []);
    } finally {
      b.http.close();
    }
    assert.equal(retryAfterMs('120', 0), 120_000);
    assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:01:40 GMT', 40_000), 60_000);
    assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:00:10 GMT', 40_000), 0, 'a date in the past: no wait');
    assert.equal(retryAfterMs('soon', 0), undefined);
    assert.equal(retryAfterMs(undefined, 0), undefined);
  });

  test('concurrent GETs of one URL share one upstream exchange; different URLs or headers do not', async () => {
    script.set('/shared', [{ status: 200, delayMs: 200 }]);
    hits.delete('/shared');
    const { http } = client();
    try {
      const answers = await Promise.all(Array.from({ length: 10 }, () => http.get(`${base}/shared`)));
      assert.equal(hits.get('/shared'), 1);
      assert.ok(answers.every((r) => r.status === 200 && r.body.toString() === '{"n":1}'));
      assert.equal(http.inFlight(), 0);
      // Sequential calls, and calls with other headers, are separate exchanges.
      await http.get(`${base}/shared`);
      await Promise.all([http.get(`${base}/shared`, { 'x-a': '1' }), http.get(`${base}/shared`, { 'x-a': '2' })]);
      assert.equal(hits.get('/shared'), 4);
    } finally {
      http.close();
    }
  });
});
