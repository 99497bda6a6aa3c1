/**
 * PCK certificates belong to a platform (QE ID + PCE ID), not to a raw TCB. QCNL sends
 * `encrypted_ppid` as 768 zeros at quote time (qcnl/certification_service.cpp build_pckcert_options),
 * so a cache keyed by that parameter hands every machine of one FMSPC and TCB the first machine's
 * certificate (lazy) or finds no registered platform at all (request). Two real machines of FMSPC
 * 00A067110000 with the same raw TCB (the two sgx-v3-phala quotes) show both modes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { skipWithoutFixtures } from '../../fixtures.js';
import { type PcsStandin, STANDIN_PLATFORMS, pckCertAnswer, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const USER_TOKEN = 'pckid-retrieval-secret';
const ZERO_PPID = '0'.repeat(768);
const CPUSVN = '0B0B0202FF0100000000000000000000';
const [A, B] = STANDIN_PLATFORMS;
const certOf = (p: (typeof STANDIN_PLATFORMS)[number]) => String(pckCertAnswer([...p.quote]).body);
/** The PCK request QCNL makes at quote time: QE ID, zero PPID, raw TCB (PCESVN little-endian), PCE ID. */
const atQuoteTime = (p: (typeof STANDIN_PLATFORMS)[number]) => `/sgx/certification/v4/pckcert?qeid=${p.qeId}&encrypted_ppid=${ZERO_PPID}&cpusvn=${CPUSVN}&pcesvn=0D00&pceid=0000`;
const registration = (p: (typeof STANDIN_PLATFORMS)[number]) => ({ qe_id: p.qeId, pce_id: '0000', cpu_svn: CPUSVN, pce_svn: '0D00', enc_ppid: p.encPpid });

for (const mode of ['lazy', 'request'] as const) {
  describe(`PCK certificates by platform (${mode} mode): two machines, one FMSPC, one raw TCB`, { skip }, () => {
    let up: PcsStandin;
    let server: TestServer;
    before(async () => {
      up = await startPcsStandin('sgx-phala');
      server = await startTestServer({ services: 'collateral', upstreamIntel: up.url, collateralMode: mode, pccsUserTokenHash: createHash('sha512').update(USER_TOKEN).digest('hex') }, { now: () => new Date('2025-06-20T00:00:00Z') });
    });
    after(async () => {
      await server?.stop();
      await up?.close();
    });

    test('each registered machine gets its own certificate at quote time; no zero PPID goes upstream', async () => {
      for (const p of [A, B]) {
        const r = await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'content-type': 'application/json', 'user-token': USER_TOKEN }, body: JSON.stringify(registration(p)) });
        assert.equal(r.status, 200, r.text);
      }
      const a = await server.send('GET', atQuoteTime(A));
      const b = await server.send('GET', atQuoteTime(B));
      assert.equal(a.status, 200, a.text);
      assert.equal(b.status, 200, b.text);
      assert.equal(a.text, certOf(A));
      assert.equal(b.text, certOf(B));
      assert.notEqual(a.text, b.text);
      assert.equal(up.requests.filter((r) => r.includes(`encrypted_ppid=${ZERO_PPID}`)).length, 0, up.requests.join('\n'));
    });

    test('a multi-package platform registered by manifest: its certificate set answers any raw TCB by PCK selection', async () => {
      const qeId = '44'.repeat(16);
      const r = await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': USER_TOKEN }, body: { qe_id: qeId, pce_id: '0000', platform_manifest: B.manifest } });
      assert.equal(r.status, 200, r.text);
      const at = (cpusvn: string, pcesvn: string) => server.send('GET', `/sgx/certification/v4/pckcert?qeid=${qeId}&encrypted_ppid=${ZERO_PPID}&cpusvn=${cpusvn}&pcesvn=${pcesvn}&pceid=0000`);
      if (mode === 'lazy') {
        // Lazy: fetched by POST pckcert with the registered manifest; never by the zero PPID.
        const got = await at(CPUSVN, '0D00');
        assert.equal(got.status, 200, got.text);
        assert.equal(got.text, certOf(B));
        assert.ok(up.requests.includes('POST /sgx/certification/v4/pckcert'));
        return;
      }
      // Request mode fetched the set at registration; a newer microcode (higher components) still selects it.
      for (const [cpusvn, pcesvn] of [[CPUSVN, '0D00'], ['0C0C0303FF0100000000000000000000', '0E00']]) {
        const got = await at(cpusvn!, pcesvn!);
        assert.equal(got.status, 200, `${cpusvn}/${pcesvn}: ${got.text}`);
        assert.equal(got.text, certOf(B));
        assert.equal(got.headers['sgx-tcbm'], `${CPUSVN}0D00`);
      }
      // Below every certificate of the set: none fits (PCCS: no cache data).
      assert.equal((await at('0A0B0202FF0100000000000000000000', '0D00')).status, 404);
    });

    test('a machine that never registered gets no other machine’s certificate', async () => {
      const stranger = `/sgx/certification/v4/pckcert?qeid=${'33'.repeat(16)}&encrypted_ppid=${ZERO_PPID}&cpusvn=${CPUSVN}&pcesvn=0D00&pceid=0000`;
      const r = await server.send('GET', stranger);
      if (mode === 'request') {
        // PCCS REQ mode: the platform is unknown (461), never another platform's certificate.
        assert.equal(r.status, 461, r.text);
      } else {
        // Lazy: asked upstream by QE ID (a PCCS-like upstream knows platforms by QE ID), never by the zero PPID.
        assert.equal(r.status, 200, r.text);
        assert.notEqual(r.text, certOf(B));
        assert.ok(up.requests.some((q) => q.includes(`qeid=${'33'.repeat(16)}`) && !q.includes('encrypted_ppid')));
      }
      assert.equal(up.requests.filter((q) => q.includes(`encrypted_ppid=${ZERO_PPID}`)).length, 0);
    });
  });
}
