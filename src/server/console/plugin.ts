/**
 * The web console (docs/console.md): its pages and assets under /console/, and the few routes of its own
 * under /console/api/ — sign-in (one-time code, client credentials, an external OpenID Connect token),
 * the session, an overview of this server, and the dry run of a release policy (`conclave policy check`).
 * Everything else the console shows or does goes through the same APIs as the CLI, as the signed-in
 * principal (server/console/csrf.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constantTimeEqual } from '../../core/bytes.js';
import { isConclaveError, fail } from '../../core/errors.js';
import { decodeJws } from '../../core/jwt.js';
import { canonicalReleasePolicy, evaluateReleasePolicy, explainDecision, parseReleasePolicy } from '../../vault/release/policy.js';
import { type Principal, SESSION_SCHEME } from '../auth.js';
import type { AppContext } from '../context.js';
import { createRateLimiter } from '../rate-limit.js';
import { createAttestationActivity } from './activity.js';
import { type ConsoleAsset, loadConsoleAssets, packageRoot, pickEncoding } from './assets.js';
import { cookieValue, fromThisOrigin, registerSessionCookie, SIGN_IN_PATH, sessionCookie, sessionCookieOf } from './csrf.js';
import type { ConsoleSessions, OpenedSession } from './sessions.js';
import type { RouteTypes, WireRoute } from '../../wire/schema.js';
import { CONSOLE } from '../../wire/console.js';
import { type RouteAuth, authOnce } from '../wire-input.js';

/**
 * The console's Content-Security-Policy: scripts and styles only from its own hashed files, requests only
 * to this origin, no framing, no plugins, no inline code, DOM sinks only through Trusted Types.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "require-trusted-types-for 'script'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** A principal as the console shows it. */
function principalView(p: Principal) {
  return { id: p.id, displayName: p.displayName, isAdmin: p.isAdmin };
}

export interface ConsoleDeps {
  readonly sessions: ConsoleSessions;
}

/**
 * Registers the console on the root instance: the session-cookie hook must run before every route, and
 * attestation outcomes are counted from every `/attest/…` answer.
 */
