/**
 * Real Azure confidential VM evidence (SNP Milan and Genoa, TDX) with its vTPM quote through
 * `/attest/SevSnpVm`, `/attest/TdxVm` and `/attest/AzureGuest`; the full claim set of each token is
 * compared with a checked-in golden file (test/golden/azure-vtpm/), so a renamed or extra claim fails.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { b64url } from '../../../src/core/bytes.js';
import { readFixture, readFixtureText, skipWithoutFixtures } from '../../fixtures.js';
import { guestInfoFrom } from '../../helpers/azure-guest.js';
import { assertGolden, GOLDEN, payload, stable } from '../../helpers/golden.js';
import { startPcsStandin } from '../../helpers/pcs-standin.js';
import { startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const milan = () => readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json');
const genoa = () => readFixture('amd', 'azure-cvm-hcl-genoa-trustee', 'evidence-genoa.json');
const tdxV1 = () => readFixture('intel', 'tdx-v4-azure-trustee', 'evidence-v1.json');

describe('Azure CVM vTPM evidence through the attestation service', { skip }, () => {
  test('SevSnpVm: Milan and Genoa (trustee v0) and v1/v2 verify, azure-compliant-cvm through the default policy', async () => {
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      for (const [name, bytes] of [
        ['sevsnpvm-milan-v0', milan()],
        ['sevsnpvm-genoa-v0', genoa()],
        ['sevsnpvm-milan-v1', readFixture('azure-vtpm-trustee', 'az-snp-vtpm-evidence-v1.json')],
        ['sevsnpvm-v2', readFixture('azure-vtpm-trustee', 'az-snp-vtpm-evidence-v2.json')],
      ] as const) {
        const r = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { report: b64url(bytes) } });
        assert.equal(r.status, 200, `${name}: ${r.text}`);
        const c = payload(r.json().token);
        assert.equal(c['x-ms-attestation-type'], 'sevsnpvm', name);
        assert.equal(c['x-ms-compliance-status'], 'azure-compliant-cvm', name);
        assert.equal(c['x-conclave-vtpm-verified'], true, name);
        assertGolden(name, stable(c));
      }
      // A byte flip anywhere in the quote's signed message is refused with a tpm.* code, as a 400.
      const doc = JSON.parse(milan().toString('utf8'));
      doc.quote.message[30] ^= 1;
      const bad = await server.send('POST', '/attest/SevSnpVm?api-version=2023-04-01-preview', { body: { report: b64url(JSON.stringify(doc)) } });
      assert.equal(bad.status, 400);
      assert.equal(bad.json().error.code, 'tpm.quote_signature_invalid');
    } finally {
      await server.stop();
    }
  });

  test('TdxVm: the Azure TDX CVM (TD quote + HCL + vTPM quote, trustee v0 and v1)', async () => {
    const standin = await startPcsStandin('tdx-azure');
    const server = await startTestServer({ upstreamIntel: standin.url }, { now: () => new Date('2025-10-20T00:00:00Z') });
    try {
      for (const [name, bytes] of [
        ['tdxvm-v1', tdxV1()],
        ['tdxvm-v0', readFixture('azure-vtpm-trustee', 'az-tdx-vtpm-evidence-v0.json')],
      ] as const) {
        const r = await server.send('POST', '/attest/TdxVm?api-version=2023-04-01-preview', { body: { quote: b64url(bytes) } });
        assert.equal(r.status, 200, `${name}: ${r.text}`);
        const c = payload(r.json().token);
        assert.equal(c['x-ms-attestation-type'], 'tdxvm');
        assert.equal(c['x-ms-compliance-status'], 'azure-compliant-cvm');
        assert.equal(c.attester_tcb_status, 'OutOfDate');
        assertGolden(name, stable(c));
      }
      // Version 2 binds the quote nonce to the HCL user-data; this VM's v1 quote (nonce "challenge") does not.
      const v2 = { ...JSON.parse(tdxV1().toString('utf8')), version: 2 };
      const r2 = await server.send('POST', '/attest/TdxVm?api-version=2023-04-01-preview', { body: { quote: b64url(JSON.stringify(v2)) } });
      assert.equal(r2.status, 400, r2.text);
      assert.equal(r2.json().error.code, 'tpm.nonce_mismatch');
    } finally {
      await server.stop();
      await standin.close();
    }
  });

  test('AzureGuest: the real SNP and TDX CVM evidence in the guest attestation document', async () => {
    const standin = await startPcsStandin('tdx-azure');
    try {
      for (const [name, bytes, at] of [
        ['azureguest-milan', milan(), '2025-06-01T00:00:00Z'],
        ['azureguest-genoa', genoa(), '2025-06-01T00:00:00Z'],
        ['azureguest-tdx', tdxV1(), '2025-10-20T00:00:00Z'],
      ] as const) {
        const server = await startTestServer({ upstreamIntel: standin.url }, { now: () => new Date(at) });
        try {
          const r = await server.send('POST', '/attest/AzureGuest?api-version=2020-10-01', { body: { AttestationInfo: guestInfoFrom(bytes) } });
          assert.equal(r.status, 200, `${name}: ${r.text}`);
          const c = payload(r.json().token);
          assert.equal(c['x-ms-attestation-type'], 'azurevm');
          assert.equal(c['x-ms-isolation-tee']['x-ms-compliance-status'], 'azure-compliant-cvm', name);
          assert.deepEqual(c['x-ms-runtime']['client-payload'], { nonce: 'n-123' });
          assertGolden(name, stable(c));
        } finally {
          await server.stop();
        }
      }
    } finally {
      await standin.close();
    }
  });

  test('every x-ms-* claim name of our Azure tokens is one the real MAA AzureGuest/SevSnpVm/TDX tokens use', () => {
    const known = new Set<string>();
    const collect = (o: Record<string, unknown>) => {
      for (const [k, v] of Object.entries(o)) {
        known.add(k);
        if (k === 'x-ms-isolation-tee' && typeof v === 'object' && v) collect(v as Record<string, unknown>);
      }
    };
    for (const f of ['azurevm-sevsnp-sharedeus2-2024-12.payload.json', 'azurevm-sevsnp-cvmga-sampleAttestationToken.payload.json', 'docs-sevsnpvm-sample.payload.json', 'docs-tdxvm-sample.payload.json']) {
      collect(JSON.parse(readFixtureText('maa-claims', f)));
    }
    const names = (o: Record<string, unknown>, out: string[] = []) => {
      for (const [k, v] of Object.entries(o)) {
        if (k.startsWith('x-ms-')) out.push(k);
        if (k === 'x-ms-isolation-tee' && typeof v === 'object' && v) names(v as Record<string, unknown>, out);
      }
      return out;
    };
    for (const g of ['sevsnpvm-milan-v0', 'sevsnpvm-genoa-v0', 'sevsnpvm-milan-v1', 'sevsnpvm-v2', 'tdxvm-v0', 'tdxvm-v1', 'azureguest-milan', 'azureguest-genoa', 'azureguest-tdx', 'sevsnpvm-aci']) {
      const file = join(GOLDEN, `${g}.json`);
      const claims = JSON.parse(readFileSync(file, 'utf8'));
      for (const n of names(claims)) assert.ok(known.has(n), `${g}: ${n} is not a claim name of a real MAA token`);
    }
    // And the names MAA's real AzureGuest token uses that Conclave emits on the same evidence kind.
    const real = JSON.parse(readFixtureText('maa-claims', 'azurevm-sevsnp-sharedeus2-2024-12.payload.json'));
    const ours = JSON.parse(readFileSync(join(GOLDEN, 'azureguest-milan.json'), 'utf8'));
    for (const k of Object.keys(real['x-ms-isolation-tee'])) assert.ok(k in ours['x-ms-isolation-tee'], `x-ms-isolation-tee.${k} missing`);
  });
});
