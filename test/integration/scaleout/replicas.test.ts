import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodePolicyJws } from '../../../src/attestation/policy/index.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { openDatabase } from '../../../src/storage/open.js';
import { decodeReleaseResponse, unwrapKeyTransfer } from '../../../src/vault/release/index.js';
import { skipWithoutFixtures } from '../../fixtures.js';
import { type PcsStandin, startPcsStandin } from '../../helpers/pcs-standin.js';
import { createTestDatabase, postgresUnavailable, type TestDatabase } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/server.js';
import { type Balancer, startBalancer } from './balancer.js';
import { type Replica, builtCliMissing, startReplica } from './replica.js';
import { akv, assertVaultStoreWhole, assignReleaseRole, cliAuditVerify, exportableKeyBody, listVersionIds, sgxReleasePolicy } from './vault.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

/**
 * Two stateless replicas of `conclave serve` on one PostgreSQL database and one shared data dir
 * (master key, TLS, admin credential), driven concurrently. See docs/scale-out.md.
 */
const skip = (await postgresUnavailable()) ?? builtCliMissing();

/** The attestation service re-reads its policy version at most this often (src/attestation/service.ts). */
const POLICY_STALENESS_BOUND_MS = 1000;
const MRENCLAVE_1 = 'c1'.repeat(32);
const MRENCLAVE_2 = 'c2'.repeat(32);

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
}

