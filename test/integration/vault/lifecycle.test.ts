/**
 * The key lifecycle over raw HTTPS with an injected clock: rotation policies and the rotator, soft
 * delete with automatic purge and purge protection, case-insensitive key names, every api-version
 * with its own semantics, and routes that never mistake an operation for a version.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_VERSIONS } from '../../../src/vault/api-version.js';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, akvCall, startVault, testClock } from './harness.js';

const DAY = 86400;

async function auditOf(server: TestServer, operation: string): Promise<any[]> {
  const r = await adminJson(server, 'GET', '/admin/vault/audit?from=1&limit=100000');
  return r.json.value.map((x: { record: unknown }) => x.record).filter((x: { operation: string }) => x.operation === operation);
}

describe('rotation policy and the rotator', () => {
  const clock = testClock(Date.UTC(2030, 0, 1));
  let server: TestServer;
  before(async () => {
    server = await startVault({ now: clock.now, flags: { maintenanceInterval: 0 } });
  });
  after(() => server?.stop());

  test('a key without a policy reports the default; GET rotationpolicy never falls into the version route', async () => {
    assert.equal((await akvCall(server, 'POST', '/keys/rot1/create', { kty: 'EC', crv: 'P-256' })).status, 200);
    const r = await akvCall(server, 'GET', '/keys/rot1/rotationpolicy');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match(r.json.id, /\/keys\/rot1\/rotationpolicy$/);
    assert.deepEqual(r.json.lifetimeActions, [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } }]);
    assert.equal(r.json.attributes.expiryTime, null);
    const nope = await akvCall(server, 'GET', '/keys/rot1/rotationpolicies');
    assert.equal(nope.status, 404);
    assert.equal(nope.json.error.innererror.code, 'request.not_found');
  });

  test('PUT stores the policy; the rotator makes exactly one new version when due, exp from expiryTime, audited', async () => {
    const put = await akvCall(server, 'PUT', '/keys/rot1/rotationpolicy', {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P30D' }, action: { type: 'Rotate' } }],
      attributes: { expiryTime: 'P90D' },
    });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.equal(put.json.attributes.expiryTime, 'P90D');
    const v1 = (await akvCall(server, 'GET', '/keys/rot1')).json.key.kid;
    clock.advance(29 * DAY);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.rotated, []);
    clock.advance(2 * DAY);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.rotated, ['rot1']);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.rotated, [], 'not twice');
    const latest = (await akvCall(server, 'GET', '/keys/rot1')).json;
    assert.notEqual(latest.key.kid, v1);
    assert.equal(latest.attributes.exp - latest.attributes.created, 90 * DAY);
    const audits = await auditOf(server, 'rotate');
    assert.equal(audits.length, 1);
    assert.equal(audits[0].principal, 'conclave:maintenance');
    assert.equal(audits[0].detail.scheduled, true);
    assert.equal((await akvCall(server, 'GET', '/keys/rot1/versions')).json.value.length, 2);
  });

  test('Notify fires once per version, before expiry, as an audit record', async () => {
    const exp = Math.floor(clock.now().getTime() / 1000) + 40 * DAY;
    await akvCall(server, 'POST', '/keys/notify1/create', { kty: 'EC', crv: 'P-256', attributes: { exp } });
    await akvCall(server, 'PUT', '/keys/notify1/rotationpolicy', { lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P10D' }, action: { type: 'Notify' } }] });
    clock.advance(31 * DAY);
    const r1 = await adminJson(server, 'POST', '/admin/vault/maintenance');
    assert.deepEqual(r1.json.notified, ['notify1']);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.notified, []);
    assert.equal((await auditOf(server, 'rotationNotify')).length, 1);
  });

  test('manual rotate takes exp from the policy', async () => {
    const r = await akvCall(server, 'POST', '/keys/rot1/rotate');
    assert.equal(r.status, 200);
    assert.equal(r.json.attributes.exp - r.json.attributes.created, 90 * DAY);
  });

  test('error paths: bad duration, unknown action, too short, two Rotate actions, unknown key', async () => {
    const bad = async (body: unknown, field: RegExp) => {
      const r = await akvCall(server, 'PUT', '/keys/rot1/rotationpolicy', body);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error.code, 'BadParameter');
      assert.equal(r.json.error.innererror.code, 'key.invalid');
      assert.match(r.json.error.message, field);
    };
    await bad({ lifetimeActions: [{ trigger: { timeAfterCreate: '30 days' }, action: { type: 'Rotate' } }] }, /ISO 8601/);
    await bad({ lifetimeActions: [{ trigger: { timeAfterCreate: 'P30D' }, action: { type: 'Explode' } }] }, /Rotate or Notify/);
    await bad({ lifetimeActions: [{ trigger: { timeAfterCreate: 'P1D' }, action: { type: 'Rotate' } }] }, /7 days/);
    await bad({ attributes: { expiryTime: 'P1D' } }, /28 days/);
    await bad({ lifetimeActions: 'rotate' }, /array/);
    const missing = await akvCall(server, 'PUT', '/keys/nosuchkey/rotationpolicy', { lifetimeActions: [] });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'KeyNotFound');
  });
});

describe('soft delete: automatic purge, retention, purge protection', () => {
  const clock = testClock(Date.UTC(2030, 5, 1));
  let server: TestServer;
  let guarded: TestServer;
  before(async () => {
    server = await startVault({ now: clock.now, flags: { maintenanceInterval: 0, recoverableDays: 7 } });
    guarded = await startVault({ now: clock.now, flags: { maintenanceInterval: 0, purgeProtection: true } });
  });
  after(async () => {
    await server?.stop();
    await guarded?.stop();
  });

  test('recoverableDays and recoveryLevel follow the setting; purge happens at scheduledPurgeDate, once', async () => {
    const created = await akvCall(server, 'POST', '/keys/gone/create', { kty: 'EC', crv: 'P-256' });
    assert.equal(created.json.attributes.recoverableDays, 7);
    assert.equal(created.json.attributes.recoveryLevel, 'CustomizedRecoverable+Purgeable');
    const del = await akvCall(server, 'DELETE', '/keys/gone');
    assert.equal(del.json.scheduledPurgeDate - del.json.deletedDate, 7 * DAY);
    clock.advance(7 * DAY - 60);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.purged, []);
    assert.equal((await akvCall(server, 'GET', '/deletedkeys/gone')).status, 200);
    clock.advance(60);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.purged, ['gone']);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.purged, []);
    assert.equal((await akvCall(server, 'GET', '/deletedkeys/gone')).status, 404);
    const audits = await auditOf(server, 'purge');
    assert.equal(audits.length, 1);
    assert.equal(audits[0].principal, 'conclave:maintenance');
    // the name is free again
    assert.equal((await akvCall(server, 'POST', '/keys/gone/create', { kty: 'EC', crv: 'P-256' })).status, 200);
  });

  test('purge protection: Recoverable, purge refused before the date, automatic purge still happens', async () => {
    const created = await akvCall(guarded, 'POST', '/keys/kept/create', { kty: 'EC', crv: 'P-256' });
    assert.equal(created.json.attributes.recoveryLevel, 'Recoverable');
    assert.equal(created.json.attributes.recoverableDays, 90);
    await akvCall(guarded, 'DELETE', '/keys/kept');
    const purge = await akvCall(guarded, 'DELETE', '/deletedkeys/kept');
    assert.equal(purge.status, 403);
    assert.equal(purge.json.error.innererror.code, 'key.operation_not_allowed');
    assert.match(purge.json.error.message, /purge protection/);
    clock.advance(90 * DAY);
    assert.deepEqual((await adminJson(guarded, 'POST', '/admin/vault/maintenance')).json.purged, ['kept']);
  });

  test('a recovered key is not purged', async () => {
    await akvCall(server, 'POST', '/keys/back/create', { kty: 'EC', crv: 'P-256' });
    await akvCall(server, 'DELETE', '/keys/back');
    assert.equal((await akvCall(server, 'POST', '/deletedkeys/back/recover')).status, 200);
    clock.advance(8 * DAY);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.purged, []);
    assert.equal((await akvCall(server, 'GET', '/keys/back')).status, 200);
  });

  test('a purge asked for by a client is audited with the 204 it answers', async () => {
    await akvCall(server, 'POST', '/keys/purged-now/create', { kty: 'EC', crv: 'P-256' });
    await akvCall(server, 'DELETE', '/keys/purged-now');
    const purge = await akvCall(server, 'DELETE', '/deletedkeys/purged-now');
    assert.equal(purge.status, 204);
    const record = (await auditOf(server, 'purge')).find((r) => r.key === 'purged-now' && r.result === 'success');
    assert.ok(record, 'the purge is audited');
    assert.equal(record.status, 204, `the client got 204, the audit says ${record.status}`);
  });

  test('config: recoverable days out of 7..90 is refused', async () => {
    await assert.rejects(startVault({ flags: { recoverableDays: 6 } }), (e: { code?: string }) => e.code === 'config.invalid');
    await assert.rejects(startVault({ flags: { recoverableDays: 91 } }), (e: { code?: string }) => e.code === 'config.invalid');
  });
});

describe('case-insensitive key names', () => {
  let server: TestServer;
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
  });
  after(() => server?.stop());

  test('stored with the case of creation, found in any case; create in another case adds a version', async () => {
    const c = await akvCall(server, 'POST', '/keys/MixedCase/create', { kty: 'EC', crv: 'P-256' });
    assert.match(c.json.key.kid, /\/keys\/MixedCase\/[0-9a-f]{32}$/);
    const got = await akvCall(server, 'GET', '/keys/mixedcase');
    assert.equal(got.status, 200);
    assert.equal(got.json.key.kid, c.json.key.kid);
    const v2 = await akvCall(server, 'POST', '/keys/MIXEDCASE/create', { kty: 'EC', crv: 'P-256' });
    assert.match(v2.json.key.kid, /\/keys\/MixedCase\//);
    assert.equal((await akvCall(server, 'GET', '/keys/mIxEdCaSe/versions')).json.value.length, 2);
    const sig = await akvCall(server, 'POST', '/keys/MIXEDcase/sign', { alg: 'ES256', value: Buffer.alloc(32, 1).toString('base64url') });
    assert.equal(sig.status, 200);
    assert.equal((await akvCall(server, 'DELETE', '/keys/mixedCASE')).status, 200);
    assert.equal((await akvCall(server, 'POST', '/keys/mixedcase/create', { kty: 'EC', crv: 'P-256' })).status, 409);
    assert.equal((await akvCall(server, 'GET', '/deletedkeys/MIXEDCASE')).json.recoveryId.endsWith('/deletedkeys/MixedCase'), true);
  });
});

describe('api-versions: each one the SDKs send, with its own semantics', () => {
  let server: TestServer;
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
  });
  after(() => server?.stop());

  const hasRelease = (v: string) => API_VERSIONS.indexOf(v) >= API_VERSIONS.indexOf('7.3-preview');
  for (const v of API_VERSIONS) {
    test(`api-version ${v}`, async () => {
      const name = `v-${v.replace(/\./g, '-')}`;
      const c = await akvCall(server, 'POST', `/keys/${name}/create`, { kty: 'EC', crv: 'P-256' }, v);
      assert.equal(c.status, 200, JSON.stringify(c.json));
      assert.equal('exportable' in c.json.attributes, hasRelease(v));
      assert.equal('recoverableDays' in c.json.attributes, v !== '2016-10-01' && v !== '7.0');
      assert.equal('hsmPlatform' in c.json.attributes, API_VERSIONS.indexOf(v) >= API_VERSIONS.indexOf('7.5-preview.1'));
      assert.equal((await akvCall(server, 'GET', `/keys/${name}`, undefined, v)).status, 200);
      assert.equal((await akvCall(server, 'GET', '/keys', undefined, v)).status, 200);
      const rp = await akvCall(server, 'GET', `/keys/${name}/rotationpolicy`, undefined, v);
      assert.equal(rp.status, hasRelease(v) ? 200 : 400);
      const rel = await akvCall(server, 'POST', `/keys/${name}/release`, { target: 'x.y.z' }, v);
      if (!hasRelease(v)) assert.match(rel.json.error.message, /not available in api-version/);
      const att = await akvCall(server, 'GET', `/keys/${name}/${c.json.key.kid.split('/').at(-1)}/attestation`, undefined, v);
      assert.equal(att.status, 400);
      assert.equal(att.json.error.innererror.code, API_VERSIONS.indexOf(v) >= API_VERSIONS.indexOf('7.6-preview.2') ? 'key.attestation_unavailable' : 'request.invalid');
    });
  }

  test('Managed HSM settings (7.4-preview.1 and later): the one setting reads false and stays false (no ARM here)', async () => {
    const V = '7.4-preview.1';
    const setting = { name: 'AllowKeyManagementOperationsThroughARM', value: 'false', type: 'boolean' };
    assert.deepEqual((await akvCall(server, 'GET', '/settings', undefined, V)).json, { settings: [setting] });
    assert.deepEqual((await akvCall(server, 'GET', '/settings/AllowKeyManagementOperationsThroughARM', undefined, V)).json, setting);
    assert.deepEqual((await akvCall(server, 'PATCH', '/settings/AllowKeyManagementOperationsThroughARM', { value: 'False' }, V)).json, setting);
    const on = await akvCall(server, 'PATCH', '/settings/AllowKeyManagementOperationsThroughARM', { value: 'true' }, V);
    assert.equal(on.status, 400);
    assert.match(on.json.error.message, /no Azure Resource Manager/);
    assert.equal((await akvCall(server, 'PATCH', '/settings/AllowKeyManagementOperationsThroughARM', { value: 'maybe' }, V)).status, 400);
    assert.equal((await akvCall(server, 'PATCH', '/settings/AllowKeyManagementOperationsThroughARM', {}, V)).status, 400);
    assert.equal((await akvCall(server, 'GET', '/settings/NoSuchSetting', undefined, V)).status, 404);
    assert.equal((await akvCall(server, 'GET', '/settings', undefined, '7.3')).status, 400, 'not in api-version 7.3');
  });

  test('an unknown api-version is BadParameter', async () => {
    const r = await akvCall(server, 'GET', '/keys', undefined, '7.9');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'BadParameter');
  });
});
