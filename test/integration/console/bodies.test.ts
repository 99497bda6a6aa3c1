/**
 * The console's routes, and the APIs the console writes through, answer malformed, oversized and deeply
 * nested bodies with a typed 4xx, never a 500: the sign-in, the release-policy check (as JSON, as text,
 * against a token) and a key's release policy set from the console (base64 text, which the request's JSON
 * depth limit does not see), odd asset names and a session cookie sent twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_POLICY_NESTING } from '../../../src/vault/release/policy.js';
import { type ConsoleSession, consoleSignIn, sessionHeaders } from '../../helpers/console.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const API = 'api-version=2025-07-01';

/** A release policy whose first authority entry nests `levels` allOf groups, as text. */
const nestedPolicy = (levels: number) => `{"version":"1.0.0","anyOf":[{"authority":"https://maa.example","allOf":[${'{"allOf":['.repeat(levels)}{"claim":"a","equals":"b"}${']}'.repeat(levels)}]}]}`;
const TOO_DEEP = `/anyOf/0/allOf${'/0/allOf'.repeat(MAX_POLICY_NESTING - 1)}/0`;
/** JSON text nesting objects `levels` deep. */
const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
const SIMPLE = { version: '1.0.0', anyOf: [{ authority: 'https://maa.example', allOf: [{ claim: 'a', equals: 'b' }] }] };
const jwtOf = (payload: string) => `eyJhbGciOiJub25lIn0.${Buffer.from(payload).toString('base64url')}.c2ln`;

