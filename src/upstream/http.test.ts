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
import { createHttpClient } from './http.js';

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
