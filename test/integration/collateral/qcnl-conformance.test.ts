/**
 * Conclave driven the way Intel's QCNL drives a PCCS (DCAP QuoteGeneration/qcnl/certification_service.cpp,
 * qpl/sgx_default_quote_provider.cpp `ql_get_quote_verification_collateral_internal`):
 *
 *   sgx_ql_get_quote_verification_collateral / tdx_ql_get_quote_verification_collateral
 *     1. {collateral_service}pckcrl?ca={processor|platform}[&encoding=der]        (3.1 adds encoding=der)
 *     2. {collateral_service with /sgx/→/tdx/ for TDX}tcb?fmspc={FMSPC}&update=standard
 *     3. {collateral_service, /tdx/ for TDX}qe/identity?update=standard
 *     4. 3.0: {collateral_service}rootcacrl        3.1: {collateral_service}crl?uri={root CA CDP}
 *        (the CDP is read from the root certificate of the QE identity issuer chain)
 *   sgx_ql_get_quote_config
 *     {pccs_url}pckcert?qeid=…&encrypted_ppid={768 zeros}&cpusvn=…&pcesvn=…&pceid=…
 *
 * and then assembles sgx_ql_qve_collateral_t from the bodies and the unescaped issuer-chain headers.
 * Every piece must be byte-equal to the recorded Intel PCS answers, for every FMSPC of the fixtures,
 * with pccs_api_version 3.0 (hex CRLs) and 3.1 (DER CRLs); and the assembled collateral must verify the
 * fixture's quote where the fixture records the verdict.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { collateralFromPcsResponses } from '../../../src/evidence/dcap/collateral.js';
import { verifyQuote } from '../../../src/evidence/dcap/index.js';
import { readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../fixtures.js';
import type { HttpResponse } from '../../helpers/https.js';
import { FOLDER_SETS, type PcsStandin, STANDIN_PLATFORMS, type StandinSet, pckCertAnswer, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const teepot = (f: string) => readFixtureJson<Record<string, string>>('intel', 'pcs-responses-teepot', f);

/** QCNL's `unescape`: %XX → byte (the issuer-chain headers are URL-encoded PEM). */
const qcnlUnescape = (s: string | string[] | undefined) => decodeURIComponent(String(s));
/** The CRL distribution point of a PEM certificate (QPL get_cdp_url_from_pem_cert). */
function cdpOf(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64').toString('latin1');
  const m = /https:\/\/[\x21-\x7e]+?\.(?:der|crl)/.exec(der);
  assert.ok(m, 'root certificate has a CRL distribution point');
  return m[0];
}

interface Expected {
  readonly tee: 'sgx' | 'tdx';
  readonly fmspc: string;
  readonly ca: 'processor' | 'platform';
  readonly tcb: string;
  readonly tcbChain: string;
  readonly qe: string;
  readonly qeChain: string;
  readonly pckCrl: Buffer;
  readonly pckCrlChain: string;
  readonly rootCrl: Buffer;
  /** A quote whose verdict the fixture records, with the time it holds. */
  readonly quote?: { bytes: Buffer; status: string; at: Date };
}

function folderExpected(name: keyof typeof FOLDER_SETS): Expected {
  const f = FOLDER_SETS[name]();
  const exp = readFixtureJson<Record<string, { status?: string; verify_at?: string }>>('intel', f.folder, 'expected.json');
  const q = Object.entries(exp).find(([, v]) => typeof v === 'object' && v?.verify_at && v.status && !v.status.startsWith('ERROR'));
  return {
    tee: f.tee,
    fmspc: f.fmspc,
    ca: f.ca,
    tcb: readFixtureText('intel', f.folder, f.tcb),
    tcbChain: f.signingChain,
    qe: readFixtureText('intel', f.folder, f.qe),
    qeChain: f.signingChain,
    pckCrl: readFixture('intel', f.folder, f.pckCrl),
    pckCrlChain: f.crlChain,
    rootCrl: readFixture('intel', f.folder, f.rootCrl),
    ...(q ? { quote: { bytes: readFixture('intel', f.folder, q[0]), status: q[1].status!, at: new Date(q[1].verify_at!) } } : {}),
  };
}

