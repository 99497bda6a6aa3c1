/**
 * The SDK/CLI HTTP client (issue #13 network clients): a total deadline from connect to last byte, so
 * a slow-drip server cannot hold a token request or an attestation forever; an oversized answer is
 * refused. The node:test timeout bounds the case: a client without a deadline hangs past it.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { getAccessToken } from './credential.js';
import { httpExchange } from './http.js';

describe('SDK httpExchange', () => {
  let server: Server;
  let base = '';
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/drip') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => res.write(' '), 100);
        res.once('close', () => clearInterval(t));
      } else {
        res.writeHead(200, { 'content-length': String(64 << 20) });
        res.write('{');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('a slow-drip answer ends at the total deadline with sdk.http_error', { timeout: 15_000 }, async () => {
    await assert.rejects(httpExchange(`${base}/drip`, { method: 'POST', body: '{}', timeoutMs: 500 }), (e: { code?: string }) => e.code === 'sdk.http_error');
  });

  test('an answer declaring more than 8 MiB is refused', { timeout: 15_000 }, async () => {
    await assert.rejects(httpExchange(`${base}/big`), (e: { code?: string }) => e.code === 'sdk.http_error');
  });

  test('a URL that does not parse is request.invalid (a rejected promise), not a bare TypeError', async () => {
    for (const url of ['not a url', 'https://', 'http://[::1']) {
      await assert.rejects(httpExchange(url), (e: { code?: string }) => e.code === 'request.invalid', url);
    }
    await assert.rejects(
      getAccessToken({ tokenEndpoint: 'no scheme here', clientId: 'c', clientSecret: 's' }),
      (e: { code?: string }) => e.code === 'request.invalid',
    );
  });
});
