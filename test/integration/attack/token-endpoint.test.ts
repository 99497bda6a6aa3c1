/**
 * #14 item 8: the token endpoints (`/oauth2/token` and MSAL's `/{tenant}/oauth2/v2.0/token`) speak
 * RFC 6749 only: the form encoding (§4.4.2, Appendix B) and nothing else, each parameter at most once
 * (§3.2), and errors from §5.2's list with descriptions of our own, never the text of an internal error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const ENDPOINTS = ['/oauth2/token', '/common/oauth2/v2.0/token'];
const RFC6749_ERRORS = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope']);

describe('token endpoint: RFC 6749 §5.2 errors, form encoding only', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.stop());

  const good = () => ({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret });

  function assertOAuthError(r: { status: number; text: string; headers: Record<string, unknown> }, status: number, error: string) {
    assert.equal(r.status, status, r.text);
    const body = JSON.parse(r.text) as Record<string, unknown>;
    assert.equal(body.error, error, r.text);
    assert.ok(RFC6749_ERRORS.has(body.error as string));
    assert.deepEqual(Object.keys(body).filter((k) => k !== 'error' && k !== 'error_description'), [], r.text);
    assert.equal(typeof body.error_description, 'string');
    // Our own words: no driver, JavaScript or SQL text.
    assert.doesNotMatch(body.error_description as string, /SQLite|bind|undefined|TypeError|Cannot read|is not a function|\bat \//, r.text);
    assert.equal(r.headers['cache-control'], 'no-store');
  }

  for (const path of ENDPOINTS) {
    test(`${path}: a JSON body is refused with invalid_request, even with good credentials`, async () => {
      assertOAuthError(await server.send('POST', path, { body: good() }), 400, 'invalid_request');
      // Objects where strings belong reached the store and came back as its error text.
      assertOAuthError(await server.send('POST', path, { body: { ...good(), client_id: { $gt: '' } } }), 400, 'invalid_request');
      assertOAuthError(await server.send('POST', path, { body: { ...good(), client_secret: ['x'] } }), 400, 'invalid_request');
    });

    test(`${path}: other encodings and no body are invalid_request`, async () => {
      const q = new URLSearchParams(good()).toString();
      assertOAuthError(await server.send('POST', path, { headers: { 'content-type': 'text/plain' }, body: q }), 400, 'invalid_request');
      assertOAuthError(await server.send('POST', path, { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(q) }), 400, 'invalid_request');
      assertOAuthError(await server.send('POST', path, {}), 400, 'invalid_request');
    });

    test(`${path}: a repeated parameter is invalid_request (§3.2)`, async () => {
      const body = `${new URLSearchParams(good()).toString()}&client_id=${encodeURIComponent(server.admin.clientId)}`;
      assertOAuthError(await server.send('POST', path, { headers: FORM, body }), 400, 'invalid_request');
    });

    test(`${path}: grant types, missing and wrong credentials`, async () => {
      const form = (o: Record<string, string>) => ({ headers: FORM, body: new URLSearchParams(o).toString() });
      assertOAuthError(await server.send('POST', path, form({ ...good(), grant_type: 'password' })), 400, 'unsupported_grant_type');
      const { grant_type: _, ...noGrant } = good();
      assertOAuthError(await server.send('POST', path, form(noGrant)), 400, 'invalid_request');
      const wrong = await server.send('POST', path, form({ ...good(), client_secret: 'nope' }));
      assertOAuthError(wrong, 401, 'invalid_client');
      assert.ok(wrong.headers['www-authenticate']);
      assertOAuthError(await server.send('POST', path, form({ grant_type: 'client_credentials' })), 401, 'invalid_client');
      const ok = await server.send('POST', path, form(good()));
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json().token_type, 'Bearer');
      assert.equal(ok.headers['cache-control'], 'no-store');
    });
  }
});
