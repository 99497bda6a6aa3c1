/**
 * The console's sign-in and session at the HTTP edge (docs/console.md): one-time codes (single use, five
 * minutes, stored hashed), the session cookie's flags, CSRF and Origin checks on every write, sessions
 * that act as their principal with its roles and nothing more, and the built assets' headers.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { consoleAssetDir } from '../../../src/server/console/assets.js';
import { consoleSignIn, requireConsoleBuild, sessionHeaders } from '../../helpers/console.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const API = 'api-version=2025-07-01';

describe('web console: sign-in and sessions', () => {
  let server: TestServer;
  let clock = new Date();
  before(async () => {
    requireConsoleBuild();
    server = await startTestServer({ simulate: true }, { now: () => clock });
  });
  after(() => server.stop());

  const bearer = async () => ({ authorization: `Bearer ${await server.adminToken()}` });
  const newCode = async () => {
    const r = await server.send('POST', '/console/api/sign-in-codes', { headers: await bearer() });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json().url, new RegExp(`^${server.url}/console/#code=[A-Za-z0-9_-]{43}$`));
    return new URL(r.json().url).hash.slice('#code='.length);
  };
  const redeem = (code: string, headers: Record<string, string> = { origin: server.url }) => server.send('POST', '/console/api/session', { headers, body: { code } });

  test('a one-time code opens a session: __Host- cookie, HttpOnly, Secure, SameSite=Strict; the session acts as the administrator', async () => {
    const s = await consoleSignIn(server);
    assert.match(s.setCookie, /^__Host-conclave-session=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=28800$/);
    assert.equal(s.body.principal.id, server.admin.clientId);
    assert.equal(s.body.principal.isAdmin, true);
    assert.equal(s.body.method, 'code');
    const keys = await server.send('GET', `/keys?${API}`, { headers: sessionHeaders(server, s) });
    assert.equal(keys.status, 200, keys.text);
    const me = await server.send('GET', '/console/api/session', { headers: sessionHeaders(server, s) });
    assert.equal(me.status, 200);
    assert.equal(me.json().csrfToken, s.csrf);
  });

  test('a code signs in once: reused it is refused (401, code_used)', async () => {
    const code = await newCode();
    assert.equal((await redeem(code)).status, 200);
    const again = await redeem(code);
    assert.equal(again.status, 401, again.text);
    assert.equal(again.json().error.code, 'auth.unauthenticated');
    assert.equal(again.json().error.detail.reason, 'code_used');
    assert.equal(again.headers['set-cookie'], undefined);
  });

  test('a code lives five minutes: after that it is refused (401, code_expired), and spent', async () => {
    const code = await newCode();
    clock = new Date(clock.getTime() + 5 * 60_000 + 1000);
    try {
      const late = await redeem(code);
      assert.equal(late.status, 401, late.text);
      assert.equal(late.json().error.detail.reason, 'code_expired');
    } finally {
      clock = new Date();
    }
    assert.equal((await redeem(code)).json().error.detail.reason, 'code_used');
  });

  test('an unknown or malformed code is refused', async () => {
    for (const code of ['A'.repeat(43), 'short', '../../etc/passwd']) {
      const r = await redeem(code);
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json().error.detail.reason, 'code_unknown');
    }
  });

  test('the store holds only SHA-256 hashes of codes and session ids', async () => {
    const code = await newCode();
    const s = await consoleSignIn(server, { code });
    const sessionId = s.cookie.split('=')[1]!;
    const sha = (v: string) => createHash('sha256').update(v).digest('hex');
    const codes = await server.ctx.db.all<Record<string, unknown>>('SELECT * FROM console_sign_in_codes');
    const sessions = await server.ctx.db.all<Record<string, unknown>>('SELECT * FROM console_sessions');
    const dump = JSON.stringify([codes, sessions]);
    assert.ok(!dump.includes(code) && !dump.includes(sessionId) && !dump.includes(s.csrf), 'no code, session id or CSRF token in the store');
    assert.ok(codes.some((r) => r.code_sha256 === sha(code)));
    assert.ok(sessions.some((r) => r.id_sha256 === sha(sessionId)));
  });

  test('a cross-site POST with the session cookie is refused (403 auth.csrf) and changes nothing', async () => {
    const s = await consoleSignIn(server);
    const create = (headers: Record<string, string>) => server.send('POST', `/keys/csrf-victim/create?${API}`, { headers: { ...headers, cookie: s.cookie }, body: { kty: 'EC', crv: 'P-256' } });
    const cases: [string, Record<string, string>][] = [
      ['no Origin', { 'x-csrf-token': s.csrf }],
      ['another origin', { origin: 'https://evil.example', 'x-csrf-token': s.csrf }],
      ['a sibling port', { origin: 'https://127.0.0.1:1', 'x-csrf-token': s.csrf }],
      ['Sec-Fetch-Site cross-site', { origin: server.url, 'sec-fetch-site': 'cross-site', 'x-csrf-token': s.csrf }],
      ['no CSRF token', { origin: server.url }],
      ['a wrong CSRF token', { origin: server.url, 'x-csrf-token': s.csrf.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }],
    ];
    for (const [what, headers] of cases) {
      const r = await create(headers);
      assert.equal(r.status, 403, `${what}: ${r.text}`);
      assert.equal(r.json().error.innererror.code, 'auth.csrf', what);
    }
    assert.equal((await server.send('GET', `/keys/csrf-victim?${API}`, { headers: sessionHeaders(server, s) })).status, 404, 'no key was created');
    const ok = await create({ origin: server.url, 'x-csrf-token': s.csrf });
    assert.equal(ok.status, 200, ok.text);
  });

  test('a GET from another site with the session cookie is refused (403 auth.csrf): the PCCS refresh, a GET that changes state, is not driven by an <img> on a sibling host', async () => {
    const s = await consoleSignIn(server);
    const refresh = (site?: string) => server.send('GET', '/sgx/certification/v4/refresh', { headers: { cookie: s.cookie, ...(site ? { 'sec-fetch-site': site } : {}) } });
    for (const site of ['same-site', 'cross-site']) {
      const r = await refresh(site);
      assert.equal(r.status, 403, `Sec-Fetch-Site ${site}: ${r.status} ${r.text}`);
      assert.equal(r.headers['x-conclave-error-code'], 'auth.csrf', site);
      assert.match(r.text, /Sec-Fetch-Site/, `${site}: the error names what was wrong`);
    }
    // The console's own reads (same-origin), a typed address (none) and clients without Sec-Fetch-Site still act as the session.
    for (const site of ['same-origin', 'none', undefined]) {
      const r = await server.send('GET', '/admin/collateral/status', { headers: { cookie: s.cookie, ...(site ? { 'sec-fetch-site': site } : {}) } });
      assert.equal(r.status, 200, `Sec-Fetch-Site ${site}: ${r.status} ${r.text}`);
    }
    // The console's pages and its sign-in with the identity provider need no session: a link from a sibling host still opens them.
    const page = await server.send('GET', '/console/', { headers: { cookie: s.cookie, 'sec-fetch-site': 'same-site' } });
    assert.equal(page.status, 200, page.text);
  });

  test('the identity provider\'s redirect back and "sign in with" ignore the session cookie from another site instead of refusing it (a same-site identity provider signs a browser in again)', async () => {
    const s = await consoleSignIn(server);
    for (const path of ['/console/api/oidc/start', '/console/api/oidc/callback?state=x&code=y', '/console/assets/none.js'])
      for (const site of ['same-site', 'cross-site']) {
        const r = await server.send('GET', path, { headers: { cookie: s.cookie, 'sec-fetch-site': site } });
        assert.notEqual(r.headers['x-conclave-error-code'], 'auth.csrf', `${path} ${site}: ${r.status} ${r.text}`);
        assert.ok(r.status !== 403 && r.status !== 401, `${path} ${site}: ${r.status} ${r.text}`);
      }
  });

  test('a GET that changes state (PCCS refresh, the PCCS registration queue) is not driven by the session cookie alone: without Sec-Fetch-Site (a browser older than it, on a sibling host) or with none (a link opened from another application) it is 403 auth.csrf; with the CSRF token, or as POST, it acts', async () => {
    const s = await consoleSignIn(server);
    const cookieOnly = (site?: string) => ({ cookie: s.cookie, ...(site ? { 'sec-fetch-site': site } : {}) });
    for (const [method, path] of [
      ['GET', '/sgx/certification/v4/refresh'],
      ['HEAD', '/sgx/certification/v4/refresh'],
      ['GET', '/sgx/certification/v4/refresh?type=certs'],
      ['GET', '/sgx/certification/v4/platforms?source=reg'],
      ['GET', '/sgx/certification/v3/refresh'],
    ] as const) {
      for (const site of [undefined, 'none']) {
        const r = await server.send(method, path, { headers: cookieOnly(site) });
        assert.equal(r.status, 403, `${method} ${path} Sec-Fetch-Site ${site}: ${r.status} ${r.text}`);
        assert.equal(r.headers['x-conclave-error-code'], 'auth.csrf', `${method} ${path} ${site}`);
      }
    }
    // The console's own request: the CSRF token, as on a write (a cross-site page can set no header without a preflight).
    const withToken = await server.send('GET', '/sgx/certification/v4/refresh', { headers: { cookie: s.cookie, 'sec-fetch-site': 'same-origin', 'x-csrf-token': s.csrf } });
    assert.ok(withToken.status !== 401 && withToken.status !== 403, `GET refresh with the CSRF token: ${withToken.status} ${withToken.text}`);
    const post = await server.send('POST', '/sgx/certification/v4/refresh', { headers: sessionHeaders(server, s, true) });
    assert.ok(post.status !== 401 && post.status !== 403, `POST refresh from the console: ${post.status} ${post.text}`);
    // Other clients are unchanged: the administrator's bearer token on the GET.
    const bearerGet = await server.send('GET', '/sgx/certification/v4/refresh', { headers: await bearer() });
    assert.ok(bearerGet.status !== 401 && bearerGet.status !== 403, `GET refresh with a bearer token: ${bearerGet.status} ${bearerGet.text}`);
  });

  test('a cross-site sign-in is refused; the session scheme is not accepted from clients', async () => {
    const code = await newCode();
    const r = await redeem(code, { origin: 'https://evil.example' });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json().error.code, 'auth.csrf');
    assert.equal((await redeem(code)).status, 200, 'the refused attempt did not spend the code');
    const forged = await server.send('GET', `/keys?${API}`, { headers: { authorization: `ConclaveSession ${'A'.repeat(43)}` } });
    assert.equal(forged.status, 401, forged.text);
  });

  test('signing in again over a stale session cookie works (the sign-in route ignores the old session)', async () => {
    const s = await consoleSignIn(server);
    await server.send('DELETE', '/console/api/session', { headers: sessionHeaders(server, s, true) });
    const again = await server.send('POST', '/console/api/session', { headers: { origin: server.url, cookie: s.cookie }, body: { code: await newCode() } });
    assert.equal(again.status, 200, again.text);
    assert.notEqual(String(again.headers['set-cookie']).split(';')[0], s.cookie, 'a new session id');
  });

  test('the audit log names the session principal; sign-out ends the session', async () => {
    const s = await consoleSignIn(server);
    const r = await server.send('POST', `/keys/audited/create?${API}`, { headers: sessionHeaders(server, s, true), body: { kty: 'EC', crv: 'P-256' } });
    assert.equal(r.status, 200, r.text);
    const audit = await server.send('GET', '/admin/vault/audit?limit=1000', { headers: await bearer() });
    const rec = audit.json().value.map((e: any) => e.record).find((x: any) => x.operation === 'create' && x.key === 'audited');
    assert.equal(rec.principal, server.admin.clientId);
    const out = await server.send('DELETE', '/console/api/session', { headers: sessionHeaders(server, s, true) });
    assert.equal(out.status, 204);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    const after = await server.send('GET', `/keys?${API}`, { headers: sessionHeaders(server, s) });
    assert.equal(after.status, 401, after.text);
  });

  test('client-credential sign-in: a wrong secret is refused; a client without roles gets a session with no privileges', async () => {
    const reg = await server.send('POST', '/admin/clients', { headers: await bearer(), body: { displayName: 'operator' } });
    const { clientId, clientSecret } = reg.json();
    const bad = await server.send('POST', '/console/api/session', { headers: { origin: server.url }, body: { clientId, clientSecret: `${clientSecret}x` } });
    assert.equal(bad.status, 401, bad.text);
    const s = await consoleSignIn(server, { clientId, clientSecret });
    assert.equal(s.body.principal.isAdmin, false);
    assert.equal(s.body.method, 'client');
    const keys = await server.send('GET', `/keys?${API}`, { headers: sessionHeaders(server, s) });
    assert.equal(keys.status, 403, keys.text);
    const admin = await server.send('GET', '/admin/collateral/status', { headers: sessionHeaders(server, s) });
    assert.equal(admin.status, 403, admin.text);
  });

  test('the overview and the release-policy check need a session; the check names the invalid clause', async () => {
    assert.equal((await server.send('GET', '/console/api/overview')).status, 401);
    const s = await consoleSignIn(server);
    const o = await server.send('GET', '/console/api/overview', { headers: sessionHeaders(server, s) });
    assert.equal(o.status, 200, o.text);
    assert.equal(o.json().server.simulate, true);
    assert.ok(o.json().readiness.every((r: { ok: boolean }) => r.ok));
    const bad = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }, { claim: 'x', greater: 'abc' }] }] };
    const r = await server.send('POST', '/console/api/release-policy/check', { headers: sessionHeaders(server, s, true), body: { policy: JSON.stringify(bad) } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().valid, false);
    assert.equal(r.json().error.path, '/anyOf/0/allOf/1/greater');
  });

  test('pages and assets: strict CSP, hashed immutable assets, brotli and gzip, a first view under 150 KB compressed', async () => {
    const page = await server.send('GET', '/console/', { headers: { 'accept-encoding': 'identity' } });
    assert.equal(page.status, 200);
    const csp = String(page.headers['content-security-policy']);
    for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'"]) assert.ok(csp.includes(d), d);
    assert.ok(!/unsafe-inline|unsafe-eval/.test(csp));
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['cache-control'], 'no-cache');
    const assets = [...page.text.matchAll(/(?:src|href)="\/console\/assets\/([^"]+)" integrity="(sha384-[^"]+)"/g)];
    assert.equal(assets.length, 2, page.text);
    for (const [, name, integrity] of assets) {
      assert.match(name!, /^main\.[A-Z0-9]{8}\.(js|css)$/);
      const a = await server.send('GET', `/console/assets/${name}`, { headers: { 'accept-encoding': 'identity' } });
      assert.equal(a.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(`sha384-${createHash('sha384').update(a.raw).digest('base64')}`, integrity);
      for (const enc of ['br', 'gzip']) {
        const c = await server.send('GET', `/console/assets/${name}`, { headers: { 'accept-encoding': `${enc}` } });
        assert.equal(c.headers['content-encoding'], enc);
        assert.ok(c.raw.length < a.raw.length);
      }
    }
    const manifest = JSON.parse(readFileSync(join(consoleAssetDir(), 'manifest.json'), 'utf8'));
    assert.ok(manifest.firstViewGzip < 150 * 1024, `first view ${manifest.firstViewGzip} B`);
    const missing = await server.send('GET', '/console/assets/nope.js');
    assert.equal(missing.status, 404);
    assert.equal(missing.json().error.code, 'request.not_found');
  });
});

