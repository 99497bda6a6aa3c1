import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify, { type FastifyRequest } from 'fastify';
import { fail, isConclaveError } from '../core/errors.js';
import { COLLATERAL } from '../wire/collateral.js';
import { LOG } from '../wire/log.js';
import { S, route } from '../wire/schema.js';
import { VAULT } from '../wire/vault.js';
import { authOnce, installWireValidation, wireInput } from './wire-input.js';

const req = (r: { params?: unknown; query?: unknown; body?: unknown }) => r as unknown as FastifyRequest;

test('a conforming request comes back typed', () => {
  const input = wireInput(VAULT.createKey, req({ params: { name: 'k1' }, query: { 'api-version': '7.4' }, body: { kty: 'RSA', key_size: 2048 } }));
  assert.equal(input.Params.name, 'k1');
  assert.equal(input.Body.kty, 'RSA');
  assert.equal(input.Body.key_size, 2048);
});

test("each part is checked against its schema, as the route's typed 400 naming the member", () => {
  const refused = (r: Parameters<typeof req>[0], wire: Parameters<typeof wireInput>[0], code: string, re: RegExp) =>
    assert.throws(
      () => wireInput(wire, req(r)),
      (e) => isConclaveError(e) && e.code === code && e.status === 400 && re.test(e.message),
    );
  refused({ params: { name: 'no/slash' }, query: {}, body: { kty: 'RSA' } }, VAULT.createKey, 'request.invalid', /params\.name/);
  // The vault names its own code for a malformed key body, as AKV callers saw it before the edge check.
  refused({ params: { name: 'k' }, query: {}, body: { kty: 5 } }, VAULT.createKey, 'key.invalid', /body\.kty: must be a string/);
  refused({ params: { name: 'k' }, query: {}, body: undefined }, VAULT.createKey, 'key.invalid', /body: must be an object/);
  refused({ query: { from: '-1' } }, LOG.consistency, 'log.range_invalid', /query\.from/);
  refused({ query: { start: ['1', '2'] } }, LOG.entries, 'log.range_invalid', /query\.start: must be a string/);
  refused({ params: { name: 'x'.repeat(129) }, query: {}, body: null }, VAULT.getRoleAssignment, 'role.invalid', /params\.name: longer than 128/);
  refused({ body: { principalId: 5 } }, VAULT.adminAssign, 'role.invalid', /body\.principalId: must be a string/);
});

test('an optional member may be null (as AKV clients send what they leave unset); a required one may not', () => {
  const ok = wireInput(VAULT.release, req({ params: { name: 'k' }, query: {}, body: { target: 't', nonce: null, enc: null } }));
  assert.equal(ok.Body.nonce, null);
  assert.throws(() => wireInput(VAULT.release, req({ params: { name: 'k' }, query: {}, body: { target: null } })), /body\.target: must be a string/);
});

test('authOnce runs the authentication once per request and does not remember a failure', async () => {
  let calls = 0;
  const auth = authOnce(async (r: FastifyRequest) => {
    calls++;
    if ((r as unknown as { bad?: boolean }).bad) throw fail('auth.unauthenticated', 'no');
    return calls;
  });
  const a = req({});
  assert.equal(await auth(a), 1);
  assert.equal(await auth(a), 1);
  assert.equal(await auth(req({})), 2);
  const b = { bad: true } as unknown as FastifyRequest;
  await assert.rejects(auth(b));
  await assert.rejects(auth(b));
  assert.equal(calls, 4);
});

async function app() {
  const a = Fastify();
  a.setErrorHandler((e, _r, reply) => {
    const err = isConclaveError(e) ? e : fail('internal', String(e));
    return reply.status(err.status).send({ error: { code: err.code, message: err.message } });
  });
  installWireValidation(a);
  return a;
}

