/**
 * Managed HSM's access control API over raw HTTPS (the Python KeyVaultAccessControlClient drives the same
 * routes in test/integration/vault/python.test.ts): built-in definitions with Azure's ids, a custom role
 * that grants release only, what wildcards do not grant, and the error paths.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, akvCall, type AuthorityStandIn, newClient, policyFor, startAuthority, startVault } from './harness.js';

const API = '7.4-preview.1';
const AT = '/providers/Microsoft.Authorization';
const RELEASE = 'Microsoft.KeyVault/managedHsm/keys/release/action';

let server: TestServer;
let authority: AuthorityStandIn;
let user: { clientId: string; clientSecret: string };

async function as(who: { clientId: string; clientSecret: string }, method: string, path: string, body?: unknown, apiVersion = API) {
  const t = await server.send('POST', '/oauth2/token', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: who.clientId, client_secret: who.clientSecret }).toString(),
  });
  const r = await server.send(method, `${path}${path.includes('?') ? '&' : '?'}api-version=${apiVersion}`, {
    headers: { authorization: `Bearer ${t.json().access_token}` },
    ...(body !== undefined ? { body: body as object } : {}),
  });
  return { status: r.status, json: r.text ? JSON.parse(r.text) : undefined };
}

const admin = (method: string, path: string, body?: unknown) => akvCall(server, method, path, body, API);

describe('Managed HSM access control API', () => {
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
    authority = await startAuthority(server);
    assert.equal((await akvCall(server, 'POST', '/keys/skr/create', {
      kty: 'EC-HSM',
      crv: 'P-256',
      attributes: { exportable: true },
      release_policy: { data: Buffer.from(policyFor(authority.url)).toString('base64url') },
    })).status, 200);
    await server.send('PUT', '/admin/vault/authorities', { headers: { authorization: `Bearer ${await server.adminToken()}` }, body: { authorities: [authority.url] } });
    user = await newClient(server, 'workload');
  });
  after(async () => {
    await authority?.close();
    await server?.stop();
  });
  test('built-in definitions carry Azure ids and names, in the list and by name', async () => {
    const r = await admin('GET', `${AT}/roleDefinitions`);
    assert.equal(r.status, 200);
    const byName = new Map(r.json.value.map((d: any) => [d.properties.roleName, d]));
    for (const [name, id] of [
      ['Managed HSM Administrator', 'a290e904-7015-4bba-90c8-60543313cdb4'],
      ['Managed HSM Crypto User', '21dbd100-6940-42c2-9190-5d6cb909625b'],
      ['Managed HSM Crypto Service Release User', '21dbd100-6940-42c2-9190-5d6cb909625c'],
      ['Key Vault Crypto Service Release User', '08bbd89e-9f13-488c-ac41-acfcb10c90ab'],
    ]) {
      const d: any = byName.get(name);
      assert.equal(d?.name, id, name);
      assert.equal(d.id, `Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/${id}`);
      assert.equal(d.properties.type, 'AKVBuiltInRole');
    }
    const one = await admin('GET', `/keys${AT}/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625c`);
    assert.deepEqual(one.json.properties.permissions[0].dataActions, [RELEASE]);
    assert.ok(!(byName.get('Managed HSM Crypto User') as any).properties.permissions[0].dataActions.includes(RELEASE), 'no built-in management role releases');
  });

  test('a custom role that grants release only: the principal releases and can do nothing else', async () => {
    const defName = randomUUID();
    const put = await admin('PUT', `${AT}/roleDefinitions/${defName}`, { properties: { roleName: 'Release only', description: 'SKR', type: 'CustomRole', permissions: [{ dataActions: [RELEASE] }], assignableScopes: ['/'] } });
    assert.equal(put.status, 201, JSON.stringify(put.json));
    assert.equal(put.json.properties.type, 'CustomRole');
    const denied = await as(user, 'POST', '/keys/skr/release', { target: authority.token() });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.innererror.code, 'auth.forbidden');
    const name = randomUUID();
    const a = await admin('PUT', `${AT}/roleAssignments/${name}`, { properties: { roleDefinitionId: put.json.id, principalId: user.clientId } });
    assert.equal(a.status, 201, JSON.stringify(a.json));
    assert.deepEqual(a.json, {
      id: `/providers/Microsoft.Authorization/roleAssignments/${name}`,
      name,
      type: 'Microsoft.Authorization/roleAssignments',
      properties: { scope: '/', roleDefinitionId: put.json.id, principalId: user.clientId },
    });
    const released = await as(user, 'POST', '/keys/skr/release', { target: authority.token() });
    assert.equal(released.status, 200, JSON.stringify(released.json));
    assert.equal((await as(user, 'GET', '/keys/skr')).status, 403);
    assert.equal((await as(user, 'POST', '/keys/other/create', { kty: 'EC', crv: 'P-256' })).status, 403);
    // in use: the definition stays until its assignments go
    const inUse = await admin('DELETE', `${AT}/roleDefinitions/${defName}`);
    assert.equal(inUse.status, 409);
    const del = await admin('DELETE', `${AT}/roleAssignments/${name}`);
    assert.equal(del.status, 200);
    assert.equal(del.json.name, name);
    assert.equal((await as(user, 'POST', '/keys/skr/release', { target: authority.token() })).status, 403);
    assert.equal((await admin('DELETE', `${AT}/roleDefinitions/${defName}`)).status, 200);
    assert.equal((await admin('GET', `${AT}/roleDefinitions/${defName}`)).status, 404);
  });

  test('a wildcard over keys grants key management but never release', async () => {
    const def = randomUUID();
    await admin('PUT', `${AT}/roleDefinitions/${def}`, { properties: { roleName: 'All keys', permissions: [{ dataActions: ['Microsoft.KeyVault/managedHsm/keys/*'] }] } });
    const other = await newClient(server, 'wildcard');
    assert.equal((await admin('PUT', `/keys${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: def, principalId: other.clientId } })).status, 201);
    assert.equal((await as(other, 'GET', '/keys/skr')).status, 200);
    assert.equal((await as(other, 'POST', '/keys/skr/release', { target: authority.token() })).status, 403);
    // scope /keys does not reach vault-wide operations such as role management
    assert.equal((await as(other, 'GET', `${AT}/roleAssignments`)).status, 403);
  });

  test("a wildcard in Key Vault's spelling grants what it prefixes, as Managed HSM's does, never release", async () => {
    // docs/vault.md: Key Vault's vaults/keys/… spellings are accepted and a trailing * matches every known
    // action it prefixes. A custom role with dataActions ["Microsoft.KeyVault/vaults/keys/*"] was taken (201)
    // and then granted nothing: the wildcard was matched against Managed HSM's spelling only.
    for (const grant of ['Microsoft.KeyVault/vaults/keys/*', 'Microsoft.KeyVault/vaults/*']) {
      const def = randomUUID();
      assert.equal((await admin('PUT', `${AT}/roleDefinitions/${def}`, { properties: { roleName: `KV ${grant}`, permissions: [{ dataActions: [grant] }] } })).status, 201);
      const c = await newClient(server, `kv wildcard ${grant}`);
      assert.equal((await admin('PUT', `/keys${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: def, principalId: c.clientId } })).status, 201);
      assert.equal((await as(c, 'GET', '/keys/skr')).status, 200, `${grant} grants read`);
      assert.equal((await as(c, 'POST', '/keys/skr/release', { target: authority.token() })).status, 403, `${grant} never grants release`);
      assert.equal((await as(c, 'GET', `${AT}/roleAssignments`)).status, 403, 'nor role management');
    }
  });

  test('notDataActions subtract; a per-key scope covers that key only (in any case)', async () => {
    const def = randomUUID();
    await admin('PUT', `${AT}/roleDefinitions/${def}`, {
      properties: { roleName: 'Read not deleted', permissions: [{ dataActions: ['Microsoft.KeyVault/managedHsm/keys/*'], notDataActions: ['Microsoft.KeyVault/managedHsm/keys/read/action'] }] },
    });
    const c = await newClient(server, 'scoped');
    assert.equal((await admin('PUT', `/keys/SKR${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: def, principalId: c.clientId } })).status, 201);
    assert.equal((await as(c, 'GET', '/keys/skr')).status, 403, 'read is subtracted');
    assert.equal((await as(c, 'POST', '/keys/skr/sign', { alg: 'ES256', value: Buffer.alloc(32).toString('base64url') })).status, 200);
    await admin('POST', '/keys/other2/create', { kty: 'EC', crv: 'P-256' });
    assert.equal((await as(c, 'POST', '/keys/other2/sign', { alg: 'ES256', value: Buffer.alloc(32).toString('base64url') })).status, 403);
  });

  test('a wildcard in notDataActions subtracts release too, in either spelling; one that does not cover release leaves it', async () => {
    // Attack: wildcards never grant release or export, and the same matcher decided what notDataActions
    // subtract, so a role granting release with notDataActions ".../keys/*" (or ".../keys/release/*", or
    // Key Vault's "Microsoft.KeyVault/vaults/keys/*") still released: a deny narrower than it reads.
    const cases: [string, number][] = [
      ['Microsoft.KeyVault/managedHsm/keys/*', 403],
      ['Microsoft.KeyVault/managedHsm/keys/release/*', 403],
      ['Microsoft.KeyVault/managedHsm/*', 403],
      ['Microsoft.KeyVault/vaults/keys/*', 403],
      ['Microsoft.KeyVault/vaults/keys/release/*', 403],
      ['Microsoft.KeyVault/managedHsm/keys/read/*', 200],
      ['Microsoft.KeyVault/vaults/keys/read', 200],
    ];
    for (const [deny, status] of cases) {
      const def = randomUUID();
      const put = await admin('PUT', `${AT}/roleDefinitions/${def}`, { properties: { roleName: `Release but not ${deny}`, permissions: [{ dataActions: [RELEASE], notDataActions: [deny] }] } });
      assert.equal(put.status, 201, JSON.stringify(put.json));
      const c = await newClient(server, `deny ${deny}`);
      assert.equal((await admin('PUT', `${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: def, principalId: c.clientId } })).status, 201);
      const r = await as(c, 'POST', '/keys/skr/release', { target: authority.token() });
      assert.equal(r.status, status, `notDataActions [${deny}]: ${r.json?.value ? 'the key was released' : JSON.stringify(r.json?.error)}`);
      if (status === 403) assert.equal(r.json.error.innererror.code, 'auth.forbidden');
    }
  });

  test('a caller without create or import learns nothing of the keys: the refusal names the key as asked', async () => {
    // Attack: create and import looked the name up (its stored spelling, in any case) before the permission
    // check, and the 403 named the stored spelling: asking for SKR and reading "on key skr" told a caller
    // with no role at all that a key of that name exists (an absent name came back as asked).
    const nobody = await newClient(server, 'no roles');
    for (const [method, path, body] of [
      ['POST', '/keys/SKR/create', { kty: 'EC', crv: 'P-256' }],
      ['PUT', '/keys/SKR', { key: { kty: 'oct', k: Buffer.alloc(32).toString('base64url') } }],
    ] as const) {
      const r = await as(nobody, method, path, body);
      assert.equal(r.status, 403, JSON.stringify(r.json));
      assert.match(r.json.error.message, /on key SKR\./, `${method} ${path}: ${r.json.error.message}`);
      assert.equal(r.json.error.innererror.code, 'auth.forbidden');
    }
  });

  test('a Policy Administrator (not the bootstrap admin) manages assignments', async () => {
    const pa = await newClient(server, 'policy admin');
    await admin('PUT', `${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: '4bd23610-cdcf-4971-bdee-bdc562cc28e4', principalId: pa.clientId } });
    const r = await as(pa, 'PUT', `${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: 'Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/2c18b078-7c48-4d3a-af88-5a3a1b3f82b3', principalId: 'someone' } });
    assert.equal(r.status, 201);
    const list = await as(pa, 'GET', `${AT}/roleAssignments?$filter=${encodeURIComponent("principalId eq 'someone'")}`);
    assert.equal(list.json.value.length, 1);
    assert.equal((await as(pa, 'GET', '/keys/skr')).status, 403, 'roles, not keys');
  });

  test('error paths', async () => {
    const bad = async (method: string, path: string, body: unknown, status: number, code: string, re?: RegExp) => {
      const r = await admin(method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.innererror.code, code);
      if (re) assert.match(r.json.error.message, re);
      return r;
    };
    await bad('PUT', `${AT}/roleDefinitions/${randomUUID()}`, { properties: { roleName: 'x', permissions: [{ dataActions: ['Microsoft.KeyVault/managedHsm/keys/teleport/action'] }] } }, 400, 'role.invalid', /unknown data action/);
    await bad('PUT', `${AT}/roleDefinitions/not-a-guid`, { properties: { roleName: 'x' } }, 400, 'role.invalid', /GUID/);
    await bad('PUT', `${AT}/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625c`, { properties: { roleName: 'mine' } }, 409, 'role.conflict', /built-in/);
    await bad('PUT', `/keys${AT}/roleDefinitions/${randomUUID()}`, { properties: { roleName: 'y' } }, 400, 'role.invalid');
    await bad('PUT', `${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: randomUUID(), principalId: 'p' } }, 404, 'role.definition_not_found');
    await bad('PUT', `${AT}/roleAssignments/${randomUUID()}`, { properties: { principalId: 'p' } }, 400, 'role.invalid');
    const missing = await bad('GET', `${AT}/roleAssignments/${randomUUID()}`, undefined, 404, 'role.assignment_not_found');
    assert.equal(missing.json.error.code, 'RoleAssignmentNotFound');
    await bad('DELETE', `${AT}/roleAssignments/${randomUUID()}`, undefined, 404, 'role.assignment_not_found');
    await bad('GET', `${AT}/roleAssignments?$filter=${encodeURIComponent('whatever')}`, undefined, 400, 'role.invalid');
    const name = randomUUID();
    await admin('PUT', `${AT}/roleAssignments/${name}`, { properties: { roleDefinitionId: '2c18b078-7c48-4d3a-af88-5a3a1b3f82b3', principalId: 'dup' } });
    await bad('PUT', `${AT}/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: '2c18b078-7c48-4d3a-af88-5a3a1b3f82b3', principalId: 'dup' } }, 409, 'role.conflict');
    await bad('PUT', `${AT}/roleAssignments/${name}`, { properties: { roleDefinitionId: '2c18b078-7c48-4d3a-af88-5a3a1b3f82b3', principalId: 'other' } }, 409, 'role.conflict');
    const v71 = await akvCall(server, 'GET', `${AT}/roleDefinitions`, undefined, '7.1');
    assert.equal(v71.status, 400, 'not in api-version 7.1');
  });

  test('each audit record holds the status the client got: 201 for a created role definition or assignment (a repeated PUT too: every call leaves its record), 200 or 204 for a removed one', async () => {
    const got: [string, number, (r: any) => boolean][] = [];
    const defName = randomUUID();
    const def = await admin('PUT', `${AT}/roleDefinitions/${defName}`, { properties: { roleName: `Audited ${defName}`, permissions: [{ dataActions: [RELEASE] }], assignableScopes: ['/'] } });
    got.push(['setRoleDefinition', def.status, (r) => r.detail?.name === defName]);
    const name = randomUUID();
    const body = { properties: { roleDefinitionId: def.json.id, principalId: `audited-${name}` } };
    const made = await admin('PUT', `${AT}/roleAssignments/${name}`, body);
    const again = await admin('PUT', `${AT}/roleAssignments/${name}`, body);
    const mine = (r: any) => r.detail?.id === name;
    got.push(['roleAssign', made.status, mine], ['roleAssign', again.status, mine]);
    got.push(['roleRemove', (await admin('DELETE', `${AT}/roleAssignments/${name}`)).status, mine]);
    const viaAdmin = await adminJson(server, 'PUT', '/admin/vault/roleAssignments', { principalId: `audited-admin-${name}`, role: 'Key Vault Reader', scope: '/' });
    const adminId = viaAdmin.json.id;
    const viaAdminAgain = await adminJson(server, 'PUT', '/admin/vault/roleAssignments', { principalId: `audited-admin-${name}`, role: 'Key Vault Reader', scope: '/' });
    assert.equal(viaAdminAgain.json.id, adminId, 'conclave role assign returns the equal assignment made before');
    got.push(['roleAssign', viaAdmin.status, (r) => r.detail?.id === adminId], ['roleAssign', viaAdminAgain.status, (r) => r.detail?.id === adminId]);
    got.push(['roleRemove', (await adminJson(server, 'DELETE', `/admin/vault/roleAssignments/${adminId}`)).status, (r) => r.detail?.id === adminId]);
    assert.deepEqual(got.map(([, status]) => status), [201, 201, 201, 200, 200, 200, 204]);
    const records = (await adminJson(server, 'GET', '/admin/vault/audit?from=1&limit=100000')).json.value.map((x: { record: any }) => x.record);
    const used = new Set<unknown>();
    for (const [operation, status, which] of got) {
      const r = records.find((x: any) => x.operation === operation && x.result === 'success' && which(x) && !used.has(x));
      assert.ok(r, `an audit record of ${operation}`);
      used.add(r);
      assert.equal(r.status, status, `${operation}: the client got ${status}, the audit says ${r.status}`);
    }
  });
});
