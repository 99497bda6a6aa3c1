import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { pemToDer } from '../../../src/core/x509.js';
import { createCollateralStore } from '../../../src/storage/collateral-store.js';
import { readFixture, readFixtureJson, skipWithoutFixtures } from '../../fixtures.js';
import { type PcsStandin, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const teepot = (f: string) => readFixtureJson<Record<string, string>>('intel', 'pcs-responses-teepot', f);
const decode = (h: string | string[] | undefined) => decodeURIComponent(String(h));

describe('collateral service: PCS / THIM / KDS routes against the real fixtures', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  let clock = new Date('2025-06-01T00:00:00Z');
  before(async () => {
    up = await startPcsStandin('teepot');
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url, upstreamAmd: up.url }, { now: () => clock });
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });

  test('v4 SGX tcb: exact signed bytes, v4 issuer header, Request-ID; a second GET is served from cache', async () => {
    const t = teepot('sgx_tcb_info_00906ED50000.json');
    const r = await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ed50000');
    assert.equal(r.status, 200);
    assert.equal(r.text, t.tcb_info_json);
    assert.equal(decode(r.headers['tcb-info-issuer-chain']), t.issuer_chain);
    assert.equal(r.headers['sgx-tcb-info-issuer-chain'], undefined);
    assert.match(String(r.headers['request-id']), /^[0-9a-f]{32}$/);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const before = up.count('/v4/tcb');
    const again = await server.send('GET', '/sgx/certification/v4/tcb?fmspc=00906ED50000');
    assert.equal(again.text, t.tcb_info_json);
    assert.equal(up.count('/v4/tcb'), before);
  });

  test('v3 tcb answers TCB info v2 with the SGX-TCB-Info-Issuer-Chain header', async () => {
    const t = teepot('sgx_tcb_info_v3.json');
    const r = await server.send('GET', '/sgx/certification/v3/tcb?fmspc=00906ED50000');
    assert.equal(r.status, 200);
    assert.equal(r.text, t.tcb_info_json);
    assert.equal(decode(r.headers['sgx-tcb-info-issuer-chain']), t.issuer_chain);
  });

  test('TDX tcb and identities (QE, QVE, TD_QE) replay the vendor bodies', async () => {
    const tdx = await server.send('GET', '/tdx/certification/v4/tcb?fmspc=00806F050000');
    assert.equal(tdx.text, teepot('tdx_tcb_info.json').tcb_info_json);
    for (const [path, f] of [
      ['/sgx/certification/v4/qe/identity', 'sgx_qe_identity.json'],
      ['/sgx/certification/v4/qve/identity', 'sgx_qve_identity.json'],
      ['/tdx/certification/v4/qe/identity', 'tdx_qe_identity.json'],
    ] as const) {
      const r = await server.send('GET', path);
      assert.equal(r.status, 200, path);
      assert.equal(r.text, teepot(f).enclave_identity_json, path);
      assert.equal(decode(r.headers['sgx-enclave-identity-issuer-chain']), teepot(f).issuer_chain, path);
    }
  });

  test('pckcrl: DER with encoding=der, hex of the DER by default (PCCS); rootcacrl hex', async () => {
    const t = teepot('pck_crl_processor_der.json');
    const der = await new Promise<Buffer>((resolve, reject) => {
      httpsGet(new URL('/sgx/certification/v4/pckcrl?ca=processor&encoding=der', server.url), { ca: readFileSync(server.caPath) }, (res) => {
        const c: Buffer[] = [];
        res.on('data', (d: Buffer) => c.push(d));
        res.on('end', () => resolve(Buffer.concat(c)));
      }).on('error', reject);
    });
    assert.deepEqual(der, Buffer.from(t.crl_data_base64!, 'base64'));
    const hex = await server.send('GET', '/sgx/certification/v4/pckcrl?ca=PROCESSOR');
    assert.equal(hex.text, Buffer.from(t.crl_data_base64!, 'base64').toString('hex'));
    assert.equal(decode(hex.headers['sgx-pck-crl-issuer-chain']), t.issuer_chain);
    const root = await server.send('GET', '/sgx/certification/v4/rootcacrl');
    assert.equal(root.text, readFixture('intel', 'sgx-v3-phala', 'root_ca_crl.der').toString('hex'));
    const bad = await server.send('GET', '/sgx/certification/v4/pckcrl?ca=nope');
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['error-code'], 'InvalidRequestSyntax');
    assert.equal(bad.headers['x-conclave-error-code'], 'request.invalid');
  });

  test('pckcert: both pcesvn byte orders reach the same cached certificate, with the PCS headers', async () => {
    const q = 'qeid=00112233445566778899AABBCCDDEEFF&cpusvn=0B0B0202FF0100000000000000000000&pceid=0000';
    const le = await server.send('GET', `/sgx/certification/v4/pckcert?${q}&pcesvn=0D00`);
    assert.equal(le.status, 200);
    assert.match(le.text, /^-----BEGIN CERTIFICATE-----/);
    assert.equal(le.headers['sgx-fmspc'], '00A067110000');
    assert.equal(le.headers['sgx-pck-certificate-ca-type'], 'processor');
    assert.equal(String(le.headers['sgx-tcbm']).length, 36);
    assert.equal(pemToDer(decode(le.headers['sgx-pck-certificate-issuer-chain'])).length, 2);
    const n = up.count('/pckcert');
    const be = await server.send('GET', `/sgx/certification/v4/pckcert?${q}&pcesvn=000D`);
    assert.equal(be.text, le.text);
    assert.equal(up.count('/pckcert'), n);
    const thim = await server.send('GET', `/metadata/THIM/sgx/certification/v4/pckcert?${q}&pcesvn=000D`, { headers: { Metadata: 'true' } });
    assert.equal(thim.json().pckCert, le.text);
    assert.equal(thim.json()['sgx-Tcbm'], le.headers['sgx-tcbm']);
  });

  test('THIM routes require Metadata: true and then answer as PCS does', async () => {
    const no = await server.send('GET', '/metadata/THIM/sgx/certification/v3/tcb?fmspc=00906ED50000');
    assert.equal(no.status, 400);
    const yes = await server.send('GET', '/metadata/THIM/sgx/certification/v3/tcb?fmspc=00906ED50000', { headers: { Metadata: 'true' } });
    assert.equal(yes.text, teepot('sgx_tcb_info_v3.json').tcb_info_json);
  });

  test('AMD: KDS cert_chain and VCEK replayed; THIM AMD document for a named platform', async () => {
    const chain = await server.send('GET', '/vcek/v1/Milan/cert_chain');
    assert.equal(chain.text, readFixture('amd', 'roots', 'kds_cert_chain', 'ask_ark_milan.pem').toString('utf8'));
    const doc = readFixtureJson<{ vcekCert: string; tcbm: string }>('amd', 'azure-aci-sidecar', 'uvm_host_amd_certificate.json');
    const chipId = readFixture('amd', 'azure-aci-sidecar', 'snp_report.bin').subarray(0x1a0, 0x1e0).toString('hex');
    const thim = await server.send('GET', `/metadata/THIM/amd/certification?product=Milan&chipId=${chipId}&tcbm=${doc.tcbm}`, { headers: { Metadata: 'true' } });
    assert.equal(thim.status, 200, thim.text);
    const j = thim.json();
    assert.deepEqual(pemToDer(j.vcekCert), pemToDer(doc.vcekCert));
    assert.equal(j.tcbm, doc.tcbm.toUpperCase());
    assert.equal(pemToDer(j.certificateChain).length, 2);
    // tcbm 7308000000000003 = bl 3, tee 0, snp 8, ucode 0x73 (§3.5)
    assert.ok(up.requests.some((r) => r.includes(`/vcek/v1/Milan/${chipId}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115`)), up.requests.join('\n'));
    const vcek = await server.send('GET', `/vcek/v1/Milan/${chipId}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`);
    assert.equal(vcek.status, 200);
  });

  test('registration is accepted (200, as PCCS) and PCK fetches record the platform for dry runs', async () => {
    const r = await server.send('POST', '/sgx/certification/v4/platforms', {
      headers: { authorization: `Bearer ${await server.adminToken()}` },
      body: { qe_id: 'AABB', pce_id: '0000', cpu_svn: '0B0B0202FF0100000000000000000000', pce_svn: '0D00', enc_ppid: 'A1'.repeat(384) },
    });
    assert.equal(r.status, 200);
    const seen = await createCollateralStore(server.ctx.db).platforms(new Date(0));
    assert.ok(seen.some((p) => p.fmspc === '00A067110000'));
  });

  test('admin status lists items with source, age and next refresh; needs the admin token', async () => {
    assert.equal((await server.send('GET', '/admin/collateral/status')).status, 401);
    const r = await server.send('GET', '/admin/collateral/status', { headers: { authorization: `Bearer ${await server.adminToken()}` } });
    assert.equal(r.status, 200);
    const tcb = r.json().items.find((i: { key: string }) => i.key === 'sgx/v4/tcb/00906ED50000#17');
    assert.ok(tcb);
    assert.equal(tcb.nextUpdate, '2025-06-26T19:31:07.000Z');
    assert.ok(tcb.source.startsWith(up.url));
    clock = new Date('2025-06-01T00:00:00Z');
  });
});

