/**
 * Attacks on key attributes as create, import and update (PATCH) take them: nbf and exp are seconds since the
 * epoch (AKV's int64 wire form), and a value past what the store and the clock compare exactly is refused;
 * exportable and an immutable release policy stay as they were made, through update and rotation (pins).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, akvCall, startVault } from './harness.js';

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
    // The last second of 9999 and the first of year 1 are times the store keeps exactly (and every SDK reads).
    for (const [field, value] of [['exp', 253_402_300_799], ['nbf', -62_135_596_800]] as const) {
      const far = await akvCall(server, 'PATCH', '/keys/attr-update', { attributes: { [field]: value } });
      assert.equal(far.status, 200, JSON.stringify(far.json).slice(0, 300));
      assert.equal((await akvCall(server, 'GET', '/keys/attr-update')).json.attributes[field], value);
    }
  });

  test('nbf and exp outside the years 1–9999 are a 400: a key no SDK can read is never stored', async () => {
    // Attack: a safe integer past 9999-12-31T23:59:59Z (253 402 300 799) was stored, and the Python SDK cannot read
    // it (msrest deserialize_unix: DeserializationError, year 10000 is out of range), so one key with such an exp
    // broke get_key for it and list_properties_of_keys for the page holding it, for every client of the vault; the
    // rotator counted back from it through an Invalid Date (NaN) and sent its near-expiry notice at once.
    assert.equal((await akvCall(server, 'POST', '/keys/attr-range/create', { kty: 'oct' })).status, 200);
    for (const [field, value] of [['exp', 253_402_300_800], ['exp', Number.MAX_SAFE_INTEGER], ['nbf', -62_135_596_801], ['nbf', Number.MIN_SAFE_INTEGER]] as const) {
      const created = await akvCall(server, 'POST', '/keys/attr-range-new/create', { kty: 'oct', attributes: { [field]: value } });
      assert.equal(created.status, 400, `create with ${field} ${value}: ${JSON.stringify(created.json).slice(0, 300)}`);
      assert.equal(created.json.error.innererror.code, 'key.invalid');
      const patched = await akvCall(server, 'PATCH', '/keys/attr-range', { attributes: { [field]: value } });
      assert.equal(patched.status, 400, `update with ${field} ${value}: ${JSON.stringify(patched.json).slice(0, 300)}`);
    }
    const got = await akvCall(server, 'GET', '/keys/attr-range');
    assert.equal(got.json.attributes.exp, undefined);
    assert.equal(got.json.attributes.nbf, undefined);
  });

  test('exportable and an immutable release policy stay as made: no update changes them, rotation keeps them (pin, defended on main)', async () => {
    const policy = (v: string) => Buffer.from(JSON.stringify({ version: '1.0.0', anyOf: [{ authority: 'https://authority.example', allOf: [{ claim: 'x', equals: v }] }] })).toString('base64url');
    const made = await akvCall(server, 'POST', '/keys/pin-immutable/create', { kty: 'RSA', attributes: { exportable: true }, release_policy: { data: policy('1'), immutable: true } });
    assert.equal(made.status, 200, JSON.stringify(made.json).slice(0, 300));
    const refusedWith = async (body: unknown, code: string) => {
      const r = await akvCall(server, 'PATCH', '/keys/pin-immutable', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.json).slice(0, 300)}`);
      assert.equal(r.json.error.innererror.code, code, JSON.stringify(body));
    };
    // Another policy; the same one made mutable (explicitly, or by leaving immutable out); exportable turned off.
    await refusedWith({ release_policy: { data: policy('2'), immutable: true } }, 'release.policy_immutable');
    await refusedWith({ release_policy: { data: policy('1'), immutable: false } }, 'release.policy_immutable');
    await refusedWith({ release_policy: { data: policy('1') } }, 'release.policy_immutable');
    await refusedWith({ attributes: { exportable: false } }, 'key.invalid');
    const same = await akvCall(server, 'PATCH', '/keys/pin-immutable', { release_policy: { data: policy('1'), immutable: true } });
    assert.equal(same.status, 200, 'the same immutable policy again is no change');
    const rotated = await akvCall(server, 'POST', '/keys/pin-immutable/rotate', undefined);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.json).slice(0, 300));
    assert.notEqual(rotated.json.key.kid, made.json.key.kid);
    assert.equal(rotated.json.attributes.exportable, true);
    assert.deepEqual(rotated.json.release_policy, made.json.release_policy);
    // A non-exportable key takes no policy and does not become exportable, by update or by rotation.
    assert.equal((await akvCall(server, 'POST', '/keys/pin-plain/create', { kty: 'EC', crv: 'P-256' })).status, 200);
    for (const body of [{ attributes: { exportable: true } }, { attributes: { exportable: true }, release_policy: { data: policy('1') } }, { release_policy: { data: policy('1') } }]) {
      const r = await akvCall(server, 'PATCH', '/keys/pin-plain', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.json).slice(0, 300)}`);
    }
    const plain = await akvCall(server, 'POST', '/keys/pin-plain/rotate', undefined);
    assert.equal(plain.status, 200);
    assert.equal(plain.json.attributes.exportable, false);
    assert.equal(plain.json.release_policy, undefined);
  });

  test("a refused request's audit record holds at most a bounded part of what the caller sent", async () => {
    // Attack: the failure record (append-only, kept for good) holds the error's message, and many messages
    // quote the offending value whole: one request with a 300 kB key_ops entry, kty, crv, duration or policy
    // property wrote 300–600 kB to the log, by anyone allowed to create or update one key.
    const big = 'X'.repeat(300_000);
    const policy = Buffer.from(JSON.stringify({ anyOf: [{ authority: 'https://a.example', allOf: [{ claim: 'y', equals: 'x' }] }], [big]: 1 })).toString('base64url');
    assert.equal((await akvCall(server, 'POST', '/keys/audit-bound/create', { kty: 'EC' })).status, 200);
    for (const [method, path, body] of [
      ['POST', '/keys/audit-bound/create', { kty: 'EC', key_ops: [big] }],
      ['POST', '/keys/audit-bound/create', { kty: big }],
      ['POST', '/keys/audit-bound/create', { kty: 'EC', crv: big }],
      ['POST', '/keys/audit-bound/create', { kty: 'EC', attributes: { exportable: true }, release_policy: { data: policy } }],
      ['PUT', '/keys/audit-bound', { key: { kty: 'EC', crv: big, d: 'AA' } }],
      ['PATCH', '/keys/audit-bound', { key_ops: [big] }],
      ['PUT', '/keys/audit-bound/rotationpolicy', { attributes: { expiryTime: big } }],
    ] as const) {
      const r = await akvCall(server, method, path, body);
      assert.equal(r.status, 400, `${method} ${path}: ${JSON.stringify(r.json).slice(0, 200)}`);
    }
    const audit = await adminJson(server, 'GET', '/admin/vault/audit?from=1&limit=100000');
    const failed = audit.json.value.map((x: { record: any }) => x.record).filter((x: any) => x.key === 'audit-bound' && x.result === 'failed');
    assert.equal(failed.length, 7);
    for (const rec of failed) assert.ok(JSON.stringify(rec).length < 4096, `${rec.operation}: an audit record of ${JSON.stringify(rec).length} characters`);
  });

  test("the cut of a failure record's message never splits a character in two", async () => {
    // The cut counts UTF-16 code units: a message quoting characters outside the BMP, cut between the two halves of
    // one, left a lone surrogate in the record, text no UTF-8 reader of the log can decode as the caller sent it.
    assert.equal((await akvCall(server, 'POST', '/keys/audit-cut/create', { kty: 'EC' })).status, 200);
    for (const lead of ['', 'a']) {
      const r = await akvCall(server, 'PATCH', '/keys/audit-cut', { key_ops: [`${lead}${'\u{1F511}'.repeat(2000)}`] });
      assert.equal(r.status, 400, JSON.stringify(r.json).slice(0, 200));
    }
    const audit = await adminJson(server, 'GET', '/admin/vault/audit?from=1&limit=100000');
    const failed = audit.json.value.map((x: { record: any }) => x.record).filter((x: any) => x.key === 'audit-cut' && x.result === 'failed');
    assert.equal(failed.length, 2);
    for (const rec of failed) {
      assert.ok(rec.message.length < 1100, `a message of ${rec.message.length} characters`);
      assert.doesNotMatch(rec.message, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/, 'a lone surrogate in the record');
    }
  });
});
