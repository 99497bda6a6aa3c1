/**
 * Attacks on key attributes as create, import and update (PATCH) take them: nbf and exp are seconds since the
 * epoch (AKV's int64 wire form), and a value past what the store and the clock compare exactly is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer } from '../../helpers/server.js';
import { akvCall, startVault } from './harness.js';

let server: TestServer;

describe('key attributes', () => {
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
  });
  after(() => server?.stop());

  test('nbf and exp past the safe integers are a 400 on create and update, never stored or a 500', async () => {
    // On main: 200 on SQLite (stored as 1e+300 and answered so), 500 on PostgreSQL (bigint out of range).
    for (const [field, value] of [['exp', 1e300], ['exp', 2 ** 63], ['nbf', -1e300], ['nbf', -(2 ** 64)]] as const) {
      const created = await akvCall(server, 'POST', '/keys/attr-create/create', { kty: 'oct', attributes: { [field]: value } });
      assert.equal(created.status, 400, `create with ${field} ${value}: ${JSON.stringify(created.json).slice(0, 300)}`);
      assert.equal(created.json.error.innererror.code, 'key.invalid');
    }
    assert.equal((await akvCall(server, 'POST', '/keys/attr-update/create', { kty: 'oct' })).status, 200);
    for (const [field, value] of [['exp', 1e300], ['exp', 2 ** 63], ['nbf', -1e300]] as const) {
      const patched = await akvCall(server, 'PATCH', '/keys/attr-update', { attributes: { [field]: value } });
      assert.equal(patched.status, 400, `update with ${field} ${value}: ${JSON.stringify(patched.json).slice(0, 300)}`);
      assert.equal(patched.json.error.innererror.code, 'key.invalid');
    }
    const got = await akvCall(server, 'GET', '/keys/attr-update');
    assert.equal(got.json.attributes.exp, undefined);
    assert.equal(got.json.attributes.nbf, undefined);
    // The largest safe integer is a time the store keeps exactly.
    const far = await akvCall(server, 'PATCH', '/keys/attr-update', { attributes: { exp: Number.MAX_SAFE_INTEGER } });
    assert.equal(far.status, 200, JSON.stringify(far.json).slice(0, 300));
    assert.equal((await akvCall(server, 'GET', '/keys/attr-update')).json.attributes.exp, Number.MAX_SAFE_INTEGER);
  });
});
