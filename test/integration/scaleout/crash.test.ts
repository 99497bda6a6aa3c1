import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodePolicyJws, encodePolicyJws } from '../../../src/attestation/policy/index.js';
import { openDatabase } from '../../../src/storage/open.js';
import { createTestDatabase, postgresUnavailable } from '../../helpers/postgres.js';
import { startTestServer, tempDir } from '../../helpers/server.js';
import { type Replica, builtCliMissing, startReplica } from './replica.js';
import { akv, assertVaultStoreWhole, cliAuditVerify } from './vault.js';

/**
 * Crash safety: a replica SIGKILLed in the middle of a burst of writes leaves no half-written
 * record, loses no acknowledged write, and the store opens and serves again afterwards.
 */
const built = builtCliMissing();
const pgSkip = await postgresUnavailable();

const policyText = (n: number) => `version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type="burst", value="${n}"); };`;

interface Acknowledged {
  clients: string[];
  policies: number[];
}

/** Resolves once a write was acknowledged (polled every 10 ms; gives up after 60 s and lets the caller's assertion fail). */
async function firstAck(acknowledged: () => boolean, stopped: () => boolean): Promise<void> {
  const until = Date.now() + 60_000;
  while (!acknowledged() && !stopped() && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
}

/** Four writers hammer clients and policies until the replica dies; returns what was acknowledged. */
async function burstUntilKilled(r: Replica, killAfterMs: number): Promise<Acknowledged> {
  const token = await r.adminToken();
  const headers = { authorization: `Bearer ${token}` };
  const acked: Acknowledged = { clients: [], policies: [] };
  let n = 0;
  let dead = false;
  const writer = async (kind: 'client' | 'policy') => {
    while (!dead) {
      const i = ++n;
      try {
        if (kind === 'client') {
          const res = await r.send('POST', '/admin/clients', { headers, body: { displayName: `burst-${i}` } });
          if (res.status === 201) acked.clients.push(res.json().clientId as string);
        } else {
          const res = await r.send('PUT', '/policies/SgxEnclave?api-version=2020-10-01', { headers: { ...headers, 'content-type': 'text/plain' }, body: encodePolicyJws(policyText(i)) });
          if (res.status === 200) acked.policies.push(i);
        }
      } catch {
        // The connection died with the replica: this write was never acknowledged.
      }
    }
  };
  const writers = [writer('client'), writer('policy'), writer('client'), writer('policy')];
  // The kill comes killAfterMs into the burst, counted from its first acknowledged write (on a loaded
  // machine the first write can take longer than the whole window; a kill before it proves nothing).
  await firstAck(() => acked.clients.length + acked.policies.length > 0, () => dead);
  await new Promise((res) => setTimeout(res, killAfterMs));
  await r.kill();
  dead = true;
  await Promise.all(writers);
  return acked;
}

async function assertNoHalfWrites(dbUrl: string, acked: Acknowledged): Promise<void> {
  const db = await openDatabase(dbUrl);
  try {
    if (db.dialect === 'sqlite') assert.equal((await db.get<{ integrity_check: string }>('PRAGMA integrity_check'))?.integrity_check, 'ok');
    const clients = await db.all<{ client_id: string; secret_sha256: string; display_name: string; created_at: number }>('SELECT client_id, secret_sha256, display_name, created_at FROM clients');
    for (const c of clients) {
      assert.match(c.secret_sha256, /^[0-9a-f]{64}$/, `client ${c.client_id} has a broken secret hash`);
      assert.ok(c.display_name === 'admin' || /^burst-\d+$/.test(c.display_name), `client ${c.client_id} has a broken name`);
      assert.ok(c.created_at > 0);
    }
    const ids = new Set(clients.map((c) => c.client_id));
    for (const id of acked.clients) assert.ok(ids.has(id), `acknowledged client ${id} was lost`);
    const policy = await db.get<{ policy_text: string; policy_jws: string }>('SELECT policy_text, policy_jws FROM attestation_policies WHERE attestation_type = ?', ['SgxEnclave']);
    if (acked.policies.length > 0) {
      assert.ok(policy, 'acknowledged policies were lost');
      // Text and JWS are written by one statement; they must describe the same policy.
      assert.equal(decodePolicyJws(policy.policy_jws).policyText, policy.policy_text);
      const stored = Number(/value="(\d+)"/.exec(policy.policy_text)?.[1]);
      assert.ok(Number.isInteger(stored) && stored > 0, `stored policy text is not one the burst wrote: ${policy.policy_text}`);
      // Every acknowledged change bumped the version in the same transaction.
      const version = Number((await db.get<{ version: number }>('SELECT version FROM attestation_policy_version WHERE id = 1'))?.version);
      assert.ok(version >= acked.policies.length, `policy version ${version} < ${acked.policies.length} acknowledged changes`);
    }
  } finally {
    await db.close();
  }
}

/**
 * The store after the kill, served again: a server started in this process on the killed replica's data
 * dir and store (what a restarted replica runs, without a second Node start-up and module load), asked
 * over HTTPS as the replica was.
 */
async function restarted(dbUrl: string | undefined, dataDir: string): Promise<Pick<Replica, 'send' | 'adminToken' | 'stop'>> {
  // Software keys, as the replica had them (hsm: undefined keeps CONCLAVE_TEST_HSM out).
  const server = await startTestServer({ db: dbUrl ?? `sqlite:${join(dataDir, 'conclave.db')}`, hsm: undefined }, { dataDir });
  return { send: server.sendHttps, adminToken: () => server.adminToken(), stop: () => server.stop() };
}

async function crashAndRecover(dbUrl: string | undefined, dataDir: string): Promise<Acknowledged> {
  const first = await startReplica({ dataDir, ...(dbUrl ? { db: dbUrl } : {}) });
  const acked = await burstUntilKilled(first, 700);
  assert.ok(acked.clients.length + acked.policies.length > 0, 'the burst wrote nothing before the kill; the test proves nothing');
  await assertNoHalfWrites(dbUrl ?? `sqlite:${join(dataDir, 'conclave.db')}`, acked);
  const second = await restarted(dbUrl, dataDir);
  try {
    assert.equal((await second.send('GET', '/readyz')).status, 200);
    const r = await second.send('POST', '/admin/clients', { headers: { authorization: `Bearer ${await second.adminToken()}` }, body: { displayName: 'burst-0' } });
    assert.equal(r.status, 201, r.text);
  } finally {
    await second.stop();
  }
  return acked;
}

describe('scale-out: crash safety under SIGKILL', { skip: built }, () => {
  test('SQLite: no half-written client or policy, no acknowledged write lost', async () => {
    const dataDir = tempDir('conclave-crash-');
    try {
      await crashAndRecover(undefined, dataDir);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL: no half-written client or policy, no acknowledged write lost', { skip: pgSkip }, async () => {
    const store = await createTestDatabase();
    const dataDir = tempDir('conclave-crash-');
    try {
      await crashAndRecover(store.url, dataDir);
    } finally {
      await store.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('SQLite, vault: keys, versions and audit records are whole after the kill, versions gap-free, the audit chain verifies', async (t) => {
    const dataDir = tempDir('conclave-crash-vault-');
    try {
      t.diagnostic(await vaultCrashAndRecover(undefined, dataDir));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL, vault: keys, versions and audit records are whole after the kill, versions gap-free, the audit chain verifies', { skip: pgSkip }, async (t) => {
    const store = await createTestDatabase();
    const dataDir = tempDir('conclave-crash-vault-');
    try {
      t.diagnostic(await vaultCrashAndRecover(store.url, dataDir));
    } finally {
      await store.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Acknowledged key versions by key name. */
type AckedVersions = Map<string, string[]>;

const versionOf = (kid: string) => kid.split('/').at(-1)!;

/**
 * Writers create keys, add versions to them (rotate, and create on an existing name) and read them
 * (each call appends an audit record, the mutations inside their own transaction) until the replica
 * is killed; returns the versions whose creation was acknowledged.
 */
async function vaultBurstUntilKilled(r: Replica, killAfterMs: number): Promise<AckedVersions> {
  await r.adminToken();
  const acked: AckedVersions = new Map();
  const ack = (name: string, kid: string) => acked.set(name, [...(acked.get(name) ?? []), versionOf(kid)]);
  let n = 0;
  let dead = false;
  const pick = () => [...acked.keys()][Math.floor(Math.random() * acked.size)];
  const writer = async (kind: 'create' | 'rotate' | 'recreate' | 'read') => {
    while (!dead) {
      try {
        const name = kind === 'create' || acked.size === 0 ? `burst-${++n}` : pick()!;
        const res =
          kind === 'rotate' && acked.has(name)
            ? await akv(r, 'POST', `/keys/${name}/rotate`)
            : kind === 'read' && acked.has(name)
              ? await akv(r, 'GET', `/keys/${name}`)
              : await akv(r, 'POST', `/keys/${name}/create`, { kty: 'EC', crv: 'P-256' });
        if (res.status === 200 && !(kind === 'read' && acked.has(name))) ack(name, res.json().key.kid as string);
      } catch {
        // The connection died with the replica: this write was never acknowledged.
      }
    }
  };
  const writers = [writer('create'), writer('rotate'), writer('recreate'), writer('rotate'), writer('read')];
  await firstAck(() => acked.size > 0, () => dead);
  await new Promise((res) => setTimeout(res, killAfterMs));
  await r.kill();
  dead = true;
  await Promise.all(writers);
  return acked;
}

async function assertVaultWhole(dbUrl: string, acked: AckedVersions): Promise<void> {
  const db = await openDatabase(dbUrl);
  try {
    if (db.dialect === 'sqlite') assert.equal((await db.get<{ integrity_check: string }>('PRAGMA integrity_check'))?.integrity_check, 'ok');
    const { versions } = await assertVaultStoreWhole(db);
    for (const [name, ids] of acked) {
      const stored = new Set((await db.all<{ version: string }>('SELECT version FROM vault_key_versions WHERE name = ?', [name])).map((v) => v.version));
      for (const id of ids) assert.ok(stored.has(id), `acknowledged version ${name}/${id} was lost`);
      assert.ok((versions.get(name) ?? 0) >= ids.length);
    }
  } finally {
    await db.close();
  }
}

async function vaultCrashAndRecover(dbUrl: string | undefined, dataDir: string): Promise<string> {
  const url = dbUrl ?? `sqlite:${join(dataDir, 'conclave.db')}`;
  const opts = { dataDir, ...(dbUrl ? { db: dbUrl } : {}) };
  const first = await startReplica(opts);
  // A random moment, so that repeated runs kill the replica inside different transactions.
  const acked = await vaultBurstUntilKilled(first, 600 + Math.floor(Math.random() * 400));
  const made = [...acked.values()].reduce((s, v) => s + v.length, 0);
  assert.ok(made > 0, 'the burst wrote nothing before the kill; the test proves nothing');
  await assertVaultWhole(url, acked);
  const before = cliAuditVerify(url, dataDir);
  assert.ok(before >= made, `${before} audit records for ${made} acknowledged versions`);

  const second = await restarted(dbUrl, dataDir);
  try {
    const name = [...acked.keys()][0]!;
    const rotated = await akv(second, 'POST', `/keys/${name}/rotate`);
    assert.equal(rotated.status, 200, rotated.text);
    acked.set(name, [...acked.get(name)!, versionOf(rotated.json().key.kid as string)]);
    const verify = await second.send('GET', '/admin/vault/audit/verify', { headers: { authorization: `Bearer ${await second.adminToken()}` } });
    assert.equal(verify.status, 200, verify.text);
    assert.equal(verify.json().ok, true, verify.text);
    // The log continues from what the killed replica left: the rotation's record comes after it.
    assert.ok(verify.json().records > before);
  } finally {
    await second.stop();
  }
  await assertVaultWhole(url, acked);
  return `${made} versions of ${acked.size} keys acknowledged before the kill, ${before} audit records`;
}
