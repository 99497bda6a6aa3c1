import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type PrivateCluster, privateClusterUnavailable, startPrivateCluster } from '../../helpers/postgres.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

/**
 * A store outage: PostgreSQL stops under a running server, then comes back. The server must answer
 * 503 (readiness and store-bound requests) while it is down and recover without a restart.
 */
const unavailable = privateClusterUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`CI=true: ${unavailable}`);

async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('scale-out: PostgreSQL outage and recovery', { skip: unavailable }, () => {
  let cluster: PrivateCluster;
  let server: TestServer;
  let tokenForm: string;
  let adminToken: string;
  before(async () => {
    cluster = await startPrivateCluster();
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query('CREATE DATABASE conclave');
    await admin.end();
    server = await startTestServer({ db: cluster.url.replace(/\/postgres$/, '/conclave'), dbPoolSize: 4 });
    tokenForm = new URLSearchParams({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret }).toString();
  });
  after(async () => {
    cluster?.start();
    await server?.stop();
    cluster?.destroy();
  });
  const token = () => server.send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: tokenForm });

  test('ready and serving while the store is up', async () => {
    assert.equal((await server.send('GET', '/readyz')).status, 200);
    assert.equal((await token()).status, 200);
    adminToken = await server.adminToken();
  });

  test('store down: readyz 503 and store-bound requests 503 with a JSON error; liveness stays 200', async () => {
    cluster.stop();
    const ready = await server.send('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.ok(ready.json().failed.includes('store'));
    const r = await token();
    assert.equal(r.status, 503);
    assert.equal(typeof r.json().error, 'string'); // the token endpoint answers in the RFC 6749 §5.2 shape
    const created = await server.send('POST', '/admin/clients', { headers: { authorization: `Bearer ${adminToken}` }, body: { displayName: 'during-outage' } });
    assert.equal(created.status, 503);
    assert.equal(created.json().error.code, 'store.unavailable');
    assert.equal((await server.send('GET', '/healthz')).status, 200);
  });

  test('store back: readiness and requests recover without a restart', async () => {
    cluster.start();
    await eventually(async () => (await server.send('GET', '/readyz')).status === 200);
    const r = await token();
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json().access_token);
    const created = await server.send('POST', '/admin/clients', { headers: { authorization: `Bearer ${adminToken}` }, body: { displayName: 'after-outage' } });
    assert.equal(created.status, 201, created.text);
    // Nothing of the refused write was stored.
    const names = (await server.ctx.db.all<{ display_name: string }>('SELECT display_name FROM clients ORDER BY display_name')).map((c) => c.display_name);
    assert.deepEqual(names, ['admin', 'after-outage']);
  });
});
