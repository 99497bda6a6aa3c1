/**
 * The console's session cookie at the HTTP edge. A request that carries the cookie and no Authorization
 * header is authenticated as the session's principal through the one Authenticator (scheme
 * `ConclaveSession`), so the console reaches every API with the same roles and audit as the CLI. A cookie is
 * an ambient credential, so a state-changing request with it must prove it comes from the console itself:
 *
 * - `Origin` present and equal to this server's origin (OWASP CSRF cheat sheet, "verifying origin with
 *   standard headers"), and `Sec-Fetch-Site`, when the browser sends it, `same-origin`;
 * - `X-CSRF-Token` equal to the session's token (synchronizer token derived from the session id).
 *
 * A read (GET, HEAD, OPTIONS) needs neither, but one the browser marks as made by another site
 * (`Sec-Fetch-Site: same-site` or `cross-site`) is refused too: not every GET only reads (the PCCS refresh).
 * The console's pages and the identity provider's redirect back need no session, so there the cookie is
 * ignored instead. A GET that changes state (route config `changesState`) needs the token as a write does
 * (Origin only when sent): a browser without Sec-Fetch-Site, or a link opened from another application
 * (`none`), must not drive it with the cookie alone.
 *
 * The cookie itself is `__Host-` prefixed, HttpOnly, Secure and SameSite=Strict, so browsers do not send
 * it on cross-site requests at all; these checks hold even where that fails (an older browser, a
 * same-site sibling host).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { constantTimeEqual } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { SESSION_SCHEME } from '../auth.js';
import { csrfTokenOf } from './sessions.js';

/** `__Host-`: the browser accepts it only Secure, with Path=/ and no Domain (RFC 6265bis §4.1.3.2). */
export const SESSION_COOKIE = '__Host-conclave-session';
export const CSRF_HEADER = 'x-csrf-token';
/** Sign-in: it opens a session rather than using one, so a stale cookie must not stand in its way; it checks Origin itself. */
export const SIGN_IN_PATH = '/console/api/session';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A cookie's value from a Cookie header, or undefined. A cookie sent twice is refused (which one would count?). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    if (found !== undefined) throw fail('auth.unauthenticated', `the cookie ${name} was sent twice`, { reason: 'cookie' });
    found = part.slice(eq + 1).trim();
  }
  return found;
}

/** The session cookie's value from a Cookie header, or undefined. */
export function sessionCookieOf(header: string | undefined): string | undefined {
  return cookieValue(header, SESSION_COOKIE);
}

/** The Set-Cookie value opening (`maxAgeSeconds` > 0) or clearing the session cookie. */
export function sessionCookie(value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

/**
 * Whether a browser request comes from this server's own pages. `origin` is required for cookie-bearing
 * writes (browsers send it on every cross-origin request and on same-origin requests other than GET/HEAD);
 * for the sign-in routes, which a non-browser client may call, it is checked when present.
 */
export function fromThisOrigin(request: FastifyRequest, baseUrl: string, opts: { requireOrigin: boolean }): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return !opts.requireOrigin;
  const host = request.headers.host;
  return origin === new URL(baseUrl).origin || (typeof host === 'string' && origin === `https://${host}`);
}

/** A request the browser says another site (or no page of the console) made. */
function siteRefused(site: string) {
  return fail('auth.csrf', `cross-site request refused: the console session acts only on requests of the console itself (Sec-Fetch-Site ${site.slice(0, 20)})`, { reason: 'site' });
}

/** Console routes that need no session: its pages and assets, and "sign in with" the identity provider. */
function needsNoSession(path: string): boolean {
  return path === '/console' || (path.startsWith('/console/') && !path.startsWith('/console/api/')) || path.startsWith('/console/api/oidc/');
}

/** Registers the cookie-to-session hook on the root instance, ahead of every route. */
export function registerSessionCookie(app: FastifyInstance, baseUrl: () => string): void {
  // A callback hook (no promise per request): it runs before every route.
  app.addHook('onRequest', (request, _reply, done) => {
    try {
      sessionToAuthorization(request);
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  });
  function sessionToAuthorization(request: FastifyRequest): void {
    const authorization = request.headers.authorization;
    if (typeof authorization === 'string' && authorization.slice(0, SESSION_SCHEME.length).toLowerCase() === SESSION_SCHEME.toLowerCase()) {
      throw fail('auth.unauthenticated', `the ${SESSION_SCHEME} scheme is not accepted from clients: send a Bearer token`, { reason: 'scheme' });
    }
    const sessionId = sessionCookieOf(request.headers.cookie);
    if (sessionId === undefined || authorization !== undefined) return;
    const path = request.url.split('?')[0]!.replace(/\/+$/, '').toLowerCase();
    if (request.method === 'POST' && path === SIGN_IN_PATH) return;
    // A GET that changes state (route config changesState) takes the console session only as a write does.
    const safe = SAFE_METHODS.has(request.method);
    if (safe && request.routeOptions.config?.changesState !== true) {
      // A read needs no Origin or token, but not every GET only reads (the PCCS refresh), and SameSite=Strict
      // lets the cookie through from a sibling host: a request the browser says another site made is not the
      // console's. Its pages, and the identity provider's redirect back, need no session: the cookie is ignored there.
      const site = request.headers['sec-fetch-site'];
      if (site === undefined || site === 'same-origin' || site === 'none') {
        request.headers.authorization = `${SESSION_SCHEME} ${sessionId}`;
        return;
      }
      if (needsNoSession(path)) return;
      throw siteRefused(site);
    }
    // A browser sends no Origin on a same-origin GET, so there the token alone (which no other site can set
    // without a preflight) and Sec-Fetch-Site, when sent, prove the console made it.
    if (!fromThisOrigin(request, baseUrl(), { requireOrigin: !safe })) {
      const site = request.headers['sec-fetch-site'];
      if (safe && site !== undefined) throw siteRefused(site);
      throw fail('auth.csrf', 'cross-site request refused: a request with the console session must come from the console (Origin)', { reason: 'origin' });
    }
    const token = request.headers[CSRF_HEADER];
    if (typeof token !== 'string' || !constantTimeEqual(token, csrfTokenOf(sessionId))) {
      const what = safe ? `this ${request.method} changes state: ` : '';
      throw fail('auth.csrf', `cross-site request refused: ${what}the ${CSRF_HEADER} header does not hold the session's CSRF token`, { reason: 'token' });
    }
    request.headers.authorization = `${SESSION_SCHEME} ${sessionId}`;
  }
}
