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
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, { method, headers, ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const text = raw.toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, raw, json: () => JSON.parse(text) });
        });
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  };
}
