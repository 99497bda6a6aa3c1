import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { GpuVerifierCache } from '../evidence/nvidia/index.js';
import { gpuNonceFor } from '../evidence/nvidia/nonce.js';
import { serializeGpuEvidence } from '../evidence/nvidia/serialized.js';
import { createFakeNvidiaHierarchy, makeFakeGpuReport, makeFakeRims, reflashFakeGpu } from '../evidence/nvidia/testing.js';
import { loadOrCreateSimulatedGpus } from '../evidence/simulated/gpu.js';
import { readFixture, readFixtureText, skipWithoutFixtures } from '../../test/fixtures.js';
import type { Certificate } from '../core/x509.js';
import { type GpuReferenceSource, attestGpus, driverVersionNumber, gpuPolicyClaims } from './gpu.js';

const sim = loadOrCreateSimulatedGpus(mkdtempSync(join(tmpdir(), 'conclave-gpu-')));
const runtime = new TextEncoder().encode('{"keys":[]}');
const at = new Date('2026-01-01T00:00:00Z');

describe('composite attestation: the GPU half', () => {
  test('simulated GPUs verify only when the simulated TEE is trusted; otherwise the error names the GPU', async () => {
    const evidence = serializeGpuEvidence(sim.evidence(gpuNonceFor(runtime), 2));
    const ok = await attestGpus(evidence, runtime, { at, cache: new GpuVerifierCache(), simulated: sim });
    assert.equal(ok.simulated, true);
    assert.equal(ok.claims['x-conclave-gpu-count'], 2);
    assert.equal(ok.claims['x-nvidia-overall-att-result'], true);
    await assert.rejects(attestGpus(evidence, runtime, { at, cache: new GpuVerifierCache() }), (e) => {
      assert.ok(isConclaveError(e, 'gpu.chain_invalid'));
      assert.equal(e.detail?.gpu, 'GPU-0');
      return true;
    });
  });

  test('GPU evidence answering another runtime data is gpu.nonce_mismatch', async () => {
    const evidence = serializeGpuEvidence(sim.evidence(gpuNonceFor(new TextEncoder().encode('other VM')), 1));
    await assert.rejects(attestGpus(evidence, runtime, { at, cache: new GpuVerifierCache(), simulated: sim }), (e) => isConclaveError(e, 'gpu.nonce_mismatch'));
  });

  test('the policy language sees GPU claims as x-conclave-gpus.GPU-n.<claim>; objects are not flattened', async () => {
    const r = await attestGpus(serializeGpuEvidence(sim.evidence(gpuNonceFor(runtime), 2, [1])), runtime, { at, cache: new GpuVerifierCache(), simulated: sim });
    const claims = gpuPolicyClaims(r.claims);
    assert.ok(claims.some((c) => c.type === 'x-conclave-gpus.GPU-0.measres' && c.value === 'success'));
    assert.ok(claims.some((c) => c.type === 'x-conclave-gpus.GPU-1.measres' && c.value === 'fail'));
    assert.ok(!claims.some((c) => c.type === 'x-conclave-gpus.GPU-1.x-nvidia-mismatch-measurement-records'));
    assert.equal(r.claims['x-nvidia-overall-att-result'], false);
  });

  test('attack: one GPU attested twice under two attestation keys (a firmware change between two reports) counts once, by its device identity', async () => {
    // The ueid is the serial number of the attestation (FMC) certificate, which the GPU makes from its
    // firmware (DICE alias key; in the real vectors the serial is SHA-1 of that key): the same GPU reports
    // under another FMC certificate, and another ueid, after its firmware changes. Its device identity
    // (BROM) certificate stays the same. A VM controlling its runtime data (hence the nonce) makes a report,
    // has the GPU's firmware changed, and makes another: two passing GPUs out of one.
    const h = createFakeNvidiaHierarchy({ rootCn: 'Fake NVIDIA Device Identity CA (one GPU, two keys)' });
    const later = reflashFakeGpu(h);
    const other = createFakeNvidiaHierarchy({}, h);
    const nonce = gpuNonceFor(runtime);
    const evidenceOf = (g: typeof h) => ({ arch: 'HOPPER' as const, nonce, report: makeFakeGpuReport(g, { nonce }), certificateChain: g.chainPem });
    const simulated = { trust: h.trust, rims: makeFakeRims(h), evidence: () => [] };
    const opts = { at, cache: new GpuVerifierCache(), simulated };
    const alone = await attestGpus(serializeGpuEvidence([evidenceOf(later)]), runtime, opts);
    const gpus = alone.claims['x-conclave-gpus'] as Record<string, Record<string, unknown>>;
    assert.equal(gpus['GPU-0']!.measres, 'success', 'the report after the firmware change verifies on its own');
    const first = await attestGpus(serializeGpuEvidence([evidenceOf(h)]), runtime, opts);
    assert.notEqual((first.claims['x-conclave-gpus'] as Record<string, Record<string, unknown>>)['GPU-0']!.ueid, gpus['GPU-0']!.ueid, 'two ueids');
    await assert.rejects(attestGpus(serializeGpuEvidence([evidenceOf(h), evidenceOf(later)]), runtime, opts), (e) => {
      assert.ok(isConclaveError(e, 'gpu.evidence_mismatch'), String(e));
      assert.equal(e.detail?.gpu, 'GPU-1');
      assert.match(e.message, /GPU-0/);
      return true;
    });
    // Two GPUs (two device identities) still count as two.
    const two = await attestGpus(serializeGpuEvidence([evidenceOf(h), evidenceOf(other)]), runtime, opts);
    assert.equal(two.claims['x-conclave-gpu-count'], 2);
    assert.equal(two.claims['x-nvidia-overall-att-result'], true);
  });

  test('driver versions order as numbers for release policies', () => {
    assert.equal(driverVersionNumber('550.90.07'), 550090007);
    assert.equal(driverVersionNumber('575.32'), 575032000);
    assert.ok(driverVersionNumber('550.144.03')! > driverVersionNumber('550.90.07')!);
    assert.equal(driverVersionNumber('r550'), undefined);
  });

  test('malformed GPU evidence lists are refused before any verification', async () => {
    for (const bad of [[], {}, 'x', [{ evidence: '', certificate: 'x' }], Array.from({ length: 17 }, () => ({ evidence: 'AA', certificate: 'x' }))]) {
      await assert.rejects(attestGpus(bad, runtime, { at, cache: new GpuVerifierCache() }), (e) => isConclaveError(e) && e.status === 400);
    }
  });

  test('attack: unauthenticated GPU evidence makes the server fetch no RIM and no OCSP answer (ids and certificates of the attacker\'s choosing)', async () => {
    // /attest is anonymous. The RIM ids come from the report's opaque data and the OCSP requests from the
    // chain's certificates: before the report is known to be a genuine GPU's answer to our nonce, both are
    // the caller's inventions, and each one fetched is an upstream request (and a cache entry) made for them.
    const calls: string[] = [];
    const references: GpuReferenceSource = {
      async getRim(id: string) {
        calls.push(`rim ${id}`);
        return undefined;
      },
      async getOcsp(cert: Certificate) {
        calls.push(`ocsp ${cert.subjectCN}`);
        return undefined;
      },
    };
    const nonce = gpuNonceFor(runtime);
    // A chain of the attacker's own making (not NVIDIA's), with versions of their choosing.
    const forged = createFakeNvidiaHierarchy({ rootCn: 'NVIDIA Device Identity CA' });
    const invented = { arch: 'HOPPER' as const, nonce, report: makeFakeGpuReport(forged, { nonce, opaque: { driverVersion: 'invented-1', vbiosVersion: '01.02.03.04.05' } }), certificateChain: forged.chainPem };
    await assert.rejects(attestGpus(serializeGpuEvidence([invented]), runtime, { at, cache: new GpuVerifierCache(), references }), (e) => isConclaveError(e, 'gpu.chain_invalid'));
    assert.deepEqual(calls, [], 'nothing is fetched for a chain that does not verify to the NVIDIA root');
    if (!skipWithoutFixtures()) {
      // A genuine GPU's report, made for another nonce (a replay): refused on the nonce, before any fetch.
      const v = 'hopper-550.90.07-nvtrust-trustee-sample';
      const replayed = { arch: 'HOPPER' as const, nonce, report: new Uint8Array(readFixture('nvidia', v, 'attestation_report.bin')), certificateChain: readFixtureText('nvidia', v, 'cert_chain.pem') };
      await assert.rejects(attestGpus(serializeGpuEvidence([replayed]), runtime, { at, cache: new GpuVerifierCache(), references }), (e) => isConclaveError(e, 'gpu.nonce_mismatch'));
      assert.deepEqual(calls, [], 'nothing is fetched for a report that answers another nonce');
    }
  });

  test('attack: GPUs in Protected-PCIe mode are not an overall success (their NVSwitches and topology are not attested)', async () => {
    // In PPCIe mode GPU-to-GPU traffic crosses the NVSwitches unencrypted, and NVIDIA's verifiers require the
    // switches' own evidence and a topology check before the system counts as attested; Conclave verifies
    // neither, so the GPUs' reports, however good, must not make x-nvidia-overall-att-result true.
    const h = createFakeNvidiaHierarchy({ rootCn: 'Fake NVIDIA Device Identity CA (PPCIe)' });
    const nonce = gpuNonceFor(runtime);
    const simulated = { trust: h.trust, rims: makeFakeRims(h), evidence: () => [] };
    const evidence = (featureFlag: 'SPT' | 'PPCIE') => serializeGpuEvidence([{ arch: 'HOPPER', nonce, report: makeFakeGpuReport(h, { nonce, opaque: { featureFlag } }), certificateChain: h.chainPem }]);
    const spt = await attestGpus(evidence('SPT'), runtime, { at, cache: new GpuVerifierCache(), simulated });
    assert.equal(spt.claims['x-nvidia-overall-att-result'], true, 'single-GPU passthrough with matching measurements is a success');
    const ppcie = await attestGpus(evidence('PPCIE'), runtime, { at, cache: new GpuVerifierCache(), simulated });
    const gpu = (ppcie.claims['x-conclave-gpus'] as Record<string, Record<string, unknown>>)['GPU-0']!;
    assert.equal(gpu['x-nvidia-gpu-mode'], 'PPCIE');
    assert.equal(gpu.measres, 'success', 'the GPU itself verified and matched its RIMs');
    assert.equal(ppcie.claims['x-nvidia-overall-att-result'], false, 'PPCIe without switch attestation is not an overall success');
  });

  test('attack: a GPU in Protected-PCIe mode whose report has no FEATURE_FLAG (drivers before opaque-data version 1) is not an overall success either', async () => {
    // A driver 560 report in PPCIe mode (test/vectors/nvidia/hopper-negative-invalid-signature-nvat's report:
    // PROTECTED_PCIE_STATUS 0xAA, 18 NVSwitch PDIs, no OPAQUE_DATA_VERSION or FEATURE_FLAG) says so only in
    // PROTECTED_PCIE_STATUS and SWITCH_PDI; the GPU signs them, and the switches are as unattested as with the flag.
    const h = createFakeNvidiaHierarchy({ rootCn: 'Fake NVIDIA Device Identity CA (PPCIe 560)' });
    const h2 = createFakeNvidiaHierarchy({ gpuSerial: 2n }, h);
    const nonce = gpuNonceFor(runtime);
    const simulated = { trust: h.trust, rims: makeFakeRims(h), evidence: () => [] };
    const spt = { nonce, opaque: { featureFlag: 'SPT' as const, protectedPcieStatus: 0x55 } };
    const cases = {
      'PROTECTED_PCIE_STATUS 0xAA with switch PDIs': { nonce, opaque: { featureFlag: undefined, protectedPcieStatus: 0xaa, switchPdis: ['0aae42a1b8d8837d', 'c3f50b43ec63cffa'] } },
      'PROTECTED_PCIE_STATUS 0xAA alone': { nonce, opaque: { featureFlag: undefined, protectedPcieStatus: 0xaa } },
      'switch PDIs alone': { nonce, opaque: { featureFlag: undefined, switchPdis: ['0aae42a1b8d8837d'] } },
    };
    const ok = await attestGpus(serializeGpuEvidence([{ arch: 'HOPPER', nonce, report: makeFakeGpuReport(h, spt), certificateChain: h.chainPem }]), runtime, { at, cache: new GpuVerifierCache(), simulated });
    assert.equal(ok.claims['x-nvidia-overall-att-result'], true, 'control: SPT with PROTECTED_PCIE_STATUS 0x55 is a success');
    for (const [name, opts] of Object.entries(cases)) {
      // A mixed set: GPU-0 in SPT, GPU-1 in PPCIe.
      const evidence = serializeGpuEvidence([
        { arch: 'HOPPER', nonce, report: makeFakeGpuReport(h, spt), certificateChain: h.chainPem },
        { arch: 'HOPPER', nonce, report: makeFakeGpuReport(h2, opts), certificateChain: h2.chainPem },
      ]);
      const r = await attestGpus(evidence, runtime, { at, cache: new GpuVerifierCache(), simulated });
      const gpus = r.claims['x-conclave-gpus'] as Record<string, Record<string, unknown>>;
      assert.equal(gpus['GPU-1']!.measres, 'success', `${name}: the GPU itself verified`);
      assert.equal(r.claims['x-nvidia-overall-att-result'], false, `${name}: PPCIe without switch attestation is not an overall success`);
      assert.match(String(gpus['GPU-1']!['x-nvidia-attestation-warning']), /Protected-PCIe/, `${name}: the warning says why`);
      assert.equal(gpus['GPU-0']!['x-nvidia-attestation-warning'], undefined, `${name}: the SPT GPU has no PPCIe warning`);
    }
  });
});

