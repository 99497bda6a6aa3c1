import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { fail } from '../core/errors.js';

export interface HttpGetResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

export interface HttpGetter {
  get(url: string, headers?: Record<string, string>): Promise<HttpGetResult>;
}

/**
 * A keep-alive HTTP(S) GET client trusting the system roots plus optional extra CA files (the local CA
 * of a Conclave server). Bounded by a timeout; bodies over `maxBytes` are refused.
 */
export function createHttpGetter(opts: { caFiles?: readonly string[]; timeoutMs?: number; maxBytes?: number } = {}): HttpGetter {
  const extra = (opts.caFiles ?? []).map((f) => readFileSync(f, 'utf8'));
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: [...rootCertificates, ...extra] });
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
  return {
    get(url, headers = {}) {
      const u = new URL(url);
      const send = u.protocol === 'http:' ? httpRequest : httpsRequest;
      return new Promise((resolve, reject) => {
        const req = send(u, { method: 'GET', headers, ...(u.protocol === 'https:' ? { agent } : {}), timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > maxBytes) {
              req.destroy();
              reject(fail('upstream.unavailable', `${u.origin} sent more than ${maxBytes} bytes`));
            } else chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (e) => reject(fail('upstream.unavailable', `${u.origin}: ${e.message}`)));
        });
        req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
        req.on('error', (e) => reject(fail('upstream.unavailable', `${u.origin} did not answer: ${e.message}`, { url: `${u.origin}${u.pathname}` })));
        req.end();
      });
    },
  };
}
