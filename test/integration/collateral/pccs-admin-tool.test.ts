/**
 * PCCSAdminTool's air-gap workflow (DCAP tools/PccsAdminTool/pccsadmin.py), reproduced request by request
 * with the tool's JSON shapes, against two Conclaves: an offline one on the air-gapped side, and a
 * connected one standing in for Intel PCS (the tool's `fetch -u` takes any PCS-shaped URL).
 *
 *   PCKIDRetrievalTool → offline Conclave   POST /platforms (user-token)        (registration queue)
 *   pccsadmin get      ← offline Conclave   GET /platforms (admin-token)        → platform_list.json
 *   pccsadmin collect  (CSV files of PCKIDRetrievalTool -f)                      → platform_list.json
 *   pccsadmin fetch    ← connected Conclave pckcrl, root CRL, pckcerts, fmspcs, tcb, identities
 *                                                                                → platform_collaterals.json
 *   pccsadmin put      → offline Conclave   PUT /platformcollateral (admin-token)
 *
 * Afterwards the offline Conclave answers QCNL's requests for both machines and their FMSPC with the
 * recorded Intel bytes, without ever having talked to an upstream.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { readFixture, readFixtureText, skipWithoutFixtures } from '../../fixtures.js';
import type { HttpResponse } from '../../helpers/https.js';
import { type PcsStandin, STANDIN_PLATFORMS, pckCertAnswer, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const ADMIN = 'air-gap-admin-token';
const USER = 'pckid-user-token';
const sha512 = (s: string) => createHash('sha512').update(s).digest('hex');
const CPUSVN = '0B0B0202FF0100000000000000000000';
const ZERO_PPID = '0'.repeat(768);
const V4 = '/sgx/certification/v4/';

type Platform = { enc_ppid: string; pce_id: string; cpu_svn: string; pce_svn: string; qe_id: string; platform_manifest: string; pckid_filename?: string };

/** PCKIDRetrievalTool's CSV line: enc_ppid,pce_id,cpu_svn,pce_svn,qe_id,platform_manifest (no header). */
const csvLine = (p: (typeof STANDIN_PLATFORMS)[number]) => `${p.encPpid},0000,${CPUSVN},0D00,${p.qeId},`;

/** `pccsadmin collect`: every *.csv row of the directory, keyed as the tool keys them. */
function collect(files: Record<string, string>): Platform[] {
  const fields = ['enc_ppid', 'pce_id', 'cpu_svn', 'pce_svn', 'qe_id', 'platform_manifest'] as const;
  return Object.entries(files).flatMap(([name, text]) =>
    text
      .split(/\r?\n/)
      .filter(Boolean)
      .map((line) => ({ ...(Object.fromEntries(fields.map((f, i) => [f, line.split(',')[i] ?? ''])) as Platform), pckid_filename: name.replace(/\.csv$/, '') })),
  );
}

