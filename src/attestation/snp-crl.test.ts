/**
 * Attack on SEV-SNP attestation (review, "real verification"): the verifier checks an AMD CRL when it is
 * given one (ARK signature, thisUpdate/nextUpdate, revoked ASK/ASVK), but the attestation service never
 * gave it one, so evidence whose ASK AMD has revoked attested as if nothing were wrong, in the container
 * form (chain in the evidence) and in the Azure CVM form (VCEK and chain from the collateral source).
 *
 * A fake AMD hierarchy (src/evidence/snp/testing.ts) stands in for AMD through the service's simulated
 * trust anchors; its ARK signs the CRLs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b64url } from '../core/bytes.js';
import { derToPem } from '../core/x509.js';
import { simulateAzureCvm } from '../evidence/azure-vtpm/testing.js';
import type { SimulatedTee } from '../evidence/simulated/index.js';
import { createFakeSnpHierarchy, makeFakeAmdCrl, makeFakeSnpReport } from '../evidence/snp/testing.js';
import { DEFAULT_POLICIES } from './policy/index.js';
import type { PolicyStore, SnpCertificateSource } from './ports.js';
import { type AttestationServiceDeps, createAttestationService } from './service.js';

const at = new Date('2025-06-01T00:00:00Z');
const h = createFakeSnpHierarchy();
const ASK_SERIAL = '10001';
const crlOf = (revoked: string[]) => makeFakeAmdCrl(h, revoked, new Date('2025-05-01T00:00:00Z'), new Date('2025-07-01T00:00:00Z'));
const revoked = crlOf([ASK_SERIAL]);

const policies = {
  async getPolicy() {
    return undefined;
  },
  async version() {
    return 0;
  },
} as unknown as PolicyStore;

/** The collateral cache as the service sees it: this chip's VCEK, the product's chain, and the AMD CRL. */
function collateralStandIn(crl: Uint8Array | undefined): SnpCertificateSource & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async getVcek(req) {
      asked.push(`vcek ${req.product}`);
      return { vcek: h.vek.der, chain: h.chain };
    },
    async getCrl(req: { product: string; signingKey: string }) {
      asked.push(`crl ${req.product} ${req.signingKey}`);
      if (!crl) throw Object.assign(new Error('no CRL'), { code: 'collateral.not_found' });
      return crl;
    },
  } as SnpCertificateSource & { asked: string[] };
}

function service(crl: Uint8Array | undefined, extra: Partial<AttestationServiceDeps> = {}) {
  const snpCertificates = collateralStandIn(crl);
  const simulated = { amdAnchors: h.trustAnchors, amdCrl: crl } as unknown as SimulatedTee;
  const svc = createAttestationService({
    collateral: {} as never,
    snpCertificates,
    policies,
    signer: () => Promise.reject(new Error('unused: draft policies give unsigned tokens')),
    issuer: () => 'https://attest.example',
    now: () => at,
    cacheClockMs: () => 0,
    tokenLifetimeSeconds: 60,
    simulated,
    ...extra,
  });
  return { svc, snpCertificates };
}

/** Evidence of the container form: the MAA SevSnpVm JSON with the VCEK, ASK and ARK in VcekCertChain. */
function containerEvidence(): string {
  const chainPem = [h.vek.der, ...h.chain].map((d) => derToPem(d)).join('');
  return b64url(JSON.stringify({ SnpReport: b64url(makeFakeSnpReport(h)), VcekCertChain: b64url(chainPem) }));
}

/** Azure CVM form: trustee's az-snp-vtpm evidence (HCL report, vTPM quote, the VCEK; the ASK is the pinned one). */
function azureCvmEvidence(): string {
  return b64url(simulateAzureCvm(h).trusteeV1());
}

const draftPolicyForAttestation = DEFAULT_POLICIES.SevSnpVm;

async function refusedWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: { code?: string; status?: number }) => {
    assert.equal(e.code, code);
    assert.equal(e.status, 400);
    return true;
  });
}

describe('SEV-SNP attestation checks the AMD CRL', () => {
  test('container form: evidence whose ASK the AMD CRL revokes is refused (snp.revoked)', async () => {
    const { svc } = service(revoked);
    await refusedWith(svc.attest('SevSnpVm', { report: containerEvidence(), draftPolicyForAttestation }), 'snp.revoked');
  });

  test('Azure CVM form (HCL report and vTPM quote): a revoked ASK is refused (snp.revoked)', async () => {
    const { svc } = service(revoked);
    await refusedWith(svc.attest('SevSnpVm', { report: azureCvmEvidence(), draftPolicyForAttestation }), 'snp.revoked');
  });
});