function teepotExpected(tee: 'sgx' | 'tdx'): Expected {
  const tcb = teepot(tee === 'sgx' ? 'sgx_tcb_info_00906ED50000.json' : 'tdx_tcb_info.json');
  const qe = teepot(tee === 'sgx' ? 'sgx_qe_identity.json' : 'tdx_qe_identity.json');
  const crl = teepot('pck_crl_processor_der.json');
  return {
    tee,
    fmspc: tee === 'sgx' ? '00906ED50000' : '00806F050000',
    ca: 'processor',
    tcb: tcb.tcb_info_json!,
    tcbChain: tcb.issuer_chain!,
    qe: qe.enclave_identity_json!,
    qeChain: qe.issuer_chain!,
    pckCrl: Buffer.from(crl.crl_data_base64!, 'base64'),
    pckCrlChain: crl.issuer_chain!,
    rootCrl: readFixture('intel', 'sgx-v3-phala', 'root_ca_crl.der'),
  };
}

const CASES: { set: StandinSet; expected: () => Expected }[] = [
  { set: 'teepot', expected: () => teepotExpected('sgx') },
  { set: 'teepot', expected: () => teepotExpected('tdx') },
  { set: 'sgx-phala', expected: () => folderExpected('sgx-phala') },
  { set: 'sgx-occlum', expected: () => folderExpected('sgx-occlum') },
  { set: 'tdx-phala', expected: () => folderExpected('tdx-phala') },
  { set: 'tdx-automata', expected: () => folderExpected('tdx-automata') },
  { set: 'tdx-azure', expected: () => folderExpected('tdx-azure') },
  { set: 'tdx-v5', expected: () => folderExpected('tdx-v5') },
];

/** One QCNL collateral fetch: the four requests, in order, exactly as QCNL forms their URLs. */
async function qcnlCollateral(server: TestServer, e: Expected, apiVersion: '3.0' | '3.1') {
  const cs = '/sgx/certification/v4/';
  const teeCs = e.tee === 'tdx' ? cs.replace('/sgx/', '/tdx/') : cs;
  const get = async (url: string): Promise<HttpResponse> => {
    const r = await server.send('GET', url);
    assert.equal(r.status, 200, `${url}: ${r.status} ${r.text}`);
    assert.ok(r.headers['request-id'], `${url} carries Request-ID`);
    return r;
  };
  const crl = await get(`${cs}pckcrl?ca=${e.ca}${apiVersion === '3.1' ? '&encoding=der' : ''}`);
  const tcb = await get(`${teeCs}tcb?fmspc=${e.fmspc}&update=standard`);
  const qe = await get(`${teeCs}qe/identity?update=standard`);
  const qeChain = qcnlUnescape(qe.headers['sgx-enclave-identity-issuer-chain']);
  const rootPem = qeChain.slice(qeChain.indexOf('-----BEGIN CERTIFICATE-----', 1));
  const root = await get(apiVersion === '3.0' ? `${cs}rootcacrl` : `${cs}crl?uri=${cdpOf(rootPem)}`);
  return {
    pckCrl: crl.raw,
    pckCrlIssuerChain: qcnlUnescape(crl.headers['sgx-pck-crl-issuer-chain']),
    tcbInfo: tcb.raw,
    tcbInfoIssuerChain: qcnlUnescape(tcb.headers['sgx-tcb-info-issuer-chain'] ?? tcb.headers['tcb-info-issuer-chain']),
    qeIdentity: qe.raw,
    qeIdentityIssuerChain: qeChain,
    rootCaCrl: root.raw,
  };
}

