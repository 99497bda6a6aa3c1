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
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fixturePath, readFixture, readFixtureJson, skipWithoutFixtures } from '../../test/fixtures.js';
import { guestInfoFrom } from '../../test/helpers/azure-guest.js';
import { b64url } from '../core/bytes.js';
import { ConclaveError, fail } from '../core/errors.js';
import { derToPem, pemToDer } from '../core/x509.js';
import { simulateAzureCvm } from '../evidence/azure-vtpm/testing.js';
import { issueCertificate } from '../evidence/dcap/testing.js';
import type { SimulatedTee } from '../evidence/simulated/index.js';
import { createFakeSnpHierarchy, makeFakeAmdCrl, makeFakeSnpReport } from '../evidence/snp/testing.js';
import { DEFAULT_POLICIES } from './policy/index.js';
import type { SnpCertificateSource } from './ports.js';
import type { AttestationServiceDeps } from './service.js';
import { draftPolicyService } from './testing.js';

const at = new Date('2025-06-01T00:00:00Z');
const h = createFakeSnpHierarchy();
const ASK_SERIAL = '10001';
const crlOf = (revoked: string[]) => makeFakeAmdCrl(h, revoked, new Date('2025-05-01T00:00:00Z'), new Date('2025-07-01T00:00:00Z'));
const revoked = crlOf([ASK_SERIAL]);

/** The collateral cache as the service sees it: a VCEK and chain, and the AMD CRL (or the error it answers). */
function collateralStandIn(crl: Uint8Array | ConclaveError | undefined, vcek = { vcek: h.vek.der, chain: h.chain }): SnpCertificateSource & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async getVcek(req) {
      asked.push(`vcek ${req.product}`);
      return vcek;
    },
    async getCrl(req: { product: string; signingKey: string }) {
      asked.push(`crl ${req.product} ${req.signingKey}`);
      if (crl === undefined) throw fail('collateral.not_found', 'no AMD CRL cached and no upstream configured');
      if (crl instanceof ConclaveError) throw crl;
      return crl;
    },
  } as SnpCertificateSource & { asked: string[] };
}

interface ServiceOptions {
  /** What the collateral source answers for the CRL (default: `crl`); an error is what it rejects with. */
  readonly sourceCrl?: Uint8Array | ConclaveError | undefined;
  /** The simulated TEE's own CRL (default: `crl`). */
  readonly simulatedCrl?: Uint8Array | undefined;
  /** What the collateral source answers for the VCEK (default: the fake hierarchy's). */
  readonly vcek?: { vcek: Uint8Array; chain: Uint8Array[] };
  readonly snpCrl?: AttestationServiceDeps['snpCrl'];
}

/** The service with the fake hierarchy's roots as its simulated ones, `crl` from its collateral source and as the simulated TEE's own. */
function service(crl: Uint8Array | undefined, o: ServiceOptions = {}) {
  const snpCertificates = collateralStandIn('sourceCrl' in o ? o.sourceCrl : crl, o.vcek);
  const simulated = { amdAnchors: h.trustAnchors, amdCrl: 'simulatedCrl' in o ? o.simulatedCrl : crl } as unknown as SimulatedTee;
  return { svc: serviceOver(snpCertificates, { simulated, snpCrl: o.snpCrl }), snpCertificates };
}

/** The attestation service over `snpCertificates` at `at`, draft policies only (unsigned tokens). */
function serviceOver(snpCertificates: SnpCertificateSource, deps: Partial<AttestationServiceDeps> = {}) {
  return draftPolicyService({ snpCertificates, now: () => at, ...deps });
}

/** Evidence of the container form: the MAA SevSnpVm JSON with the VCEK, ASK and ARK in VcekCertChain. */
function containerEvidence(): string {
  const chainPem = [h.vek.der, ...h.chain].map((d) => derToPem(d)).join('');
  return b64url(JSON.stringify({ SnpReport: b64url(makeFakeSnpReport(h)), VcekCertChain: b64url(chainPem) }));
}

/** Azure CVM form: trustee's az-snp-vtpm evidence (HCL report, vTPM quote, the VCEK; the ASK is the pinned one). */
let cvm: ReturnType<typeof simulateAzureCvm> | undefined;
function azureCvmEvidence(): string {
  cvm ??= simulateAzureCvm(h);
  return b64url(cvm.trusteeV1());
}

const draftPolicyForAttestation = DEFAULT_POLICIES.SevSnpVm;

async function refusedWith(p: Promise<unknown>, code: string, status = 400): Promise<void> {
  await assert.rejects(p, (e: { code?: string; status?: number }) => {
    assert.equal(e.code, code);
    assert.equal(e.status, status);
    return true;
  });
}

