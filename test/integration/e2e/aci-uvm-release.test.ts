/**
 * Azure confidential containers against Conclave: the UVM reference information (COSE_Sign1) in MAA
 * `SevSnpVm` evidence is verified to its did:x509 signer and the report's launch measurement, and
 * `x-ms-compliance-status: azure-compliant-uvm` is issued only by the SevSnpVm policy's rules (trusted
 * signer and feed, minimum SVN, VMPL 0, not debuggable). Azure's ACI release policy then releases a key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { DEFAULT_POLICIES } from '../../../src/attestation/policy/defaults.js';
import { encodePolicyJws } from '../../../src/attestation/policy/index.js';
import { b64url, sha256, toHex } from '../../../src/core/bytes.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { createTestUvmSigner } from '../../../src/evidence/snp/uvm-testing.js';
import { decodeReleaseResponse, unwrapKeyTransfer } from '../../../src/vault/release/index.js';
import { readFixture, readFixtureJson, skipWithoutFixtures } from '../../fixtures.js';
import { assertGolden, payload, stable } from '../../helpers/golden.js';
import { startTestServer } from '../../helpers/server.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

const skip = skipWithoutFixtures();
const MS_UVM_ISSUER = 'did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.3.6.1.4.1.311.76.59.1.2';

/** The real ACI request body (sidecar form) with its security policy as init-time data. */
function aciBody(): Record<string, any> {
  const body = readFixtureJson<Record<string, any>>('amd', 'azure-aci-sidecar', 'DERIVED_maa_attest_sevsnpvm_request.json');
  const policy = Buffer.from(readFixture('amd', 'azure-aci-sidecar', 'uvm_security_policy.base64').toString('utf8').trim(), 'base64');
  return { ...body, initTimeData: { data: b64url(policy), dataType: 'Binary' } };
}

/** Replaces the UVM endorsement inside a SevSnpVm body's report. */
function withUvm(body: Record<string, any>, cose: Uint8Array | undefined): Record<string, any> {
  const inner = JSON.parse(Buffer.from(body.report, 'base64url').toString('utf8'));
  if (cose) inner.Endorsements = b64url(JSON.stringify({ Uvm: [b64url(cose)] }));
  else delete inner.Endorsements;
  return { ...body, report: b64url(JSON.stringify(inner)) };
}

/** The default SevSnpVm policy with other trusted signers or minimum SVNs, as an operator would edit it. */
function editedDefault(edit: (text: string) => string): string {
  const text = edit(DEFAULT_POLICIES.SevSnpVm);
  assert.notEqual(text, DEFAULT_POLICIES.SevSnpVm);
  return text;
}