test('at the edge: authentication first, then the input check, then the handler with checked values', async () => {
  const a = await app();
  const seen: unknown[] = [];
  const wire = route({ params: S.object({ id: S.string({ pattern: '^[0-9]+$' }) }), query: S.object({ q: S.optional(S.string({ maxLength: 3 })) }), body: S.object({ n: S.integer() }), responses: { 200: { description: 'ok' } } });
  const auth = async (r: FastifyRequest) => {
    if (r.headers.authorization !== 'yes') throw fail('auth.unauthenticated', 'sign in');
  };
  a.post<{ Params: { id: string } }>('/t/:id', { config: { wire, auth } }, async (r) => {
    seen.push(r.body);
    return { ok: true };
  });
  a.post('/public', { config: { wire: route({ body: S.object({ n: S.integer() }), responses: { 200: { description: 'ok' } } }) } }, async () => ({ ok: true }));
  // A GET's HEAD twin is checked as the GET is.
  a.get('/g', { config: { wire: route({ query: S.object({ n: S.string({ pattern: '^[0-9]+$' }) }), body: null, responses: { 200: { description: 'ok' } } }) } }, async () => ({ ok: true }));
  await a.ready();
  const post = (url: string, payload: unknown, authorization?: string) => a.inject({ method: 'POST', url, payload: payload as object, headers: authorization ? { authorization } : {} });
  // Unauthenticated: the 401, whatever the input.
  assert.equal((await post('/t/x', { n: 'no' })).statusCode, 401);
  assert.equal((await post('/t/1', {})).statusCode, 401);
  // Authenticated: each part checked before the handler.
  const bad = await post('/t/x', { n: 1 }, 'yes');
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().error.message, /params\.id/);
  assert.match((await post('/t/1?q=toolong', { n: 1 }, 'yes')).json().error.message, /query\.q: longer than 3/);
  assert.match((await post('/t/1', { n: 1.5 }, 'yes')).json().error.message, /body\.n: must be an integer/);
  assert.deepEqual(seen, [], 'no invalid input reached the handler');
  assert.equal((await post('/t/1', { n: 1, extra: 'ignored' }, 'yes')).statusCode, 200);
  assert.deepEqual(seen, [{ n: 1, extra: 'ignored' }]);
  // A route without authentication is checked at once.
  assert.equal((await post('/public', { n: 'x' })).statusCode, 400);
  assert.equal((await post('/public', { n: 2 })).statusCode, 200);
  assert.equal((await a.inject({ method: 'HEAD', url: '/g?n=x' })).statusCode, 400);
  assert.equal((await a.inject({ method: 'HEAD', url: '/g?n=1' })).statusCode, 200);
  await a.close();
});

test('a route without a wire schema is refused when it is registered; hidden routes are exempt', async () => {
  const a = await app();
  a.get('/hidden', { config: { hidden: true } }, async () => 'ok');
  assert.throws(() => a.get('/undescribed', async () => 'ok'), /GET \/undescribed has no wire schema/);
  await a.close();
});

test('a text body sent as bytes is checked, and handed on, as its text', async () => {
  const a = await app();
  a.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
  a.put('/jws', { config: { wire: route({ body: S.string({ maxLength: 8 }), bodyType: 'text/plain', responses: { 200: { description: 'ok' } } }) } }, async (r) => ({ body: r.body }));
  await a.ready();
  const put = (payload: string) => a.inject({ method: 'PUT', url: '/jws', payload: Buffer.from(payload), headers: { 'content-type': 'application/octet-stream' } });
  assert.deepEqual((await put('a.b.c')).json(), { body: 'a.b.c' });
  assert.equal((await put('a.b.c.d.e.f')).statusCode, 400);
  await a.close();
});

test('a PCS body keeps what its handlers took: a numeric PCE SVN; a bad member is named as the parameter PCS errors name', () => {
  const body = { platformManifest: 'ab', pceid: '0000', cpusvn: '0'.repeat(32), pcesvn: 1400 };
  assert.equal(wireInput(COLLATERAL.pckCertByManifest, req({ body })).Body.pcesvn, 1400);
  assert.throws(
    () => wireInput(COLLATERAL.pckCertByManifest, req({ body: { ...body, platformManifest: 5 } })),
    (e) => isConclaveError(e, 'request.invalid') && e.detail?.parameter === 'platformManifest' && e.detail?.field === 'body.platformManifest',
  );
});

test('a bundle sent as bytes is checked as its text; as JSON it is an object', () => {
  assert.equal(wireInput(COLLATERAL.importBundle, req({ body: Buffer.from('{"items":[]}') })).Body, '{"items":[]}');
  assert.deepEqual(wireInput(COLLATERAL.importBundle, req({ body: { items: [] } })).Body, { items: [] });
  assert.throws(() => wireInput(COLLATERAL.importBundle, req({ body: [] })), /matches none of the allowed forms/);
});