for (const c of CASES) {
  const e0 = skip ? undefined : c.expected();
  describe(`QCNL conformance: ${e0?.tee ?? '?'} FMSPC ${e0?.fmspc ?? '?'} (${c.set})`, { skip }, () => {
    let up: PcsStandin;
    let server: TestServer;
    const e = e0!;
    before(async () => {
      up = await startPcsStandin(c.set);
      server = await startTestServer({ services: 'collateral', upstreamIntel: up.url }, { now: () => e.quote?.at ?? new Date('2025-06-01T00:00:00Z') });
    });
    after(async () => {
      await server?.stop();
      await up?.close();
    });

    for (const apiVersion of ['3.0', '3.1'] as const) {
      test(`pccs_api_version ${apiVersion}: byte-equal collateral${e0?.quote ? ', and the quote verifies with it' : ''}`, async () => {
        const got = await qcnlCollateral(server, e, apiVersion);
        assert.equal(got.tcbInfo.toString('utf8'), e.tcb);
        assert.equal(got.tcbInfoIssuerChain, e.tcbChain);
        assert.equal(got.qeIdentity.toString('utf8'), e.qe);
        assert.equal(got.qeIdentityIssuerChain, e.qeChain);
        assert.equal(got.pckCrlIssuerChain, e.pckCrlChain);
        // 3.0: CRLs as hex of the DER; 3.1: raw DER (QCNL sets sgx_ql_qve_collateral_t.version accordingly).
        assert.deepEqual(got.pckCrl, apiVersion === '3.1' ? e.pckCrl : Buffer.from(e.pckCrl.toString('hex')));
        assert.deepEqual(got.rootCaCrl, apiVersion === '3.1' ? e.rootCrl : Buffer.from(e.rootCrl.toString('hex')));
        if (e.quote) {
          const collateral = collateralFromPcsResponses({
            tcbInfoResponse: got.tcbInfo,
            tcbInfoIssuerChain: got.tcbInfoIssuerChain,
            qeIdentityResponse: got.qeIdentity,
            qeIdentityIssuerChain: got.qeIdentityIssuerChain,
            pckCrl: apiVersion === '3.1' ? got.pckCrl : got.pckCrl.toString('latin1'),
            pckCrlIssuerChain: got.pckCrlIssuerChain,
            rootCaCrl: apiVersion === '3.1' ? got.rootCaCrl : got.rootCaCrl.toString('latin1'),
          });
          assert.equal(verifyQuote(e.quote.bytes, collateral, { at: e.quote.at }).status, e.quote.status);
        }
      });
    }
  });
}

describe('QCNL conformance: PCK certificate by QE ID, CPUSVN, PCESVN, PCE ID (sgx_ql_get_quote_config)', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  const token = 'qcnl-conformance-user';
  before(async () => {
    up = await startPcsStandin('sgx-phala');
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url, pccsUserTokenHash: createHash('sha512').update(token).digest('hex') });
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });

  for (const p of STANDIN_PLATFORMS) {
    test(`platform ${p.qeId.slice(0, 8)}…: tcbm, certificate and chain as QCNL's setup_quote_config reads them`, async () => {
      const reg = await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': token }, body: { qe_id: p.qeId, pce_id: '0000', cpu_svn: '0B0B0202FF0100000000000000000000', pce_svn: '0D00', enc_ppid: p.encPpid } });
      assert.equal(reg.status, 200, reg.text);
      const want = pckCertAnswer([...p.quote]);
      // PCCS style (pccs_url) …
      const url = `/sgx/certification/v4/pckcert?qeid=${p.qeId}&encrypted_ppid=${'0'.repeat(768)}&cpusvn=0B0B0202FF0100000000000000000000&pcesvn=0D00&pceid=0000`;
      const r = await server.send('GET', url);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['sgx-tcbm'], want.headers!['SGX-TCBm']);
      assert.equal(String(r.headers['sgx-tcbm']).length, 36);
      assert.equal(r.text, String(want.body));
      assert.equal(qcnlUnescape(r.headers['sgx-pck-certificate-issuer-chain']), qcnlUnescape(want.headers!['SGX-PCK-Certificate-Issuer-Chain']));
      // … and Azure style (local_pck_url on the THIM prefix, custom_request_options.get_cert).
      const thim = await server.send('GET', `/metadata/THIM${url}&api-version=2021-07-22-preview`, { headers: { metadata: 'true' } });
      assert.equal(thim.status, 200, thim.text);
      assert.equal(thim.json().pckCert, String(want.body));
      assert.equal(thim.json()['sgx-Tcbm'], want.headers!['SGX-TCBm']);
    });
  }
});
