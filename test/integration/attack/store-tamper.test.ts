/**
 * #14 items 4 and 11: write access to the store alone must not release a non-exportable key, grant a
 * role, add a trusted authority, take over a client or a console session, or change what is served. Every security-relevant row carries a MAC under
 * the master key; a changed row is refused with `store.integrity`, naming the object, never used or
 * served. A corrupt sealed blob is the same typed error, naming its object, not a 500 "internal".
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSealer } from '../../../src/hsm/master-key.js';
import { encodePolicyJws } from '../../../src/attestation/policy/index.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { newPolicySigner } from '../../helpers/policy-signer.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { type AuthorityStandIn, adminJson, assignRole, credentialFor, newClient, policyFor, startAuthority, startVault } from '../vault/harness.js';

const CRYPTO_OFFICER = '14b46e9e-c2b7-41b4-b07b-48a6ebf60603';

describe('store tampering is detected and refused', () => {
  let vault: TestServer;
  let authority: AuthorityStandIn;
  const auth = async () => ({ authorization: `Bearer ${await vault.adminToken()}` });
  const create = async (name: string, exportable: boolean) => {
    const r = await vault.send('POST', `/keys/${name}/create?api-version=7.4`, {
      headers: await auth(),
      body: { kty: 'RSA-HSM', key_size: 2048, attributes: { exportable }, ...(exportable ? { release_policy: { data: Buffer.from(policyFor(authority.url)).toString('base64url') } } : {}) },
    });
    assert.equal(r.status, 200, r.text.slice(0, 300));
  };
  const release = async (name: string) => vault.send('POST', `/keys/${name}/release?api-version=7.4`, { headers: await auth(), body: { target: authority.token() } });
  const assertIntegrity = (r: { status: number; text: string }, object: RegExp) => {
    assert.notEqual(r.status, 200, r.text.slice(0, 300));
    const e = JSON.parse(r.text).error;
    assert.equal(e.innererror?.code ?? e.code, 'store.integrity', r.text.slice(0, 300));
    assert.match(e.message, object);
  };

  before(async () => {
    vault = await startVault();
    authority = await startAuthority(vault);
    assert.equal((await adminJson(vault, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(vault, vault.admin.clientId, 'Key Vault Crypto Service Release User');
    await create('open', true);
    await create('locked', false);
    await create('shown', false);
    assert.equal((await release('open')).status, 200, 'the exportable key releases: the baseline');
    assert.equal((await release('locked')).status, 403);
  });
  after(async () => {
    await authority?.close();
    await vault?.stop();
  });

  test('a non-exportable key made exportable with a release policy in its row does not release', async () => {
    await vault.ctx.db.run("UPDATE vault_key_versions SET exportable = 1, release_policy = (SELECT release_policy FROM vault_key_versions WHERE name = 'open') WHERE name = 'locked'");
    assertIntegrity(await release('locked'), /vault key locked version/);
  });

  test('a flipped bit in a public key row is not served', async () => {
    const row = await vault.ctx.db.get<{ public_jwk: string }>("SELECT public_jwk FROM vault_key_versions WHERE name = 'shown'");
    const jwk = JSON.parse(row!.public_jwk);
    jwk.n = (jwk.n[0] === 'A' ? 'B' : 'A') + jwk.n.slice(1);
    await vault.ctx.db.run("UPDATE vault_key_versions SET public_jwk = ? WHERE name = 'shown'", [JSON.stringify(jwk)]);
    assertIntegrity(await vault.send('GET', '/keys/shown?api-version=7.4', { headers: await auth() }), /vault key shown version/);
  });

  test('a role assignment inserted into the store grants nothing', async () => {
    const mallory = await newClient(vault, 'mallory');
    const token = await credentialFor(vault, mallory.clientId, mallory.clientSecret).getToken('https://vault.azure.net/.default');
    const asMallory = { authorization: `Bearer ${token!.token}` };
    assert.equal((await vault.send('GET', '/keys/open?api-version=7.4', { headers: asMallory })).status, 403);
    const id = randomUUID();
    await vault.ctx.db.run('INSERT INTO vault_role_assignments (id, principal_id, role, scope, created_at) VALUES (?, ?, ?, ?, ?)', [id, mallory.clientId, CRYPTO_OFFICER, '/', 1]);
    const r = await vault.send('GET', '/keys/open?api-version=7.4', { headers: asMallory });
    assertIntegrity(r, new RegExp(`role assignment ${id}`));
    await vault.ctx.db.run('DELETE FROM vault_role_assignments WHERE id = ?', [id]);
  });

  test('a trusted authority inserted into the store is refused, and with it nothing is released', async () => {
    await vault.ctx.db.run('INSERT INTO vault_authorities (authority, added_at) VALUES (?, ?)', ['https://127.0.0.1:9/evil', 1]);
    assertIntegrity(await vault.send('GET', '/admin/vault/authorities', { headers: await auth() }), /trusted authority https:\/\/127\.0\.0\.1:9\/evil/);
    assertIntegrity(await release('open'), /trusted authority/);
    await vault.ctx.db.run('DELETE FROM vault_authorities WHERE authority = ?', ['https://127.0.0.1:9/evil']);
    assert.equal((await release('open')).status, 200, 'removing the forged row restores service');
  });

  test("the administrator's secret hash replaced in the store gets no token", async () => {
    const form = (secret: string) => ({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: vault.admin.clientId, client_secret: secret }).toString() });
    const original = await vault.ctx.db.get<{ secret_sha256: string }>('SELECT secret_sha256 FROM clients WHERE client_id = ?', [vault.admin.clientId]);
    await vault.ctx.db.run('UPDATE clients SET secret_sha256 = ? WHERE client_id = ?', [createHash('sha256').update('mallory').digest('hex'), vault.admin.clientId]);
    const r = await vault.send('POST', '/oauth2/token', form('mallory'));
    assert.notEqual(r.status, 200, r.text);
    assert.equal(r.json().access_token, undefined);
    // A client inserted with a known secret hash gets no token either.
    await vault.ctx.db.run('INSERT INTO clients (client_id, secret_sha256, display_name, created_at) VALUES (?, ?, ?, ?)', ['mallory-client', createHash('sha256').update('mallory').digest('hex'), 'm', 1]);
    const inserted = await vault.send('POST', '/oauth2/token', { ...form('mallory'), body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'mallory-client', client_secret: 'mallory' }).toString() });
    assert.notEqual(inserted.status, 200, inserted.text);
    await vault.ctx.db.run('UPDATE clients SET secret_sha256 = ? WHERE client_id = ?', [original!.secret_sha256, vault.admin.clientId]);
    assert.equal((await vault.send('POST', '/oauth2/token', form(vault.admin.clientSecret))).status, 200, 'the original row works again');
  });

  test("a console session inserted into the store for the administrator authenticates nobody", async () => {
    const id = randomBytes(32).toString('base64url');
    const now = Date.now();
    await vault.ctx.db.run('INSERT INTO console_sessions (id_sha256, principal, method, created_ms, expires_ms, seen_ms) VALUES (?, ?, ?, ?, ?, ?)', [
      createHash('sha256').update(id).digest('hex'),
      JSON.stringify({ kind: 'client', id: vault.admin.clientId }),
      'client',
      now,
      now + 3600_000,
      now,
    ]);
    assert.equal(await vault.ctx.consoleSessions.resolve(id), undefined);
  });

  test('a corrupt or foreign sealed blob is store.integrity naming its object, not internal', () => {
    const sealer = createSealer(new Uint8Array(32).fill(1));
    const sealed = sealer.seal(new TextEncoder().encode('secret'), 'vault-key:k/v1');
    sealed[sealed.length - 1]! ^= 1;
    for (const [blob, aad] of [
      [sealed, 'vault-key:k/v1'],
      [createSealer(new Uint8Array(32).fill(2)).seal(new Uint8Array(4), 'service-key:access-token'), 'service-key:access-token'],
      [new Uint8Array(3), 'vault-key:k/v1'],
    ] as const) {
      assert.throws(
        () => sealer.open(blob, aad),
        (e: { code?: string; message?: string; detail?: { object?: string } }) => e.code === 'store.integrity' && typeof e.detail?.object === 'string' && e.message!.includes(e.detail.object),
      );
    }
  });
});

describe('attestation policies and policy-management certificates changed in the store are refused', () => {
  let server: TestServer;
  const headers = async () => ({ authorization: `Bearer ${await server.adminToken()}`, 'content-type': 'text/plain' });
  const attest = () => {
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: new TextEncoder().encode('{"a":1}') });
    return server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
  };
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server?.stop());

  test('a stored policy rewritten in the store issues no token', async () => {
    const deny = 'version=1.0; authorizationrules { => deny(); };';
    assert.equal((await server.send('PUT', '/policies/SgxEnclave?api-version=2022-08-01', { headers: await headers(), body: encodePolicyJws(deny) })).status, 200);
    assert.equal((await attest()).status, 400, 'the operator’s policy denies');
    await server.ctx.db.run("UPDATE attestation_policies SET policy_text = ? WHERE attestation_type = 'SgxEnclave'", ['version=1.0; authorizationrules { => permit(); };']);
    // …and bumps the version row, so every replica reloads it.
    await server.ctx.db.run('UPDATE attestation_policy_version SET version = version + 1 WHERE id = 1');
    // Replicas look at the version row every so often (POLICY_RECHECK_MS), not on every request.
    let r = await attest();
    for (let i = 0; i < 50 && r.status === 400 && r.json().error.code === 'attestation.policy_denied'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await attest();
    }
    assert.notEqual(r.status, 200, r.text.slice(0, 200));
    assert.equal(r.json().error.code, 'store.integrity');
    assert.match(r.json().error.message, /attestation policy SgxEnclave/);
  });

  test('a policy-management certificate inserted into the store is refused', async () => {
    const { certDer } = await newPolicySigner('mallory');
    await server.ctx.db.run('INSERT INTO attestation_policy_certificates (thumbprint, cert_der, added_at) VALUES (?, ?, ?)', [createHash('sha1').update(certDer).digest('hex'), Buffer.from(certDer), 1]);
    const r = await server.send('GET', '/certificates?api-version=2022-08-01', { headers: { authorization: `Bearer ${await server.adminToken()}` } });
    assert.notEqual(r.status, 200, r.text.slice(0, 200));
    assert.equal(r.json().error.code, 'store.integrity');
  });
});
