/**
 * Pin (review of SEV-SNP claims): the default SevSnpVm policy calls an Azure CVM `azure-compliant-cvm` only
 * when its SNP report comes from VMPL 0 (the paravisor, which owns the vTPM and the HCL runtime data) and its
 * guest policy does not allow debugging. A report from a less privileged VMPL, or a debuggable guest, still
 * verifies and attests, with the facts as claims, but is never compliant. Already defended; pinned here.
 *
 * A fake AMD hierarchy (src/evidence/snp/testing.ts) stands in for AMD through the service's simulated trust
 * anchors, as in snp-crl.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b64url } from '../core/bytes.js';
import { fail } from '../core/errors.js';
import { simulateAzureCvm } from '../evidence/azure-vtpm/testing.js';
import type { SimulatedTee } from '../evidence/simulated/index.js';
import { createFakeSnpHierarchy } from '../evidence/snp/testing.js';
import { DEFAULT_POLICIES } from './policy/index.js';
import type { SnpCertificateSource } from './ports.js';
import { draftPolicyService } from './testing.js';

const at = new Date('2025-06-01T00:00:00Z');
const h = createFakeSnpHierarchy();

const snpCertificates = {
  async getVcek() {
    throw new Error('unused: the VCEK is in the evidence');
  },
  async getCrl() {
    throw fail('collateral.not_found', 'no AMD CRL');
  },
} as unknown as SnpCertificateSource;

const svc = draftPolicyService({ snpCertificates, now: () => at, simulated: { amdAnchors: h.trustAnchors } as unknown as SimulatedTee });

/** The claims of trustee az-snp-vtpm evidence of a simulated Azure CVM under the default SevSnpVm policy. */
async function claimsOf(o: { debug?: boolean; vmpl?: number }) {
  const cvm = simulateAzureCvm(h, o);
  const { claims } = await svc.attest('SevSnpVm', { report: b64url(cvm.trusteeV1()), draftPolicyForAttestation: DEFAULT_POLICIES.SevSnpVm });
  return claims;
}

describe('default SevSnpVm policy: no azure-compliant-cvm for a debuggable guest or a report from VMPL > 0 (pin)', () => {
  test('VMPL 0, not debuggable: azure-compliant-cvm (the control)', async () => {
    const claims = await claimsOf({});
    assert.equal(claims['x-ms-sevsnpvm-vmpl'], 0);
    assert.equal(claims['x-ms-sevsnpvm-is-debuggable'], false);
    assert.equal(claims['x-ms-compliance-status'], 'azure-compliant-cvm');
  });

  test('DEBUG set in the guest policy: attested as debuggable, not compliant', async () => {
    const claims = await claimsOf({ debug: true });
    assert.equal(claims['x-ms-sevsnpvm-is-debuggable'], true);
    assert.equal((claims['x-ms-isolation-tee'] as Record<string, unknown>)['x-ms-sevsnpvm-is-debuggable'], true);
    assert.equal(claims['x-ms-compliance-status'], undefined);
  });

  test('a report requested from VMPL 2 (the guest OS under the paravisor): attested with its VMPL, not compliant', async () => {
    for (const vmpl of [1, 2, 3]) {
      const claims = await claimsOf({ vmpl });
      assert.equal(claims['x-ms-sevsnpvm-vmpl'], vmpl);
      assert.equal(claims['x-ms-compliance-status'], undefined, `VMPL ${vmpl}`);
    }
  });
});