describe('web console: malformed, oversized and deeply nested bodies get a typed 4xx', () => {
  let server: TestServer;
  let s: ConsoleSession;
  before(async () => {
    server = await startTestServer({ simulate: true });
    s = await consoleSignIn(server);
  });
  after(() => server.stop());

  const json = { 'content-type': 'application/json' };
  const expectError = (r: { status: number; text: string; json(): any }, status: number, code: string, what: string) => {
    assert.equal(r.status, status, `${what}: ${r.text.slice(0, 300)}`);
    const e = r.json().error;
    assert.equal(e.innererror?.code ?? e.code, code, `${what}: ${r.text.slice(0, 300)}`);
  };

  test('sign-in: not JSON, not an object, wrong types, too long, too large, too deep', async () => {
    const send = (body: string, contentType = 'application/json') => server.send('POST', '/console/api/session', { headers: { origin: server.url, 'content-type': contentType }, body });
    const cases: [string, string, number, string][] = [
      ['broken JSON', '{"code":', 400, 'request.invalid'],
      ['an array', '[]', 400, 'request.invalid'],
      ['null', 'null', 400, 'request.invalid'],
      ['a string', '"code"', 400, 'request.invalid'],
      ['a number as the code', '{"code":5}', 400, 'request.invalid'],
      ['objects as client credentials', '{"clientId":{},"clientSecret":[]}', 400, 'request.invalid'],
      ['an access token over 16 KB', JSON.stringify({ accessToken: 'a'.repeat(16_385) }), 400, 'request.invalid'],
      ['a prototype key', '{"__proto__":{"code":"x"}}', 400, 'request.invalid'],
      ['a deeply nested code', `{"code":${deepObject(100_000)}}`, 400, 'request.invalid'],
      ['a body over the limit', JSON.stringify({ code: 'a'.repeat(2 * 1024 * 1024) }), 413, 'request.too_large'],
    ];
    for (const [what, body, status, code] of cases) expectError(await send(body), status, code, what);
    expectError(await send('{"code":"x"}', 'text/plain'), 415, 'request.unsupported_media_type', 'text/plain');
    expectError(await send('{"code":"x"}', 'application/x-www-form-urlencoded'), 415, 'request.unsupported_media_type', 'a form');
  });

  test('release-policy check: bad bodies and tokens are 400; a policy nested too deep is invalid at the first group too deep', async () => {
    const check = (body: string) => server.send('POST', '/console/api/release-policy/check', { headers: { ...sessionHeaders(server, s, true), ...json }, body });
    const cases: [string, string, number, string][] = [
      ['broken JSON', '{"policy":', 400, 'request.invalid'],
      ['an array', '[]', 400, 'request.invalid'],
      ['a string', '"policy"', 400, 'request.invalid'],
      ['a number as the token', JSON.stringify({ policy: SIMPLE, token: 5 }), 400, 'request.invalid'],
      ['a token that is no JWT', JSON.stringify({ policy: SIMPLE, token: 'a.b.c' }), 400, 'request.invalid'],
      ['a token whose payload is an array', JSON.stringify({ policy: SIMPLE, token: jwtOf('[1]') }), 400, 'request.invalid'],
      ['a token whose payload nests deep', JSON.stringify({ policy: SIMPLE, token: jwtOf(deepObject(100_000)) }), 400, 'request.invalid'],
      ['a body over the limit', JSON.stringify({ policy: 'x'.repeat(2 * 1024 * 1024) }), 413, 'request.too_large'],
    ];
    for (const [what, body, status, code] of cases) expectError(await check(body), status, code, what);
    for (const levels of [MAX_POLICY_NESTING, 20_000]) {
      const r = await check(JSON.stringify({ policy: nestedPolicy(levels) }));
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.equal(r.json().valid, false);
      assert.deepEqual({ code: r.json().error.code, path: r.json().error.path }, { code: 'release.policy_invalid', path: TOO_DEEP });
    }
    const ok = await check(JSON.stringify({ policy: nestedPolicy(MAX_POLICY_NESTING - 1) }));
    assert.equal(ok.json().valid, true, ok.text.slice(0, 300));
  });

  test('a key release policy nested too deep, created or set through the console session, is refused (400, the clause named)', async () => {
    const data = Buffer.from(nestedPolicy(20_000)).toString('base64url');
    const write = { ...sessionHeaders(server, s, true), ...json };
    const created = await server.send('POST', `/keys/deep-key/create?${API}`, {
      headers: write,
      body: { kty: 'EC-HSM', crv: 'P-256', attributes: { exportable: true }, release_policy: { contentType: 'application/json; charset=utf-8', data } },
    });
    expectError(created, 400, 'release.policy_invalid', 'create');
    assert.match(created.json().error.message, new RegExp(TOO_DEEP));
    const plain = await server.send('POST', `/keys/plain-key/create?${API}`, {
      headers: write,
      body: { kty: 'EC-HSM', crv: 'P-256', attributes: { exportable: true }, release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(SIMPLE)).toString('base64url') } },
    });
    assert.equal(plain.status, 200, plain.text);
    const patched = await server.send('PATCH', `/keys/plain-key?${API}`, { headers: write, body: { release_policy: { contentType: 'application/json; charset=utf-8', data } } });
    expectError(patched, 400, 'release.policy_invalid', 'update');
  });

  test('odd asset names (bad escapes, over the parameter limit) get the typed error; a session cookie sent twice is refused', async () => {
    for (const path of ['/console/assets/..%2f..%2fpackage.json', '/console/assets/%00', `/console/assets/${'a'.repeat(4000)}`, '/console/assets/%ZZ']) {
      const r = await server.send('GET', path);
      assert.ok([400, 404, 414].includes(r.status), `${path}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.match(r.json().error.code, /^request\.(invalid|not_found)$/, `${path}: the typed error, not the framework's (${r.text.slice(0, 200)})`);
    }
    const twice = { cookie: `${s.cookie}; ${s.cookie}` };
    expectError(await server.send('GET', '/console/api/session', { headers: twice }), 401, 'auth.unauthenticated', 'cookie twice');
    expectError(await server.send('GET', `/keys?${API}`, { headers: twice }), 401, 'auth.unauthenticated', 'cookie twice on an API');
  });
});
