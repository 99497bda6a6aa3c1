import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The body bytes (binary answers such as OCSP). */
  readonly raw: Buffer;
  json<T = any>(): T;
}

/** A tiny HTTPS client for tests: trusts the server's local CA, speaks to 127.0.0.1 only. */
export function httpsClient(baseUrl: string, caPath: string) {
  const ca = readFileSync(caPath);
  return function send(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Uint8Array | object } = {}): Promise<HttpResponse> {
    const url = new URL(path, baseUrl);
    if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') throw new Error('tests talk to loopback only');
    let body: string | Uint8Array | undefined;
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.body !== undefined) {
      if (typeof opts.body === 'string' || opts.body instanceof Uint8Array) body = opts.body;
      else {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
    }
    const attempt = (retry: boolean): Promise<HttpResponse> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(url, { method, headers, ca }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            const text = raw.toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, raw, json: () => JSON.parse(text) });
          });
        });
        req.on('error', (e: NodeJS.ErrnoException) => {
          // A kept-alive socket the server closed just before it was reused (a restarted test server on
          // the same port): the request never reached a server, so sending it once more is safe.
          if (retry && req.reusedSocket && e.code === 'ECONNRESET') attempt(false).then(resolve, reject);
          else reject(e);
        });
        if (body !== undefined) req.write(body);
        req.end();
      });
    return attempt(true);
  };
}

/** The shape of fastify's `inject()`, as far as the client below needs it. */
interface Injectable {
  inject(opts: { method: string; url: string; headers: Record<string, string>; payload?: string | Buffer; remoteAddress?: string }): Promise<{
    statusCode: number;
    headers: Record<string, string | string[] | number | undefined>;
    body: string;
    rawPayload: Buffer;
  }>;
}

/**
 * The same client over fastify's `inject()`: the request goes through the server's whole routing,
 * hooks, parsers and error mappers, without TLS or a socket. For route tests where neither is the point;
 * the end-to-end suites keep {@link httpsClient}.
 */
export function injectClient(app: Injectable, baseUrl: string) {
  return async function send(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Uint8Array | object } = {}): Promise<HttpResponse> {
    const url = new URL(path, baseUrl);
    if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') throw new Error('tests talk to loopback only');
    let payload: string | Buffer | undefined;
    const headers: Record<string, string> = { host: url.host, ...(opts.headers ?? {}) };
    if (opts.body !== undefined) {
      if (typeof opts.body === 'string') payload = opts.body;
      else if (opts.body instanceof Uint8Array) payload = Buffer.from(opts.body);
      else {
        payload = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
    }
    // A request over a socket always lets the event loop turn; so does this one, or a caller polling in a
    // loop (a health probe during a burst) would starve everything that waits for a macrotask.
    await new Promise((resolve) => setImmediate(resolve));
    const r = await app.inject({ method, url: `${url.pathname}${url.search}`, headers, ...(payload !== undefined ? { payload } : {}), remoteAddress: '127.0.0.1' });
    const out: Record<string, string | string[] | undefined> = {};
    for (const [k, v] of Object.entries(r.headers)) out[k] = typeof v === 'number' ? String(v) : v;
    return { status: r.statusCode, headers: out, text: r.body, raw: r.rawPayload, json: () => JSON.parse(r.body) };
  };
}
