/**
 * Real vendor-signed evidence through the attestation service, with collateral held by our own
 * collateral service (fetched from a stand-in that replays Intel's real PCS answers, or AMD's real
 * certificates), under the `azure` freshness policy, at each fixture's verification time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { b64url } from '../../../src/core/bytes.js';
import { pemToDer } from '../../../src/core/x509.js';
import { createFakeSnpHierarchy, makeFakeAmdCrl } from '../../../src/evidence/snp/testing.js';
import { fixturePath, readFixture, readFixtureJson, skipWithoutFixtures } from '../../fixtures.js';
import { startPcsStandin } from '../../helpers/pcs-standin.js';
import { startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();

function claims(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

async function attestAt(at: string, flags: Record<string, unknown>, path: string, body: unknown): Promise<{ status: number; claims?: Record<string, any>; text: string }> {
  const server = await startTestServer(flags, { now: () => new Date(at) });
  try {
    const r = await server.send('POST', `${path}?api-version=2022-08-01`, { body: body as object });
    return { status: r.status, text: r.text, ...(r.status === 200 ? { claims: claims(r.json().token) } : {}) };
  } finally {
    await server.stop();
  }
}

describe('attestation of real vendor evidence with collateral from our collateral service', { skip }, () => {
  test('SGX quote v3 (Phala): measurements and the TCB status of expected.json', async () => {
    const expected = readFixtureJson<any>('intel', 'sgx-v3-phala', 'expected.json')['quote.bin'];
    const standin = await startPcsStandin('sgx-phala');
    try {
      const r = await attestAt(expected.verify_at, { upstreamIntel: standin.url }, '/attest/SgxEnclave', { quote: b64url(readFixture('intel', 'sgx-v3-phala', 'quote.bin')) });
      assert.equal(r.status, 200, r.text);
      const c = r.claims!;
      assert.equal(c['x-ms-attestation-type'], 'sgx');
      assert.equal(c['x-ms-sgx-mrenclave'], expected.report.mrenclave);
      assert.equal(c['x-ms-sgx-mrsigner'], expected.report.mrsigner);
      assert.equal(c['x-ms-sgx-product-id'], expected.report.isvprodid);
      assert.equal(c['x-ms-sgx-is-debuggable'], false);
      assert.equal(c['x-conclave-tcb-status'], expected.status);
      assert.deepEqual([...c['x-conclave-advisory-ids']].sort(), [...expected.advisory_ids].sort());
      assert.match(c['x-ms-sgx-collateral'].tcbinfohash, /^[0-9a-f]{64}$/);
      assert.equal(c['x-conclave-simulated'], undefined);
      assert.ok(standin.count('/tcb') >= 1, 'the TCB info came through the collateral service');
    } finally {
      await standin.close();
    }
  });

  test('the attestation service reads the collateral cache in process, not over HTTPS to itself', async () => {
    const expected = readFixtureJson<any>('intel', 'sgx-v3-phala', 'expected.json')['quote.bin'];
    const standin = await startPcsStandin('sgx-phala');
    try {
      // The public URL names a port nothing listens on: a call to ourselves over HTTPS would fail.
      const flags = { upstreamIntel: standin.url, publicUrl: 'https://127.0.0.1:9', services: ['attestation', 'collateral'] };
      const r = await attestAt(expected.verify_at, flags, '/attest/SgxEnclave', { quote: b64url(readFixture('intel', 'sgx-v3-phala', 'quote.bin')) });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.claims!['x-conclave-tcb-status'], expected.status);
      assert.ok(standin.count('/tcb') >= 1, 'the TCB info came through the collateral cache');
    } finally {
      await standin.close();
    }
  });

  test('TDX quote v4 (Phala): TD measurements and UpToDate', async () => {
    const expected = readFixtureJson<any>('intel', 'tdx-v4-phala', 'expected.json')['quote.bin'];
    const standin = await startPcsStandin('tdx-phala');
    try {
      const r = await attestAt(expected.verify_at, { upstreamIntel: standin.url }, '/attest/TdxVm', { quote: b64url(readFixture('intel', 'tdx-v4-phala', 'quote.bin')) });
      assert.equal(r.status, 200, r.text);
      const c = r.claims!;
      assert.equal(c['x-ms-attestation-type'], 'tdxvm');
      assert.equal(c.attester_tcb_status, expected.status);
      assert.match(c.tdx_mrtd, /^[0-9a-f]{96}$/);
      assert.match(c.tdx_rtmr3, /^[0-9a-f]{96}$/);
      assert.equal(typeof c.tdx_td_attributes_debug, 'boolean');
    } finally {
      await standin.close();
    }
  });

  test('Azure Container Instances SEV-SNP evidence: REPORT_DATA and HOST_DATA bindings', async () => {
    const expected = readFixtureJson<any>('amd', 'azure-aci-sidecar', 'expected.json');
    const body = readFixtureJson<Record<string, unknown>>('amd', 'azure-aci-sidecar', 'DERIVED_maa_attest_sevsnpvm_request.json');
    const policy = readFileSync(fixturePath('amd', 'azure-aci-sidecar', 'uvm_security_policy.base64'), 'utf8').trim();
    const r = await attestAt('2025-06-01T00:00:00Z', {}, '/attest/SevSnpVm', { ...body, initTimeData: { data: b64url(Buffer.from(policy, 'base64')), dataType: 'Binary' } });
    assert.equal(r.status, 200, r.text);
    const c = r.claims!;
    assert.equal(c['x-ms-sevsnpvm-launchmeasurement'], expected.report.measurement);
    assert.equal(c['x-ms-sevsnpvm-hostdata'], expected.report.host_data);
    assert.deepEqual(c['x-ms-runtime'], { akey: 'avalue' });
    assert.equal(c.nonce, 1234567890);
  });

  test('Azure confidential VM (Milan) HCL report: VCEK from the collateral service, runtime keys exposed', async () => {
    const dir = ['amd', 'azure-cvm-hcl-milan-trustee'];
    const vcek = pemToDer(readFileSync(fixturePath(...dir, 'vcek.pem'), 'utf8'))[0]!;
    const chain = readFixture('amd', 'roots', 'kds_cert_chain', 'ask_ark_milan.pem');
    const seen: string[] = [];
    // An AMD KDS stand-in serving the real VCEK of this chip and the real Milan chain.
    const kds: Server = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (/^\/vcek\/v1\/Milan\/cert_chain/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(chain);
      else if (/^\/vcek\/v1\/Milan\/[0-9a-f]{128}\?/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/pkix-cert' }).end(Buffer.from(vcek));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => kds.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(kds.address() as AddressInfo).port}`;
      const r = await attestAt('2025-06-01T00:00:00Z', { upstreamAmd: url }, '/attest/SevSnpVm', { report: b64url(readFixture(...dir, 'hcl_report.bin')) });
      assert.equal(r.status, 200, r.text);
      const c = r.claims!;
      assert.equal(c['x-ms-attestation-type'], 'sevsnpvm');
      assert.equal(c['x-conclave-evidence-form'], 'azure-hcl');
      const kids = (c['x-ms-runtime'].keys as { kid: string }[]).map((k) => k.kid);
      assert.ok(kids.includes('HCLAkPub') && kids.includes('HCLEkPub'), `runtime keys: ${kids}`);
      assert.ok(seen.some((u) => u.includes('blSPL=')), 'the VCEK was fetched by chip id and reported TCB');
    } finally {
      kds.close();
    }
  });

  test('Azure CVM (Milan) HCL report: the AMD CRL is asked of the same source as the VCEK, in process or over HTTP; one that does not verify is never applied', async () => {
    const dir = ['amd', 'azure-cvm-hcl-milan-trustee'];
    const vcek = pemToDer(readFileSync(fixturePath(...dir, 'vcek.pem'), 'utf8'))[0]!;
    const chain = readFixture('amd', 'roots', 'kds_cert_chain', 'ask_ark_milan.pem');
    // No real ARK-signed CRL is among the vectors: the stand-in serves one the fake ARK signed, which neither
    // the collateral cache (on ingest) nor the attestation service's KDS client (before keeping it) accepts.
    const forged = makeFakeAmdCrl(createFakeSnpHierarchy(), [], new Date('2025-05-01T00:00:00Z'), new Date('2025-07-01T00:00:00Z'));
    const seen: string[] = [];
    const kds: Server = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (/^\/vcek\/v1\/Milan\/cert_chain/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(chain);
      else if (/^\/vcek\/v1\/Milan\/crl$/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(Buffer.from(forged));
      else if (/^\/vcek\/v1\/Milan\/[0-9a-f]{128}\?/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/pkix-cert' }).end(Buffer.from(vcek));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => kds.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(kds.address() as AddressInfo).port}`;
      const body = { report: b64url(readFixture(...dir, 'hcl_report.bin')) };
      for (const services of [undefined, ['attestation']]) {
        const where = services ? 'KDS over HTTP' : 'collateral cache in process';
        seen.length = 0;
        const r = await attestAt('2025-06-01T00:00:00Z', { upstreamAmd: url, ...(services ? { services } : {}) }, '/attest/SevSnpVm', body);
        assert.equal(r.status, 200, `${where}: ${r.text}`);
        assert.equal(r.claims!['x-conclave-sevsnpvm-crl'], 'unavailable', where);
        assert.ok(seen.includes('/vcek/v1/Milan/crl'), `${where}: the CRL was asked for (${seen.join(', ')})`);
        const required = await attestAt('2025-06-01T00:00:00Z', { upstreamAmd: url, snpCrl: 'required', ...(services ? { services } : {}) }, '/attest/SevSnpVm', body);
        assert.ok(required.status === 400 || required.status === 503, `${where}: ${required.status} ${required.text}`);
        assert.match(required.text, services ? /collateral\.missing/ : /upstream\.unavailable/, where);
      }
    } finally {
      kds.close();
    }
  });
});
