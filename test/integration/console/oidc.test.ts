/**
 * Console sign-in with the configured external OpenID Connect issuer (`--oidc-issuer`): "Sign in with" the
 * issuer (authorization code flow with PKCE, `--oidc-console-client-id`), and a pasted token of the issuer.
 * Either opens a session for `<issuer>#<sub>` that ends no later than the token, with that subject's roles
 * as they are at each request. The issuer is a local stand-in (test/helpers/oidc-provider.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { consoleSignIn, sessionHeaders } from '../../helpers/console.js';
import { type OidcProvider, startOidcProvider } from '../../helpers/oidc-provider.js';
import { startTestServer, type TestServer, tempDir } from '../../helpers/server.js';

const AUDIENCE = 'api://conclave-console-test';
const CLIENT_ID = 'conclave-console';
const API = 'api-version=2025-07-01';

/** A GET that does not follow redirects (node:https), trusting the test CA. */
function get(url: string, ca: Buffer, cookie?: string): Promise<{ status: number; location: string; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    request(url, { ca, headers: cookie ? { cookie } : {} }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? ''), setCookie: res.headers['set-cookie'] ?? [] });
    })
      .on('error', reject)
      .end();
  });
}

describe('web console: sign-in with the external OIDC issuer', () => {
  let idp: OidcProvider;
  let issuer = '';
  let server: TestServer;
  let ca: Buffer;
  let clock = new Date();
  before(async () => {
    const dataDir = tempDir();
    idp = await startOidcProvider(dataDir, { audience: AUDIENCE, clientId: CLIENT_ID, now: () => clock });
    issuer = idp.url;
    server = await startTestServer(
      { services: 'vault', oidcIssuer: issuer, oidcAudience: AUDIENCE, oidcAdminSubject: ['ops-admin'], oidcConsoleClientId: CLIENT_ID },
      { dataDir, now: () => clock },
    );
    ca = readFileSync(server.caPath);
  });
  after(async () => {
    await server?.stop();
    await idp?.close();
  });

  const token = (sub: string, claims: Record<string, unknown> = {}) => idp.token(sub, claims);

  /** Start → the issuer's authorization endpoint → the callback, as a browser would, cookies and all. */
  async function signInWithIssuer(sub: string, tamper?: (callback: string, oidcCookie: string) => { callback: string; cookie: string | undefined }) {
    idp.signInAs(sub);
    const start = await get(`${server.url}/console/api/oidc/start`, ca);
    assert.equal(start.status, 303);
    const oidcCookie = start.setCookie.find((c) => c.startsWith('__Host-conclave-oidc='))!;
    assert.match(oidcCookie, /; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=600$/);
    const at = await get(start.location, ca);
    assert.equal(at.status, 302, `the issuer accepted the authorization request ${start.location}`);
    const t = tamper ? tamper(at.location, oidcCookie.split(';')[0]!) : { callback: at.location, cookie: oidcCookie.split(';')[0] };
    return get(t.callback, ca, t.cookie);
  }

  test('the sign-in page learns the issuer from the 401 of the session route', async () => {
    const r = await server.send('GET', '/console/api/session');
    assert.equal(r.status, 401);
    assert.equal(r.json().error.detail.oidcIssuer, issuer);
    assert.equal(r.json().error.detail.oidcSignIn, true);
  });

  test('"Sign in with" the issuer: a code request with PKCE S256 for the console client, then a session for <issuer>#<sub> on the overview', async () => {
    const start = await get(`${server.url}/console/api/oidc/start`, ca);
    const q = new URL(start.location).searchParams;
    assert.equal(new URL(start.location).origin + new URL(start.location).pathname, `${issuer}/authorize`);
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('redirect_uri'), `${server.url}/console/api/oidc/callback`);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    const done = await signInWithIssuer('ops-admin');
    assert.equal(done.status, 303);
    assert.equal(done.location, '/console/#/overview');
    const session = done.setCookie.find((c) => c.startsWith('__Host-conclave-session='))!;
    assert.match(session, /; Secure; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    assert.ok(done.setCookie.some((c) => /^__Host-conclave-oidc=; .*Max-Age=0$/.test(c)), 'the flow cookie is cleared');
    const me = await server.send('GET', '/console/api/session', { headers: { cookie: session.split(';')[0]! } });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json().principal.id, `${issuer}#ops-admin`);
    assert.equal(me.json().principal.isAdmin, true);
    assert.equal(me.json().method, 'oidc');
  });

  test('an answer not bound to this browser (no flow cookie, another state) or a replayed code opens no session', async () => {
    const noCookie = await signInWithIssuer('ops-admin', (callback) => ({ callback, cookie: undefined }));
    assert.equal(noCookie.location, '/console/#signin-error=oidc_state');
    let replay = '';
    let cookie = '';
    const otherState = await signInWithIssuer('ops-admin', (callback, c) => {
      replay = callback;
      cookie = c;
      const u = new URL(callback);
      u.searchParams.set('state', 'A'.repeat(43));
      return { callback: u.toString(), cookie: c };
    });
    assert.equal(otherState.location, '/console/#signin-error=oidc_state');
    const first = await get(replay, ca, cookie);
    assert.equal(first.location, '/console/#/overview', 'the untampered answer signs in once');
    const again = await get(replay, ca, cookie);
    assert.equal(again.location, '/console/#signin-error=oidc_code', 'a replayed code is refused by the issuer');
    for (const r of [noCookie, otherState, again]) assert.ok(!r.setCookie.some((c) => c.startsWith('__Host-conclave-session=')));
  });

  test('the issuer says no: back to the sign-in page with the reason', async () => {
    const r = await get(`${server.url}/console/api/oidc/callback?error=access_denied&state=x`, ca);
    assert.equal(r.status, 303);
    assert.equal(r.location, '/console/#signin-error=oidc_refused');
  });

  test("an administrator subject's token opens an administrator session for <issuer>#<sub>, ending with the token", async () => {
    const s = await consoleSignIn(server, { accessToken: token('ops-admin') });
    assert.equal(s.body.method, 'oidc');
    assert.equal(s.body.principal.id, `${issuer}#ops-admin`);
    assert.equal(s.body.principal.isAdmin, true);
    const maxAge = Number(/Max-Age=(\d+)/.exec(s.setCookie)?.[1]);
    assert.ok(maxAge > 1790 && maxAge <= 1800, `the session ends with the token (30 minutes), not after eight hours: Max-Age=${maxAge}`);
    const created = await server.send('POST', `/keys/oidc-key/create?${API}`, { headers: sessionHeaders(server, s, true), body: { kty: 'EC', crv: 'P-256' } });
    assert.equal(created.status, 200, created.text);
    const audit = await server.send('GET', '/admin/vault/audit', { headers: sessionHeaders(server, s) });
    assert.equal(audit.json().value.map((e: any) => e.record).find((r: any) => r.key === 'oidc-key')?.principal, `${issuer}#ops-admin`);
  });

  test('another subject has only the roles it holds, looked up on each request; the session ends with its token', async () => {
    const s = await consoleSignIn(server, { accessToken: token('user-1') });
    assert.equal(s.body.principal.isAdmin, false);
    assert.equal((await server.send('GET', `/keys?${API}`, { headers: sessionHeaders(server, s) })).status, 403);
    const admin = { authorization: `Bearer ${await server.adminToken()}` };
    assert.equal((await server.send('PUT', '/admin/vault/roleAssignments', { headers: admin, body: { principalId: `${issuer}#user-1`, role: 'Key Vault Reader', scope: '/' } })).status, 200);
    assert.equal((await server.send('GET', `/keys?${API}`, { headers: sessionHeaders(server, s) })).status, 200);
    clock = new Date(clock.getTime() + 1801_000);
    try {
      assert.equal((await server.send('GET', `/keys?${API}`, { headers: sessionHeaders(server, s) })).status, 401);
    } finally {
      clock = new Date();
    }
  });

  test('a sign-in code minted by a session or token that ends soon opens no session that outlives it (no chaining past the token)', async () => {
    const maxAgeOf = (setCookie: string) => Number(/Max-Age=(\d+)/.exec(setCookie)?.[1]);
    const redeem = async (r: { status: number; text: string; json(): any }) => {
      assert.equal(r.status, 201, r.text);
      return consoleSignIn(server, { code: new URL(r.json().url).hash.slice('#code='.length) });
    };
    // The issuer's token ends in 30 minutes, and so does the session it opens; a code it mints, through
    // the session or as a bearer, would open an eight-hour session that could mint the next one.
    const s = await consoleSignIn(server, { accessToken: token('ops-admin') });
    assert.ok(maxAgeOf(s.setCookie) <= 1800);
    const viaSession = await redeem(await server.send('POST', '/console/api/sign-in-codes', { headers: sessionHeaders(server, s, true) }));
    assert.ok(maxAgeOf(viaSession.setCookie) <= 1800, `a code minted by a 30-minute session opened a session of Max-Age ${maxAgeOf(viaSession.setCookie)}`);
    const viaBearer = await redeem(await server.send('POST', '/console/api/sign-in-codes', { headers: { authorization: `Bearer ${token('user-2')}` } }));
    assert.equal(viaBearer.body.principal.id, `${issuer}#user-2`);
    assert.ok(maxAgeOf(viaBearer.setCookie) <= 1800, `a code minted with a 30-minute token opened a session of Max-Age ${maxAgeOf(viaBearer.setCookie)}`);
    clock = new Date(clock.getTime() + 1801_000);
    try {
      for (const c of [s, viaSession, viaBearer]) assert.equal((await server.send('GET', '/console/api/session', { headers: sessionHeaders(server, c) })).status, 401);
    } finally {
      clock = new Date();
    }
  });
  test('the end a code carries is under its MAC: a store writer who lifts or removes it spends the code for nothing', async () => {
    const sha = (v: string) => createHash('sha256').update(v).digest('hex');
    const tampers: [string, (p: Record<string, unknown>) => Record<string, unknown>][] = [
      ['lifted by a day', (p) => ({ ...p, notAfterMs: (p.notAfterMs as number) + 86_400_000 })],
      ['removed', ({ notAfterMs: _, ...rest }) => rest],
      ['in seconds', (p) => ({ ...p, notAfterMs: Math.floor((p.notAfterMs as number) / 1000) })],
    ];
    for (const [what, tamper] of tampers) {
      const s = await consoleSignIn(server, { accessToken: token('ops-admin') });
      const minted = await server.send('POST', '/console/api/sign-in-codes', { headers: sessionHeaders(server, s, true) });
      assert.equal(minted.status, 201, minted.text);
      const code = new URL(minted.json().url).hash.slice('#code='.length);
      const row = await server.ctx.db.get<{ principal: string }>('SELECT principal FROM console_sign_in_codes WHERE code_sha256 = ?', [sha(code)]);
      const stored = JSON.parse(row!.principal) as Record<string, unknown>;
      // The session's end, in ms: the issuer's token ends in 30 minutes, and so does its session.
      assert.equal(typeof stored.notAfterMs, 'number', row!.principal);
      assert.ok(Math.abs((stored.notAfterMs as number) - (clock.getTime() + 1800_000)) < 120_000, `the code carries the session's end in ms: ${row!.principal}`);
      await server.ctx.db.run('UPDATE console_sign_in_codes SET principal = ? WHERE code_sha256 = ?', [JSON.stringify(tamper(stored)), sha(code)]);
      const r = await server.send('POST', '/console/api/session', { headers: { origin: server.url }, body: { code } });
      assert.equal(r.status, 401, `a code whose end was ${what} in the store opened a session: ${r.text.slice(0, 200)} ${String(r.headers['set-cookie'])}`);
      assert.equal(r.json().error.detail.reason, 'code_unknown');
    }
  });


  test('a token for another audience, or from another issuer, opens nothing', async () => {
    for (const bad of [token('ops-admin', { aud: 'api://someone-else' }), token('ops-admin', { iss: 'https://127.0.0.1:1' })]) {
      const r = await server.send('POST', '/console/api/session', { headers: { origin: server.url }, body: { accessToken: bad } });
      assert.equal(r.status, 401, r.text);
      assert.equal(r.headers['set-cookie'], undefined);
    }
  });

  // Last: it spends this client's sign-in budget.
  test('the callback is rate-limited per client like the other sign-ins, and from the same budget', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 120 && !statuses.includes(429); i++) statuses.push((await get(`${server.url}/console/api/oidc/callback?code=guess-${i}&state=x`, ca)).status);
    assert.ok(statuses.includes(429), `120 callbacks from one client in a row, none refused: ${[...new Set(statuses)].join(', ')}`);
    const signIns = await Promise.all([1, 2, 3].map(() => server.send('POST', '/console/api/session', { headers: { origin: server.url }, body: { accessToken: token('ops-admin') } })));
    assert.ok(signIns.some((r) => r.status === 429 && r.json().error.code === 'request.rate_limited'), `the sign-in has a budget of its own: ${signIns.map((r) => r.status).join(', ')}`);
  });
});
