/**
 * The real NVIDIA vectors of test/vectors/nvidia, each verified at its `reference_time` against its
 * expected.json, plus mutation sweeps over one of them that assert one error code per region.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fixturePath, readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { isConclaveError } from '../../core/errors.js';
import { derToPem, pemToDer } from '../../core/x509.js';
import { verifyDeviceChain } from './chain.js';
import { compareMeasurements } from './measurements.js';
import { parseGpuReport } from './report.js';
import { verifyRim } from './rim.js';
import { NVIDIA_DEVICE_IDENTITY_CA, NVIDIA_DEVICE_IDENTITY_CA_SHA256, NVIDIA_RIM_ROOT_CA, NVIDIA_RIM_ROOT_CA_SHA256 } from './roots.js';
import { parseSerializedGpuEvidence } from './serialized.js';
import { GpuVerifierCache, type GpuVerifyOptions, validateGpuMeasurements, verifyGpuEvidence } from './verify.js';

const skip = skipWithoutFixtures();

interface RimExpect {
  colloquial_version: string;
  reference_digest_ok: boolean;
  signature_ok: boolean;
  cert_chain_valid: boolean;
  cert_chain_valid_at_reference_time: boolean;
  cert_chain_valid_now?: boolean;
  cert_chain_earliest_not_after: string;
  oemid: string;
  active_measurements?: number;
  reference_time?: string;
}
interface Expected {
  arch: 'HOPPER' | 'BLACKWELL';
  reference_time: string;
  files: { rims?: Record<string, string> };
  expect: {
    signature_valid: boolean;
    nonce: string;
    number_of_blocks: number;
    cert_chain_length: number;
    cert_chain_valid_at_reference_time: boolean;
    cert_chain_valid_now: boolean;
    fwid_oid: string;
    driver_version: string;
    vbios_version: string;
    project_sku_chip: [string, string, string];
    opaque_fwid?: string | null;
    opaque_data_version?: number | null;
    feature_flag?: string | null;
    nvdec0_status: string;
    driver_rim_id?: string;
    vbios_rim_id?: string;
    fwid_match: boolean | null;
    ueid: string;
    hwmodel: string;
    trailing_bytes: number;
    cert_chain_earliest_not_after: string;
    negative_chains?: Record<string, { links_verify_to_root: boolean }>;
    rims?: Record<string, RimExpect>;
    rim_comparisons?: Array<{ rims: string[]; all_match: boolean; mismatches: Record<string, number[]>; index_conflict: boolean; compared: Record<string, number> }>;
  };
}

const NVIDIA = fixturePath('nvidia');
const vectors = skip ? [] : readdirSync(NVIDIA).filter((d) => existsSync(fixturePath('nvidia', d, 'attestation_report.bin')));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isConclaveError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

describe('NVIDIA roots', { skip }, () => {
  test('the pinned roots are the fixtures roots, by SHA-256 of their DER', () => {
    for (const [cert, sha, file] of [
      [NVIDIA_DEVICE_IDENTITY_CA, NVIDIA_DEVICE_IDENTITY_CA_SHA256, 'nvidia_device_identity_ca.pem'],
      [NVIDIA_RIM_ROOT_CA, NVIDIA_RIM_ROOT_CA_SHA256, 'nvidia_corim_signing_root_ca.pem'],
    ] as const) {
      assert.equal(createHash('sha256').update(cert.der).digest('hex'), sha);
      assert.deepEqual(Buffer.from(cert.der), Buffer.from(pemToDer(readFixtureText('nvidia', 'roots', file))[0]!));
    }
    assert.equal(NVIDIA_DEVICE_IDENTITY_CA.subjectCN, 'NVIDIA Device Identity CA');
    assert.equal(NVIDIA_RIM_ROOT_CA.subjectCN, 'NVIDIA CoRIM signing Root CA');
  });
});

describe('real GPU vectors verify to their expected.json at their reference time', { skip }, () => {
  assert.ok(skip || vectors.length >= 9, `expected the NVIDIA vectors, found ${vectors.length}`);
  for (const v of vectors) {
    test(v, () => {
      const e = readFixtureJson<Expected>('nvidia', v, 'expected.json');
      const x = e.expect;
      const at = new Date(e.reference_time);
      const report = readFixture('nvidia', v, 'attestation_report.bin');
      const certificateChain = readFixtureText('nvidia', v, 'cert_chain.pem');
      const nonce = Buffer.from(readFixtureText('nvidia', v, 'nonce.hex').trim(), 'hex');
      assert.equal(Buffer.from(nonce).toString('hex'), x.nonce);
      const parsed = parseGpuReport(report);
      assert.equal(parsed.trailingBytes, x.trailing_bytes);
      assert.equal(parsed.opaque.driverVersion, x.driver_version);
      assert.equal(parsed.opaque.vbiosVersion, x.vbios_version);
      assert.deepEqual([parsed.opaque.project, parsed.opaque.projectSku, parsed.opaque.chipSku], x.project_sku_chip);
      assert.equal(`0x${parsed.opaque.nvdec0Status?.toString(16)}`, x.nvdec0_status);
      if ('opaque_fwid' in x) assert.equal(parsed.opaque.fwid ? Buffer.from(parsed.opaque.fwid).toString('hex') : null, x.opaque_fwid);
      if ('opaque_data_version' in x) assert.equal(parsed.opaque.opaqueDataVersion ?? null, x.opaque_data_version);
      if ('feature_flag' in x) assert.equal(parsed.opaque.featureFlag ?? null, x.feature_flag);
      assert.equal(parsed.measurements.length, x.number_of_blocks);
      // The chain on its own: length, the FWID extension of its architecture (Blackwell: TcbInfo), validity.
      assert.equal(x.cert_chain_valid_at_reference_time, true);
      const chain = verifyDeviceChain(certificateChain, { at });
      assert.equal(chain.certificates.length, x.cert_chain_length);
      assert.equal(chain.architecture, e.arch);
      assert.equal(chain.fwidOid, x.fwid_oid);
      // "Now" expectations are ones that can no longer change (every certificate is valid until 9999).
      assert.equal(code(() => verifyDeviceChain(certificateChain, { at: new Date() })), x.cert_chain_valid_now ? 'ok' : 'cert.expired');

      const opts: GpuVerifyOptions = { at, nonce };
      if (!x.signature_valid) {
        assert.equal(code(() => verifyGpuEvidence({ report, certificateChain }, opts)), 'gpu.signature_invalid');
        return;
      }
      const r = verifyGpuEvidence({ report, certificateChain }, opts);
      assert.equal(r.architecture, e.arch);
      // Warm (chain from the cache) gives the same result as cold.
      const cache = new GpuVerifierCache();
      verifyGpuEvidence({ report, certificateChain }, { ...opts, cache });
      assert.deepEqual(JSON.parse(JSON.stringify(verifyGpuEvidence({ report, certificateChain }, { ...opts, cache }))), JSON.parse(JSON.stringify(r)));
      assert.equal(r.ueid, x.ueid);
      assert.equal(r.hwmodel, x.hwmodel);
      assert.equal(r.fwidMatch, x.fwid_match);
      assert.equal(r.deviceChain.expirationDate, x.cert_chain_earliest_not_after);
      if (x.driver_rim_id) assert.equal(r.driverRimId, x.driver_rim_id);
      if (x.vbios_rim_id) assert.equal(r.vbiosRimId, x.vbios_rim_id);
      assert.equal(r.measres, 'not-compared');
      // Wrong nonce: NVIDIA's verifier answers GpuEvidenceNonceMismatch.
      assert.equal(code(() => verifyGpuEvidence({ report, certificateChain }, { at, nonce: new Uint8Array(32) })), 'gpu.nonce_mismatch');

      for (const [file, neg] of Object.entries(x.negative_chains ?? {})) {
        const c = code(() => verifyGpuEvidence({ report, certificateChain: readFixtureText('nvidia', v, file) }, opts));
        assert.equal(c, 'gpu.chain_invalid', `${file} (links_verify_to_root=${neg.links_verify_to_root})`);
      }

      const rimFiles = e.files.rims ?? {};
      const verifiedRims = new Map<string, ReturnType<typeof verifyRim>>();
      for (const [key, file] of Object.entries(rimFiles)) {
        const re = x.rims![key]!;
        const doc = readFixture('nvidia', v, file);
        if (!re.reference_digest_ok) {
          assert.equal(code(() => verifyRim(doc, { at })), 'rim.digest_mismatch', key);
          continue;
        }
        if (!re.cert_chain_valid_at_reference_time) {
          assert.match(code(() => verifyRim(doc, { at })), /^rim\.(expired|chain_invalid)$/, key);
          continue;
        }
        const rim = verifyRim(doc, { at });
        assert.equal(rim.colloquialVersion, re.colloquial_version);
        assert.equal(rim.firmwareManufacturerId, re.oemid);
        assert.equal(rim.notAfter.toISOString(), re.cert_chain_earliest_not_after);
        if (re.cert_chain_valid_now === false) assert.equal(code(() => verifyRim(doc, { at: new Date('2026-12-06T00:00:00Z') })), 'rim.expired', key);
        verifiedRims.set(key, rim);
      }
      for (const cmp of x.rim_comparisons ?? []) {
        if (!cmp.rims.every((k) => verifiedRims.has(k))) continue; // an edited RIM never verifies, so it is never compared
        const byKind = Object.fromEntries(cmp.rims.map((k) => [/driver/i.test(k) ? 'driver' : 'vbios', verifiedRims.get(k)!]));
        const result = compareMeasurements(parsed, byKind);
        assert.equal(result.result === 'success', cmp.all_match, cmp.rims.join('+'));
        for (const k of cmp.rims) {
          const kind = /driver/i.test(k) ? 'driver' : 'vbios';
          assert.deepEqual(
            result.mismatches.filter((m) => m.measurementSource === kind).map((m) => m.index),
            cmp.mismatches[k],
            k,
          );
          assert.equal(result.compared[kind], cmp.compared[k], k);
        }
        if (cmp.rims.length === 2) {
          const pair = { driver: readFixture('nvidia', v, rimFiles[cmp.rims.find((k) => /driver/i.test(k))!]!), vbios: readFixture('nvidia', v, rimFiles[cmp.rims.find((k) => !/driver/i.test(k))!]!) };
          const full = verifyGpuEvidence({ report, certificateChain }, { at, nonce, rims: pair });
          assert.equal(full.measres, cmp.all_match ? 'success' : 'fail');
          // Warm (chain, both RIMs and their reference table from the cache) gives the same result.
          verifyGpuEvidence({ report, certificateChain }, { at, nonce, rims: pair, cache });
          assert.deepEqual(JSON.parse(JSON.stringify(verifyGpuEvidence({ report, certificateChain }, { at, nonce, rims: pair, cache }))), JSON.parse(JSON.stringify(full)));
          assert.equal(full.oemid, '5703');
          if (cmp.all_match) validateGpuMeasurements(full);
        }
      }
    });
  }

  test('multi-GPU evidence in NVIDIA serialised JSON (1, 4 and 8 GPUs)', () => {
    const e = readFixtureJson<{
      reference_time: string;
      evidence_files: Record<string, Array<{ sha256: string; ueid: string; driver_version: string; vbios_version: string; feature_flag: string }>>;
    }>(
      'nvidia',
      'hopper-multi-gpu-evidence-json',
      'expected.json',
    );
    const cache = new GpuVerifierCache();
    for (const [file, entries] of Object.entries(e.evidence_files)) {
      const list = parseSerializedGpuEvidence(readFixtureText('nvidia', 'hopper-multi-gpu-evidence-json', file));
      assert.equal(list.length, entries.length, file);
      const devices = new Set<string>();
      list.forEach((ev, i) => {
        const r = verifyGpuEvidence(ev, { at: new Date(e.reference_time), nonce: ev.nonce, cache });
        devices.add(r.deviceId);
        assert.equal(createHash('sha256').update(ev.report).digest('hex'), entries[i]!.sha256);
        assert.equal(r.vbiosVersion, entries[i]!.vbios_version);
        assert.equal(r.ueid, entries[i]!.ueid);
        assert.equal(r.driverVersion, entries[i]!.driver_version);
        assert.equal(r.featureFlag, entries[i]!.feature_flag);
        assert.equal(r.fwidMatch, true);
      });
      // Each GPU of a real multi-GPU system has its own device identity (composite attestation counts GPUs by it).
      assert.equal(devices.size, list.length, `${file}: one device identity per GPU`);
    }
  });

  test('the PPCIe vector in its original serialised JSON is the same evidence and verifies to its expected.json', () => {
    const v = 'hopper-590.12-ppcie-nvat';
    const x = readFixtureJson<Expected>('nvidia', v, 'expected.json').expect;
    const [ev, ...rest] = parseSerializedGpuEvidence(readFixtureText('nvidia', v, 'nvat_evidence_hopper_590_12.json'));
    assert.equal(rest.length, 0);
    assert.deepEqual(Buffer.from(ev!.report), readFixture('nvidia', v, 'attestation_report.bin'));
    const r = verifyGpuEvidence(ev!, { at: new Date('2025-01-01T00:00:00Z'), nonce: ev!.nonce });
    assert.equal(r.nonce, x.nonce);
    assert.equal(r.featureFlag, 'PPCIE');
    assert.equal(r.ueid, x.ueid);
    assert.equal(r.fwidMatch, true);
    // PPCIe mode: the GPU names the NVSwitches it is linked to (their own evidence is not among the fixtures).
    assert.equal(parseGpuReport(ev!.report).opaque.switchPdis.length, 18);
  });

  test('the genuine and negative standalone RIMs verify (or fail) as rims/expected.json says', () => {
    const e = readFixtureJson<{ rims: Record<string, RimExpect> }>('nvidia', 'rims', 'expected.json');
    for (const [file, re] of Object.entries(e.rims)) {
      const doc = readFixture('nvidia', 'rims', file);
      const at = new Date(re.reference_time!);
      if (!re.signature_ok) assert.equal(code(() => verifyRim(doc, { at })), 'rim.signature_invalid', file);
      else if (!re.cert_chain_valid) assert.equal(code(() => verifyRim(doc, { at })), 'rim.chain_invalid', file);
      else {
        const rim = verifyRim(doc, { at });
        assert.equal(rim.colloquialVersion, re.colloquial_version, file);
        assert.equal(rim.measurements.filter((m) => m.active).length, re.active_measurements, file);
        assert.equal(rim.notAfter.toISOString(), re.cert_chain_earliest_not_after, file);
      }
    }
  });
});

describe('mutations of a real vector fail with one code per region', { skip }, () => {
  const v = 'hopper-550.90.07-nvtrust-trustee-sample';
  const at = new Date('2025-01-01T00:00:00Z');
  const report = skip ? new Uint8Array() : new Uint8Array(readFixture('nvidia', v, 'attestation_report.bin'));
  const chainPem = skip ? '' : readFixtureText('nvidia', v, 'cert_chain.pem');
  const nonce = skip ? new Uint8Array() : new Uint8Array(Buffer.from(readFixtureText('nvidia', v, 'nonce.hex').trim(), 'hex'));
  const cache = new GpuVerifierCache();
  const run = (r: Uint8Array, chain = chainPem): string => code(() => verifyGpuEvidence({ report: r, certificateChain: chain }, { at, nonce, cache }));

  test('the unmutated vector verifies', () => assert.equal(run(report), 'ok'));

  test('a flipped byte in the measurement record or the responder nonce → gpu.signature_invalid (or a parse code)', () => {
    const p = parseGpuReport(report);
    const recordStart = 37 + 8;
    const opaqueStart = recordStart + p.response.measurementRecordLength + 34;
    for (let i = recordStart; i < opaqueStart - 2; i += 23) {
      const m = new Uint8Array(report);
      m[i]! ^= 0x01;
      const c = run(m);
      // Block headers are parsed before the signature is checked, so a flip there is a parse failure.
      assert.ok(['gpu.signature_invalid', 'gpu.malformed', 'gpu.truncated'].includes(c), `offset ${i}: ${c}`);
    }
    const valueByte = recordStart + 7 + 5; // inside block 1's value
    const m = new Uint8Array(report);
    m[valueByte]! ^= 0x80;
    assert.equal(run(m), 'gpu.signature_invalid');
  });

  test('a flipped byte in the request nonce → gpu.nonce_mismatch', () => {
    const m = new Uint8Array(report);
    m[10]! ^= 0x01;
    assert.equal(run(m), 'gpu.nonce_mismatch');
  });

  test('a flipped byte in the opaque data → gpu.signature_invalid or gpu.malformed, never accepted', () => {
    const p = parseGpuReport(report);
    const opaqueStart = 37 + 8 + p.response.measurementRecordLength + 34;
    for (let i = opaqueStart; i < opaqueStart + p.response.opaqueLength; i += 7) {
      const m = new Uint8Array(report);
      m[i]! ^= 0x01;
      const c = run(m);
      assert.ok(['gpu.signature_invalid', 'gpu.malformed', 'gpu.truncated'].includes(c), `offset ${i}: ${c}`);
    }
  });

  test('a flipped byte in the signature → gpu.signature_invalid', () => {
    for (let i = report.byteLength - 96; i < report.byteLength; i += 5) {
      const m = new Uint8Array(report);
      m[i]! ^= 0x01;
      assert.equal(run(m), 'gpu.signature_invalid', `offset ${i}`);
    }
  });

  test('a flipped byte in any certificate of the chain → gpu.chain_invalid', () => {
    const ders = pemToDer(chainPem);
    for (let c = 0; c < ders.length; c++) {
      for (let i = 0; i < ders[c]!.byteLength; i += 41) {
        const copy = ders.map((d) => new Uint8Array(d));
        copy[c]![i]! ^= 0x01;
        const pem = copy.map((d) => derToPem(d)).join('');
        assert.equal(run(report, pem), 'gpu.chain_invalid', `certificate ${c} offset ${i}`);
      }
    }
  });

  test('a chain with another GPU’s attestation certificate → gpu.signature_invalid', () => {
    const other = readFixtureText('nvidia', 'hopper-545.00-nvtrust-initial-sample', 'cert_chain.pem');
    assert.equal(run(report, other), 'gpu.signature_invalid');
  });

  test('a flipped byte in a RIM → rim.digest_mismatch, rim.signature_invalid or rim.malformed', () => {
    const doc = readFixtureText('nvidia', 'rims', 'NV_GPU_DRIVER_GH100_550.144.03.xml');
    const rimAt = new Date('2025-12-30T00:00:00Z');
    const hash = doc.indexOf('ns2:Hash0="') + 'ns2:Hash0="'.length + 3;
    const flip = (i: number, ch: string): string => doc.slice(0, i) + ch + doc.slice(i + 1);
    assert.equal(code(() => verifyRim(flip(hash, doc[hash] === 'a' ? 'b' : 'a'), { at: rimAt })), 'rim.digest_mismatch');
    const active = doc.indexOf('active="False"');
    assert.equal(code(() => verifyRim(doc.slice(0, active) + 'active="True" ' + doc.slice(active + 'active="False"'.length), { at: rimAt })), 'rim.digest_mismatch');
    const sv = doc.indexOf('<ds:SignatureValue>') + '<ds:SignatureValue>'.length + 10;
    assert.equal(code(() => verifyRim(flip(sv, doc[sv] === 'A' ? 'B' : 'A'), { at: rimAt })), 'rim.signature_invalid');
    const dv = doc.indexOf('<ds:DigestValue>') + '<ds:DigestValue>'.length + 4;
    assert.match(code(() => verifyRim(flip(dv, doc[dv] === 'A' ? 'B' : 'A'), { at: rimAt })), /^rim\.(digest_mismatch|signature_invalid)$/);
    assert.equal(code(() => verifyRim(doc.replace('<SoftwareIdentity ', '<SoftwareIdentity  x="1" '), { at: rimAt })), 'rim.digest_mismatch');
    assert.equal(code(() => verifyRim(doc.replace('</ds:SignedInfo>', '</ds:SignedInfoX>'), { at: rimAt })), 'rim.malformed');
  });
});
