/**
 * Requests node's HTTP parser refuses before any route sees them (headers over node's maxHeaderSize, a
 * request line or Content-Length that does not parse, a request not received within the request timeout)
 * are answered in the error shape every API family shares, `{"error":{"code","message"}}` with a code from
 * the catalogue, over real sockets (the parser's errors never reach fastify's inject()).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { type TestServer, startTestServer } from '../../helpers/server.js';

describe('client errors from the HTTP parser: typed 4xx in the common error shape', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true, requestTimeout: 1000 });
  });
  after(() => server?.stop());

  /** Sends `request` raw over TLS and resolves with the status and body the server answered before it closed. */
  const raw = (request: string) =>
    new Promise<{ status: number; headers: string; body: string }>((resolve, reject) => {
      const port = Number(new URL(server.url).port);
      const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(server.caPath), servername: 'localhost' }, () => s.write(request));
      const got: Buffer[] = [];
      const give = setTimeout(() => s.destroy(new Error('no answer within 20 s')), 20_000);
      s.on('data', (d: Buffer) => got.push(d));
      s.on('error', reject);
      s.on('close', () => {
        clearTimeout(give);
        const text = Buffer.concat(got).toString('utf8');
        const [head = '', body = ''] = text.split('\r\n\r\n', 2);
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body });
      });
    });

  const assertTyped = (r: { status: number; headers: string; body: string }, status: number, code: string) => {
    assert.equal(r.status, status, r.headers);
    assert.match(r.headers, /content-type: application\/json/i);
    const body = JSON.parse(r.body) as { error?: { code?: unknown; message?: unknown } };
    assert.equal(body.error?.code, code, r.body);
    assert.equal(typeof body.error?.message, 'string', r.body);
  };

  test('headers larger than the limit (a huge token, a huge URL) are a 431 request.headers_too_large', async () => {
    assertTyped(await raw(`GET /keys?api-version=7.4 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n\r\n`), 431, 'request.headers_too_large');
    assertTyped(await raw(`GET /attest/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`), 431, 'request.headers_too_large');
  });

  test('a request the parser cannot read is a 400 request.invalid', async () => {
    assertTyped(await raw('GARBAGE\r\n\r\n'), 400, 'request.invalid');
    assertTyped(await raw('POST /keys/k/create?api-version=7.4 HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n'), 400, 'request.invalid');
    assertTyped(await raw('POST /keys/k/create?api-version=7.4 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'), 400, 'request.invalid');
  });

  test('a request not received within the request timeout is a 408 request.timeout', async () => {
    assertTyped(await raw('GET /healthz HTTP/1.1\r\nHost: localhost\r\n'), 408, 'request.timeout');
  });

  test('the answer never echoes the refused request (its headers, a credential, the raw bytes)', async () => {
    const secret = 'S3CRET-b9c1e7';
    const answers = [
      await raw(`GET /keys?api-version=7.4 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${secret}${'a'.repeat(20_000)}\r\n\r\n`),
      await raw(`POST /keys/k/create?api-version=7.4 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${secret}\r\nContent-Length: ${secret}\r\n\r\n`),
      await raw(`${secret} /\r\n\r\n`),
      await raw(`GET /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${secret}\r\n`),
    ];
    for (const r of answers) {
      assert.ok(r.status >= 400 && r.status < 500, r.headers);
      assert.doesNotMatch(r.headers + r.body, new RegExp(secret), r.headers + r.body);
    }
  });
});
