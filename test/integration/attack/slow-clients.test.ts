/**
 * Slow clients over real sockets: a client that opens a connection and then trickles its headers, trickles
 * its body, sends nothing after the TLS handshake, or never finishes the handshake, is disconnected once the
 * configured request timeout (`requestTimeoutMs`, small here) has passed, so it cannot hold a socket (and
 * the server's memory for it) for as long as it likes. The bounds below are generous: they assert only
 * that the socket is closed eventually, never how soon.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startTestServer, type TestServer } from '../../helpers/server.js';

/** How long a test waits for the server to drop the connection (the configured timeout is 1 s). */
const CLOSED_WITHIN_MS = 20_000;

describe('slow clients are disconnected', () => {
  let server: TestServer;
  let port: number;
  let ca: Buffer;
  before(async () => {
    server = await startTestServer({ simulate: true, requestTimeout: 1000 });
    port = Number(new URL(server.url).port);
    ca = readFileSync(server.caPath);
  });
  after(() => server?.stop());

  const openTls = () =>
    new Promise<Socket>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });

  /** Resolves with what the server sent when it closes the socket; rejects if it is still open after CLOSED_WITHIN_MS. */
  const closedBy = (s: Socket, trickle?: () => string) =>
    new Promise<string>((resolve, reject) => {
      const got: Buffer[] = [];
      const drip = trickle ? setInterval(() => s.writable && s.write(trickle()), 100) : undefined;
      const give = setTimeout(() => {
        clearInterval(drip);
        s.destroy();
        reject(new Error(`the server still held the connection after ${CLOSED_WITHIN_MS} ms`));
      }, CLOSED_WITHIN_MS);
      s.on('data', (d: Buffer) => got.push(d));
      s.on('error', () => undefined);
      s.once('close', () => {
        clearInterval(drip);
        clearTimeout(give);
        resolve(Buffer.concat(got).toString('latin1'));
      });
    });

  test('headers trickled forever (slowloris)', async () => {
    const s = await openTls();
    s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    let n = 0;
    await closedBy(s, () => `X-Slow-${n++}: a\r\n`);
  });

  test('a body trickled forever', async () => {
    const s = await openTls();
    s.write('POST /attest/SgxEnclave?api-version=2022-08-01 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{');
    const answer = await closedBy(s, () => ' ');
    // Whatever was answered before the close, it was not the request's own answer (it never arrived whole).
    assert.doesNotMatch(answer, /^HTTP\/1\.1 (2|5)\d\d/);
  });

  test('nothing sent after the TLS handshake', async () => {
    await closedBy(await openTls());
  });

  test('a TLS handshake never finished', async () => {
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = netConnect({ host: '127.0.0.1', port }, () => resolve(c));
      c.once('error', reject);
    });
    // The first bytes of a ClientHello record header, then silence.
    s.write(Buffer.from([0x16, 0x03, 0x01]));
    await closedBy(s);
  });

  test('a well-behaved client on the same server is still answered', async () => {
    const r = await server.sendHttps('GET', '/healthz');
    assert.equal(r.status, 200);
  });
});

describe('the default timeouts reach the listening server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server?.stop());

  test('the whole request within 300 s, its headers within 60 s, an idle connection closed after 600 s', () => {
    const http = server.app.server as unknown as { requestTimeout: number; headersTimeout: number; timeout: number };
    assert.deepEqual({ requestTimeout: http.requestTimeout, headersTimeout: http.headersTimeout, timeout: http.timeout }, { requestTimeout: 300_000, headersTimeout: 60_000, timeout: 600_000 });
  });
});

describe('a client that stops reading its answers is disconnected', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true, requestTimeout: 1000 });
  });
  after(() => server?.stop());

  test('pipelined requests whose answers are never read', async () => {
    const port = Number(new URL(server.url).port);
    const tcp = await new Promise<Socket>((resolve, reject) => {
      const c = netConnect({ host: '127.0.0.1', port }, () => resolve(c));
      c.once('error', reject);
    });
    // TLS over a stream of our own, so that stopping reads stops them at the TCP socket: the server's
    // writes back up and stall, as they do for a client that stops reading.
    let reading = true;
    const wire = new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        tcp.write(chunk, cb);
      },
    });
    tcp.on('data', (d: Buffer) => reading && wire.push(d));
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = tlsConnect({ socket: wire, ca: readFileSync(server.caPath), servername: 'localhost' }, () => resolve(c));
      c.once('error', reject);
    });
    s.on('error', () => undefined);
    s.write('GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(100));
    reading = false;
    tcp.pause();
    // Watched from the server's side: a paused client would not notice the close.
    const open = () => new Promise<number>((resolve, reject) => server.app.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
    assert.equal(await open(), 1);
    const until = Date.now() + CLOSED_WITHIN_MS;
    while ((await open()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const left = await open();
    tcp.destroy();
    assert.equal(left, 0, `the server still held the connection after ${CLOSED_WITHIN_MS} ms`);
  });
});

describe('a handler that runs long (a slow upstream) is still answered', () => {
  let server: TestServer;
  let hang: HttpServer;
  let upstream = '';
  before(async () => {
    // An Intel PCS that accepts the request and never answers: every collateral miss waits out the
    // upstream timeout (1 s per attempt, 2 s in all), far longer than twice the request timeout (200 ms).
    hang = createHttpServer(() => undefined);
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    upstream = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
    server = await startTestServer({ upstreamIntel: upstream, upstreamTimeout: 1000, requestTimeout: 200 });
  });
  after(async () => {
    await server?.stop();
    hang?.closeAllConnections();
    await new Promise((resolve) => hang?.close(resolve));
  });

  test('a healthy keep-alive connection idle between requests for longer than twice the request timeout is kept (keepAliveTimeout governs idle connections)', async () => {
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: readFileSync(server.caPath) });
    const port = Number(new URL(server.url).port);
    const sockets = new Set<unknown>();
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpsGet({ host: '127.0.0.1', port, servername: 'localhost', path: '/healthz', agent }, (res) => {
          sockets.add(res.socket);
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
      });
    try {
      assert.equal(await get(), 200);
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await get(), 200);
      assert.equal(sockets.size, 1, 'the second request needed a new connection: the idle one was closed');
    } finally {
      agent.destroy();
    }
  });

  test('a collateral miss waiting on the upstream gets its typed answer, not a closed connection', async () => {
    const started = Date.now();
    const r = await server.sendHttps('GET', '/sgx/certification/v4/pckcrl?ca=platform&encoding=der');
    assert.ok(Date.now() - started > 400, `answered in ${Date.now() - started} ms: the upstream was not waited on`);
    assert.equal(r.status >= 400 && r.status < 600, true, r.text);
    assert.notEqual(r.text, '');
  });
});
