import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFixtureJson, skipWithoutFixtures } from '../../fixtures.js';
import { collateralOnStandin } from '../../helpers/collateral-suite.js';
import type { PcsStandin } from '../../helpers/pcs-standin.js';
import type { TestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const teepot = (f: string) => readFixtureJson<Record<string, string>>('intel', 'pcs-responses-teepot', f);
/** What differs between two answers to the same request by design: their ids and the date. */
const PER_REQUEST = new Set(['request-id', 'x-ms-request-id', 'date']);
const stable = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => !PER_REQUEST.has(k)));

// A warm GET is answered from the memo of prepared answers in the collateral routes' onRequest hook, before
// the edge check and the handler (server/collateral/routes.ts replay): these hold it to what the handler does.
describe('collateral service: warm GETs answered from the memo keep every check and header of the route', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  let clock = new Date('2025-06-01T00:00:00Z');
  const TCB = '/sgx/certification/v4/tcb?fmspc=00906ED50000';
  const THIM_TCB = `/metadata/THIM${TCB}`;
  collateralOnStandin('teepot', () => clock, (u, s) => {
    up = u;
    server = s;
  });

  test('a warm answer is the cold one: same status, headers and bytes, a fresh Request-ID (or the one sent)', async () => {
    const cold = await server.send('GET', TCB);
    assert.equal(cold.status, 200);
    const warm = await server.send('GET', TCB);
    assert.equal(warm.status, 200);
    assert.equal(warm.text, teepot('sgx_tcb_info_00906ED50000.json').tcb_info_json);
    assert.deepEqual(stable(warm.headers), stable(cold.headers));
    assert.match(String(warm.headers['request-id']), /^[0-9a-f]{32}$/);
    assert.notEqual(warm.headers['request-id'], cold.headers['request-id']);
    assert.ok(warm.headers['x-ms-request-id']);
    const echoed = await server.send('GET', TCB, { headers: { 'Request-ID': 'client-chosen-id-7' } });
    assert.equal(echoed.headers['request-id'], 'client-chosen-id-7');
    const head = await server.send('HEAD', TCB);
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
  });

  test('THIM: a URL answered before still needs Metadata: true', async () => {
    const yes = await server.send('GET', THIM_TCB, { headers: { Metadata: 'true' } });
    assert.equal(yes.status, 200);
    const no = await server.send('GET', THIM_TCB);
    assert.equal(no.status, 400);
    assert.match(String(no.headers['request-id']), /^[0-9a-f]{32}$/);
    const wrong = await server.send('GET', THIM_TCB, { headers: { Metadata: 'false' } });
    assert.equal(wrong.status, 400);
    const again = await server.send('GET', THIM_TCB, { headers: { Metadata: 'TRUE' } });
    assert.equal(again.status, 200);
    assert.equal(again.text, yes.text);
  });

  test('attack: THIM spelled with escaped letters (the router decodes them) still needs Metadata: true when warm', async () => {
    // The replay hook told THIM from PCS by the raw URL, the router routes the decoded path: a warm
    // /metadata/%54HIM/… was replayed without the header the THIM route requires.
    for (const escaped of [THIM_TCB.replace('/THIM/', '/%54HIM/'), THIM_TCB.replace('/metadata/', '/%6detadata/')]) {
      const yes = await server.send('GET', escaped, { headers: { Metadata: 'true' } });
      assert.equal(yes.status, 200, `${escaped} reaches the THIM route`);
      const no = await server.send('GET', escaped);
      assert.equal(no.status, 400, `${escaped} without Metadata: true`);
    }
  });

  test('the edge checks still refuse what they refused: a repeated query parameter, a malformed one', async () => {
    assert.equal((await server.send('GET', TCB)).status, 200);
    const twice = await server.send('GET', `${TCB}&fmspc=00906ED50000`);
    assert.equal(twice.status, 400);
    for (let i = 0; i < 2; i++) assert.equal((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=zz')).status, 400);
  });

  test('past its signed nextUpdate a warm answer carries the stale Warning (upstream stopped)', async () => {
    assert.equal((await server.send('GET', TCB)).headers.warning, undefined);
    await up.close();
    clock = new Date('2026-06-01T00:00:00Z');
    const r = await server.send('GET', TCB);
    assert.equal(r.status, 200);
    assert.equal(r.text, teepot('sgx_tcb_info_00906ED50000.json').tcb_info_json);
    assert.equal(r.headers.warning, '110 - "Response is Stale"');
    assert.equal((await server.send('GET', TCB)).headers.warning, '110 - "Response is Stale"');
  });
});
