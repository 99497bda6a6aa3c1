import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { collateralFromPcsResponses, parseQuoteCollateral } from '../../../src/evidence/dcap/collateral.js';
import { verifyQuote } from '../../../src/evidence/dcap/index.js';
import { createCollateralStore } from '../../../src/storage/collateral-store.js';
import { fixturePath, readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../fixtures.js';
import { collateralOnStandin } from '../../helpers/collateral-suite.js';
import { type PcsStandin, jsonAnswer, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const teepot = (f: string) => readFixtureJson<Record<string, string>>('intel', 'pcs-responses-teepot', f);
const evalOf = (body: string) => (JSON.parse(body) as { tcbInfo: { tcbEvaluationDataNumber: number } }).tcbInfo.tcbEvaluationDataNumber;

describe('collateral cache: coalescing, stale serving, Retry-After', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  let clock = new Date('2025-06-01T00:00:00Z');
  collateralOnStandin('teepot', () => clock, (u, s) => {
    up = u;
    server = s;
  });

  test('a burst of 100 concurrent misses for one FMSPC makes exactly one upstream request', async () => {
    up.setDelay(200);
    const rs = await Promise.all(Array.from({ length: 100 }, () => server.send('GET', '/tdx/certification/v4/tcb?fmspc=00806F050000')));
    up.setDelay(0);
    assert.ok(rs.every((r) => r.status === 200 && r.text === teepot('tdx_tcb_info.json').tcb_info_json));
    assert.equal(up.count('/tdx/certification/v4/tcb'), 1);
  });

  test('a 429 with Retry-After is waited out and the retry succeeds', async () => {
    up.inject('/qve/identity', [{ status: 429, headers: { 'Retry-After': '1' } }]);
    const t0 = Date.now();
    const r = await server.send('GET', '/sgx/certification/v4/qve/identity');
    assert.equal(r.status, 200);
    assert.equal(r.text, teepot('sgx_qve_identity.json').enclave_identity_json);
    assert.equal(up.count('/qve/identity'), 2);
    assert.ok(Date.now() - t0 >= 900, 'the retry waited for Retry-After');
  });

  test('with the upstream stopped, cached items are still served, marked stale past nextUpdate', async () => {
    const fresh = await server.send('GET', '/tdx/certification/v4/tcb?fmspc=00806F050000');
    assert.equal(fresh.headers.warning, undefined);
    await up.close();
    clock = new Date('2025-07-15T00:00:00Z');
    const r = await server.send('GET', '/tdx/certification/v4/tcb?fmspc=00806F050000');
    assert.equal(r.status, 200);
    assert.equal(r.text, teepot('tdx_tcb_info.json').tcb_info_json);
    assert.equal(r.headers.warning, '110 - "Response is Stale"');
    const miss = await server.send('GET', '/tdx/certification/v4/tcb?fmspc=90C06F000000');
    assert.equal(miss.status, 503);
    assert.equal(miss.headers['error-code'], 'upstream.unavailable');
  });
});

describe('TCB baseline: pinned default, early / customParameter overrides, dry run', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  const clock = new Date('2025-06-01T00:00:00Z');
  let auth: Record<string, string>;
  before(async () => {
    up = await startPcsStandin('teepot');
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url }, { now: () => clock });
    auth = { authorization: `Bearer ${await server.adminToken()}` };
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });

  test('two evaluation numbers cached: the baseline (17) by default, update=early and customParameter select 19', async () => {
    assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&update=standard')).text), 17);
    assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&update=early')).text), 19);
    // Intel's list says 19 was published 2025-05-13: under 30 days old on 2025-06-01.
    assert.equal((await server.send('GET', '/sgx/certification/v4/tcbevaluationdatanumbers')).status, 200);
    const byDefault = await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000');
    assert.equal(byDefault.text, teepot('sgx_tcb_info_00906ED50000.json').tcb_info_json);
    const custom = Buffer.from('tcbEvaluationDataNumber=19;region=us central').toString('base64');
    const viaThim = await server.send('GET', `/metadata/THIM/sgx/certification/v4/tcb?fmspc=00906ED50000&customParameter=${encodeURIComponent(custom)}`, { headers: { Metadata: 'true' } });
    assert.equal(viaThim.text, teepot('sgx_tcb_info_early.json').tcb_info_json);
    const badKey = Buffer.from('tcbEvaluationDataNum=11').toString('base64');
    assert.equal((await server.send('GET', `/sgx/certification/v4/tcb?fmspc=00906ED50000&customParameter=${badKey}`)).status, 400);
  });

  test('dry run names the platforms whose status changes; PUT moves the default', async () => {
    const store = createCollateralStore(server.ctx.db);
    await store.recordPlatformSeen({ tee: 'sgx', fmspc: '00906ED50000', cpusvn: '1515020401800e000000000000000000', pcesvn: 13 }, 'attestation', clock);
    await store.recordPlatformSeen({ tee: 'sgx', fmspc: '00906ED50000', cpusvn: '1616020401800e000000000000000000', pcesvn: 13 }, 'attestation', clock);
    const dry = await server.send('POST', '/admin/collateral/baseline/dry-run', { headers: auth, body: { minAgeDays: 0 } });
    assert.equal(dry.status, 200, dry.text);
    const rows = dry.json().platforms as { cpusvn: string; current: string; candidate: string; changed: boolean }[];
    const moved = rows.filter((r) => r.changed);
    assert.equal(moved.length, 1);
    assert.deepEqual([moved[0]!.cpusvn, moved[0]!.current, moved[0]!.candidate], ['1515020401800e000000000000000000', 'SWHardeningNeeded', 'OutOfDate']);
    const put = await server.send('PUT', '/admin/collateral/baseline', { headers: auth, body: { minAgeDays: 0 } });
    assert.equal(put.status, 200, put.text);
    assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000')).text), 19);
    const pin = await server.send('PUT', '/admin/collateral/baseline', { headers: auth, body: { minAgeDays: 0, pinned: { 'sgx:00906ed50000': 17 } } });
    assert.equal(pin.status, 200);
    assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000')).text), 17);
    const view = await server.send('GET', '/admin/collateral/baseline', { headers: auth });
    assert.deepEqual(view.json().scopes.find((s: { scope: string }) => s.scope === 'sgx/v4/tcb/00906ED50000'), { scope: 'sgx/v4/tcb/00906ED50000', available: [17, 19], served: 17 });
  });

  test('regression (route fuzz, seed 1372194): a dry run whose days is not a number is a typed 400, not a 500', async () => {
    for (const days of ['{"value":"0"}', 'NaN', '-1', '99999']) {
      const r = await server.send('POST', `/admin/collateral/baseline/dry-run?days=${encodeURIComponent(days)}`, { headers: auth, body: { minAgeDays: 0 } });
      assert.equal(r.status, 400, `days=${days}: ${r.text}`);
      assert.equal(r.json().error.code, 'request.invalid');
    }
    const ok = await server.send('POST', '/admin/collateral/baseline/dry-run?days=30', { headers: auth, body: { minAgeDays: 0 } });
    assert.equal(ok.status, 200, ok.text);
  });

  test('a bundle holding several evaluation numbers imports into an empty cache and re-imports into a full one', async () => {
    const exported = (await server.send('GET', '/admin/collateral/bundle', { headers: auth })).json() as { items: { key: string }[] };
    assert.ok(exported.items.some((i) => i.key === 'sgx/v4/tcb/00906ED50000#17') && exported.items.some((i) => i.key === 'sgx/v4/tcb/00906ED50000#19'));
    const again = await server.send('POST', '/admin/collateral/bundle', { headers: auth, body: exported });
    assert.equal(again.status, 200, again.text);
    const offline = await startTestServer({ services: 'collateral', collateralMode: 'offline' }, { now: () => clock });
    try {
      const oauth = { authorization: `Bearer ${await offline.adminToken()}` };
      for (let i = 0; i < 2; i++) {
        const r = await offline.send('POST', '/admin/collateral/bundle', { headers: oauth, body: exported });
        assert.equal(r.status, 200, r.text);
      }
    } finally {
      await offline.stop();
    }
  });
});

