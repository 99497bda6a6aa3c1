import { type Agent as HttpAgent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest } from 'node:https';
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
  /** Total deadline, connect to last byte; default 30 s. */
  readonly timeoutMs?: number;
  /** Response size limit; default 8 MiB. */
  readonly maxBytes?: number;
}

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

function caOption(ca: CaInput | undefined): (string | Buffer)[] | undefined {
  if (ca === undefined) return undefined;
  const list = Array.isArray(ca) ? ca : [ca];
  return (list as (string | Uint8Array)[]).map((c) => (typeof c === 'string' ? c : Buffer.from(c)));
}

/** Why an exchange failed: the answer was too large, it was not complete by the deadline, the socket went silent, or the network failed. */
export type ExchangeFault = 'too_large' | 'deadline' | 'idle' | 'network';

/** The one HTTP(S) exchange under the SDK, the CLI and the server's upstream client (src/upstream/http.ts). */
export interface ExchangeOptions {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Trusted CA certificates (PEM); they replace the system roots, so pass those too where both are meant. */
  readonly ca?: CaInput | undefined;
  /** A connection pool (keep-alive); by default a fresh connection. */
  readonly agent?: HttpAgent | HttpsAgent;
  /** A total deadline, connect to last byte (default 30 s): the socket timeout alone never fires on a slow drip. */
  readonly timeoutMs?: number;
  /** Response size limit (default 8 MiB), declared or streamed. */
  readonly maxBytes?: number;
  /** Plain http is refused except to loopback and the Azure instance metadata service, unless `any`. */
  readonly plainHttp?: 'local' | 'any';
  /** The error each failure becomes (the caller's error code and words); the SDK's `sdk.http_error` by default. */
  readonly fault?: (reason: ExchangeFault, url: URL, detail: { limitMs?: number; maxBytes?: number; cause?: Error }) => Error;
}

export interface Exchanged {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

function sdkFault(reason: ExchangeFault, u: URL, d: { limitMs?: number; maxBytes?: number; cause?: Error }): Error {
  if (reason === 'too_large') return fail('sdk.http_error', `response from ${u.host} exceeds ${d.maxBytes} bytes`, { url: u.origin });
  const why = reason === 'deadline' ? `no complete answer within ${d.limitMs} ms` : reason === 'idle' ? 'timed out' : (d.cause?.message ?? 'failed');
  return fail('sdk.http_error', `request to ${u.origin}${u.pathname} failed: ${why}`, { url: u.origin, path: u.pathname }, d.cause);
}

/**
 * One HTTP(S) exchange with node:http(s), never retried here (a POST could act twice): a total deadline,
 * a response size limit, the caller's CAs, and plain http only to loopback unless the caller allows it,
 * so a mistyped URL cannot send a token or evidence in clear over a network.
 */
export function exchange(url: string | URL, opts: ExchangeOptions = {}): Promise<Exchanged> {
  let u: URL;
  try {
    u = urlOf(url);
  } catch (e) {
    return Promise.reject(e);
  }
  const fault = opts.fault ?? sdkFault;
  const local = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]' || u.hostname === '169.254.169.254';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && (local || opts.plainHttp === 'any'))) {
    return Promise.reject(fail('request.invalid', `refusing ${u.protocol} to ${u.host}: use https`, { url: u.origin }));
  }
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['content-length'] = String(Buffer.byteLength(opts.body));
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const ca = caOption(opts.ca);
  const limit = opts.timeoutMs ?? 30_000;
  const maxBytes = opts.maxBytes ?? MAX_RESPONSE_BYTES;
  return new Promise((resolve, reject) => {
    // Errors this exchange raised itself (the fault's own words) pass through; anything else is the network's.
    const faulted = new WeakSet<Error>();
    const stop = (e: Error) => {
      faulted.add(e);
      req.destroy(e);
    };
    const req = send(u, { method: opts.method ?? 'GET', headers, ...(ca ? { ca } : {}), ...(opts.agent ? { agent: opts.agent } : {}), timeout: limit }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
        stop(fault('too_large', u, { maxBytes }));
        return;
      }
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) stop(fault('too_large', u, { maxBytes }));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (e) => reject(faulted.has(e) ? e : fault('network', u, { cause: e })));
    });
    const deadline = setTimeout(() => stop(fault('deadline', u, { limitMs: limit })), limit);
    deadline.unref();
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => stop(fault('idle', u, { limitMs: limit })));
    req.on('error', (e) => reject(faulted.has(e) ? e : fault('network', u, { cause: e })));
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/**
 * One HTTP(S) exchange of the SDK: a total deadline from connect to last byte (`timeoutMs`, default 30 s),
 * an 8 MiB response limit, `sdk.http_error` on failure, plain http only to loopback.
 */
export async function httpExchange(url: string | URL, opts: HttpOptions = {}): Promise<HttpResult> {
  const r = await exchange(url, { ...opts, headers: { accept: 'application/json', ...(opts.headers ?? {}) } });
  return { status: r.status, headers: r.headers, text: r.body.toString('utf8'), bytes: new Uint8Array(r.body) };
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
  const u = urlOf(url);
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

/** A caller's URL, parsed; one that does not parse is `request.invalid` (not a bare TypeError). */
export function urlOf(url: string | URL): URL {
  if (typeof url !== 'string') return url;
  try {
    return new URL(url);
  } catch {
    throw fail('request.invalid', `"${url.slice(0, 200)}" is not a URL`, { url: url.slice(0, 200) });
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
