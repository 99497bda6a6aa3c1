/**
 * Every route of the server is held to its wire schema (src/wire/, #15): the edge check
 * (server/wire-input.ts) lists each route it guards, and each one declares its path parameters, its body
 * (a schema, or `null` for none) and its success answers, with a schema wherever the answer is JSON. A new
 * route without a schema fails here (and the server refuses to register it). The authenticated routes
 * run their authentication before the check: an unauthenticated caller meets the 401 whatever it sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { wireRoutesOf } from '../../../src/server/wire-input.js';
import type { Schema } from '../../../src/wire/schema.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

describe('every route has a wire schema, checked at the edge', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server.stop());

  test('params, query, body and answers are declared for every registered route', () => {
    const routes = wireRoutesOf(server.app);
    assert.ok(routes.length > 150, `${routes.length} routes`);
    const missing: string[] = [];
    for (const { method, url, wire } of routes) {
      const name = `${method} ${url}`;
      const declared = Object.keys((wire.params?.properties ?? {}) as Record<string, Schema>);
      // `::` is a literal colon (`/certificates::add`); `*` is a wildcard (the VCEK's hardware id and TCB).
      for (const m of url.replace(/::/g, '').matchAll(/:([A-Za-z0-9_]+)/g)) if (!declared.includes(m[1]!)) missing.push(`${name}: path parameter ${m[1]} has no schema`);
      if (wire.body === undefined) missing.push(`${name}: body neither described nor declared absent (null)`);
      if (wire.body !== null && wire.body !== undefined && Object.keys(wire.body).length === 0 && !wire.body.description) missing.push(`${name}: body schema is empty and undocumented`);
      if ((method === 'GET' || method === 'DELETE') && wire.body) missing.push(`${name}: a ${method} with a body schema`);
      const answers = Object.entries(wire.responses);
      // Key attestation is a route the Azure SDKs call that this vault never offers (docs/vault.md).
      if (!answers.some(([s]) => /^[23]\d\d$/.test(s)) && url !== '/keys/:name/:version/attestation') missing.push(`${name}: no success answer`);
      for (const [status, answer] of answers) {
        const json = answer.type === undefined || /json/.test(answer.type);
        if (/^2\d\d$/.test(status) && status !== '204' && json && !answer.schema) missing.push(`${name}: ${status} JSON answer without a schema`);
      }
    }
    assert.deepEqual(missing, []);
  });

  test('the routes that authenticate do so before the check: a bad body without credentials is a 401', async () => {
    const authenticated = wireRoutesOf(server.app).filter((r) => r.authenticated);
    assert.ok(authenticated.length > 60, `${authenticated.length} authenticated routes`);
    for (const [method, url] of [
      ['POST', '/keys/k/create?api-version=7.4'],
      ['POST', '/keys/k/release?api-version=7.4'],
      ['PUT', '/admin/vault/roleAssignments'],
      ['PUT', '/policies/SgxEnclave?api-version=2022-08-01'],
    ] as const) {
      const r = await server.send(method, url, { body: [1, 2, 3] });
      assert.equal(r.status, 401, `${method} ${url}: ${r.status} ${JSON.stringify(r.json())}`);
    }
    // The AKV challenge, with the empty body the Azure SDKs send on the first request of the flow.
    const challenge = await server.send('POST', '/keys/k/create?api-version=7.4', { headers: { 'content-type': 'application/json' } });
    assert.equal(challenge.status, 401);
    assert.match(String(challenge.headers['www-authenticate']), /^Bearer authorization=/);
  });

  test('with credentials, a body that breaks the schema is the route family typed 400 and changes nothing', async () => {
    const auth = { authorization: `Bearer ${await server.adminToken()}` };
    const created = await server.send('POST', '/keys/wire-edge/create?api-version=7.4', { headers: auth, body: { kty: 'RSA', key_size: '2048' } });
    assert.equal(created.status, 400);
    assert.equal(created.json().error.code, 'BadParameter');
    assert.equal(created.json().error.innererror.code, 'key.invalid');
    assert.match(created.json().error.message, /body\.key_size: must be an integer/);
    assert.equal((await server.send('GET', '/keys/wire-edge?api-version=7.4', { headers: auth })).status, 404);
    const release = await server.send('POST', '/keys/wire-edge/release?api-version=7.4', { headers: auth, body: { target: ['not', 'a', 'token'] } });
    assert.equal(release.status, 400);
    assert.equal(release.json().error.innererror.code, 'request.invalid');
    assert.match(release.json().error.message, /body\.target: must be a string/);
    // A version segment that is not 32 hex digits names no operation: the handler's 404, as before the check.
    const segment = await server.send('GET', `/keys/wire-edge/${'z'.repeat(70)}?api-version=7.4`, { headers: auth });
    assert.equal(segment.status, 404);
    assert.equal(segment.json().error.innererror.code, 'request.not_found');
    // Name lookups: a name no key can have is not found (404), as before; creating one is a 400.
    assert.equal((await server.send('GET', '/keys/not_a_name?api-version=7.4', { headers: auth })).status, 404);
    assert.equal((await server.send('POST', '/keys/not_a_name/create?api-version=7.4', { headers: auth, body: { kty: 'RSA' } })).json().error.innererror.code, 'request.invalid');
    // What a handler checked before the input still comes first: the api-version's features, the attestation type.
    const attestation = await server.send('GET', `/keys/wire-edge/${'z'.repeat(8)}/attestation?api-version=7.4`, { headers: auth });
    assert.equal(attestation.status, 400, 'api-version 7.4 has no key attestation, whatever the version segment');
    const unknownType = await server.send('POST', '/attest/Nope?api-version=2022-08-01', { body: { quote: 5 } });
    assert.equal(unknownType.status, 404);
    assert.equal(unknownType.json().error.code, 'attestation.type_unknown');
    const unknownPolicy = await server.send('PUT', '/policies/Nope?api-version=2022-08-01', { headers: auth });
    assert.equal(unknownPolicy.json().error.code, 'attestation.type_unknown');
    // An optional body may be JSON null.
    const nullBody = await server.send('POST', '/console/api/release-policy/check', { headers: { ...auth, 'content-type': 'application/json' }, body: 'null' });
    assert.equal(nullBody.status, 200);
    assert.equal(nullBody.json().valid, false);
    const log = await server.send('GET', '/log/proof/consistency?from=x', { headers: auth });
    assert.equal(log.status, 400);
    assert.equal(log.json().error.code, 'log.range_invalid');
  });
});