/** `pccsadmin fetch -u <connected>/sgx/certification/v4/`: what CollateralFetcher asks, with the checks it makes. */
async function fetchCollateral(pcs: TestServer, platforms: Platform[]) {
  const get = async (url: string, what: string, opts: { json?: boolean } = {}): Promise<HttpResponse> => {
    const r = await pcs.send('GET', url);
    assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`);
    assert.ok(r.headers['request-id'], `${what}: Request-ID`);
    if (opts.json) assert.equal(r.headers['content-type'], 'application/json', `${what}: Content-Type must be exactly application/json`);
    return r;
  };
  const out = {
    platforms,
    collaterals: {
      version: 4,
      pck_certs: [] as unknown[],
      tcbinfos: [] as Record<string, unknown>[],
      pckcacrl: {} as Record<string, string>,
      qeidentity: '',
      tdqeidentity: '',
      qveidentity: '',
      certificates: { 'SGX-PCK-Certificate-Issuer-Chain': {} as Record<string, string>, 'TCB-Info-Issuer-Chain': '', 'SGX-Enclave-Identity-Issuer-Chain': '' },
      rootcacrl: '',
      rootcacrl_cdp: '',
    },
  };
  // PCK CRLs (API v3+: DER, kept as hex) and the root CA CRL from the CDP of the chain's root.
  const processor = await get(`${V4}pckcrl?ca=processor&encoding=der`, 'processor CRL');
  out.collaterals.pckcacrl.processorCrl = processor.raw.toString('hex');
  const platform = await get(`${V4}pckcrl?ca=platform&encoding=der`, 'platform CRL');
  out.collaterals.pckcacrl.platformCrl = platform.raw.toString('hex');
  const chain = String(processor.headers['sgx-pck-crl-issuer-chain']);
  const rootPem = decodeURIComponent(chain.slice(chain.lastIndexOf('-----BEGIN%20CERTIFICATE-----')));
  const cdp = /https:\/\/[\x21-\x7e]+?\.der/.exec(Buffer.from(rootPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('latin1'))![0];
  out.collaterals.rootcacrl_cdp = cdp;
  // The tool fetches the CDP itself (Intel's site); offline here, the connected Conclave's crl?uri= serves it.
  out.collaterals.rootcacrl = (await get(`${V4}crl?uri=${cdp}`, 'root CA CRL')).raw.toString('hex');
  // PCK certificates of each platform: GET by encrypted PPID, or POST with the platform manifest.
  const fmspcs = new Set<string>();
  for (const p of platforms) {
    const r = p.platform_manifest
      ? await pcs.send('POST', `${V4}pckcerts`, { headers: { 'content-type': 'application/json' }, body: { pceid: p.pce_id, platformManifest: p.platform_manifest } })
      : await get(`${V4}pckcerts?encrypted_ppid=${p.enc_ppid}&pceid=${p.pce_id}`, 'pckcerts', { json: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.ok(r.headers['sgx-pck-certificate-issuer-chain']);
    const certs = r.json() as { cert: string }[];
    const ca = /Platform/.test(decodeURIComponent(String(r.headers['sgx-pck-certificate-issuer-chain']))) && r.headers['sgx-pck-certificate-ca-type'] === 'platform' ? 'PLATFORM' : 'PROCESSOR';
    out.collaterals.certificates['SGX-PCK-Certificate-Issuer-Chain'][ca] = String(r.headers['sgx-pck-certificate-issuer-chain']);
    fmspcs.add(String(r.headers['sgx-fmspc']));
    out.collaterals.pck_certs.push({ qe_id: p.qe_id, pce_id: p.pce_id, enc_ppid: p.enc_ppid, platform_manifest: p.platform_manifest, certs });
  }
  for (const e of (await get(`${V4}fmspcs?platform=all`, 'fmspcs')).json() as { fmspc: string }[]) fmspcs.add(e.fmspc);
  for (const fmspc of fmspcs) {
    const sgx = await get(`${V4}tcb?fmspc=${fmspc}&update=standard`, `tcb ${fmspc}`, { json: true });
    const entry: Record<string, unknown> = { fmspc, sgx_tcbinfo: sgx.json() };
    const tdx = await pcs.send('GET', `/tdx/certification/v4/tcb?fmspc=${fmspc}&update=standard`);
    if (tdx.status === 200) entry.tdx_tcbinfo = tdx.json();
    out.collaterals.tcbinfos.push(entry);
    out.collaterals.certificates['TCB-Info-Issuer-Chain'] ||= String(sgx.headers['tcb-info-issuer-chain']);
  }
  const qe = await get(`${V4}qe/identity?update=standard`, 'QE identity', { json: true });
  out.collaterals.qeidentity = qe.text;
  out.collaterals.certificates['SGX-Enclave-Identity-Issuer-Chain'] = String(qe.headers['sgx-enclave-identity-issuer-chain']);
  out.collaterals.tdqeidentity = (await get('/tdx/certification/v4/qe/identity?update=standard', 'TD QE identity', { json: true })).text;
  out.collaterals.qveidentity = (await get(`${V4}qve/identity?update=standard`, 'QVE identity', { json: true })).text;
  return out;
}

describe('PCCSAdminTool air-gap workflow: get / collect → fetch → put, then QCNL against the offline cache', { skip }, () => {
  let up: PcsStandin;
  let connected: TestServer;
  let offline: TestServer;
  before(async () => {
    up = await startPcsStandin('sgx-phala');
    connected = await startTestServer({ services: 'collateral', upstreamIntel: up.url }, { now: () => new Date('2025-06-20T00:00:00Z') });
    offline = await startTestServer({ services: 'collateral', collateralMode: 'offline', pccsAdminTokenHash: sha512(ADMIN), pccsUserTokenHash: sha512(USER) }, { now: () => new Date('2025-06-20T00:00:00Z') });
  });
  after(async () => {
    await offline?.stop();
    await connected?.stop();
    await up?.close();
  });

  let list: Platform[];
  test('PCKIDRetrievalTool registers both machines; `get` drains the queue with the admin token (platform-count)', async () => {
    for (const p of STANDIN_PLATFORMS) {
      const r = await offline.send('POST', `${V4}platforms`, { headers: { 'user-token': USER }, body: { enc_ppid: p.encPpid, pce_id: '0000', cpu_svn: CPUSVN, pce_svn: '0D00', qe_id: p.qeId, platform_manifest: '' } });
      assert.equal(r.status, 200, r.text);
    }
    assert.equal((await offline.send('GET', `${V4}platforms`)).status, 401);
    assert.equal((await offline.send('GET', `${V4}platforms`, { headers: { 'admin-token': 'wrong' } })).status, 401);
    const got = await offline.send('GET', `${V4}platforms`, { headers: { 'admin-token': ADMIN } });
    assert.equal(got.status, 200);
    assert.equal(got.headers['platform-count'], '2');
    list = got.json();
    assert.deepEqual(
      list.map((p) => [p.qe_id, p.enc_ppid, p.cpu_svn, p.pce_svn, p.platform_manifest]),
      STANDIN_PLATFORMS.map((p) => [p.qeId, p.encPpid, CPUSVN, '0D00', '']),
    );
    const again = await offline.send('GET', `${V4}platforms?source=reg`, { headers: { 'admin-token': ADMIN } });
    assert.equal(again.headers['platform-count'], '0', 'the queue was drained');
  });

  test('`collect` of PCKIDRetrievalTool CSV files yields the same platforms', () => {
    const collected = collect({ 'host-a.csv': `${csvLine(STANDIN_PLATFORMS[0])}\n`, 'host-b.csv': `${csvLine(STANDIN_PLATFORMS[1])}\n` });
    assert.deepEqual(
      collected.map(({ pckid_filename: _, ...p }) => p),
      list,
    );
  });

  test('`fetch` from the connected Conclave, `put` into the offline one; QCNL is then answered from the upload alone', async () => {
    const file = await fetchCollateral(connected, list);
    const body = JSON.stringify(file);
    assert.equal((await offline.send('PUT', `${V4}platformcollateral`, { headers: { 'content-type': 'application/json' }, body })).status, 401);
    const put = await offline.send('PUT', `${V4}platformcollateral`, { headers: { 'content-type': 'application/json', 'admin-token': ADMIN }, body });
    assert.equal(put.status, 200, put.text);

    // Each machine's certificate at quote time (QE ID, zero PPID), selected from its uploaded set.
    for (const p of STANDIN_PLATFORMS) {
      const r = await offline.send('GET', `${V4}pckcert?qeid=${p.qeId}&encrypted_ppid=${ZERO_PPID}&cpusvn=${CPUSVN}&pcesvn=0D00&pceid=0000`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, String(pckCertAnswer([...p.quote]).body));
      assert.equal(r.headers['sgx-fmspc'], '00A067110000');
    }
    // The verification collateral of their FMSPC, byte for byte (pccs_api_version 3.1).
    const tcb = await offline.send('GET', `${V4}tcb?fmspc=00A067110000&update=standard`);
    assert.equal(tcb.text, readFixtureText('intel', 'sgx-v3-phala', 'tcb_info_response.json'));
    const qe = await offline.send('GET', `${V4}qe/identity?update=standard`);
    assert.equal(qe.text, readFixtureText('intel', 'sgx-v3-phala', 'qe_identity_response.json'));
    const crl = await offline.send('GET', `${V4}pckcrl?ca=processor&encoding=der`);
    assert.deepEqual(crl.raw, readFixture('intel', 'sgx-v3-phala', 'pck_crl.der'));
    const root = await offline.send('GET', `${V4}crl?uri=${file.collaterals.rootcacrl_cdp}`);
    assert.deepEqual(root.raw, readFixture('intel', 'sgx-v3-phala', 'root_ca_crl.der'));
    // A machine that was never uploaded is unknown to the offline cache (PCCS 461), never someone else's.
    const stranger = await offline.send('GET', `${V4}pckcert?qeid=${'33'.repeat(16)}&encrypted_ppid=${ZERO_PPID}&cpusvn=${CPUSVN}&pcesvn=0D00&pceid=0000`);
    assert.equal(stranger.status, 461);
    // `get -s [FMSPC]` now lists the cached platforms.
    const cached = await offline.send('GET', `${V4}platforms?source=[00A067110000]`, { headers: { 'admin-token': ADMIN } });
    assert.equal(cached.headers['platform-count'], '2');
  });

  test('an upload with one altered byte is refused whole (460), naming the item', async () => {
    const file = await fetchCollateral(connected, list);
    const qe = JSON.parse(file.collaterals.qeidentity) as { enclaveIdentity: { isvprodid: number } };
    qe.enclaveIdentity.isvprodid += 1;
    file.collaterals.qeidentity = JSON.stringify(qe);
    const put = await offline.send('PUT', `${V4}platformcollateral`, { headers: { 'content-type': 'application/json', 'admin-token': ADMIN }, body: JSON.stringify(file) });
    assert.equal(put.status, 460, put.text);
    assert.equal(put.headers['x-conclave-error-code'], 'collateral.integrity_error');
    assert.match(put.text, /sgx\/v4\/qe\/identity/);
  });
});
