/**
 * The console's one HTTP client. Every call goes to this origin's public APIs (the same ones the CLI
 * uses) with the session cookie; state-changing calls carry the session's CSRF token. Errors of every
 * API family (AKV, MAA, Conclave) become one {@link ApiError} with the catalogue code.
 */

/** The Key Vault api-version the CLI uses. */
export const AKV_API = '2025-07-01';
/** The attestation api-version (the first with draft policies). */
export const MAA_API = '2022-08-01';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: Record<string, unknown> | undefined;
  constructor(status: number, code: string, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

let csrfToken = '';

/** Set from the session answer; sent on every state-changing request. */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

function errorOf(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; innererror?: { code?: string }; detail?: Record<string, unknown> } | string; error_description?: string };
    if (typeof body.error === 'object' && body.error !== null) {
      const e = body.error;
      return new ApiError(status, e.innererror?.code ?? e.code ?? 'unknown', e.message ?? `HTTP ${status}`, e.detail);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(status, status === 0 ? 'network' : 'unknown', text.slice(0, 300) || `HTTP ${status}`);
}

export interface CallOptions {
  /** A body sent as is (text/plain), e.g. a policy JWS. */
  readonly text?: string;
}

/** Calls an API of this server and returns its JSON answer (undefined for 204). */
export async function call<T = unknown>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken;
  let payload: string | undefined;
  if (opts.text !== undefined) {
    headers['content-type'] = 'text/plain';
    payload = opts.text;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store', redirect: 'error' });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server: ${(e as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw errorOf(res.status, text);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** An AKV path with the api-version appended. */
export function akv(path: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}api-version=${AKV_API}`;
}

/** Follows AKV `nextLink`s (same origin only) up to `maxPages`. */
export async function listAll<T>(path: string, maxPages = 40): Promise<T[]> {
  const out: T[] = [];
  let next: string | null = akv(path);
  for (let i = 0; next && i < maxPages; i++) {
    const page: { value: T[]; nextLink: string | null } = await call('GET', next);
    out.push(...page.value);
    next = page.nextLink ? new URL(page.nextLink).pathname + new URL(page.nextLink).search : null;
  }
  return out;
}

/** base64url of UTF-8 text. */
export function b64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** UTF-8 text of base64url (or base64). */
export function fromB64url(s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** The header and payload of a compact JWS, decoded (not verified). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown>; signingInput: string; signature: string } {
  const parts = token.trim().split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS (header.payload.signature)');
  const header = JSON.parse(fromB64url(parts[0]!)) as Record<string, unknown>;
  const payload = JSON.parse(fromB64url(parts[1]!)) as Record<string, unknown>;
  return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: parts[2]! };
}