describe('scale-out: two replicas on one PostgreSQL', { skip }, () => {
  let store: TestDatabase;
  let dataDir: string;
  let a: Replica;
  let b: Replica;
  let balancer: Balancer;
  let PUBLIC_URL: string;
  /** Intel PCS stand-in (replays the vendor fixtures); absent without the vectors. */
  let pcs: PcsStandin | undefined;
  before(async () => {
    balancer = await startBalancer();
    if (!skipWithoutFixtures()) pcs = await startPcsStandin('teepot');
    PUBLIC_URL = balancer.url;
    store = await createTestDatabase();
    dataDir = tempDir('conclave-replicas-');
    // The simulated TEE files live in the data dir; create them before either replica reads them.
    loadOrCreateSimulatedTee(dataDir);
    // The first start initialises the shared data dir (master key, TLS, admin.json); see the report
    // on file races in docs/scale-out.md. The second replica then starts against a migrated store.
    // Behind a load balancer every replica names the balancer's URL as its public URL: it is the
    // issuer of access and attestation tokens, so a token from one replica is valid at the other.
    const extra = ['--public-url', PUBLIC_URL, ...(pcs ? ['--upstream-intel', pcs.url] : [])];
    a = await startReplica({ db: store.url, dataDir, simulate: true, extra });
    b = await startReplica({ db: store.url, dataDir, simulate: true, extra });
    balancer.targets.push(a.url, b.url);
  });
  after(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await balancer?.close();
    await pcs?.close();
    await store?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('both replicas are ready', async () => {
    assert.equal((await a.send('GET', '/readyz')).status, 200);
    assert.equal((await b.send('GET', '/readyz')).status, 200);
  });

  test('tokens are issued concurrently by both, and a token from one is accepted by the other', async () => {
    const admin = JSON.parse(readFileSync(join(dataDir, 'admin.json'), 'utf8')) as { clientId: string; clientSecret: string };
    const grant = new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.clientId, client_secret: admin.clientSecret }).toString();
    const issued = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: grant })));
    assert.deepEqual(issued.map((r) => r.status), Array(20).fill(200));
    const fromA = await a.adminToken();
    const fromB = await b.adminToken();
    // Both replicas sign with the one access-token key held in the store.
    const r1 = await b.send('GET', '/policies/SgxEnclave?api-version=2020-10-01', { headers: { authorization: `Bearer ${fromA}` } });
    const r2 = await a.send('GET', '/policies/SgxEnclave?api-version=2020-10-01', { headers: { authorization: `Bearer ${fromB}` } });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r2.status, 200, r2.text);
    const form = async (r: Replica) => {
      const res = await Promise.all(
        Array.from({ length: 10 }, () => r.send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=nobody&client_secret=x' })),
      );
      return res.map((x) => x.status);
    };
    assert.deepEqual([...(await form(a)), ...(await form(b))], Array(20).fill(401));
  });

  test('a policy set through replica A is in force for attestation through replica B within the bound', async () => {
    const tee = loadOrCreateSimulatedTee(dataDir);
    const runtimeData = new TextEncoder().encode(JSON.stringify({ replica: 'b' }));
    const attestB = () => b.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', { body: tee.evidence({ tee: 'sgx', runtimeData }).body });
    const before = await attestB();
    assert.equal(before.status, 200, before.text);
    assert.equal(claims(before.json().token)['replica-marker'], undefined);
    const text = 'version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type="replica-marker", value="set-through-a"); };';
    const put = await a.send('PUT', '/policies/SgxEnclave?api-version=2020-10-01', {
      headers: { authorization: `Bearer ${await a.adminToken()}`, 'content-type': 'text/plain' },
      body: encodePolicyJws(text),
    });
    assert.equal(put.status, 200, put.text);
    const setAt = Date.now();
    let seen: number | undefined;
    while (Date.now() - setAt < POLICY_STALENESS_BOUND_MS + 2000) {
      const r = await attestB();
      assert.equal(r.status, 200, r.text);
      if (claims(r.json().token)['replica-marker'] === 'set-through-a') {
        seen = Date.now() - setAt;
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(seen !== undefined, 'replica B never applied the policy set through replica A');
    // The bound plus slack for two HTTPS round trips on a loaded 2-core machine.
    assert.ok(seen <= POLICY_STALENESS_BOUND_MS + 1000, `replica B took ${seen} ms`);
  });

  /**
   * Misses for one item on both replicas make one upstream request: concurrent misses share one fetch
   * in-process, and replicas queue on a store lock per item, re-reading the store after waiting. The
   * fixture collateral is past its nextUpdate (2025-06-26), so each replica also wants a background
   * refresh; an item fetched within the last minute is not fetched again.
   */
  test('collateral cache misses through both replicas make one upstream request per item', { skip: skipWithoutFixtures() }, async () => {
    assert.ok(pcs);
    // The answers are delayed so that every miss on both replicas is in flight at once.
    pcs.setDelay(300);
    const items = ['/tdx/certification/v4/tcb?fmspc=00806F050000', '/sgx/certification/v4/qe/identity', '/tdx/certification/v4/qe/identity'];
    try {
      const rs = await Promise.all(items.flatMap((path) => Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).send('GET', path).then((r) => ({ path, r })))));
      for (const { path, r } of rs) assert.equal(r.status, 200, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
      for (const path of items) {
        const bodies = new Set(rs.filter((x) => x.path === path).map((x) => x.r.text));
        assert.equal(bodies.size, 1, `${path}: the replicas answered differently`);
        const route = path.split('?')[0]!;
        assert.equal(pcs.count(route), 1, `${route}: ${pcs.count(route)} upstream requests for one item (${pcs.requests.filter((q) => q.includes(route)).join(', ')})`);
      }
    } finally {
      pcs.setDelay(0);
    }
  });

  describe('vault', () => {
    const workload = generateRsaKeyPair(2048);
    const runtimeData = new TextEncoder().encode(JSON.stringify({ keys: [{ ...workload.publicKey.export({ format: 'jwk' }), kid: 'workload', key_ops: ['encrypt'] }] }));
    const attest = async (r: Replica, mrenclave: string): Promise<string> => {
      const ev = loadOrCreateSimulatedTee(dataDir).evidence({ tee: 'sgx', runtimeData, mrenclave });
      const res = await r.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
      assert.equal(res.status, 200, res.text);
      return res.json().token as string;
    };
    /** The released private key matches the public key the vault published for that version. */
    const assertReleased = (res: { status: number; text: string; json(): any }) => {
      assert.equal(res.status, 200, res.text);
      const released = (decodeReleaseResponse(res.json().value) as any).payload.response.key.key;
      const priv = createPrivateKey({ key: Buffer.from(unwrapKeyTransfer(released.key_hsm, workload.privateKey)), format: 'der', type: 'pkcs8' });
      assert.equal(createPublicKey(priv).export({ format: 'jwk' }).x, released.x);
    };
    const errorCode = (res: { text: string; json(): any }) => res.json()?.error?.innererror?.code as string | undefined;

    before(async () => {
      const admin = JSON.parse(readFileSync(join(dataDir, 'admin.json'), 'utf8')) as { clientId: string };
      await assignReleaseRole(a, admin.clientId);
    });

    test('concurrent creates, rotations, releases, policy updates and audit appends through both replicas leave gap-free versions and one verifying audit chain', async () => {
      const tag = randomBytes(3).toString('hex');
      const names = Array.from({ length: 4 }, (_, i) => `conc-${tag}-${i}`);
      const replicas = [a, b];
      const made = new Map<string, number>(names.map((n) => [n, 0]));
      let requests = 1; // the role assignment above
      const created = await Promise.all(names.map((n, i) => akv(replicas[i % 2]!, 'POST', `/keys/${n}/create`, exportableKeyBody(PUBLIC_URL, MRENCLAVE_1))));
      requests += created.length;
      for (const [i, r] of created.entries()) {
        assert.equal(r.status, 200, r.text);
        made.set(names[i]!, 1);
      }
      const target = await attest(b, MRENCLAVE_1);

      type Op = { kind: 'version' | 'release' | 'policy'; name: string; run: () => ReturnType<typeof akv> };
      const ops: Op[] = [];
      for (const name of names) {
        for (let j = 0; j < 6; j++) {
          const via = replicas[j % 2]!;
          ops.push({ kind: 'version', name, run: () => akv(via, 'POST', `/keys/${name}/rotate`) });
          ops.push({ kind: 'release', name, run: () => akv(replicas[(j + 1) % 2]!, 'POST', `/keys/${name}/release`, { target }) });
        }
        for (let j = 0; j < 2; j++) {
          ops.push({ kind: 'version', name, run: () => akv(replicas[j]!, 'POST', `/keys/${name}/create`, exportableKeyBody(PUBLIC_URL, MRENCLAVE_1)) });
          // Still releases to MRENCLAVE_1, so releases racing with it succeed whichever policy they read.
          const policy = sgxReleasePolicy(PUBLIC_URL, [MRENCLAVE_1, randomBytes(32).toString('hex')]);
          ops.push({ kind: 'policy', name, run: () => akv(replicas[(j + 1) % 2]!, 'PATCH', `/keys/${name}`, { release_policy: policy }) });
        }
      }
      ops.sort(() => Math.random() - 0.5);
      const results = await Promise.all(ops.map(async (op) => ({ op, res: await op.run() })));
      requests += results.length;
      for (const { op, res } of results) {
        if (op.kind === 'release') assertReleased(res);
        else assert.equal(res.status, 200, `${op.kind} ${op.name}: ${res.text}`);
        if (op.kind === 'version') made.set(op.name, made.get(op.name)! + 1);
      }

      for (const name of names) {
        const [onA, onB] = await Promise.all([listVersionIds(a, name), listVersionIds(b, name)]);
        requests += 2;
        assert.equal(onA.length, made.get(name), `${name}: ${onA.length} versions listed, ${made.get(name)} made`);
        assert.deepEqual(onB, onA, `${name}: the replicas list different versions`);
        assert.equal(new Set(onA).size, onA.length);
        for (const r of replicas) {
          const latest = await akv(r, 'GET', `/keys/${name}`);
          requests++;
          assert.equal(latest.status, 200, latest.text);
          assert.equal((latest.json().key.kid as string).split('/').at(-1), onA.at(-1), `${name}: latest is not the newest version`);
        }
      }

      const db = await openDatabase(store.url, { poolSize: 1 });
      let whole: Awaited<ReturnType<typeof assertVaultStoreWhole>>;
      try {
        whole = await assertVaultStoreWhole(db);
      } finally {
        await db.close();
      }
      for (const name of names) assert.equal(whole.versions.get(name), made.get(name));
      // Every vault request above (all granted) appended exactly one record; other tests may add more.
      assert.ok(whole.auditRecords >= requests, `${whole.auditRecords} audit records for ${requests} requests`);
      const token = await a.adminToken();
      const verified = await Promise.all([a, b].map((r) => r.send('GET', '/admin/vault/audit/verify', { headers: { authorization: `Bearer ${token}` } })));
      for (const v of verified) {
        assert.equal(v.status, 200, v.text);
        assert.equal(v.json().ok, true, v.text);
        assert.ok(v.json().records >= whole.auditRecords);
      }
      assert.ok(cliAuditVerify(store.url, dataDir) >= whole.auditRecords);
    });

    test('a release policy updated through replica A governs the very next release through replica B (read from the store per request)', async () => {
      const name = `flip-${randomBytes(3).toString('hex')}`;
      const created = await akv(a, 'POST', `/keys/${name}/create`, exportableKeyBody(PUBLIC_URL, MRENCLAVE_1));
      assert.equal(created.status, 200, created.text);
      const version = (created.json().key.kid as string).split('/').at(-1)!;
      const [t1, t2] = await Promise.all([attest(b, MRENCLAVE_1), attest(a, MRENCLAVE_2)]);
      assertReleased(await akv(b, 'POST', `/keys/${name}/release`, { target: t1 }));
      // No wait between the PATCH on A and the release on B: the vault keeps no policy cache, so the
      // staleness bound is zero; several flips rule out a lucky ordering.
      for (const [allowed, refused] of [[t2, t1], [t1, t2], [t2, t1]] as const) {
        const mrenclave = allowed === t1 ? MRENCLAVE_1 : MRENCLAVE_2;
        const patched = await akv(a, 'PATCH', `/keys/${name}/${version}`, { release_policy: sgxReleasePolicy(PUBLIC_URL, mrenclave) });
        assert.equal(patched.status, 200, patched.text);
        const denied = await akv(b, 'POST', `/keys/${name}/release`, { target: refused });
        assert.equal(denied.status, 403, denied.text);
        assert.equal(errorCode(denied), 'release.policy_unsatisfied');
        assert.equal(denied.json().value, undefined);
        assertReleased(await akv(b, 'POST', `/keys/${name}/release`, { target: allowed }));
      }
    });

    test('concurrent updates of one version through both replicas: an immutable policy or a disable is never overwritten by a stale update', async () => {
      for (let round = 0; round < 3; round++) {
        const name = `race-${randomBytes(3).toString('hex')}`;
        const created = await akv(a, 'POST', `/keys/${name}/create`, exportableKeyBody(PUBLIC_URL, MRENCLAVE_1));
        assert.equal(created.status, 200, created.text);
        const version = (created.json().key.kid as string).split('/').at(-1)!;
        const path = `/keys/${name}/${version}`;
        const pinned = sgxReleasePolicy(PUBLIC_URL, MRENCLAVE_2, true);
        const updates: { kind: 'pin' | 'disable' | 'policy' | 'tags'; body: object }[] = [];
        for (let j = 0; j < 8; j++) {
          updates.push({ kind: 'policy', body: { release_policy: sgxReleasePolicy(PUBLIC_URL, [MRENCLAVE_1, randomBytes(32).toString('hex')]) } });
          updates.push({ kind: 'tags', body: { tags: { n: String(j) } } });
        }
        updates.splice(6, 0, { kind: 'pin', body: { release_policy: pinned } }, { kind: 'disable', body: { attributes: { enabled: false } } });
        const results = await Promise.all(updates.map((u, j) => akv([a, b][j % 2]!, 'PATCH', path, u.body)));
        for (const [j, r] of results.entries()) {
          if (updates[j]!.kind === 'policy' && r.status !== 200) assert.equal(errorCode(r), 'release.policy_immutable', r.text);
          else assert.equal(r.status, 200, `${updates[j]!.kind}: ${r.text}`);
        }
        for (const r of [a, b]) {
          const now = (await akv(r, 'GET', path)).json();
          assert.equal(now.attributes.enabled, false, `round ${round}: a stale update re-enabled the disabled key`);
          assert.equal(now.release_policy.immutable, true, `round ${round}: a stale update replaced the immutable policy`);
          assert.deepEqual(JSON.parse(Buffer.from(now.release_policy.data, 'base64url').toString()).anyOf[0].allOf[0].equals, MRENCLAVE_2);
        }
      }
    });
  });
});
