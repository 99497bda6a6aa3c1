import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fail } from '../core/errors.js';

/** PEM CA certificate(s) to trust in addition to nothing else (tests: the server's local CA). */
export type CaInput = string | Uint8Array | readonly (string | Uint8Array)[];

export interface HttpResult {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  readonly bytes: Uint8Array;
}

export interface HttpOptions {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly ca?: CaInput | undefined;
  readonly timeoutMs?: number;
}

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

function caOption(ca: CaInput | undefined): (string | Buffer)[] | undefined {
  if (ca === undefined) return undefined;
  const list = Array.isArray(ca) ? ca : [ca];
  return (list as (string | Uint8Array)[]).map((c) => (typeof c === 'string' ? c : Buffer.from(c)));
}

/**
 * One HTTP(S) exchange with node:http(s), never retried (a POST could act twice): a total deadline from
 * connect to last byte (`timeoutMs`, default 30 s) and an 8 MiB response limit. Plain http is refused
 * except to loopback, so a mistyped URL cannot send a token or evidence in clear over a network.
 */
export function httpExchange(url: string | URL, opts: HttpOptions = {}): Promise<HttpResult> {
  const u = typeof url === 'string' ? new URL(url) : url;
  // Plain http only to loopback (the agent) and the Azure instance metadata service (THIM).
  const local = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]' || u.hostname === '169.254.169.254';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && local)) {
    return Promise.reject(fail('request.invalid', `refusing ${u.protocol} to ${u.host}: use https`, { url: u.origin }));
  }
  const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const ca = caOption(opts.ca);
  return new Promise((resolve, reject) => {
    const limit = opts.timeoutMs ?? 30_000;
    const req = send(u, { method: opts.method ?? 'GET', headers, ...(ca ? { ca } : {}), timeout: limit }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      if (Number(res.headers['content-length'] ?? 0) > MAX_RESPONSE_BYTES) {
        req.destroy();
        reject(fail('sdk.http_error', `response from ${u.host} exceeds ${MAX_RESPONSE_BYTES} bytes`, { url: u.origin }));
        return;
      }
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy();
          reject(fail('sdk.http_error', `response from ${u.host} exceeds ${MAX_RESPONSE_BYTES} bytes`, { url: u.origin }));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: all.toString('utf8'), bytes: new Uint8Array(all) });
      });
      res.on('error', (e) => reject(fail('sdk.http_error', `reading the response from ${u.host} failed: ${e.message}`, { url: u.origin }, e)));
    });
    // A total deadline, connect to last byte: the socket timeout alone never fires on a slow drip.
    const deadline = setTimeout(() => req.destroy(new Error(`no complete answer within ${limit} ms`)), limit);
    deadline.unref();
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => reject(fail('sdk.http_error', `request to ${u.origin}${u.pathname} failed: ${e.message}`, { url: u.origin, path: u.pathname }, e)));
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The `{"error":{"code","message"}}` (AKV/MAA) or `{"error":"…"}` message of an error body, if any. */
export function errorMessageOf(text: string): { code?: string; message?: string } {
  try {
    const j = JSON.parse(text) as { error?: unknown; error_description?: unknown };
    if (typeof j.error === 'string') return { code: j.error, ...(typeof j.error_description === 'string' ? { message: j.error_description } : {}) };
    if (j.error && typeof j.error === 'object') {
      const e = j.error as { code?: unknown; message?: unknown };
      return { ...(typeof e.code === 'string' ? { code: e.code } : {}), ...(typeof e.message === 'string' ? { message: e.message } : {}) };
    }
  } catch {
    // not JSON: the caller reports the status alone
  }
  return {};
}

/** POSTs/GETs JSON and returns the parsed JSON body; a non-2xx answer is `sdk.http_error` with the remote code. */
export async function exchangeJson(url: string | URL, opts: HttpOptions & { what: string }): Promise<Record<string, unknown>> {
  const res = await httpExchange(url, opts);
  const u = typeof url === 'string' ? new URL(url) : url;
  if (res.status < 200 || res.status > 299) {
    const remote = errorMessageOf(res.text);
    throw fail('sdk.http_error', `${opts.what} failed: HTTP ${res.status}${remote.code ? ` ${remote.code}` : ''}${remote.message ? `: ${remote.message}` : ''}`, {
      status: res.status,
      url: `${u.origin}${u.pathname}`,
      ...(remote.code ? { remoteCode: remote.code } : {}),
    });
  }
  try {
    const j = JSON.parse(res.text) as unknown;
    if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('not an object');
    return j as Record<string, unknown>;
  } catch {
    throw fail('sdk.http_error', `${opts.what}: the response is not a JSON object`, { status: res.status, url: `${u.origin}${u.pathname}` });
  }
}

/** `host[:port]` becomes `https://host[:port]`; a full URL stays as given (trailing slashes removed). */
export function endpointUrl(endpoint: string): string {
  const e = endpoint.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? e : `https://${e}`;
  try {
    new URL(withScheme);
  } catch {
    throw fail('request.invalid', `"${endpoint}" is not a host name or URL`, { endpoint });
  }
  return withScheme.replace(/\/+$/, '');
}