describe('Azure confidential containers: UVM endorsement and azure-compliant-uvm', { skip }, () => {
  test('the real ACI UVM endorsement verifies; Conclave vouches only at or above the minimum SVN its policy sets', async () => {
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      const r = await server.send('POST', '/attest/SevSnpVm?api-version=2023-04-01-preview', { body: aciBody() });
      assert.equal(r.status, 200, r.text);
      const c = payload(r.json().token);
      assert.equal(c['x-conclave-uvm-issuer'], MS_UVM_ISSUER);
      assert.equal(c['x-conclave-uvm-feed'], 'ContainerPlat-AMD-UVM');
      assert.equal(c['x-conclave-uvm-svn'], 22);
      // The 2023 UVM (SVN 22) is below Microsoft's current minimum (100) the default policy pins.
      assert.equal(c['x-ms-compliance-status'], undefined);
      assertGolden('sevsnpvm-aci', stable(c));
      assert.match(DEFAULT_POLICIES.SevSnpVm, /x-conclave-uvm-svn", value>=100\]/);

      // The operator lowers the minimum for this feed to 22: the same evidence is azure-compliant-uvm.
      const draft = editedDefault((t) => t.replace('value>=100]', 'value>=22]'));
      const ok = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { ...aciBody(), draftPolicyForAttestation: draft } });
      assert.equal(ok.status, 200, ok.text);
      const oc = payload(ok.json().token);
      assert.equal(oc['x-ms-compliance-status'], 'azure-compliant-uvm');
      assert.equal(oc['x-ms-isolation-tee']['x-ms-compliance-status'], 'azure-compliant-uvm');
      // 23 is more than this UVM has.
      const above = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { ...aciBody(), draftPolicyForAttestation: editedDefault((t) => t.replace('value>=100]', 'value>=23]')) } });
      assert.equal(payload(above.json().token)['x-ms-compliance-status'], undefined);

      // Without an endorsement there is nothing to vouch for.
      const none = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { ...withUvm(aciBody(), undefined), draftPolicyForAttestation: draft } });
      assert.equal(none.status, 200, none.text);
      assert.equal(payload(none.json().token)['x-conclave-uvm-issuer'], undefined);
      assert.equal(payload(none.json().token)['x-ms-compliance-status'], undefined);
    } finally {
      await server.stop();
    }
  });

  test('an endorsement anyone can make (own did:x509 CA) verifies under its own issuer and is not trusted; tampering is refused', async () => {
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      const measurement = readFixtureJson<{ report: { measurement: string } }>('amd', 'azure-aci-sidecar', 'expected.json').report.measurement;
      const signer = await createTestUvmSigner();
      const draft = editedDefault((t) => t.replace('value>=100]', 'value>=0]'));
      const forged = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { ...withUvm(aciBody(), signer.endorse(measurement, { svn: 500 })), draftPolicyForAttestation: draft } });
      assert.equal(forged.status, 200, forged.text);
      const fc = payload(forged.json().token);
      assert.equal(fc['x-conclave-uvm-issuer'], signer.issuer);
      assert.equal(fc['x-conclave-uvm-svn'], 500);
      assert.equal(fc['x-ms-compliance-status'], undefined);

      // An endorsement of another measurement, a flipped signature byte, a garbled message: 400 with the code.
      const other = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: withUvm(aciBody(), signer.endorse('00'.repeat(48))) });
      assert.equal(other.status, 400);
      assert.equal(other.json().error.code, 'uvm.measurement_mismatch');
      const real = new Uint8Array(readFixture('amd', 'azure-aci-sidecar', 'body.uvm_reference_info.bin'));
      real[real.byteLength - 5]! ^= 0x01;
      const flipped = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: withUvm(aciBody(), real) });
      assert.equal(flipped.status, 400);
      assert.equal(flipped.json().error.code, 'cose.signature_invalid');
      const garbled = await server.send('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: withUvm(aciBody(), real.subarray(0, 64)) });
      assert.equal(garbled.status, 400);
      assert.equal(garbled.json().error.code, 'cose.malformed');
    } finally {
      await server.stop();
    }
  });

  test('Azure\'s ACI release policy (compliance + HOST_DATA) releases to a container whose UVM signer the operator trusts', async () => {
    const server = await startTestServer({ simulate: true });
    try {
      const bearer = `Bearer ${await server.adminToken()}`;
      const grant = await server.sendHttps('PUT', '/admin/vault/roleAssignments', {
        headers: { authorization: bearer },
        body: { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' },
      });
      assert.equal(grant.status, 200, grant.text);
      // The operator trusts its own UVM signer (e.g. an on-premises UVM build) in place of Microsoft's.
      const signer = await createTestUvmSigner();
      const policyText = editedDefault((t) => t.replace(MS_UVM_ISSUER, signer.issuer));
      const put = await server.send('PUT', '/policies/SevSnpVm?api-version=2022-08-01', { headers: { authorization: bearer, 'content-type': 'text/plain' }, body: encodePolicyJws(policyText) });
      assert.equal(put.status, 200, put.text);

      const securityPolicy = new TextEncoder().encode('package policy\nallow := true\n');
      const workload = generateRsaKeyPair(2048);
      const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ ...workload.publicKey.export({ format: 'jwk' }), kid: 'workload', key_ops: ['encrypt'] }] }));
      const measurement = randomBytes(48).toString('hex');
      const tee = loadOrCreateSimulatedTee(server.dataDir);
      const attest = async (svn: number) => {
        const ev = tee.evidence({ tee: 'snp', runtimeData: runtime, initTimeData: securityPolicy, measurement });
        const r = await server.sendHttps('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: withUvm(ev.body, signer.endorse(measurement, { svn })) });
        assert.equal(r.status, 200, r.text);
        return r.json().token as string;
      };

      const aciPolicy = readFixtureJson<{ anyOf: { authority: string; allOf: { claim: string; equals: string }[] }[] }>('skr-policies', 'docs-aci-example1-hostdata.json');
      const hostData = toHex(sha256(securityPolicy));
      const release = {
        ...aciPolicy,
        anyOf: aciPolicy.anyOf.map((a) => ({ ...a, authority: `${server.url}/`, allOf: a.allOf.map((c) => (c.claim === 'x-ms-sevsnpvm-hostdata' ? { ...c, equals: hostData } : c)) })),
      };
      const name = `aci-${randomBytes(4).toString('hex')}`;
      const created = await server.sendHttps('POST', `/keys/${name}/create?api-version=7.4`, {
        headers: { authorization: bearer },
        body: { kty: 'oct-HSM', key_size: 256, attributes: { exportable: true }, release_policy: { data: Buffer.from(JSON.stringify(release)).toString('base64url') } },
      });
      assert.equal(created.status, 200, created.text);

      const good = await attest(101);
      const claims = payload(good);
      assert.equal(claims['x-ms-compliance-status'], 'azure-compliant-uvm');
      assert.equal(claims['x-ms-sevsnpvm-hostdata'], hostData);
      assert.equal(claims['x-conclave-simulated'], true);
      const r = await server.sendHttps('POST', `/keys/${name}/release?api-version=7.4`, { headers: { authorization: bearer }, body: { target: good } });
      assert.equal(r.status, 200, r.text);
      const material = unwrapKeyTransfer((decodeReleaseResponse(r.json().value) as any).payload.response.key.key.key_hsm, workload.privateKey);
      assert.equal(material.byteLength, 32);

      // The same container on a UVM below the minimum (100): no compliance claim, release refused naming it.
      const old = await attest(99);
      assert.equal(payload(old)['x-ms-compliance-status'], undefined);
      const denied = await server.sendHttps('POST', `/keys/${name}/release?api-version=7.4`, { headers: { authorization: bearer }, body: { target: old } });
      assert.equal(denied.status, 403, denied.text);
      assert.match(denied.text, /x-ms-compliance-status/);
      assert.match(denied.text, /azure-compliant-uvm/);
    } finally {
      await server.stop();
    }
  });
});
