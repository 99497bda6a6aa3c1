import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { httpsClient } from '../../helpers/https.js';
import { startTestServer, tempDir } from '../../helpers/server.js';

describe('foundation: conclave serve over HTTPS', async () => {
  const dataDir = tempDir();
  let server = await startTestServer({}, { dataDir });
  after(() => server.stop());

  test('healthz, readyz, metrics and openapi answer', async () => {
    assert.equal((await server.sendHttps('GET', '/healthz')).status, 200);
    const ready = await server.sendHttps('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.json().status, 'ready');
    const metrics = await server.sendHttps('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /conclave_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/);
    assert.match(metrics.text, /conclave_http_request_duration_seconds_bucket/);
    const openapi = (await server.sendHttps('GET', '/openapi.json')).json();
    assert.equal(openapi.openapi, '3.0.3');
    assert.ok(openapi.paths['/oauth2/token']);
  });

  test('every response carries a request id, also as x-ms-request-id', async () => {
    const r = await server.sendHttps('GET', '/healthz', { headers: { 'x-ms-client-request-id': 'abc-123' } });
    assert.match(String(r.headers['x-ms-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['x-ms-client-request-id'], 'abc-123');
  });

  test('unknown routes answer 404 with a JSON body in the caller family shape', async () => {
    const r = await server.sendHttps('GET', '/no/such/route');
    assert.equal(r.status, 404);
    assert.equal(r.json().error.code, 'request.not_found');
    const akv = await server.sendHttps('GET', '/keys-nope');
    assert.equal(akv.status, 404);
  });

  test('admin credential file is private and yields a bearer token', async () => {
    const path = join(dataDir, 'admin.json');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const cred = JSON.parse(readFileSync(path, 'utf8'));
    assert.deepEqual(Object.keys(cred).sort(), ['clientId', 'clientSecret', 'tokenEndpoint']);
    assert.equal(cred.tokenEndpoint, `${server.url}/oauth2/token`);
    const r = await server.sendHttps('POST', '/oauth2/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&client_id=${cred.clientId}&client_secret=${cred.clientSecret}&scope=https%3A%2F%2Fvault.azure.net%2F.default`,
    });
    assert.equal(r.status, 200);
    const body = r.json();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 3600);
    const [h, p] = body.access_token.split('.').slice(0, 2).map((s: string) => JSON.parse(Buffer.from(s, 'base64url').toString()));
    assert.equal(h.alg, 'ES256');
    assert.equal(p.iss, server.url);
    assert.equal(p.sub, cred.clientId);
    const principal = await server.ctx.auth.authenticate(`Bearer ${body.access_token}`, Math.floor(Date.now() / 1000));
    assert.equal(principal.isAdmin, true);
  });

  test('a wrong client secret gets 401 with no detail leak', async () => {
    const cred = server.admin;
    const wrong = await server.sendHttps('POST', '/oauth2/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&client_id=${cred.clientId}&client_secret=nope`,
    });
    const unknown = await server.sendHttps('POST', '/oauth2/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=someone&client_secret=nope',
    });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(wrong.json(), { error: 'invalid_client', error_description: 'invalid client credentials' });
    assert.equal(wrong.text, unknown.text, 'unknown id and wrong secret are indistinguishable');
    assert.ok(!wrong.text.includes(cred.clientSecret.slice(0, 8)));
  });

  test('a forged or expired bearer token is refused', async () => {
    const token = await server.adminToken();
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'other' })).toString('base64url')}.${s}`;
    await assert.rejects(server.ctx.auth.authenticate(`Bearer ${forged}`, Math.floor(Date.now() / 1000)), { code: 'auth.unauthenticated' });
    await assert.rejects(server.ctx.auth.authenticate(`Bearer ${token}`, payload.exp + 3600), { code: 'auth.unauthenticated' });
    await assert.rejects(server.ctx.auth.authenticate(undefined, 0), { code: 'auth.unauthenticated' });
  });

  test('an oversize body is answered with 413', async () => {
    const r = await server.sendHttps('POST', '/oauth2/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&pad=${'x'.repeat(1024 * 1024 + 10)}`,
    });
    assert.equal(r.status, 413);
  });

  test('restart reuses the TLS certificate and the admin credential', async () => {
    const cert = readFileSync(join(dataDir, 'tls', 'server.pem'), 'utf8');
    const admin = readFileSync(join(dataDir, 'admin.json'), 'utf8');
    const firstToken = await server.adminToken();
    const port = new URL(server.url).port;
    await server.close();
    server = await startTestServer({ port }, { dataDir });
    assert.equal(readFileSync(join(dataDir, 'tls', 'server.pem'), 'utf8'), cert);
    const after2 = JSON.parse(readFileSync(join(dataDir, 'admin.json'), 'utf8'));
    assert.equal(after2.clientId, JSON.parse(admin).clientId);
    assert.equal(after2.clientSecret, JSON.parse(admin).clientSecret);
    // The old CA still validates the new server, and the old token's signing key survived.
    assert.equal((await server.sendHttps('GET', '/healthz')).status, 200);
    const principal = await server.ctx.auth.authenticate(`Bearer ${firstToken}`, Math.floor(Date.now() / 1000));
    assert.equal(principal.id, after2.clientId);
  });
});

describe('foundation: the conclave binary', () => {
  test('SIGTERM while a slow request is in flight lets it finish', async (t) => {
    const dataDir = tempDir();
    const child = spawn(process.execPath, ['bin/conclave.js', 'serve', '--data-dir', dataDir, '--port', '0', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /conclave listening on (https:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`serve exited early with ${code}: ${out}`)));
    });
    const ca = readFileSync(join(dataDir, 'tls', 'ca.pem'));
    assert.equal((await httpsClient(url, join(dataDir, 'tls', 'ca.pem'))('GET', '/healthz')).status, 200);
    // A request whose body arrives slowly: SIGTERM lands while it is in flight.
    const body = 'grant_type=client_credentials&client_id=a&client_secret=b';
    const response = new Promise<number>((resolve, reject) => {
      const req = httpsRequest(new URL('/oauth2/token', url), { method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => child.kill('SIGTERM'), 200);
      setTimeout(() => req.end(body.slice(10)), 700);
    });
    assert.equal(await response, 401, 'the in-flight request completed with its real answer');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
  });

  test('bad configuration exits 2 with a clear message', async () => {
    const child = spawn(process.execPath, ['bin/conclave.js', 'serve', '--port', 'abc'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 2);
    assert.match(err, /port \(flag --port\) must be an integer/);
    assert.doesNotMatch(err, /at .*\.js:\d+/, 'no stack trace');
  });
});
