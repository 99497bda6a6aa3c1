/**
 * #14 item 5: platform registration (`POST …/platforms`) needs PCCS's user token (or the admin token, or
 * the administrator's bearer token), is size-limited, rate-limited per client, and in `request` mode a
 * registration the cache already holds does not go upstream again: repeating one registration (or many
 * at once) costs one upstream fetch.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { STANDIN_PLATFORMS, type PcsStandin, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const USER = 'registration-user-token';
const PATH = '/sgx/certification/v4/platforms';

describe('platform registration: credential, size, rate, one upstream fetch per registration', () => {
  let up: PcsStandin;
  let server: TestServer;
  before(async () => {
    up = await startPcsStandin('sgx-phala');
    server = await startTestServer(
      { services: 'collateral', upstreamIntel: up.url, collateralMode: 'request', pccsUserTokenHash: createHash('sha512').update(USER).digest('hex') },
      { now: () => new Date('2025-06-20T00:00:00Z') },
    );
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });
  const register = (body: unknown, headers: Record<string, string> = { 'user-token': USER }) => server.send('POST', PATH, { headers, body: body as object });
  const manifestBody = (qeId: string) => ({ qe_id: qeId, pce_id: '0000', platform_manifest: STANDIN_PLATFORMS[1].manifest });

  test('without a credential, or with a wrong one, nothing is stored and nothing goes upstream', async () => {
    const before = up.requests.length;
    assert.equal((await register(manifestBody('55'.repeat(16)), {})).status, 401);
    assert.equal((await register(manifestBody('55'.repeat(16)), { 'user-token': 'guess' })).status, 401);
    assert.equal(up.requests.length, before);
    const queued = await server.ctx.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM collateral_registrations WHERE qe_id = ?', ['55'.repeat(16)]);
    assert.equal(Number(queued?.n), 0);
  });

  test('an oversize manifest is refused before it is stored', async () => {
    const r = await register({ qe_id: '66'.repeat(16), pce_id: '0000', platform_manifest: 'AB'.repeat(300_000) });
    assert.ok(r.status === 400 || r.status === 413, `${r.status} ${r.text.slice(0, 200)}`);
  });

  test('the same registration, repeated and concurrent, is fetched upstream once', async () => {
    const qeId = '77'.repeat(16);
    const before = up.count('/pckcerts');
    const first = await register(manifestBody(qeId));
    assert.equal(first.status, 200, first.text);
    const again = await Promise.all(Array.from({ length: 5 }, () => register(manifestBody(qeId))));
    for (const r of again) assert.equal(r.status, 200, r.text);
    assert.equal(up.count('/pckcerts') - before, 1, up.requests.slice(-8).join('\n'));
  });

  test('a burst of registrations from one client is rate-limited with 429 and Retry-After', async () => {
    let limited: { status: number; headers: Record<string, unknown> } | undefined;
    for (let i = 0; i < 400 && !limited; i++) {
      const r = await register({ qe_id: i.toString(16).padStart(32, '0'), pce_id: '0000', cpu_svn: '00'.repeat(16), pce_svn: '0000', enc_ppid: '00'.repeat(384) });
      if (r.status === 429) limited = r;
    }
    assert.ok(limited, 'no registration was rate-limited');
    assert.match(String(limited.headers['retry-after']), /^\d+$/);
  });
});
