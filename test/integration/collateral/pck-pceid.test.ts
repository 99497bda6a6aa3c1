/**
 * PCK certificates are for one PCE ID. The route fuzz (seed 99) asked `GET pckcerts?pceid=AAAA&qeid=EC`,
 * a request PCCS takes (pceid 4 hex digits, qeid at most 260: controllers/pckcertController.js); the
 * stand-in upstream answered the certificates of its default platform, whose PCE-ID is 0000, and the
 * server refused that answer (upstream.collateral_mismatch, 503). The server was right; the stand-in
 * answered for a PCE ID it was not asked. Here: the stand-in answers only the PCE ID it has certificates
 * for (404 otherwise, as PCS does for a platform it does not know); the server answers such a platform
 * 404; and an upstream that does answer another PCE ID's certificates is refused and nothing of it is
 * cached or served.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { skipWithoutFixtures } from '../../fixtures.js';
import { type PcsStandin, pckCertAnswer, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const CPUSVN = '0B0B0202FF0100000000000000000000';
/** What the stand-in knows: the PCE-ID of its default platform's certificate (the sgx-v3-phala quote). */
const KNOWN_PCE_ID = '0000';
const ROUTES = ['/sgx/certification/v3', '/sgx/certification/v4'];

describe('PCK certificates for a PCE ID the upstream has none for', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  let clock = new Date('2025-06-20T00:00:00Z');
  /** Past the 30 s a failed fetch on a miss is answered from memory (negative caching). */
  const pastNegativeTtl = () => {
    clock = new Date(clock.getTime() + 31_000);
  };
  before(async () => {
    up = await startPcsStandin('sgx-phala');
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url, upstreamTimeout: 2000 }, { now: () => clock });
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });

  test('the stand-in answers certificates only for the PCE ID it was asked (404 for another), pckcert and pckcerts', async () => {
    const get = async (q: string) => (await fetch(`${up.url}/sgx/certification/v4/${q}`)).status;
    assert.equal(await get(`pckcerts?pceid=${KNOWN_PCE_ID}&qeid=EC`), 200);
    assert.equal(await get('pckcerts?pceid=AAAA&qeid=EC'), 404);
    assert.equal(await get('pckcerts?pceid=aaaa&qeid=EC'), 404);
    assert.equal(await get(`pckcert?pceid=${KNOWN_PCE_ID}&qeid=EC&cpusvn=${CPUSVN}&pcesvn=0D00`), 200);
    assert.equal(await get(`pckcert?pceid=0001&qeid=EC&cpusvn=${CPUSVN}&pcesvn=0D00`), 404);
    const post = await fetch(`${up.url}/sgx/certification/v4/pckcerts`, { method: 'POST', body: JSON.stringify({ platformManifest: 'C1'.repeat(64), pceid: 'AAAA' }) });
    assert.equal(post.status, 404);
  });

  test('the fuzz seed 99 request: a well-formed PCE ID and QE ID the upstream does not know is a typed 404, asked upstream once', async () => {
    for (const prefix of ROUTES) {
      pastNegativeTtl();
      const before = up.count('pceid=AAAA');
      const r = await server.send('GET', `${prefix}/pckcerts?pceid=AAAA&qeid=EC`);
      assert.equal(r.status, 404, `${prefix}: ${r.text}`);
      assert.equal(r.headers['x-conclave-error-code'], 'collateral.not_found');
      assert.equal(up.count('pceid=AAAA') - before, 1, up.requests.slice(-4).join('\n'));
      // Asked again at once: the failed miss is answered from memory, not upstream.
      const repeat = await server.send('GET', `${prefix}/pckcerts?pceid=AAAA&qeid=EC`);
      assert.equal(repeat.headers['x-conclave-error-code'], 'collateral.not_found');
      assert.equal(up.count('pceid=AAAA') - before, 1, 'a repeated failed miss is not asked upstream');
      const one = await server.send('GET', `${prefix}/pckcert?pceid=AAAA&qeid=EC&cpusvn=${CPUSVN}&pcesvn=0D00`);
      assert.equal(one.status, 404, `${prefix}: ${one.text}`);
      assert.equal(one.headers['x-conclave-error-code'], 'collateral.not_found');
    }
  });

  test('an upstream answering another PCE ID’s certificates: refused (503 upstream.collateral_mismatch), never cached or served', async () => {
    const other = pckCertAnswer(['intel', 'sgx-v3-phala', 'quote.bin']);
    // The certificate set of the same platform, as PCS `pckcerts` shapes it (PCE-ID 0000 inside).
    const set = await fetch(`${up.url}/sgx/certification/v4/pckcerts?pceid=${KNOWN_PCE_ID}&qeid=EC`);
    const setAnswer = { status: 200, headers: Object.fromEntries([...set.headers].filter(([k]) => k === 'content-type' || k.startsWith('sgx-'))), body: await set.text() };
    for (const [path, answer] of [
      [`pckcerts?pceid=BBBB&qeid=${'5'.repeat(32)}`, setAnswer],
      [`pckcert?pceid=BBBB&qeid=${'5'.repeat(32)}&cpusvn=${CPUSVN}&pcesvn=0D00`, other],
    ] as const) {
      const url = `/sgx/certification/v4/${path}`;
      up.override('pceid=BBBB', answer);
      try {
        const r = await server.send('GET', url);
        assert.equal(r.status, 503, `${path}: ${r.text}`);
        assert.equal(r.headers['x-conclave-error-code'], 'upstream.collateral_mismatch');
        assert.match(r.text, /PCE-ID is 0000, expected BBBB/);
      } finally {
        up.override('pceid=BBBB', undefined);
      }
      // Nothing was cached: once the refused answer is no longer remembered (negative caching, 30 s), the
      // next request goes upstream again, and the (now honest) upstream's 404 is the answer.
      pastNegativeTtl();
      const asked = up.count('pceid=BBBB');
      const again = await server.send('GET', url);
      assert.equal(again.status, 404, `${path}: ${again.text}`);
      assert.equal(up.count('pceid=BBBB') - asked, 1, `${path}: not asked upstream again, so something was cached`);
    }
  });
});
