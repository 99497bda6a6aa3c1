import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { isConclaveError } from '../core/errors.js';
import { LOG } from '../wire/log.js';
import { VAULT } from '../wire/vault.js';
import { wireInput } from './wire-input.js';

const req = (r: { params?: unknown; query?: unknown; body?: unknown }) => r as unknown as FastifyRequest;

test('a conforming request comes back typed', () => {
  const input = wireInput(VAULT.createKey, req({ params: { name: 'k1' }, query: { 'api-version': '7.4' }, body: { kty: 'RSA', key_size: 2048 } }));
  assert.equal(input.Params.name, 'k1');
  assert.equal(input.Body.kty, 'RSA');
  assert.equal(input.Body.key_size, 2048);
});

test('each part is checked against its schema, as a typed 400 naming the member', () => {
  const refused = (r: Parameters<typeof req>[0], route: Parameters<typeof wireInput>[0], re: RegExp) =>
    assert.throws(
      () => wireInput(route, req(r)),
      (e) => isConclaveError(e, 'request.invalid') && e.status === 400 && re.test(e.message),
    );
  refused({ params: { name: 'no/slash' }, query: {}, body: { kty: 'RSA' } }, VAULT.createKey, /params\.name/);
  refused({ params: { name: 'k' }, query: {}, body: { kty: 5 } }, VAULT.createKey, /body\.kty: must be a string/);
  refused({ params: { name: 'k' }, query: {}, body: undefined }, VAULT.createKey, /body: must be an object/);
  refused({ query: { from: '-1' } }, LOG.consistency, /query\.from/);
  refused({ query: { start: ['1', '2'] } }, LOG.entries, /query\.start: must be a string/);
});
