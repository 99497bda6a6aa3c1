/**
 * The TEE side of Azure guest attestation: the SDK's azure-vtpm source and `conclave agent --source
 * azure-vtpm` (the agent's /attest/maa) produce the AzureGuest document with a software vTPM device, and
 * open the sealed answer with it; recorded Azure CVM files replay through the same document builder.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { toHex } from '../../../src/core/bytes.js';
import { parseAzureVtpmEvidence } from '../../../src/evidence/azure-vtpm/evidence.js';
import { parseHclReport, parseHclRuntimeClaims } from '../../../src/evidence/azure-vtpm/hcl.js';
import { fakeVtpmDevice } from '../../../src/evidence/azure-vtpm/testing.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { akPublicAreaFromJwk } from '../../../src/evidence/tpm/testing.js';
import { startAgent } from '../../../src/agent/server.js';
import { attest } from '../../../src/sdk/attest.js';
import { maaReportData } from '../../../src/sdk/sources/maa-body.js';
import { azureVtpmSource } from '../../../src/sdk/sources/azure-vtpm.js';
import type { VtpmDevice } from '../../../src/sdk/sources/vtpm-device.js';
import { readFixture, skipWithoutFixtures } from '../../fixtures.js';
import { startTestServer } from '../../helpers/server.js';

function claimsOf(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
}

describe('Azure guest attestation from the TEE side', () => {
  test('SDK and agent: AzureGuest evidence from a (software) vTPM, the sealed answer opened by it', async () => {
    const server = await startTestServer({ simulate: true });
    try {
      const device = fakeVtpmDevice(loadOrCreateSimulatedTee(server.dataDir).snp);
      const source = azureVtpmSource({ device, certificates: async () => device.chainPem() });
      const ca = readFileSync(server.caPath, 'utf8');
      const runtimeData = new TextEncoder().encode('{"nonce":"42"}');
      const token = await attest({ attestationUrl: server.url, source, runtimeData, ca });
      const c = claimsOf(token);
      assert.equal(c['x-ms-attestation-type'], 'azurevm');
      assert.equal(c['x-ms-isolation-tee']['x-ms-compliance-status'], 'azure-compliant-cvm');
      // The runtime data is bound through the HCL user-data, which the SNP report signs.
      assert.equal(c['x-ms-isolation-tee']['x-ms-runtime']['user-data'], toHex(maaReportData(runtimeData)));
      assert.equal(c['x-ms-runtime'].keys[0].kid, 'TpmEphemeralEncryptionKey');
      assert.equal(c.secureboot, true);

      // The agent (`conclave agent --source azure-vtpm`) answers the sidecar's /attest/maa with the same flow.
      const agent = await startAgent({ source, port: 0, attestationUrl: server.url, ca });
      try {
        const r = await fetch(`${agent.url}/attest/maa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ runtime_data: Buffer.from(runtimeData).toString('base64') }) });
        assert.equal(r.status, 200, await r.clone().text());
        const t = claimsOf(((await r.json()) as { token: string }).token);
        assert.equal(t['x-ms-attestation-type'], 'azurevm');
        assert.equal(t['x-ms-isolation-tee']['x-ms-runtime']['user-data'], toHex(maaReportData(runtimeData)));
        // /attest/raw still answers with the SNP report of the refreshed HCL report.
        const raw = await fetch(`${agent.url}/attest/raw`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ runtime_data: Buffer.from(runtimeData).toString('base64') }) });
        assert.equal(raw.status, 200);
      } finally {
        await agent.close();
      }

      // A changed boot state (PCR 7 extended after the key was made) cannot open the answer.
      const stale = azureVtpmSource({ device: { ...device, decryptWithEphemeralKey: async () => { throw new Error('TPM_RC_POLICY_FAIL'); } } as VtpmDevice, certificates: async () => device.chainPem() });
      await assert.rejects(attest({ attestationUrl: server.url, source: stale, runtimeData, ca }), /TPM_RC_POLICY_FAIL/);
    } finally {
      await server.stop();
    }
  });

  test('recorded Azure CVM files (Milan) replay through the SDK document builder to a verified AzureGuest token', { skip: skipWithoutFixtures() }, async () => {
    const ev = parseAzureVtpmEvidence(readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json'))!;
    const hcl = parseHclReport(ev.hclReport);
    const recorded: VtpmDevice = {
      name: 'recorded',
      readHclReport: async () => ev.hclReport,
      readAkCert: async () => new Uint8Array(0),
      readAkPublic: async () => akPublicAreaFromJwk(parseHclRuntimeClaims(hcl.runtimeData).hclAkPub!),
      readPcrs: async () => ev.tpmQuote.pcrs.map((p) => p.value),
      quote: async () => ({ message: ev.tpmQuote.message, signature: ev.tpmQuote.signature }),
      createEphemeralKey: async () => undefined,
      decryptWithEphemeralKey: async () => {
        throw new Error('a recording has no TPM');
      },
      readEventLog: async () => new Uint8Array(0),
    };
    const vcek = ev.vcek!.pem!;
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      const source = azureVtpmSource({ device: recorded, certificates: async () => vcek, requireUserData: false });
      // The recording quotes all 24 PCRs.
      const { azureGuestEvidence } = await import('../../../src/sdk/sources/azure-guest.js');
      const guest = await azureGuestEvidence(new Uint8Array(0), { device: recorded, certificates: async () => vcek, requireUserData: false, pcrs: Array.from({ length: 24 }, (_, i) => i) });
      const r = await server.send('POST', '/attest/AzureGuest?api-version=2020-10-01', { body: guest.evidence.body });
      assert.equal(r.status, 200, r.text);
      const token = await guest.open(r.json().token);
      const c = claimsOf(token);
      assert.equal(c['x-ms-azurevm-vmid'], '26F8BC30-774E-4290-8E7A-535F3B672AEE');
      assert.equal(c['x-conclave-vtpm-verified'], true);
      assert.ok(source.getAzureGuestEvidence, 'the azure-vtpm source offers guest attestation');
    } finally {
      await server.stop();
    }
  });
});
