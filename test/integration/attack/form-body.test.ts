/**
 * Bounded work per request in the form-encoded body parser: every parameter costs constant work, so a body
 * that repeats one parameter a great many times (within the body limit, before any authentication) is
 * refused with the route's typed 400 naming the parameter limit, never a stalled event loop (gathering each
 * repeat into a copy of the ones before made it quadratic: 50 000 repeats held the event loop for half a
 * minute, a body at the 1 MiB limit for hours).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type TestServer, startTestServer } from '../../helpers/server.js';

describe('form-encoded bodies: bounded work per parameter', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server?.stop());

  test('a parameter repeated 50 000 times, unauthenticated, is a typed 400 naming the limit', async () => {
    const body = 'client_id=x&'.repeat(50_000);
    const r = await server.send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.equal(r.json().error, 'invalid_request', r.text.slice(0, 300));
    assert.match(r.json().error_description, /more than 1000 parameters/);
  });

  test('the limit is 1000: a form of exactly 1000 parameters reaches the route, one more is refused', async () => {
    const form = (n: number) => ['grant_type=client_credentials', 'client_id=x', 'client_secret=y', ...Array.from({ length: n - 3 }, (_, i) => `p${i}=1`)].join('&');
    const post = (n: number) => server.send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(n) });
    const atLimit = await post(1000);
    assert.doesNotMatch(atLimit.text, /more than 1000 parameters/, atLimit.text.slice(0, 300));
    const over = await post(1001);
    assert.equal(over.status, 400, over.text.slice(0, 300));
    assert.match(over.json().error_description, /more than 1000 parameters/);
  });
});