describe('TCB baseline: an evaluation number anyone asked for by number does not become the default answer', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  // Intel's list: 19 published 2025-05-13 (under 30 days old), 18 on 2024-11-12, 17 on 2024-03-12: the baseline is 18.
  const clock = new Date('2025-06-01T00:00:00Z');
  collateralOnStandin('teepot', () => clock, (u, s) => {
    up = u;
    server = s;
  });

  test('attack: an anonymous ?tcbEvaluationDataNumber=17 request made 17 the standard and the baseline answer (the attestation service’s too) in place of 19', async () => {
    // Intel's standard answer is 19 here; 18, the baseline, is not cached (nobody asked for it by number).
    const early = teepot('sgx_tcb_info_early.json');
    up.override('update=standard', jsonAnswer(early.tcb_info_json!, 'TCB-Info-Issuer-Chain', early.issuer_chain!));
    try {
      // Anyone may ask for an older evaluation number: the answer is Intel-signed and cached as a version.
      const old = await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&tcbEvaluationDataNumber=17');
      assert.equal(evalOf(old.text), 17);
      // It must not answer for Intel's standard (QCNL's update=standard), which was then never fetched...
      assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&update=standard')).text), 19, 'update=standard');
      // ...nor for the baseline (the default answer, which the attestation service reads): a platform
      // missing evaluation 19's fixes would pass as current under 17.
      assert.equal((await server.send('GET', '/sgx/certification/v4/tcbevaluationdatanumbers')).status, 200);
      assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000')).text), 19, 'baseline 18, not cached: not 17');
      // Asked for by number, it is still answered.
      assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&tcbEvaluationDataNumber=17')).text), 17);
    } finally {
      up.override('update=standard', undefined);
    }
  });

  test('the admin baseline view names the version the default answer serves (19 here), not none', async () => {
    // The view (and the dry run) pick the baseline from the cache without the stand-ins the routes use: with
    // the baseline number (18) not cached and 17 no longer eligible, they said nothing is served.
    const served = evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000')).text);
    const view = await server.send('GET', '/admin/collateral/baseline', { headers: { authorization: `Bearer ${await server.adminToken()}` } });
    assert.equal(view.status, 200, view.text);
    const scope = view.json().scopes.find((x: { scope: string }) => x.scope === 'sgx/v4/tcb/00906ED50000');
    assert.deepEqual(scope, { scope: 'sgx/v4/tcb/00906ED50000', available: [17, 19], served });
  });
});

