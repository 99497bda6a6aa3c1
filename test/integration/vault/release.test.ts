/**
 * Secure Key Release denials and access control over raw HTTPS: each refusal has the right status
 * and catalogue code, explains itself, releases nothing, and is in the audit chain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createFakeAuthority, signJws } from '../../../src/vault/release/testing.js';
import { waitSequenced } from '../../helpers/log.js';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, assignRole, type AuthorityStandIn, newClient, policyFor, startAuthority, startVault } from './harness.js';
import { generateEcKeyPair } from '../../../src/core/keygen.js';

let server: TestServer;
let authority: AuthorityStandIn;
let token: string;

async function call(method: string, path: string, body?: object, bearer = token) {
  const r = await server.send(method, `${path}${path.includes('?') ? '&' : '?'}api-version=7.4`, { headers: { authorization: `Bearer ${bearer}` }, ...(body ? { body } : {}) });
  return { status: r.status, json: r.text ? r.json() : undefined };
}

async function createKey(name: string, extra: Record<string, unknown> = {}, policy: unknown = JSON.parse(Buffer.from(policyFor(authority.url)).toString())) {
  const r = await call('POST', `/keys/${name}/create`, {
    kty: 'RSA-HSM',
    key_size: 2048,
    attributes: { exportable: true, ...((extra.attributes as object) ?? {}) },
    release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url') },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json;
}

async function lastAudit() {
  const size = await waitSequenced(server.ctx.db);
  const r = await adminJson(server, 'GET', `/admin/vault/audit?from=${size - 1}`);
  return r.json.value.at(-1).record;
}

async function expectDenied(name: string, target: string, status: number, code: string, message?: RegExp) {
  const r = await call('POST', `/keys/${name}/release`, { target });
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.error.innererror.code, code, JSON.stringify(r.json));
  assert.equal(r.json.value, undefined);
  if (message) assert.match(r.json.error.message, message);
  const rec = await lastAudit();
  assert.equal(rec.operation, 'release');
  assert.notEqual(rec.result, 'success');
  assert.equal(rec.code, code);
  return r.json;
}

describe('release over raw HTTPS: denials, access control, audit', () => {
  before(async () => {
    server = await startVault();
    authority = await startAuthority(server);
    token = await server.adminToken();
    assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
    await createKey('skr');
  });
  after(async () => {
    await authority?.close();
    await server?.stop();
  });

  describe('release: the target token', () => {
    test('a valid token releases, and the audit record holds issuer, jti, hashes and trace', async () => {
      const t = authority.token({ jti: 'the-jti' });
      const r = await call('POST', '/keys/skr/release', { target: t, nonce: 'abc' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(typeof r.json.value, 'string');
      const rec = await lastAudit();
      assert.equal(rec.result, 'success');
      assert.equal(rec.detail.issuer, authority.url);
      assert.equal(rec.detail.jti, 'the-jti');
      assert.match(rec.detail.claimsSha256, /^[0-9a-f]{64}$/);
      assert.ok(rec.detail.policyHash);
      assert.equal(rec.detail.trace.result, true);
      assert.ok(!JSON.stringify(rec).includes(JSON.parse(Buffer.from(r.json.value.split('.')[1], 'base64url').toString()).response.key.key.key_hsm));
    });

    test('untrusted issuer', async () => {
      const other = await createFakeAuthority('https://untrusted.example');
      await expectDenied('skr', other.token({ exp: Math.floor(Date.now() / 1000) + 600, 'x-ms-runtime': { keys: [authority.workload.jwk] } }), 401, 'release.token_invalid', /not a trusted attestation authority/);
    });

    test('forged signature (right kid, wrong key)', async () => {
      const forger = await createFakeAuthority(authority.url, { kid: authority.authority.kid });
      await expectDenied('skr', forger.token({ exp: Math.floor(Date.now() / 1000) + 600, 'x-ms-runtime': { keys: [authority.workload.jwk] } }), 401, 'release.token_invalid', /signature/);
    });

    test('alg none', async () => {
      const good = authority.token();
      const payload = JSON.parse(Buffer.from(good.split('.')[1]!, 'base64url').toString());
      await expectDenied('skr', signJws({ alg: 'none', kid: authority.authority.kid }, payload, ''), 401, 'release.token_invalid', /not allowed/);
    });

    test('HS256 keyed with the authority public key', async () => {
      const payload = JSON.parse(Buffer.from(authority.token().split('.')[1]!, 'base64url').toString());
      const pem = authority.authority.publicKey.export({ format: 'pem', type: 'spki' }) as string;
      await expectDenied('skr', signJws({ alg: 'HS256', kid: authority.authority.kid }, payload, pem), 401, 'release.token_invalid', /not allowed/);
    });

    test('kid not in the JWKS', async () => {
      await expectDenied('skr', authority.token({}, { kid: 'no-such-kid' }), 401, 'release.token_invalid', /no signing key/);
    });

    test('jku pointing elsewhere is ignored (the attacker key is not found)', async () => {
      const attacker = await createFakeAuthority(authority.url);
      const t = attacker.token({ exp: Math.floor(Date.now() / 1000) + 600, 'x-ms-runtime': { keys: [authority.workload.jwk] } }, { jku: 'https://attacker.example/certs' });
      await expectDenied('skr', t, 401, 'release.token_invalid');
    });

    test('expired and not-yet-valid tokens', async () => {
      const now = Math.floor(Date.now() / 1000);
      await expectDenied('skr', authority.token({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }), 401, 'release.token_invalid', /expired/);
      await expectDenied('skr', authority.token({ nbf: now + 3600, exp: now + 7200 }), 401, 'release.token_invalid', /not valid before/);
    });

    test('one trusted authority cannot speak for another: a token naming A, signed by trusted B (B\'s kid, A\'s kid or none), is refused', async () => {
      // Attempt (defended): an operator may trust several authorities (a development one beside MAA), and a
      // key's policy names the one it trusts. Keys are fetched (over HTTPS) and cached per authority, so B's
      // key never verifies a token whose iss is A, even with B's key set loaded and cached first.
      const b = await startAuthority(server);
      try {
        assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url, b.url] })).status, 200);
        // B's own token verifies with B's keys (now cached) and is refused by the policy, which names A only.
        await expectDenied('skr', b.token(), 403, 'release.policy_unsatisfied', /matches no authority/);
        for (const header of [{}, { kid: authority.authority.kid }, { kid: undefined }]) {
          await expectDenied('skr', b.token({ iss: authority.url }, header), 401, 'release.token_invalid');
        }
      } finally {
        await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] });
        await b.close();
      }
    });

    test('no suitable runtime key', async () => {
      const ec = generateEcKeyPair('prime256v1').publicKey.export({ format: 'jwk' });
      await expectDenied('skr', authority.token({ 'x-ms-runtime': { keys: [{ ...ec, kid: 'ec', key_ops: ['encrypt'] }] } }), 400, 'release.no_wrapping_key');
      await expectDenied('skr', authority.token({ 'x-ms-runtime': {} }), 400, 'release.no_wrapping_key');
    });
  });

  describe('release: the policy', () => {
    const claims = {
      'x-ms-attestation-type': 'sevsnpvm',
      'x-ms-sevsnpvm-guestsvn': 3,
      'x-ms-sevsnpvm-is-debuggable': false,
      'x-ms-sevsnpvm-hostdata': 'aa',
    };
    before(async () => {
      await createKey('skr-ops', {}, {
        version: '1.0.0',
        anyOf: [
          {
            authority: authority.url,
            allOf: [
              { claim: 'x-ms-attestation-type', equals: 'sevsnpvm' },
              { claim: 'x-ms-sevsnpvm-is-debuggable', notEquals: true },
              { claim: 'x-ms-sevsnpvm-guestsvn', greater: 1 },
              { claim: 'x-ms-sevsnpvm-guestsvn', greaterOrEquals: 3 },
              { claim: 'x-ms-sevsnpvm-guestsvn', less: 10 },
              { claim: 'x-ms-sevsnpvm-guestsvn', lessOrEquals: 3 },
              { claim: 'x-ms-sevsnpvm-hostdata', exists: true },
            ],
          },
        ],
      });
    });

    test('the full policy releases', async () => {
      assert.equal((await call('POST', '/keys/skr-ops/release', { target: authority.token(claims) })).status, 200);
    });

    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['equals', { 'x-ms-attestation-type': 'sgx' }, 'x-ms-attestation-type'],
      ['notEquals', { 'x-ms-sevsnpvm-is-debuggable': true }, 'x-ms-sevsnpvm-is-debuggable'],
      ['greater', { 'x-ms-sevsnpvm-guestsvn': 1 }, 'x-ms-sevsnpvm-guestsvn'],
      ['greaterOrEquals', { 'x-ms-sevsnpvm-guestsvn': 2 }, 'x-ms-sevsnpvm-guestsvn'],
      ['less', { 'x-ms-sevsnpvm-guestsvn': 10 }, 'x-ms-sevsnpvm-guestsvn'],
      ['lessOrEquals', { 'x-ms-sevsnpvm-guestsvn': 4 }, 'x-ms-sevsnpvm-guestsvn'],
      ['exists', { 'x-ms-sevsnpvm-hostdata': undefined }, 'x-ms-sevsnpvm-hostdata'],
    ];
    for (const [op, change, claim] of cases) {
      test(`a claim failing ${op} is refused and explained`, async () => {
        const body = await expectDenied('skr-ops', authority.token({ ...claims, ...change }), 403, 'release.policy_unsatisfied');
        assert.ok(body.error.message.includes(authority.url), body.error.message);
        assert.ok(body.error.message.includes(`claim ${claim} expected ${op}`), body.error.message);
        const rec = await lastAudit();
        assert.equal(rec.detail.trace.result, false);
        assert.ok(rec.detail.explanation.includes(claim));
      });
    }

    test('a policy for another authority names the issuer', async () => {
      await createKey('skr-other', {}, { version: '1.0.0', anyOf: [{ authority: 'https://elsewhere.example', allOf: [{ claim: 'x', equals: 'y' }] }] });
      await expectDenied('skr-other', authority.token(), 403, 'release.policy_unsatisfied', /matches no authority/);
    });
  });

  describe('release: what its audit record keeps of the claims and the policy', () => {
    test('a claim value of hundreds of kilobytes is not written whole to the audit record, released or denied', async () => {
      // Attack: a TEE chooses its runtime claims (x-ms-runtime is the workload's own JSON, bound by report_data), and
      // the decision's trace (detail.trace, each claim's actual value) and explanation (detail.explanation) were
      // written whole to the append-only log, where the claims themselves are kept only up to 32 kB: one release
      // request by a holder of the release role wrote 600 kB of its choosing, denied or released.
      const big = 'n'.repeat(300_000);
      await createKey('skr-nonce', {}, { version: '1.0.0', anyOf: [{ authority: authority.url, allOf: [{ claim: 'x-ms-runtime.client-payload.nonce', equals: 'the-nonce' }] }] });
      await expectDenied('skr-nonce', authority.token({ 'x-ms-runtime': { keys: [authority.workload.jwk], 'client-payload': { nonce: big } } }), 403, 'release.policy_unsatisfied');
      const denied = await lastAudit();
      assert.ok(JSON.stringify(denied).length < 16_384, `a denied release's record of ${JSON.stringify(denied).length} characters`);
      assert.equal(denied.detail.trace.result, false);
      await createKey('skr-runtime', {}, { version: '1.0.0', anyOf: [{ authority: authority.url, allOf: [{ claim: 'x-ms-runtime', exists: true }] }] });
      const r = await call('POST', '/keys/skr-runtime/release', { target: authority.token({ 'x-ms-runtime': { keys: [authority.workload.jwk], 'client-payload': { nonce: big } } }) });
      assert.equal(r.status, 200, JSON.stringify(r.json).slice(0, 300));
      const released = await lastAudit();
      assert.equal(released.result, 'success');
      assert.ok(JSON.stringify(released).length < 16_384, `a release's record of ${JSON.stringify(released).length} characters`);
    });

    test("a release policy's value of hundreds of kilobytes is not written whole to each release's audit record", async () => {
      // Attack: a release policy has no size but the body's, and the trace records each condition's expected value:
      // whoever may create one key gave it a 300 kB value, and every release of it (denied or not) wrote it again.
      const big = 'e'.repeat(300_000);
      await createKey('skr-big-policy', {}, { version: '1.0.0', anyOf: [{ authority: authority.url, allOf: [{ claim: 'x-ms-attestation-type', equals: big }] }] });
      await expectDenied('skr-big-policy', authority.token(), 403, 'release.policy_unsatisfied');
      const denied = await lastAudit();
      assert.ok(JSON.stringify(denied).length < 16_384, `a denied release's record of ${JSON.stringify(denied).length} characters`);
    });
  });

  describe('release: the key and the caller', () => {
    test('a non-exportable key', async () => {
      assert.equal((await call('POST', '/keys/plain/create', { kty: 'RSA', key_size: 2048 })).status, 200);
      await expectDenied('plain', authority.token(), 403, 'release.not_exportable');
    });

    test('a disabled key and an expired key', async () => {
      const k = await createKey('skr-disabled');
      const version = k.key.kid.split('/').pop();
      assert.equal((await call('PATCH', `/keys/skr-disabled/${version}`, { attributes: { enabled: false } })).status, 200);
      await expectDenied('skr-disabled', authority.token(), 403, 'key.operation_not_allowed', /disabled/);
      await createKey('skr-expired', { attributes: { exp: Math.floor(Date.now() / 1000) - 10 } });
      await expectDenied('skr-expired', authority.token(), 403, 'key.operation_not_allowed', /expired/);
    });

    test('a caller without the release role, and an administrator before assigning it', async () => {
      const officer = await newClient(server, 'officer');
      await assignRole(server, officer.clientId, 'Key Vault Crypto Officer');
      const r = await server.send('POST', '/oauth2/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: officer.clientId, client_secret: officer.clientSecret }).toString(),
      });
      const officerToken = r.json().access_token as string;
      assert.equal((await call('GET', '/keys/skr', undefined, officerToken)).status, 200);
      const d = await call('POST', '/keys/skr/release', { target: authority.token() }, officerToken);
      assert.equal(d.status, 403);
      assert.equal(d.json.error.innererror.code, 'auth.forbidden');
      assert.match(d.json.error.message, /Release User/);
      // Key-scoped release role: this key only.
      await assignRole(server, officer.clientId, 'Key Vault Crypto Service Release User', '/keys/skr');
      assert.equal((await call('POST', '/keys/skr/release', { target: authority.token() }, officerToken)).status, 200);
      assert.equal((await call('POST', '/keys/skr-ops/release', { target: authority.token() }, officerToken)).status, 403);
    });

    test('a reader cannot create or use keys; an unassigned client can do nothing', async () => {
      const reader = await newClient(server, 'reader');
      await assignRole(server, reader.clientId, 'Key Vault Reader');
      const nobody = await newClient(server, 'nobody');
      const tok = async (c: { clientId: string; clientSecret: string }) =>
        (
          await server.send('POST', '/oauth2/token', {
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret }).toString(),
          })
        ).json().access_token as string;
      const rt = await tok(reader);
      assert.equal((await call('GET', '/keys/skr', undefined, rt)).status, 200);
      assert.equal((await call('POST', '/keys/r1/create', { kty: 'EC' }, rt)).status, 403);
      assert.equal((await call('GET', '/keys/skr', undefined, await tok(nobody))).status, 403);
      assert.equal((await adminJson(server, 'GET', '/admin/vault/roleAssignments')).json.value.some((a: any) => a.principalId === reader.clientId), true);
    });
  });

  describe('store consistency and the audit chain', () => {
    test('concurrent versions of one key are all kept and latest is the newest', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, () => call('POST', '/keys/conc/create', { kty: 'oct', key_size: 128 })));
      assert.ok(results.every((r) => r.status === 200));
      const versions = (await call('GET', '/keys/conc/versions')).json.value;
      assert.equal(versions.length, 8);
      const latest = (await call('GET', '/keys/conc')).json.key.kid;
      const row = await server.ctx.db.get<{ version: string }>('SELECT version FROM vault_key_versions WHERE name = ? ORDER BY seq DESC LIMIT 1', ['conc']);
      assert.ok(latest.endsWith(`/${row!.version}`));
    });

    test('the log verifies, and a changed entry is named with its typed code', async () => {
      await waitSequenced(server.ctx.db);
      const ok = await adminJson(server, 'GET', '/admin/vault/audit/verify');
      assert.equal(ok.json.ok, true, JSON.stringify(ok.json));
      assert.ok(ok.json.entries > 20);
      const row = await server.ctx.db.get<{ entry: string }>('SELECT entry FROM log_leaves WHERE id = (SELECT leaf_id FROM log_index WHERE idx = 5)');
      await server.ctx.db.run('UPDATE log_leaves SET entry = ? WHERE id = (SELECT leaf_id FROM log_index WHERE idx = 5)', [row!.entry.replace(/"time":"[^"]+"/, '"time":"2000-01-01T00:00:00.000Z"')]);
      const bad = await adminJson(server, 'GET', '/admin/vault/audit/verify');
      assert.equal(bad.json.ok, false);
      assert.equal(bad.json.code, 'log.entry_mismatch');
      assert.equal(bad.json.detail.index, 5);
      await server.ctx.db.run('UPDATE log_leaves SET entry = ? WHERE id = (SELECT leaf_id FROM log_index WHERE idx = 5)', [row!.entry]);
    });
  });
});
