/**
 * The unchanged @azure/keyvault-keys KeyClient over the lifecycle #16 added: rotation policy get and
 * update, a scheduled rotation under an injected clock, automatic purge, and case-insensitive names (the
 * Python SDKs drive the same in python.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KeyClient } from '@azure/keyvault-keys';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, credentialFor, sdkOptions, startVault, testClock } from './harness.js';

const DAY = 86400;
const clock = testClock(Date.UTC(2033, 0, 1));
let server: TestServer;
/** A new client after the clock moves: access tokens expire on the server's clock, not the SDK's. */
const client = () => new KeyClient(server.url, credentialFor(server, server.admin.clientId, server.admin.clientSecret), sdkOptions(server));

describe('@azure/keyvault-keys: rotation policies, scheduled rotation, automatic purge, case-insensitive names', () => {
  before(async () => {
    server = await startVault({ now: clock.now, flags: { maintenanceInterval: 0, recoverableDays: 7 } });
  });
  after(() => server?.stop());
  test('getKeyRotationPolicy / updateKeyRotationPolicy, then the rotator makes a version with exp from expiresIn', async () => {
    const kc = client();
    const key = await kc.createEcKey('js-rotating', { curve: 'P-256' });
    const before = await kc.getKeyRotationPolicy('js-rotating');
    assert.equal(before.lifetimeActions?.[0]?.action, 'Notify');
    assert.equal(before.lifetimeActions?.[0]?.timeBeforeExpiry, 'P30D');
    const policy = await kc.updateKeyRotationPolicy('js-rotating', { lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P10D' }], expiresIn: 'P60D' });
    assert.equal(policy.expiresIn, 'P60D');
    assert.match(policy.id ?? '', /\/keys\/js-rotating\/rotationpolicy$/);
    await assert.rejects(kc.updateKeyRotationPolicy('js-rotating', { lifetimeActions: [{ action: 'Rotate', timeAfterCreate: '10 days' }] }), (e: any) => e.statusCode === 400);
    clock.advance(11 * DAY);
    assert.deepEqual((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.rotated, ['js-rotating']);
    const latest = await client().getKey('js-rotating');
    assert.notEqual(latest.properties.version, key.properties.version);
    assert.equal((latest.properties.expiresOn!.getTime() - latest.properties.createdOn!.getTime()) / 1000, 60 * DAY);
  });

  test('deleted keys are purged at scheduledPurgeDate', async () => {
    const kc = client();
    await kc.createEcKey('js-purged', { curve: 'P-256' });
    const deleted = await (await kc.beginDeleteKey('js-purged')).pollUntilDone();
    assert.equal((deleted.properties.scheduledPurgeDate!.getTime() - deleted.properties.deletedOn!.getTime()) / 1000, 7 * DAY);
    assert.equal(deleted.properties.recoveryLevel, 'CustomizedRecoverable+Purgeable');
    clock.advance(7 * DAY);
    assert.ok((await adminJson(server, 'POST', '/admin/vault/maintenance')).json.purged.includes('js-purged'));
    await assert.rejects(client().getDeletedKey('js-purged'), (e: any) => e.statusCode === 404);
  });

  test('a key is found under any case and keeps the case it was created with', async () => {
    const kc = client();
    await kc.createEcKey('JsMixedCase', { curve: 'P-256' });
    const got = await kc.getKey('jsmixedcase');
    assert.equal(got.name, 'JsMixedCase');
  });
});