const CLAIM = 'x-conclave-sevsnpvm-crl';

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

describe('SEV-SNP attestation and the AMD CRL: what a CRL must be, and what no CRL means', () => {
  const forms = [
    ['container', containerEvidence],
    ['Azure CVM', azureCvmEvidence],
  ] as const;

  test('a clean CRL: both forms attest, and the token says the CRL was checked', async () => {
    const { svc } = service(crlOf([]));
    for (const [form, evidence] of forms) {
      const { claims } = await svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation });
      assert.equal(claims[CLAIM], 'checked', form);
      assert.equal((claims['x-ms-isolation-tee'] as Record<string, unknown>)[CLAIM], 'checked', `${form}: nested TEE claims too`);
    }
  });

  test('a CRL signed by another key than the ARK is refused (crl.invalid), as are bytes that are no CRL', async () => {
    const other = createFakeSnpHierarchy();
    const forged = makeFakeAmdCrl(other, [], new Date('2025-05-01T00:00:00Z'), new Date('2025-07-01T00:00:00Z'));
    for (const [, evidence] of forms) {
      await refusedWith(service(forged).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation }), 'crl.invalid');
      await refusedWith(service(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation }), 'crl.invalid');
    }
  });

  test('a CRL past its nextUpdate fails closed (crl.expired), and one whose thisUpdate is ahead is crl.invalid', async () => {
    const stale = makeFakeAmdCrl(h, [], new Date('2025-04-01T00:00:00Z'), new Date('2025-05-01T00:00:00Z'));
    const early = makeFakeAmdCrl(h, [], new Date('2025-06-02T00:00:00Z'), new Date('2025-07-01T00:00:00Z'));
    for (const [, evidence] of forms) {
      await refusedWith(service(stale).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation }), 'crl.expired');
      await refusedWith(service(early).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation }), 'crl.invalid');
    }
  });

  test('a CRL without nextUpdate (which RFC 5280 requires of every CRL) is refused (crl.invalid): it could never expire, so a replayed one would stand for good', async () => {
    const endless = makeFakeAmdCrl(h, [], new Date('2025-05-01T00:00:00Z'), undefined);
    for (const [form, evidence] of forms) {
      await assert.rejects(
        service(endless).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation }),
        (e: { code?: string; status?: number }) => e.code === 'crl.invalid' && e.status === 400,
        `${form}: a CRL without nextUpdate is crl.invalid`,
      );
    }
  });

  test('no CRL: attested, the token says unavailable; with snpCrl required, refused (collateral.missing)', async () => {
    for (const [form, evidence] of forms) {
      const { claims } = await service(undefined).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation });
      assert.equal(claims[CLAIM], 'unavailable', form);
      await refusedWith(service(undefined, { snpCrl: 'required' }).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation }), 'collateral.missing');
      const { claims: checked } = await service(crlOf([]), { snpCrl: 'required' }).svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation });
      assert.equal(checked[CLAIM], 'checked', `${form}: required and had`);
    }
  });

  test("simulated evidence is checked with the simulated TEE's own CRL, never with the one AMD's collateral source answers", async () => {
    const { svc } = service(undefined, { sourceCrl: revoked, simulatedCrl: crlOf([]) });
    for (const [form, evidence] of forms) {
      const { claims } = await svc.attest('SevSnpVm', { report: evidence(), draftPolicyForAttestation });
      assert.equal(claims[CLAIM], 'checked', form);
      assert.equal(claims['x-conclave-simulated'], true);
    }
  });
});

describe('SEV-SNP evidence: bounded work before the certificates are counted', () => {
  test('container form: a VcekCertChain of 20,000 BEGIN lines with no END (a body under the 1 MB limit) is refused in well under a second', async () => {
    // The chain is split into certificates (pemToDer) before SNP_MAX_CERTIFICATES counts them. With the lazy regex
    // every BEGIN scanned to the end of the text for an END: quadratic, 5.6 s of event loop for one anonymous request.
    const { svc } = service(undefined);
    const report = b64url(JSON.stringify({ SnpReport: b64url(makeFakeSnpReport(h)), VcekCertChain: b64url('-----BEGIN CERTIFICATE-----'.repeat(20_000)) }));
    assert.ok(report.length < 1024 * 1024);
    const t = performance.now();
    await assert.rejects(svc.attest('SevSnpVm', { report, draftPolicyForAttestation }), (e: { status?: number }) => (e.status ?? 500) < 500);
    const ms = performance.now() - t;
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
  });
});

