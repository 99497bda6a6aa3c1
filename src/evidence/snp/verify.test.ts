import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isConclaveError } from '../../core/errors.js';
import { parseCertificate, pemToDer } from '../../core/x509.js';
import { readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { outcome } from '../../../test/helpers/verdict.js';
import {
  SnpVerifierCache,
  type SnpVerificationResult,
  type SnpCertificates,
  verifyAzureHclReport,
  verifyMaaSevSnpEvidence,
  verifyMaaSevSnpEvidenceAsync,
  verifySnpReport,
  verifyVekChain,
} from './index.js';
import { SNP_REPORT_LAYOUT, decodeTcb } from './report.js';
import { createFakeSnpHierarchy, issueFakeVek, makeFakeAmdCrl, makeFakeSnpReport } from './testing.js';

const skip = skipWithoutFixtures();
// Inside every fixture certificate's validity, including the one-year AWS VLEK (2024-12-10..2025-12-10).
const at = new Date('2025-06-01T00:00:00Z');

interface ExpectedTcb {
  bl: number;
  tee: number;
  snp: number;
  ucode: number;
  raw: string;
}
interface Expected {
  ark_cn: string;
  vek_cn: string;
  vek_product: string;
  vlek_csp_id: string | null;
  report: {
    version: number;
    guest_svn: number;
    policy: string;
    vmpl: number;
    signer_info: string;
    platform_info: string;
    measurement: string;
    report_data: string;
    host_data: string;
    chip_id: string;
    report_id: string;
    reported_tcb: ExpectedTcb;
    current_tcb: ExpectedTcb;
    committed_tcb: ExpectedTcb;
    launch_tcb: ExpectedTcb;
    cpuid_fam_mod_step: [string, string, string] | null;
    id_key_digest: string;
    family_id: string;
    image_id: string;
    current_fw_build_minor_major: [number, number, number];
  };
}

function assertMatchesExpected(r: SnpVerificationResult, folder: string): void {
  const e = readFixtureJson<Expected>('amd', folder, 'expected.json');
  assert.equal(r.verified, true);
  assert.equal(r.product, e.ark_cn.replace('CN=ARK-', ''));
  assert.equal(r.signingKey, e.vek_cn === 'CN=SEV-VLEK' ? 'vlek' : 'vcek');
  assert.equal(r.vek.productName, e.vek_product);
  assert.equal(r.vek.cspId, e.vlek_csp_id ?? undefined);
  const x = e.report;
  assert.equal(r.reportVersion, x.version);
  assert.equal(r.guestSvn, x.guest_svn);
  assert.equal(r.policy.raw, x.policy);
  assert.equal(r.vmpl, x.vmpl);
  assert.equal(`0x${r.signerInfo.raw.toString(16)}`, x.signer_info);
  assert.equal(r.platformInfo.raw, x.platform_info);
  assert.equal(r.measurement, x.measurement);
  assert.equal(r.reportData, x.report_data);
  assert.equal(r.hostData, x.host_data);
  assert.equal(r.chipId, x.chip_id);
  assert.equal(r.reportId, x.report_id);
  assert.equal(r.idKeyDigest, x.id_key_digest);
  assert.equal(r.familyId, x.family_id);
  assert.equal(r.imageId, x.image_id);
  for (const [mine, theirs] of [
    [r.reportedTcb, x.reported_tcb],
    [r.currentTcb, x.current_tcb],
    [r.committedTcb, x.committed_tcb],
    [r.launchTcb, x.launch_tcb],
  ] as const) {
    assert.deepEqual(
      { bl: mine.bootloader, tee: mine.tee, snp: mine.snp, ucode: mine.microcode, raw: mine.raw },
      { bl: theirs.bl, tee: theirs.tee, snp: theirs.snp, ucode: theirs.ucode, raw: theirs.raw },
    );
  }
  if (x.cpuid_fam_mod_step) {
    assert.deepEqual([r.cpuid?.family, r.cpuid?.model, r.cpuid?.stepping], x.cpuid_fam_mod_step.map((h) => Number(h)));
  } else assert.equal(r.cpuid, undefined);
  const [build, minor, major] = x.current_fw_build_minor_major;
  assert.deepEqual(r.currentFirmware, { major, minor, build });
  assert.equal(r.isDebuggable, r.policy.debug);
}

function chainPem(...path: string[]): Uint8Array[] {
  return pemToDer(readFixtureText(...path));
}

function rejects(code: string, f: () => unknown): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(isConclaveError(e), `expected ConclaveError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

describe('verifySnpReport on real reports', { skip }, () => {
  for (const folder of ['snp-milan-gosevguest', 'snp-milan-trustee', 'snp-milan-virtee']) {
    test(`${folder}: VCEK with the pinned Milan ASK/ARK`, () => {
      const r = verifySnpReport(readFixture('amd', folder, 'report.bin'), { vcek: readFixture('amd', folder, 'vcek.der') }, { at });
      assertMatchesExpected(r, folder);
    });
  }

  test('snp-milan-virtee: with the KDS cert_chain from the evidence', () => {
    const r = verifySnpReport(
      readFixture('amd/snp-milan-virtee/report.bin'),
      { vcek: readFixture('amd/snp-milan-virtee/vcek.der'), chain: chainPem('amd/snp-milan-virtee/cert_chain.pem') },
      { at },
    );
    assertMatchesExpected(r, 'snp-milan-virtee');
  });

  test('snp-milan-vlek-aws-trustee: VLEK through the ASVK', () => {
    const r = verifySnpReport(
      readFixture('amd/snp-milan-vlek-aws-trustee/report.bin'),
      { vcek: readFixture('amd/snp-milan-vlek-aws-trustee/vlek.der'), chain: chainPem('amd/roots/kds_cert_chain/ask_ark_milan_vlek.pem') },
      { at },
    );
    assertMatchesExpected(r, 'snp-milan-vlek-aws-trustee');
    // VLEKs carry no hwID, so the (zero) CHIP_ID is not compared and not reported as masked.
    assert.equal(r.chipId, '00'.repeat(64));
    assert.equal(r.warnings.some((w) => w.includes('CHIP_ID is masked')), false);
  });

  test('snp-milan-vlek-aws-trustee: the VLEK is rejected through the VCEK ASK', () => {
    rejects('snp.chain_invalid', () =>
      verifySnpReport(
        readFixture('amd/snp-milan-vlek-aws-trustee/report.bin'),
        { vcek: readFixture('amd/snp-milan-vlek-aws-trustee/vlek.der'), chain: chainPem('amd/roots/kds_cert_chain/ask_ark_milan.pem') },
        { at },
      ),
    );
  });

  test('snp-milan-vlek-aws-trustee: the one-year VLEK is expired at 2026-01-01', () => {
    rejects('cert.expired', () =>
      verifySnpReport(readFixture('amd/snp-milan-vlek-aws-trustee/report.bin'), { vcek: readFixture('amd/snp-milan-vlek-aws-trustee/vlek.der') }, { at: new Date('2026-01-01T00:00:00Z') }),
    );
  });

  test('vcek-turin-virtee: the Turin VCEK chains to ARK-Turin with an 8-byte hwID and fmcSPL', () => {
    const c = verifyVekChain({ vcek: readFixture('amd/vcek-turin-virtee/vcek.der'), chain: chainPem('amd/vcek-turin-virtee/cert_chain.pem') }, { at });
    assert.equal(c.product, 'Turin');
    assert.equal(c.signingKey, 'vcek');
    assert.equal(c.extensions.structVersion, 1);
    assert.equal(c.extensions.fmcSpl, 0);
    assert.equal(c.extensions.ucodeSpl, 9);
    assert.equal(Buffer.from(c.extensions.hwId!).toString('hex'), '1e550a8ee5cf9f4d');
    // and with the pinned Turin ASK alone
    assert.equal(verifyVekChain({ vcek: readFixture('amd/vcek-turin-virtee/vcek.der') }, { at }).product, 'Turin');
  });
});

describe('Azure confidential VMs (HCL report)', { skip }, () => {
  for (const folder of ['azure-cvm-hcl-milan-trustee', 'azure-cvm-hcl-genoa-trustee']) {
    test(`${folder}: HCL report, runtime-data binding and runtime keys`, () => {
      const r = verifyAzureHclReport(readFixture('amd', folder, 'hcl_report.bin'), { vcek: chainPem('amd', folder, 'vcek.pem')[0] }, { at });
      assertMatchesExpected(r, folder);
      const rt = r.runtimeData!;
      assert.equal(rt.format, 'azure-hcl');
      assert.deepEqual(Buffer.from(rt.data, 'base64url'), readFixture('amd', folder, 'runtime_data.json'));
      assert.equal(rt.hclAkPub?.kid, 'HCLAkPub');
      assert.equal(rt.hclEkPub?.kid, 'HCLEkPub');
      assert.equal(rt.userData?.length, 128);
      assert.equal(typeof rt.vmConfiguration?.vmUniqueId, 'string');
    });
  }

  test('trustee evidence JSON forms (evidence-v0.json, evidence-genoa.json) carry their own VCEK', () => {
    assertMatchesExpected(verifyAzureHclReport(readFixture('amd/azure-cvm-hcl-milan-trustee/evidence-v0.json'), {}, { at }), 'azure-cvm-hcl-milan-trustee');
    assertMatchesExpected(verifyAzureHclReport(readFixture('amd/azure-cvm-hcl-genoa-trustee/evidence-genoa.json'), {}, { at }), 'azure-cvm-hcl-genoa-trustee');
  });

  test('a wrong runtime-data document fails the binding', () => {
    const hcl = new Uint8Array(readFixture('amd/azure-cvm-hcl-milan-trustee/hcl_report.bin'));
    const i = Buffer.from(hcl).indexOf('"user-data":"0');
    hcl[i + 13] = 0x31; // user-data 00… → 10…
    rejects('snp.runtime_data_mismatch', () => verifyAzureHclReport(hcl, { vcek: chainPem('amd/azure-cvm-hcl-milan-trustee/vcek.pem')[0] }, { at }));
    rejects('snp.runtime_data_mismatch', () =>
      verifyAzureHclReport(readFixture('amd/azure-cvm-hcl-milan-trustee/hcl_report.bin'), { vcek: chainPem('amd/azure-cvm-hcl-milan-trustee/vcek.pem')[0] }, { at, runtimeData: Buffer.from('{}') }),
    );
  });

  test('the Milan VCEK of vcek_and_chain.pem belongs to another chip', () => {
    rejects('snp.chip_id_mismatch', () =>
      verifyAzureHclReport(readFixture('amd/azure-cvm-hcl-milan-trustee/hcl_report.bin'), { chain: chainPem('amd/azure-cvm-hcl-milan-trustee/vcek_and_chain.pem') }, { at }),
    );
  });

  test('a Genoa report with a Milan VCEK is a product mismatch', () => {
    rejects('snp.product_mismatch', () =>
      verifyAzureHclReport(readFixture('amd/azure-cvm-hcl-genoa-trustee/hcl_report.bin'), { vcek: chainPem('amd/azure-cvm-hcl-milan-trustee/vcek.pem')[0] }, { at }),
    );
  });
});

describe('confidential containers (MAA SevSnpVm)', { skip }, () => {
  const policy = Buffer.from(readFixtureText('amd/azure-aci-sidecar/uvm_security_policy.base64').trim(), 'base64');
  const runtime = readFixture('amd/azure-aci-sidecar/runtime_data.json');

  test('the request body verifies with its runtime data and the security policy as init-time data', () => {
    const r = verifyMaaSevSnpEvidence(readFixture('amd/azure-aci-sidecar/DERIVED_maa_attest_sevsnpvm_request.json'), undefined, policy, { at });
    assertMatchesExpected(r, 'azure-aci-sidecar');
    assert.deepEqual(r.runtimeData?.json, { akey: 'avalue' });
    assert.equal(r.initTimeData?.sha256, r.hostData);
  });

  test('the inner evidence JSON with explicit runtime data and THIM certificates', () => {
    const body = readFixtureJson<{ report: string }>('amd/azure-aci-sidecar/DERIVED_maa_attest_sevsnpvm_request.json');
    const inner = Buffer.from(body.report, 'base64url');
    const thim = readFixtureJson<{ vcekCert: string; certificateChain: string }>('amd/azure-aci-sidecar/uvm_host_amd_certificate.json');
    const certs: SnpCertificates = { vcek: pemToDer(thim.vcekCert)[0], chain: pemToDer(thim.certificateChain) };
    const r = verifyMaaSevSnpEvidence(inner, runtime, policy, { at, certs });
    assertMatchesExpected(r, 'azure-aci-sidecar');
  });

  test('a wrong runtime document or policy fails its binding', () => {
    const body = readFixture('amd/azure-aci-sidecar/DERIVED_maa_attest_sevsnpvm_request.json');
    rejects('snp.runtime_data_mismatch', () => verifyMaaSevSnpEvidence(body, Buffer.from('{"akey":"avalue"}'), policy, { at }));
    rejects('snp.host_data_mismatch', () => verifyMaaSevSnpEvidence(body, runtime, Buffer.concat([policy, Buffer.from('\n')]), { at }));
  });

  test('the bare ACI report verifies with the THIM PEM bundle', () => {
    const r = verifySnpReport(readFixture('amd/azure-aci-sidecar/snp_report.bin'), { chain: chainPem('amd/azure-aci-sidecar/uvm_host_amd_certificate.pem') }, { at });
    assert.equal(r.reportedTcb.tcbm, readFixtureJson<{ tcbm: string }>('amd/azure-aci-sidecar/uvm_host_amd_certificate.json').tcbm);
  });
});

describe('negative cases on a real report', { skip }, () => {
  const report = readFixture('amd/snp-milan-virtee/report.bin');
  const vcek = readFixture('amd/snp-milan-virtee/vcek.der');

  test('any single-byte change in the signed region fails (sampled offsets, every field)', () => {
    const cache = new SnpVerifierCache();
    // Offsets in each field; parse-level checks (reserved MBZ, policy bits, version) may fire first.
    const offsets = [0x04, 0x08, 0x10, 0x20, 0x30, 0x40, 0x50, 0x8f, 0x90, 0xc0, 0xe0, 0x110, 0x140, 0x160, 0x181, 0x1a0, 0x1df, 0x1e0, 0x1e8, 0x1f0, 0x1f8, 0x29f, 21];
    for (const off of offsets) {
      const m = new Uint8Array(report);
      m[off] = (m[off] ?? 0) ^ 0x80;
      assert.throws(
        () => verifySnpReport(m, { vcek }, { at, cache }),
        (e: unknown) => isConclaveError(e) && ['snp.signature_invalid', 'snp.malformed', 'snp.tcb_mismatch', 'snp.chip_id_mismatch', 'snp.unsupported'].includes(e.code),
        `offset 0x${off.toString(16)}`,
      );
    }
    // a change in a field no other check reads fails precisely on the signature
    const m = new Uint8Array(report);
    m[0x90] = (m[0x90] ?? 0) ^ 1;
    rejects('snp.signature_invalid', () => verifySnpReport(m, { vcek }, { at, cache }));
  });

  test('a change to the signature itself fails', () => {
    const m = new Uint8Array(report);
    m[0x2a0] = (m[0x2a0] ?? 0) ^ 1;
    rejects('snp.signature_invalid', () => verifySnpReport(m, { vcek }, { at }));
  });

  test('a VCEK of another chip', () => {
    rejects('snp.chip_id_mismatch', () => verifySnpReport(report, { vcek: readFixture('amd/snp-milan-gosevguest/vcek.der') }, { at }));
  });

  test('a chain to the wrong product ARK', () => {
    rejects('snp.product_mismatch', () => verifySnpReport(report, { vcek, chain: chainPem('amd/roots/kds_cert_chain/ask_ark_genoa.pem') }, { at }));
    rejects('snp.product_mismatch', () => verifySnpReport(report, { vcek }, { at, product: 'Genoa' }));
  });

  test('a truncated report', () => {
    rejects('snp.truncated', () => verifySnpReport(report.subarray(0, 0x4a0 - 1), { vcek }, { at }));
  });

  test('no VCEK at all', () => {
    rejects('snp.certificate_missing', () => verifySnpReport(report, {}, { at }));
  });

  test('before the VCEK validity', () => {
    rejects('cert.expired', () => verifySnpReport(report, { vcek }, { at: new Date('2023-01-01T00:00:00Z') }));
  });

  test('warm verification gives the same verdicts, and still checks time', () => {
    const cache = new SnpVerifierCache();
    const cold = verifySnpReport(report, { vcek }, { at });
    const warm1 = verifySnpReport(report, { vcek }, { at, cache });
    const warm2 = verifySnpReport(report, { vcek }, { at, cache });
    assert.deepEqual(warm1, cold);
    assert.deepEqual(warm2, cold);
    assert.equal(cache.size, 1);
    rejects('cert.expired', () => verifySnpReport(report, { vcek }, { at: new Date('2031-01-01T00:00:00Z'), cache }));
    const m = new Uint8Array(report);
    m[0x90] = (m[0x90] ?? 0) ^ 1;
    rejects('snp.signature_invalid', () => verifySnpReport(m, { vcek }, { at, cache }));
  });

  test('a warm chain is reused only while the certificates object holds the bytes it was verified from', () => {
    const cache = new SnpVerifierCache();
    const certs = { vcek: new Uint8Array(vcek), chain: chainPem('amd/snp-milan-virtee/cert_chain.pem') };
    assert.equal(verifySnpReport(report, certs, { at, cache }).verified, true);
    assert.equal(verifySnpReport(report, certs, { at, cache }).verified, true);
    // The same object, the ASK's signature over the VCEK changed in place (its last byte): the chain is
    // verified again and refused, not answered from what the unchanged bytes earned.
    certs.vcek[certs.vcek.byteLength - 1]! ^= 1;
    rejects('snp.chain_invalid', () => verifySnpReport(report, certs, { at, cache }));
    certs.vcek[certs.vcek.byteLength - 1]! ^= 1;
    assert.equal(verifySnpReport(report, certs, { at, cache }).verified, true);
    // Another chip's VCEK put in place of this one, in the same object: its own verdict.
    (certs as { vcek: Uint8Array }).vcek = readFixture('amd/snp-milan-gosevguest/vcek.der');
    rejects('snp.chip_id_mismatch', () => verifySnpReport(report, certs, { at, cache }));
    // The chain list changed in place (the ASK dropped): still the pinned ASK, so it verifies again.
    (certs.chain as Uint8Array[]).splice(0, 1);
    (certs as { vcek: Uint8Array }).vcek = new Uint8Array(vcek);
    assert.equal(verifySnpReport(report, certs, { at, cache }).verified, true);
  });

  test('an invalid verification time fails closed, cold and warm (a cached chain is not valid at NaN)', () => {
    const cache = new SnpVerifierCache();
    verifySnpReport(report, { vcek }, { at, cache });
    for (const c of [undefined, cache]) rejects('request.invalid', () => verifySnpReport(report, { vcek }, { at: new Date(Number.NaN), cache: c }));
  });
});

/**
 * One fake Milan hierarchy for the describes that only read it (three RSA-2048 key generations each, about
 * 0.45 s of CPU); 'refused chains are remembered per anchors' makes its own and uses this one as another PKI.
 */
const fakeMilan = createFakeSnpHierarchy({ product: 'Milan' });

describe('fake hierarchies (testing.ts)', () => {
  const milan = fakeMilan;
  const opts = { at, trustAnchors: milan.trustAnchors };

  test('a report signed by the fake VCEK verifies only against the fake anchors', () => {
    const report = makeFakeSnpReport(milan, { reportData: new Uint8Array(64).fill(7) });
    const r = verifySnpReport(report, { vcek: milan.vek.der }, opts);
    assert.equal(r.product, 'Milan');
    assert.equal(r.reportData, '07'.repeat(64));
    rejects('snp.chain_invalid', () => verifySnpReport(report, { vcek: milan.vek.der }, { at }));
  });

  test('every byte field and TCB of the result is the signed report at its spec offset', () => {
    const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);
    const report = makeFakeSnpReport(milan, {
      familyId: fill(16, 1),
      imageId: fill(16, 2),
      reportData: fill(64, 3),
      measurement: fill(48, 4),
      hostData: fill(32, 5),
      idKeyDigest: fill(48, 6),
      authorKeyDigest: fill(48, 7),
      reportId: fill(32, 8),
      reportIdMa: fill(32, 9),
      currentTcb: Uint8Array.of(1, 2, 0, 0, 0, 0, 3, 0x80),
      committedTcb: Uint8Array.of(4, 5, 0, 0, 0, 0, 6, 0xfe),
      launchTcb: Uint8Array.of(7, 8, 0, 0, 0, 0, 9, 0x11),
    });
    const r = verifySnpReport(report, { vcek: milan.vek.der }, opts);
    const bytesAt = (name: keyof typeof SNP_REPORT_LAYOUT) => {
      const f = SNP_REPORT_LAYOUT[name];
      return report.subarray(f.offset, f.offset + f.size);
    };
    const hexAt = (name: keyof typeof SNP_REPORT_LAYOUT) => Buffer.from(bytesAt(name)).toString('hex');
    for (const name of ['familyId', 'imageId', 'reportData', 'measurement', 'hostData', 'idKeyDigest', 'authorKeyDigest', 'reportId', 'reportIdMa', 'chipId'] as const) {
      assert.equal(r[name], hexAt(name), name);
    }
    for (const name of ['reportedTcb', 'currentTcb', 'committedTcb', 'launchTcb'] as const) assert.deepEqual(r[name], decodeTcb(bytesAt(name), 'legacy'), name);
    assert.equal(r.currentTcb.tcbm, '8003000000000201');
    assert.equal(r.committedTcb.u64, BigInt('0xfe06000000000504').toString());
  });

  test('a VCEK whose TCB extensions differ from the reported TCB', () => {
    const vek = issueFakeVek(milan, { tcb: { ...milan.tcb, microcode: milan.tcb.microcode + 1 } });
    rejects('snp.tcb_mismatch', () => verifySnpReport(makeFakeSnpReport(milan, {}, vek), { vcek: vek.der }, opts));
  });

  test('a VCEK of another chip', () => {
    const vek = issueFakeVek(milan, { chipId: new Uint8Array(64).fill(9) });
    rejects('snp.chip_id_mismatch', () => verifySnpReport(makeFakeSnpReport(milan, {}, vek), { vcek: vek.der }, opts));
  });

  test('a report signed by another key than the VCEK', () => {
    const other = issueFakeVek(milan);
    rejects('snp.signature_invalid', () => verifySnpReport(makeFakeSnpReport(milan, {}, other), { vcek: milan.vek.der }, opts));
  });

  test('the report CPUID disagrees with the chain product', () => {
    const report = makeFakeSnpReport(milan, { cpuid: { family: 0x19, model: 0x11, stepping: 1 } });
    rejects('snp.product_mismatch', () => verifySnpReport(report, { vcek: milan.vek.der }, opts));
  });

  test('the AMD CRL: revoked ASK, stale CRL, clean CRL', () => {
    const report = makeFakeSnpReport(milan);
    const clean = makeFakeAmdCrl(milan, [], new Date('2025-01-01T00:00:00Z'), new Date('2025-12-01T00:00:00Z'));
    assert.equal(verifySnpReport(report, { vcek: milan.vek.der, crl: clean }, opts).verified, true);
    const revoked = makeFakeAmdCrl(milan, ['10001'], new Date('2025-01-01T00:00:00Z'), new Date('2025-12-01T00:00:00Z'));
    rejects('snp.revoked', () => verifySnpReport(report, { vcek: milan.vek.der, crl: revoked }, opts));
    rejects('crl.expired', () => verifySnpReport(report, { vcek: milan.vek.der, crl: clean }, { ...opts, at: new Date('2026-01-01T00:00:00Z') }));
  });

  test('the AMD CRL with a cache: read and its signature checked once for every chip, revocations still apply to each, bytes that are no CRL are crl.invalid', () => {
    const cache = new SnpVerifierCache();
    const clean = makeFakeAmdCrl(milan, [], new Date('2025-01-01T00:00:00Z'), new Date('2025-12-01T00:00:00Z'));
    const ark = parseCertificate(milan.ark.der);
    const verified = cache.verifiedCrl(clean, ark);
    assert.equal(cache.verifiedCrl(clean, ark), verified, 'the same CRL and ARK: verified once');
    const chip2 = issueFakeVek(milan, { chipId: new Uint8Array(64).fill(2) });
    const report2 = makeFakeSnpReport({ ...milan, chipId: new Uint8Array(64).fill(2) }, {}, chip2);
    for (const [r, vcek] of [[makeFakeSnpReport(milan), milan.vek.der], [report2, chip2.der]] as const) {
      const result = verifySnpReport(r, { vcek, crl: clean }, { ...opts, cache });
      assert.equal(result.crlChecked, true);
    }
    assert.equal(verifySnpReport(makeFakeSnpReport(milan), { vcek: milan.vek.der }, { ...opts, cache }).crlChecked, false);
    const revoked = makeFakeAmdCrl(milan, ['10001'], new Date('2025-01-01T00:00:00Z'), new Date('2025-12-01T00:00:00Z'));
    rejects('snp.revoked', () => verifySnpReport(report2, { vcek: chip2.der, crl: revoked }, { ...opts, cache }));
    rejects('crl.invalid', () => verifySnpReport(report2, { vcek: chip2.der, crl: new Uint8Array([0x30, 0x00]) }, { ...opts, cache }));
  });

  test('the AMD CRL with a cache: a CRL verified under one ARK is not taken for another ARK of the same name (kills: verifiedCrl keyed by the CRL alone)', () => {
    const cache = new SnpVerifierCache();
    const other = createFakeSnpHierarchy();
    const clean = makeFakeAmdCrl(milan, [], new Date('2025-01-01T00:00:00Z'), new Date('2025-12-01T00:00:00Z'));
    assert.equal(verifySnpReport(makeFakeSnpReport(milan), { vcek: milan.vek.der, crl: clean }, { ...opts, cache }).crlChecked, true);
    rejects('crl.invalid', () => verifySnpReport(makeFakeSnpReport(other), { vcek: other.vek.der, crl: clean }, { ...opts, trustAnchors: other.trustAnchors, cache }));
    assert.throws(() => cache.verifiedCrl(clean, parseCertificate(other.ark.der)), (e: { code?: string }) => e.code === 'crl.invalid');
  });

  test('the AMD CRL with a cache: a chain verified while its CRL was fresh is crl.expired from the cache once the CRL is past its nextUpdate (kills: checkWindow not checking the CRL)', () => {
    const cache = new SnpVerifierCache();
    const crl = makeFakeAmdCrl(milan, [], new Date('2025-01-01T00:00:00Z'), new Date('2025-12-01T00:00:00Z'));
    const report = makeFakeSnpReport(milan);
    const certs = { vcek: milan.vek.der, crl };
    assert.equal(verifySnpReport(report, certs, { ...opts, cache }).crlChecked, true);
    assert.equal(cache.size, 1, 'the chain is cached with its CRL');
    rejects('crl.expired', () => verifySnpReport(report, certs, { ...opts, cache, at: new Date('2026-01-01T00:00:00Z') }));
  });

  test('Turin: FMC in the TCB, 8-byte hwID, CPUID family 0x1A', () => {
    const turin = createFakeSnpHierarchy({ product: 'Turin', tcb: { fmc: 2, bootloader: 3, tee: 4, snp: 5, microcode: 6 } });
    const r = verifySnpReport(makeFakeSnpReport(turin), { vcek: turin.vek.der, chain: turin.chain }, { at, trustAnchors: turin.trustAnchors });
    assert.equal(r.product, 'Turin');
    assert.deepEqual(
      { fmc: r.reportedTcb.fmc, bl: r.reportedTcb.bootloader, tee: r.reportedTcb.tee, snp: r.reportedTcb.snp, ucode: r.reportedTcb.microcode },
      { fmc: 2, bl: 3, tee: 4, snp: 5, ucode: 6 },
    );
    assert.equal(r.reportedTcb.raw, '0203040500000006');
    const vek = issueFakeVek(turin, { tcb: { fmc: 9, bootloader: 3, tee: 4, snp: 5, microcode: 6 } });
    rejects('snp.tcb_mismatch', () => verifySnpReport(makeFakeSnpReport(turin, {}, vek), { vcek: vek.der }, { at, trustAnchors: turin.trustAnchors }));
  });

  test('Turin: a VCEK without the fmcSPL extension does not vouch for FMC SPL 0 (snp.tcb_mismatch), as the collateral cache refuses it on ingest', () => {
    // Every Turin VCEK carries fmcSPL (VCEK spec; the real Turin vector has it). One without it left the FMC
    // SPL unchecked: absent read as 0, so it stood for a report at FMC 0.
    const turin = createFakeSnpHierarchy({ product: 'Turin', tcb: { fmc: 0, bootloader: 3, tee: 4, snp: 5, microcode: 6 } });
    const vek = issueFakeVek(turin, { omitFmcSpl: true });
    rejects('snp.tcb_mismatch', () => verifySnpReport(makeFakeSnpReport(turin, {}, vek), { vcek: vek.der }, { at, trustAnchors: turin.trustAnchors }));
    assert.equal(verifySnpReport(makeFakeSnpReport(turin), { vcek: turin.vek.der }, { at, trustAnchors: turin.trustAnchors }).reportedTcb.fmc, 0);
  });

  test('VLEK: SIGNING_KEY must match the certificate kind', () => {
    const vlek = createFakeSnpHierarchy({ product: 'Genoa', signingKey: 'vlek' });
    const report = makeFakeSnpReport(vlek);
    const r = verifySnpReport(report, { vcek: vlek.vek.der, chain: vlek.chain }, { at, trustAnchors: vlek.trustAnchors });
    assert.equal(r.signingKey, 'vlek');
    assert.equal(r.vek.cspId, 'CN=conclave.test');
    const asVcek = makeFakeSnpReport(vlek, { signerInfo: 0 });
    rejects('snp.chain_invalid', () => verifySnpReport(asVcek, { vcek: vlek.vek.der, chain: vlek.chain }, { at, trustAnchors: vlek.trustAnchors }));
  });

  test('bounded work: evidence with more certificates than a VEK chain has (VEK, ASK or ASVK, ARK, with room to spare: 8) is refused before any is parsed (snp.malformed)', () => {
    const report = makeFakeSnpReport(milan);
    // Eight verify: the chain with the ASK given six times over.
    const eight = [milan.ask.der, milan.ask.der, milan.ask.der, milan.ask.der, milan.ask.der, milan.ask.der, milan.ark.der];
    assert.equal(verifySnpReport(report, { vcek: milan.vek.der, chain: eight }, opts).verified, true);
    // Nine are refused, valid or not: parsing and hashing them is the caller's work to spend, not the verifier's.
    rejects('snp.malformed', () => verifySnpReport(report, { vcek: milan.vek.der, chain: [milan.ask.der, ...eight] }, opts));
    const junk = Array.from({ length: 500 }, () => Uint8Array.of(0x30, 0x00));
    rejects('snp.malformed', () => verifySnpReport(report, { vcek: milan.vek.der, chain: [...junk, ...milan.chain] }, opts));
    rejects('snp.malformed', () => verifySnpReport(report, { vcek: milan.vek.der, chain: [...junk, ...milan.chain] }, { ...opts, cache: new SnpVerifierCache() }));
  });

  test('pin: MASK_CHIP_KEY and SIGNING_KEY "none" are refused; a masked CHIP_ID verifies (with a warning) only under the VCEK of the chip that signed', () => {
    rejects('snp.unsupported', () => verifySnpReport(makeFakeSnpReport(milan, { signerInfo: 0x2 }), { vcek: milan.vek.der }, opts));
    rejects('snp.unsupported', () => verifySnpReport(makeFakeSnpReport(milan, { signerInfo: 0x1c }), { vcek: milan.vek.der }, opts));
    const masked = makeFakeSnpReport(milan, { chipId: new Uint8Array(64) });
    const r = verifySnpReport(masked, { vcek: milan.vek.der }, opts);
    assert.ok(r.warnings.some((w) => w.includes('CHIP_ID is masked')));
    // With no CHIP_ID to compare the hwID with, the signature carries the chip: another chip's VCEK does not verify.
    const other = issueFakeVek(milan, { chipId: new Uint8Array(64).fill(9) });
    rejects('snp.signature_invalid', () => verifySnpReport(masked, { vcek: other.der }, opts));
  });

  test('v5 reports carry the mitigation vectors', () => {
    const r = verifySnpReport(makeFakeSnpReport(milan, { version: 5, launchMitVector: 3n, currentMitVector: 0x10n }), { vcek: milan.vek.der }, opts);
    assert.equal(r.reportVersion, 5);
    assert.equal(r.launchMitVector, '0000000000000003');
    assert.equal(r.currentMitVector, '0000000000000010');
  });
});

describe('property: verification throws nothing but ConclaveError', () => {
  const h = createFakeSnpHierarchy({ product: 'Genoa' });
  const report = makeFakeSnpReport(h);
  test('mutated VCEK DER and chain bytes', () => {
    fc.assert(
      fc.property(fc.nat(h.vek.der.byteLength - 1), fc.integer({ min: 0, max: 255 }), fc.nat(h.chain[0]!.byteLength - 1), fc.integer({ min: 0, max: 255 }), (i, v, j, w) => {
        const vek = new Uint8Array(h.vek.der);
        vek[i] = v;
        const ask = new Uint8Array(h.chain[0]!);
        ask[j] = w;
        try {
          verifySnpReport(report, { vcek: vek, chain: [ask] }, { at, trustAnchors: h.trustAnchors });
        } catch (e) {
          if (!isConclaveError(e)) throw e;
        }
        return true;
      }),
      { numRuns: 60 },
    );
  });
});

describe('refused chains are remembered per anchors (#20)', () => {
  const milan = createFakeSnpHierarchy({ product: 'Milan' });
  const report = makeFakeSnpReport(milan);
  const certs = { vcek: milan.vek.der, chain: milan.chain };
  const at = new Date();

  test('a chain that does not lead to the pinned AMD roots is refused again from the cache, and still verifies against its own anchors', () => {
    const cache = new SnpVerifierCache();
    rejects('snp.chain_invalid', () => verifySnpReport(report, certs, { at, cache }));
    assert.equal(cache.refused, 1);
    rejects('snp.chain_invalid', () => verifySnpReport(report, certs, { at, cache }));
    assert.equal(cache.refused, 1);
    assert.equal(cache.size, 0);
    // The refusal is a fact about these bytes and the pinned roots only.
    assert.equal(verifySnpReport(report, certs, { at, cache, trustAnchors: milan.trustAnchors }).verified, true);
    assert.equal(cache.size, 1);
  });

  test('only chain_invalid is remembered: an expired chain is not, and verifies once in its validity', () => {
    const cache = new SnpVerifierCache();
    rejects('cert.expired', () => verifySnpReport(report, certs, { at: new Date('2000-01-01T00:00:00Z'), cache, trustAnchors: milan.trustAnchors }));
    assert.equal(cache.refused, 0);
    assert.equal(verifySnpReport(report, certs, { at, cache, trustAnchors: milan.trustAnchors }).verified, true);
  });

  test('anchors changed in place are not answered from the cache under the ones they replaced', () => {
    const cache = new SnpVerifierCache();
    const anchors = { ...milan.trustAnchors };
    assert.equal(verifySnpReport(report, certs, { at, cache, trustAnchors: anchors }).verified, true);
    // The same object, another PKI's root for the product: the chain no longer leads to it.
    assert.notDeepEqual(fakeMilan.trustAnchors.Milan, milan.trustAnchors.Milan);
    anchors.Milan = fakeMilan.trustAnchors.Milan;
    rejects('snp.chain_invalid', () => verifySnpReport(report, certs, { at, cache, trustAnchors: anchors }));
    anchors.Milan = milan.trustAnchors.Milan;
    assert.equal(verifySnpReport(report, certs, { at, cache, trustAnchors: anchors }).verified, true);
  });
});


describe('verifyMaaSevSnpEvidenceAsync decides as verifyMaaSevSnpEvidence (signature on the threadpool)', () => {
  const milan = fakeMilan;
  const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
  const chain = Buffer.from([milan.vek.der, ...milan.chain].map(pem).join('')).toString('base64url');
  const runtime = new TextEncoder().encode('{"keys":[]}');
  const evidence = (report: Uint8Array) => JSON.stringify({ SnpReport: Buffer.from(report).toString('base64url'), VcekCertChain: chain });
  const opts = { at, trustAnchors: milan.trustAnchors, cache: new SnpVerifierCache() };

  test('every sampled single-byte flip of the report gets the same verdict and error', async () => {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', runtime));
    const original = makeFakeSnpReport(milan, { reportData: Uint8Array.from([...digest, ...new Uint8Array(32)]) });
    const ok = await outcome(() => verifyMaaSevSnpEvidenceAsync(evidence(original), runtime, undefined, opts));
    assert.ok('result' in ok, JSON.stringify(ok).slice(0, 300));
    assert.deepEqual(ok, await outcome(() => verifyMaaSevSnpEvidence(evidence(original), runtime, undefined, opts)));
    const codes = new Set<string>();
    for (let i = 0; i < original.byteLength; i += 5) {
      const m = original.slice();
      m[i]! ^= 0x01;
      const sync = await outcome(() => verifyMaaSevSnpEvidence(evidence(m), runtime, undefined, opts));
      assert.deepEqual(await outcome(() => verifyMaaSevSnpEvidenceAsync(evidence(m), runtime, undefined, opts)), sync, `byte ${i}`);
      if ('code' in sync) codes.add(sync.code);
    }
    assert.ok(codes.has('snp.signature_invalid'), [...codes].join(', '));
  });

  test('a bad signature is named before a failing check after it (the runtime-data binding)', async () => {
    const bad = makeFakeSnpReport(milan, {}, issueFakeVek(milan));
    for (const v of [verifyMaaSevSnpEvidence, verifyMaaSevSnpEvidenceAsync]) {
      const o = await outcome(() => v(evidence(bad), runtime, undefined, opts));
      assert.ok('code' in o && o.code === 'snp.signature_invalid', `${v.name}: ${JSON.stringify(o).slice(0, 200)}`);
    }
    // With a good signature, that binding is what fails, in both.
    const good = makeFakeSnpReport(milan);
    const sync = await outcome(() => verifyMaaSevSnpEvidence(evidence(good), runtime, undefined, opts));
    assert.ok('code' in sync && sync.code !== 'snp.signature_invalid', JSON.stringify(sync));
    assert.deepEqual(await outcome(() => verifyMaaSevSnpEvidenceAsync(evidence(good), runtime, undefined, opts)), sync);
  });
});
