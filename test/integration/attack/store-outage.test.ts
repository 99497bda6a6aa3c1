/**
 * #14 item 7: during a PostgreSQL outage every request that needs the store is answered 503 with
 * Retry-After (never 500 "internal"), whatever route it takes; requests that do not need the store are
 * answered as usual; and when the store is back everything works again without a restart.
 * The sweep covers every operation in /openapi.json with the administrator's token, plus the store-bound
 * paths a workload takes (token, attestation, key creation and release).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { type PcsStandin, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type PrivateCluster, privateClusterUnavailable, startPrivateCluster } from '../../helpers/postgres.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { assignRole } from '../vault/harness.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

const unavailable = privateClusterUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`CI=true: ${unavailable}`);

const workload = generateRsaKeyPair(2048);
const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ ...workload.publicKey.export({ format: 'jwk' }), kid: 'w', key_ops: ['encrypt'] }] }));

async function eventually(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('store outage: 503 with Retry-After on every route, automatic recovery', { skip: unavailable }, () => {
  let cluster: PrivateCluster;
  let upstream: PcsStandin;
  let server: TestServer;
  let adminToken: string;
  let simToken: string;

  before(async () => {
    cluster = await startPrivateCluster();
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query('CREATE DATABASE conclave');
    await admin.end();
    upstream = await startPcsStandin();
    server = await startTestServer({
      db: cluster.url.replace(/\/postgres$/, '/conclave'),
      dbPoolSize: 4,
      simulate: true,
      upstreamIntel: upstream.url,
      upstreamAmd: upstream.url,
      upstreamNvidiaRim: upstream.url,
      upstreamNvidiaOcsp: `${upstream.url}/ocsp`,
    });
    adminToken = await server.adminToken();
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
    const auth = { authorization: `Bearer ${adminToken}` };
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: runtime });
    const attested = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
    assert.equal(attested.status, 200, attested.text);
    simToken = attested.json().token;
    const policy = { version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-attestation-type', equals: 'sgx' }] }] };
    const created = await server.send('POST', '/keys/k/create?api-version=7.4', {
      headers: auth,
      body: { kty: 'RSA-HSM', key_size: 2048, attributes: { exportable: true }, release_policy: { data: Buffer.from(JSON.stringify(policy)).toString('base64url') } },
    });
    assert.equal(created.status, 200, created.text.slice(0, 300));
  });
  after(async () => {
    cluster?.start();
    await server?.stop();
    await upstream?.close();
    cluster?.destroy();
  });

  /** Every operation of /openapi.json once, with the administrator's token and plausible parameters. */
  async function sweep(openapi: { paths: Record<string, Record<string, unknown>> }): Promise<{ what: string; status: number; retryAfter: unknown; text: string }[]> {
    const out: { what: string; status: number; retryAfter: unknown; text: string }[] = [];
    const auth = { authorization: `Bearer ${adminToken}` };
    const send = async (what: string, method: string, url: string, opts: { headers?: Record<string, string>; body?: string | object } = {}) => {
      const r = await server.send(method, url, { ...opts, headers: { ...auth, ...(opts.headers ?? {}) } });
      out.push({ what, status: r.status, retryAfter: r.headers['retry-after'], text: r.text.slice(0, 200) });
    };
    for (const [path, methods] of Object.entries(openapi.paths)) {
      for (const method of Object.keys(methods)) {
        const url = `${path.replace(/\{[^}]+\}/g, (p) => (p === '{name}' || p === '{key-name}' ? 'k' : p === '{tenant}' ? 'common' : 'x'))}?api-version=${path.startsWith('/keys') || path.startsWith('/deletedkeys') || path.startsWith('/rng') || path.startsWith('/providers') || path.startsWith('/backup') || path.startsWith('/restore') ? '7.4' : '2022-08-01'}`;
        await send(`${method.toUpperCase()} ${path}`, method.toUpperCase(), url, method === 'get' || method === 'delete' ? {} : { body: {} });
      }
    }
    // What a workload does: token, attestation of simulated evidence, release.
    await send('token', 'POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret }).toString() });
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: runtime });
    await send('attest', 'POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
    await send('release', 'POST', '/keys/k/release?api-version=7.4', { body: { target: simToken } });
    await send('get key', 'GET', '/keys/k?api-version=7.4');
    return out;
  }

  test('with the store down, no route answers 500, and each 5xx is 503 with Retry-After', async (t) => {
    const openapi = (await server.send('GET', '/openapi.json')).json();
    cluster.stop();
    await eventually(async () => (await server.send('GET', '/readyz')).status === 503);
    const answers = await sweep(openapi);
    const counts: Record<number, number> = {};
    for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
    t.diagnostic(`${answers.length} requests during the outage: ${JSON.stringify(counts)}`);
    const bad = answers.filter((a) => a.status >= 500 && (a.status !== 503 || !/^\d+$/.test(String(a.retryAfter))));
    assert.deepEqual(bad, []);
    // The store-bound paths are among the 503s (the sweep reached the store, it did not stop at validation).
    for (const what of ['token', 'release', 'get key']) {
      const a = answers.find((x) => x.what === what)!;
      assert.equal(a.status, 503, `${what}: ${a.status} ${a.text}`);
    }
    assert.equal((await server.send('GET', '/healthz')).status, 200);
  });

  test('with the store back, the same paths work again without a restart', async () => {
    cluster.start();
    await eventually(async () => (await server.send('GET', '/readyz')).status === 200);
    const r = await server.send('POST', '/keys/k/release?api-version=7.4', { headers: { authorization: `Bearer ${adminToken}` }, body: { target: simToken } });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal((await server.send('GET', '/keys/k?api-version=7.4', { headers: { authorization: `Bearer ${adminToken}` } })).status, 200);
  });
});
