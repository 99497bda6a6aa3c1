/**
 * Console sign-in with the configured external OpenID Connect issuer (`--oidc-issuer`): a token of the
 * issuer opens a session for `<issuer>#<sub>` that ends no later than the token, with that subject's
 * roles as they are at each request. The issuer is a local HTTPS stand-in (discovery and JWKS) under the
 * server's own TLS material, so the server trusts it through its local CA.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { signJws } from '../../../src/core/jwt.js';
import { loadOrCreateTls } from '../../../src/server/tls.js';
import { consoleSignIn, sessionHeaders } from '../../helpers/console.js';
import { startTestServer, type TestServer, tempDir } from '../../helpers/server.js';

const AUDIENCE = 'api://conclave-console-test';
const API = 'api-version=2025-07-01';

describe('web console: sign-in with the external OIDC issuer', () => {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let idp: Server;
  let issuer = '';
  let server: TestServer;
  let clock = new Date();
  before(async () => {
    const dataDir = tempDir();
    const tls = await loadOrCreateTls(dataDir, '127.0.0.1');
    idp = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
      else if (req.url === '/keys') res.end(JSON.stringify({ keys: [{ ...key.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' }] }));
      else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    issuer = `https://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    server = await startTestServer({ services: 'vault', oidcIssuer: issuer, oidcAudience: AUDIENCE, oidcAdminSubject: ['ops-admin'] }, { dataDir, now: () => clock });
  });
  after(async () => {
    await server?.stop();
    idp?.close();
  });

  const token = (sub: string, claims: Record<string, unknown> = {}) => {
    const t = Math.floor(clock.getTime() / 1000);
    return signJws({ alg: 'RS256', typ: 'JWT', kid: 'k1' }, { iss: issuer, aud: AUDIENCE, sub, name: `User ${sub}`, iat: t, nbf: t, exp: t + 1800, ...claims }, key.privateKey);
  };

  test('the sign-in page learns the issuer from the 401 of the session route', async () => {
    const r = await server.send('GET', '/console/api/session');
    assert.equal(r.status, 401);
    assert.equal(r.json().error.detail.oidcIssuer, issuer);
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

  test('a token for another audience, or from another issuer, opens nothing', async () => {
    for (const bad of [token('ops-admin', { aud: 'api://someone-else' }), token('ops-admin', { iss: 'https://127.0.0.1:1' })]) {
      const r = await server.send('POST', '/console/api/session', { headers: { origin: server.url }, body: { accessToken: bad } });
      assert.equal(r.status, 401, r.text);
      assert.equal(r.headers['set-cookie'], undefined);
    }
  });
});