export async function registerConsole(app: FastifyInstance, ctx: AppContext, deps: ConsoleDeps): Promise<void> {
  const { sessions } = deps;
  const nowS = () => Math.floor(ctx.now().getTime() / 1000);
  const built = loadConsoleAssets();
  const version = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  const activity = createAttestationActivity(ctx.now());
  // Sign-in attempts per client address (POST sign-in and the OIDC callback): codes and secrets are 256-bit, so this bounds the sessions written, not guessing.
  const signIns = createRateLimiter({ perSecond: 5, burst: 50 });

  registerSessionCookie(app, ctx.baseUrl);
  app.addHook('onResponse', (request, reply, done) => {
    const m = request.method === 'POST' && request.url.startsWith('/attest/') ? /^\/attest\/([A-Za-z]+)(\?|$)/.exec(request.url) : null;
    if (m && m[1]!.toLowerCase() !== 'tpm') activity.record(m[1]!, reply.statusCode, ctx.now());
    done();
  });

  const route = (summary: string, wire: WireRoute, auth?: RouteAuth) => ({ config: { family: 'conclave' as const, wire, ...(auth ? { auth } : {}) }, schema: { summary, tags: ['console'] } });
  const caller = authOnce(async (request: FastifyRequest) => ctx.auth.authenticate(request.headers.authorization, nowS()));
  /** What a sign-in checks before its body: from the console's own origin, as JSON. */
  const signInGate = async (request: FastifyRequest) => {
    if (!fromThisOrigin(request, ctx.baseUrl(), { requireOrigin: false })) {
      throw fail('auth.csrf', 'cross-site sign-in refused: sign in from the console itself', { reason: 'origin' });
    }
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) throw fail('request.unsupported_media_type', 'sign in with a JSON body');
  };
  const page = { config: { family: 'conclave' as const, hidden: true } };

  // ── pages and assets ──
  const send = (request: FastifyRequest, reply: FastifyReply, asset: ConsoleAsset) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('content-type', asset.contentType);
    reply.header('vary', 'accept-encoding');
    reply.header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    const encoding = pickEncoding(request.headers['accept-encoding']);
    if (encoding) reply.header('content-encoding', encoding);
    return reply.send(encoding === 'br' ? asset.br : encoding === 'gzip' ? asset.gzip : asset.identity);
  };
  const asset = (name: string): ConsoleAsset => {
    if (!built) throw fail('console.unavailable', 'the console is not built into this installation: run `npm run build`');
    const a = built.files.get(name);
    if (!a) throw fail('request.not_found', `no console asset ${name}`);
    return a;
  };
  app.get('/console/', page, async (request, reply) => send(request, reply, asset('index.html')));
  app.get<{ Params: { file: string } }>('/console/assets/:file', page, async (request, reply) => send(request, reply, asset(request.params.file)));

  // ── sign-in and the session ──
  const sessionBody = async (opened: { sessionId: string; csrfToken: string; expiresAt: Date }, method: string) => {
    const p = await ctx.auth.authenticate(`${SESSION_SCHEME} ${opened.sessionId}`, nowS());
    return { principal: principalView(p), method, csrfToken: opened.csrfToken, expiresAt: opened.expiresAt.toISOString() };
  };
  const currentSession = async (request: FastifyRequest) => {
    const id = sessionCookieOf(request.headers.cookie);
    const s = id === undefined ? undefined : await sessions.resolve(id);
    if (!id || !s) {
      throw fail('auth.unauthenticated', 'not signed in to the console', { reason: 'no_session', oidcIssuer: ctx.config.oidcIssuer ?? null, oidcSignIn: ctx.consoleOidc !== undefined });
    }
    return { id, s };
  };

  /**
   * When the credential of a request for a sign-in code ends, so that the session the code opens ends no
   * later: a console session's expiry (a session cannot renew itself past eight hours, its token or a
   * sign-out), an identity provider token's `exp`. A client's bearer token sets none: its secret signs in
   * for eight hours anyway.
   */
  const credentialEnds = async (request: FastifyRequest, p: Principal): Promise<Date | undefined> => {
    const authorization = request.headers.authorization ?? '';
    if (authorization.startsWith(`${SESSION_SCHEME} `)) {
      const s = await sessions.resolve(authorization.slice(SESSION_SCHEME.length + 1));
      if (!s) throw fail('auth.unauthenticated', 'the console session has ended; sign in again', { reason: 'session_ended' });
      return new Date(s.expiresMs);
    }
    if (ctx.auth.sessionPrincipalOf(p).kind !== 'external') return undefined;
    const exp = decodeJws(/^Bearer\s+(\S+)$/i.exec(authorization)?.[1] ?? '').payload.exp;
    if (typeof exp !== 'number') throw fail('auth.unauthenticated', 'the bearer token has no expiry', { reason: 'malformed' });
    return new Date(exp * 1000);
  };

  app.post('/console/api/sign-in-codes', route('A one-time console sign-in link for the caller (conclave console)', CONSOLE.signInCode, caller), async (request, reply) => {
    const p = await caller(request);
    const { code, expiresAt } = await sessions.issueCode(ctx.auth.sessionPrincipalOf(p), await credentialEnds(request, p));
    reply.status(201);
    return { url: `${ctx.baseUrl()}/console/#code=${code}`, expiresAt: expiresAt.toISOString() };
  });

  app.post(SIGN_IN_PATH, route('Sign in to the console: {code} | {clientId, clientSecret} | {accessToken}', CONSOLE.signIn, signInGate), async (request, reply) => {
    await signInGate(request);
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw fail('request.invalid', 'the body must be a JSON object', { field: '' });
    const b = body as Record<string, unknown>;
    signIns.take(request.ip, 'console sign-in attempts');
    let opened: OpenedSession;
    let method: string;
    if (typeof b.code === 'string') {
      opened = await sessions.redeemCode(b.code);
      method = 'code';
    } else if (typeof b.clientId === 'string' && typeof b.clientSecret === 'string') {
      // The token endpoint's own check (constant time, one answer for unknown ids and wrong secrets).
      await ctx.auth.issueToken({ grant_type: 'client_credentials', client_id: b.clientId, client_secret: b.clientSecret }, nowS());
      opened = await sessions.open({ kind: 'client', id: b.clientId }, 'client');
      method = 'client';
    } else if (typeof b.accessToken === 'string' && b.accessToken.length <= 16_384) {
      const p = await ctx.auth.authenticate(`Bearer ${b.accessToken}`, nowS());
      const exp = decodeJws(b.accessToken).payload.exp;
      opened = await sessions.open(ctx.auth.sessionPrincipalOf(p), 'oidc', typeof exp === 'number' ? new Date(exp * 1000) : undefined);
      method = 'oidc';
    } else {
      throw fail('request.invalid', 'sign in with {"code"}, {"clientId", "clientSecret"} or {"accessToken"}', { field: '' });
    }
    reply.header('set-cookie', sessionCookie(opened.sessionId, (opened.expiresAt.getTime() - ctx.now().getTime()) / 1000));
    reply.header('cache-control', 'no-store');
    const answer = await sessionBody(opened, method);
    request.log.info({ principal: answer.principal.id, method, expiresAt: answer.expiresAt }, 'console sign-in');
    return answer;
  });

  app.get('/console/api/session', route('The console session: principal, CSRF token, expiry', CONSOLE.session), async (request, reply) => {
    const { id, s } = await currentSession(request);
    reply.header('cache-control', 'no-store');
    return sessionBody({ sessionId: id, csrfToken: s.csrfToken, expiresAt: new Date(s.expiresMs) }, s.method);
  });

  app.delete('/console/api/session', route('Sign out of the console', CONSOLE.signOut), async (request, reply) => {
    const id = sessionCookieOf(request.headers.cookie);
    if (id !== undefined) await sessions.close(id);
    reply.header('set-cookie', sessionCookie('', 0));
    return reply.status(204).send();
  });

  // ── "Sign in with" the OIDC issuer: authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636) ──
  // The state and the PKCE verifier ride in a short-lived cookie bound to this browser (SameSite=Lax: the
  // issuer's redirect back is a cross-site top-level GET); the callback accepts only the state it set.
  const OIDC_COOKIE = '__Host-conclave-oidc';
  const clearOidcCookie = `${OIDC_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0`;
  const redirectUri = () => `${ctx.baseUrl()}/console/api/oidc/callback`;
  app.get('/console/api/oidc/start', route('Sign in with the OIDC issuer: a redirect to its authorization endpoint', CONSOLE.oidcStart), async (_request, reply) => {
    const oidc = ctx.consoleOidc;
    if (!oidc) throw fail('request.not_found', 'sign-in with the identity provider is not configured (--oidc-console-client-id)');
    const state = randomBytes(32).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    const url = await oidc.authorizationUrl({ state, codeChallenge: createHash('sha256').update(verifier).digest('base64url'), redirectUri: redirectUri() });
    reply.header('set-cookie', `${OIDC_COOKIE}=${state}.${verifier}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600`);
    reply.header('cache-control', 'no-store');
    return reply.redirect(url, 303);
  });
  app.get('/console/api/oidc/callback', route('Where the OIDC issuer sends the browser back: opens the session, then the console', CONSOLE.oidcCallback), async (request, reply) => {
    reply.header('cache-control', 'no-store');
    const back = (reason: string, cookies: string[] = []) => reply.header('set-cookie', [clearOidcCookie, ...cookies]).redirect(`/console/#signin-error=${reason}`, 303);
    const oidc = ctx.consoleOidc;
    if (!oidc) throw fail('request.not_found', 'sign-in with the identity provider is not configured (--oidc-console-client-id)');
    // Every answer brought back is a sign-in attempt (and a code redeemed at the issuer): the same budget as POST sign-in.
    signIns.take(request.ip, 'console sign-in attempts');
    const q = request.query as Record<string, unknown>;
    if (typeof q.error === 'string') return back('oidc_refused');
    let pending: string | undefined;
    try {
      pending = cookieValue(request.headers.cookie, OIDC_COOKIE);
    } catch {
      return back('oidc_state');
    }
    const [state, verifier] = (pending ?? '').split('.');
    if (!state || !verifier || typeof q.state !== 'string' || !constantTimeEqual(q.state, state) || typeof q.code !== 'string' || q.code.length === 0 || q.code.length > 4096) {
      return back('oidc_state');
    }
    let opened: OpenedSession;
    try {
      const accessToken = await oidc.redeem({ code: q.code, codeVerifier: verifier, redirectUri: redirectUri() });
      const p = await ctx.auth.authenticate(`Bearer ${accessToken}`, nowS());
      const exp = decodeJws(accessToken).payload.exp;
      opened = await sessions.open(ctx.auth.sessionPrincipalOf(p), 'oidc', typeof exp === 'number' ? new Date(exp * 1000) : undefined);
      request.log.info({ principal: p.id, method: 'oidc' }, 'console sign-in');
    } catch (e) {
      request.log.info({ code: isConclaveError(e) ? e.code : 'internal' }, 'console sign-in with the identity provider failed');
      if (!isConclaveError(e, 'auth.unauthenticated')) return back('oidc_unavailable');
      return back((e.detail as { reason?: unknown } | undefined)?.reason === 'oidc_code' ? 'oidc_code' : 'oidc_token');
    }
    const session = sessionCookie(opened.sessionId, (opened.expiresAt.getTime() - ctx.now().getTime()) / 1000);
    return reply.header('set-cookie', [clearOidcCookie, session]).redirect('/console/#/overview', 303);
  });

  // ── what the console shows that no other API has ──
  app.get('/console/api/overview', route('Services, readiness, trust mode and attestation activity of this server', CONSOLE.overview, caller), async (request) => {
    await caller(request);
    const readiness = await Promise.all(
      [...ctx.readiness].map(async ([name, check]) => {
        try {
          await check();
          return { name, ok: true };
        } catch {
          return { name, ok: false };
        }
      }),
    );
    const c = ctx.config;
    return {
      server: {
        version,
        publicUrl: ctx.baseUrl(),
        services: c.services,
        simulate: c.simulate,
        isolated: c.isolated,
        store: c.db.startsWith('postgres') ? 'postgresql' : 'sqlite',
        keyProtection: c.hsm !== undefined ? 'pkcs11' : 'software',
        collateralMode: c.collateralMode,
        oidcIssuer: c.oidcIssuer ?? null,
      },
      readiness,
      attestations: activity.snapshot(ctx.now()),
    };
  });

  app.post<RouteTypes<typeof CONSOLE.releasePolicyCheck>>('/console/api/release-policy/check', route('Validate a release policy and dry-run it against a token (conclave policy check)', CONSOLE.releasePolicyCheck, caller), async (request) => {
    await caller(request);
    // No body is a check of no policy (answered as invalid), as before the edge check.
    const b: Partial<typeof request.body> = request.body ?? {};
    let doc = b.policy;
    if (typeof doc === 'string') {
      try {
        doc = JSON.parse(doc);
      } catch (e) {
        return { valid: false, error: { code: 'release.policy_invalid', message: `the policy is not JSON: ${(e as Error).message}`, path: '' } };
      }
    }
    let policy: ReturnType<typeof parseReleasePolicy>;
    try {
      policy = parseReleasePolicy(doc);
    } catch (e) {
      if (!isConclaveError(e, 'release.policy_invalid')) throw e;
      return { valid: false, error: { code: e.code, message: e.message, path: String((e.detail as { path?: unknown } | undefined)?.path ?? '') } };
    }
    const canonical = canonicalReleasePolicy(policy);
    if (b.token === undefined || b.token === null || b.token === '') return { valid: true, canonical };
    if (typeof b.token !== 'string') throw fail('request.invalid', 'token must be a JWT (compact JWS)', { field: 'token' });
    let claims: Record<string, unknown>;
    try {
      claims = decodeJws(b.token.trim()).payload;
    } catch {
      throw fail('request.invalid', 'token is not a decodable JWT', { field: 'token' });
    }
    const issuer = typeof claims.iss === 'string' ? claims.iss : '';
    const decision = evaluateReleasePolicy(policy, claims, issuer);
    return { valid: true, canonical, decision: { released: decision.released, issuer, trace: decision.trace, explanation: decision.released ? null : explainDecision(decision) }, claims };
  });

}