describe('update=standard is Intel\'s standard answer, whoever asked for early before (PCCS keeps the two apart)', { skip }, () => {
  let server: TestServer;
  const clock = new Date('2025-06-01T00:00:00Z');
  collateralOnStandin('teepot', () => clock, (_up, s) => {
    server = s;
  });

  test('attack: an anonymous update=early request made the early TCB info (19) the answer to update=standard (Intel\'s 17) for every QCNL', async () => {
    // QCNL sends update=standard unless told otherwise; PCCS caches standard and early answers apart and
    // fetches the one asked for. With only an early answer cached, update=standard was answered with it and
    // never fetched: anyone could move every standard client to the early evaluation number, under which
    // platforms that are up to date for the standard one are out of date.
    assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&update=early')).text), 19);
    assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&update=standard')).text), 17, 'update=standard');
    assert.equal(evalOf((await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000&update=early')).text), 19, 'update=early still');
  });
});

describe('offline bundles and DCAP verification through the service', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  let auth: Record<string, string>;
  const at = new Date('2025-06-20T00:00:00Z');
  before(async () => {
    up = await startPcsStandin('sgx-phala');
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url }, { now: () => at });
    auth = { authorization: `Bearer ${await server.adminToken()}` };
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });

  async function collateralVia(s: TestServer) {
    const tcb = await s.send('GET', '/sgx/certification/v4/tcb?fmspc=00A067110000');
    const qe = await s.send('GET', '/sgx/certification/v4/qe/identity');
    const crl = await s.send('GET', '/sgx/certification/v4/pckcrl?ca=processor');
    const root = await s.send('GET', '/sgx/certification/v4/rootcacrl');
    for (const r of [tcb, qe, crl, root]) assert.equal(r.status, 200, r.text);
    return collateralFromPcsResponses({
      tcbInfoResponse: tcb.text,
      tcbInfoIssuerChain: decodeURIComponent(String(tcb.headers['tcb-info-issuer-chain'])),
      qeIdentityResponse: qe.text,
      qeIdentityIssuerChain: decodeURIComponent(String(qe.headers['sgx-enclave-identity-issuer-chain'])),
      pckCrl: crl.text,
      pckCrlIssuerChain: decodeURIComponent(String(crl.headers['sgx-pck-crl-issuer-chain'])),
      rootCaCrl: root.text,
    });
  }

  test('the SGX quote verifies with collateral fetched through the service exactly as with the original', async () => {
    const quote = readFixture('intel', 'sgx-v3-phala', 'quote.bin');
    const original = verifyQuote(quote, parseQuoteCollateral(readFixtureText('intel', 'sgx-v3-phala', 'collateral.orig.json')), { at });
    const viaUs = verifyQuote(quote, await collateralVia(server), { at });
    assert.equal(viaUs.status, readFixtureJson<Record<string, { status: string }>>('intel', 'sgx-v3-phala', 'expected.json')['quote.bin']!.status);
    assert.equal(viaUs.status, original.status);
    assert.deepEqual(viaUs.advisoryIds, original.advisoryIds);
  });

  test("@phala/dcap-qvl's getCollateral, pointed at the service, gets collateral that verifies", async () => {
    // A rejection is an unhandled one: the child exits with status 1 and the error on stderr, and execFile rejects.
    const script = `const q=require('@phala/dcap-qvl');const fs=require('fs');q.getCollateral(process.argv[1], fs.readFileSync(process.argv[2])).then(c=>process.stdout.write(JSON.stringify(c)))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script, `${server.url}/sgx/certification/v4`, fixturePath('intel', 'sgx-v3-phala', 'quote.bin')], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: server.caPath },
    });
    const c = JSON.parse(stdout) as Record<string, unknown>;
    delete c.pck_certificate_chain;
    const r = verifyQuote(readFixture('intel', 'sgx-v3-phala', 'quote.bin'), parseQuoteCollateral(c), { at });
    assert.equal(r.status, 'ConfigurationAndSWHardeningNeeded');
  });

  test('export → import round trip serves identical bytes; one tampered byte is rejected, naming the item', async () => {
    await collateralVia(server);
    const exported = await server.send('GET', '/admin/collateral/bundle', { headers: auth });
    assert.equal(exported.status, 200);
    const bundle = exported.json() as { items: { key: string; body: string }[] };
    assert.ok(bundle.items.length >= 4);
    const offline = await startTestServer({ services: 'collateral', collateralMode: 'offline' }, { now: () => at });
    try {
      const tampered = structuredClone(bundle);
      const victim = tampered.items.find((i) => i.key.startsWith('sgx/v4/tcb/00A067110000'))!;
      const body = Buffer.from(victim.body, 'base64');
      const pos = body.indexOf('"tcbStatus"') + 14;
      body[pos] = body[pos]! ^ 0x01;
      victim.body = body.toString('base64');
      const oauth = { authorization: `Bearer ${await offline.adminToken()}` };
      const bad = await offline.send('POST', '/admin/collateral/bundle', { headers: oauth, body: tampered });
      assert.equal(bad.status, 400);
      assert.equal(bad.json().error.code, 'collateral.bundle_invalid');
      assert.equal(bad.json().error.detail.key, victim.key);
      assert.equal((await offline.send('GET', '/sgx/certification/v4/qe/identity')).status, 404, 'nothing was half-imported');
      const ok = await offline.send('POST', '/admin/collateral/bundle', { headers: oauth, body: bundle });
      assert.equal(ok.status, 200, ok.text);
      for (const path of ['/sgx/certification/v4/tcb?fmspc=00A067110000', '/sgx/certification/v4/qe/identity', '/sgx/certification/v4/pckcrl?ca=processor', '/sgx/certification/v4/rootcacrl']) {
        const a = await server.send('GET', path);
        const b = await offline.send('GET', path);
        assert.equal(b.text, a.text, path);
      }
    } finally {
      await offline.stop();
    }
  });
});