describe('SEV-SNP attestation of real AMD evidence: the CRL comes from the collateral source', { skip: skipWithoutFixtures() }, () => {
  const aci = () => ({ ...readFixtureJson<Record<string, unknown>>('amd', 'azure-aci-sidecar', 'DERIVED_maa_attest_sevsnpvm_request.json'), draftPolicyForAttestation });
  const milanDir = ['amd', 'azure-cvm-hcl-milan-trustee'] as const;
  const milanVcek = () => ({
    vcek: pemToDer(readFileSync(fixturePath(...milanDir, 'vcek.pem'), 'utf8'))[0]!,
    chain: pemToDer(readFileSync(fixturePath('amd', 'roots', 'kds_cert_chain', 'ask_ark_milan.pem'), 'utf8')),
  });
  const hcl = () => ({ report: b64url(readFixture(...milanDir, 'hcl_report.bin')), draftPolicyForAttestation });
  // No real ARK-signed CRL is among the vectors: a CRL the fake ARK signed stands for one that does not verify.
  const forged = crlOf([]);

  test('container form (ACI, a version 2 report): the product named by its chain picks the CRL; none to be had is "unavailable"', async () => {
    const { svc, snpCertificates } = service(undefined);
    const { claims } = await svc.attest('SevSnpVm', aci());
    assert.equal(claims[CLAIM], 'unavailable');
    assert.equal(claims['x-conclave-simulated'], undefined);
    assert.deepEqual(snpCertificates.asked, ['crl Milan vcek']);
  });

  test('container form: the CRL the source answers is checked with the ARK (crl.invalid)', async () => {
    await refusedWith(service(undefined, { sourceCrl: forged }).svc.attest('SevSnpVm', aci()), 'crl.invalid');
  });

  test('Azure CVM HCL report, VCEK and chain from the source: so is its CRL', async () => {
    const none = service(undefined, { vcek: milanVcek() });
    const { claims } = await none.svc.attest('SevSnpVm', hcl());
    assert.equal(claims[CLAIM], 'unavailable');
    assert.deepEqual(none.snpCertificates.asked, ['vcek Milan', 'crl Milan vcek']);
    await refusedWith(service(undefined, { vcek: milanVcek(), sourceCrl: forged }).svc.attest('SevSnpVm', hcl()), 'crl.invalid');
  });

  test('container form, version 2 report: a certificate naming another product slipped first into the chain does not steer the CRL lookup away from the chain that verifies', async () => {
    // The source holds a CRL for Milan only; here one the real ARK did not sign, so that applying it refuses
    // the evidence (crl.invalid), as a CRL revoking the ASK would. The attacker puts a self-made certificate
    // (no CA, subject "SEV-Genoa", which the verifier ignores) first in VcekCertChain: the CRL must still be
    // Milan's, or the evidence refused — never attested without a CRL as "unavailable".
    const asked: string[] = [];
    const source = {
      async getVcek() {
        throw new Error('unused: the chain is in the evidence');
      },
      async getCrl(req: { product: string; signingKey: string }) {
        asked.push(`crl ${req.product} ${req.signingKey}`);
        if (req.product === 'Milan' && req.signingKey === 'vcek') return forged;
        throw fail('collateral.not_found', `no AMD CRL cached for ${req.product}`);
      },
    } as unknown as SnpCertificateSource;
    const svc = serviceOver(source);
    const honest = aci();
    await refusedWith(svc.attest('SevSnpVm', honest), 'crl.invalid');
    const ev = JSON.parse(Buffer.from((honest as Record<string, unknown>).report as string, 'base64url').toString('utf8')) as Record<string, string>;
    const junk = issueCertificate({ subjectCN: 'SEV-Genoa', ca: false, notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z') }).der;
    const chainPem = derToPem(junk) + Buffer.from(ev.VcekCertChain!, 'base64url').toString('utf8');
    const steered = { ...honest, report: b64url(JSON.stringify({ ...ev, VcekCertChain: b64url(chainPem) })) };
    await assert.rejects(svc.attest('SevSnpVm', steered), (e: { code?: string; status?: number }) => {
      assert.equal(e.status, 400, `refused with a 4xx, not ${e.status} (${e.code})`);
      assert.ok(e.code === 'crl.invalid' || e.code === 'snp.product_mismatch', `refused as crl.invalid or snp.product_mismatch, not ${e.code}`);
      return true;
    }, 'a chain that names another product first must not make the evidence attest without its CRL');
  });

  test('container form: a VcekCertChain of hundreds of certificates is refused (snp.malformed) without parsing them to pick a CRL, and the CRL source is not asked', async () => {
    // Bounded work per request: a real chain is the VCEK, the ASK (or ASVK) and the ARK. Certificates that name no
    // product ahead of the real chain made the CRL lookup parse every one of them (and the verifier parse them again),
    // and the evidence still attested.
    const { svc, snpCertificates } = service(undefined);
    const honest = aci();
    const ev = JSON.parse(Buffer.from((honest as Record<string, unknown>).report as string, 'base64url').toString('utf8')) as Record<string, string>;
    const filler = derToPem(issueCertificate({ subjectCN: 'filler', ca: false, notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z') }).der);
    // 6 fillers and the real VCEK, ASK and ARK: one past SNP_MAX_CERTIFICATES, where the CRL lookup must stop as the verifier does.
    for (const fillers of [300, 6]) {
      const chainPem = filler.repeat(fillers) + Buffer.from(ev.VcekCertChain!, 'base64url').toString('utf8');
      const padded = { ...honest, report: b64url(JSON.stringify({ ...ev, VcekCertChain: b64url(chainPem) })) };
      await refusedWith(svc.attest('SevSnpVm', padded), 'snp.malformed');
      assert.deepEqual(snpCertificates.asked, [], `${fillers} fillers`);
    }
  });

  test("trustee's az-snp-vtpm evidence and /attest/AzureGuest (real Milan CVM, VCEK in the evidence): the source's CRL is applied under the real roots (kills: azure-vm's real path verifying without the CRL)", async () => {
    const trustee = () => ({ report: b64url(readFixture(...milanDir, 'evidence-v0.json')), draftPolicyForAttestation });
    // AzureGuest takes no draft policy (its token is signed): only its refusals, which come before signing, are asserted.
    const guest = () => ({ AttestationInfo: guestInfoFrom(readFixture(...milanDir, 'evidence-v0.json')) });
    const none = service(undefined);
    const { claims } = await none.svc.attest('SevSnpVm', trustee());
    assert.equal(claims[CLAIM], 'unavailable', 'trustee: none to be had');
    assert.equal(claims['x-conclave-simulated'], undefined);
    assert.deepEqual(none.snpCertificates.asked, ['crl Milan vcek']);
    const bad = service(undefined, { sourceCrl: forged });
    await refusedWith(bad.svc.attest('SevSnpVm', trustee()), 'crl.invalid');
    await refusedWith(bad.svc.attestGuest(guest()), 'crl.invalid');
    await refusedWith(service(undefined, { snpCrl: 'required' }).svc.attestGuest(guest()), 'collateral.missing');
  });

  test("trustee's az-snp-vtpm evidence and /attest/AzureGuest: a VCEK PEM padded to 9 or 301 certificates is refused (snp.malformed), as the container form's VcekCertChain is", async () => {
    // The other forms whose certificates the evidence carries (trustee's `vcek`, the AzureGuest Proof's VcekCertChain)
    // reach the same bounded verifier. (Their report, version 3, names its product by CPUID: the CRL lookup reads no
    // certificate to choose it.)
    const filler = derToPem(issueCertificate({ subjectCN: 'filler', ca: false, notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z') }).der);
    const doc = JSON.parse(readFixture(...milanDir, 'evidence-v0.json').toString('utf8')) as { vcek: string };
    for (const fillers of [300, 8]) {
      const padded = Buffer.from(JSON.stringify({ ...doc, vcek: filler.repeat(fillers) + doc.vcek }));
      const { svc } = service(undefined);
      await refusedWith(svc.attest('SevSnpVm', { report: b64url(padded), draftPolicyForAttestation }), 'snp.malformed');
      await refusedWith(svc.attestGuest({ AttestationInfo: guestInfoFrom(padded) }), 'snp.malformed');
    }
  });

  test('snpCrl required: no CRL is collateral.missing (400); an upstream that failed stays its 503', async () => {
    await refusedWith(service(undefined, { snpCrl: 'required' }).svc.attest('SevSnpVm', aci()), 'collateral.missing');
    const down = fail('upstream.unavailable', 'KDS answered 502');
    await refusedWith(service(undefined, { snpCrl: 'required', sourceCrl: down }).svc.attest('SevSnpVm', aci()), 'upstream.unavailable', 503);
    await refusedWith(service(undefined, { snpCrl: 'required', vcek: milanVcek() }).svc.attest('SevSnpVm', hcl()), 'collateral.missing');
    const { claims } = await service(undefined, { sourceCrl: down }).svc.attest('SevSnpVm', aci());
    assert.equal(claims[CLAIM], 'unavailable', 'if-available: an upstream that failed is no CRL');
  });
});
