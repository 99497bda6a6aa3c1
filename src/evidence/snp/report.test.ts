import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConclaveError, isConclaveError } from '../../core/errors.js';
import { readFixture, skipWithoutFixtures } from '../../../test/fixtures.js';
import { detectSnpEvidenceFormat, encodeSnpReport, parseMaaSevSnpEvidence, parseSnpReport } from './index.js';
import { decodeTcb, encodeTcb, productFromCpuid } from './report.js';

const skip = skipWithoutFixtures();

function rejects(code: string, f: () => unknown): void {
  assert.throws(f, (e: unknown) => isConclaveError(e) && e.code === code);
}

describe('parseSnpReport', () => {
  test('real v2 and v3 reports parse; signed bytes are the input 0x000–0x29F', { skip }, () => {
    const v2 = readFixture('amd/snp-milan-virtee/report.bin');
    const r = parseSnpReport(v2);
    assert.equal(r.version, 2);
    assert.equal(r.cpuid, undefined);
    assert.deepEqual(Buffer.from(r.signedBytes), v2.subarray(0, 0x2a0));
    assert.equal(r.signature.r.byteLength, 48);
    const v3 = parseSnpReport(readFixture('amd/snp-milan-vlek-aws-trustee/report.bin'));
    assert.equal(v3.version, 3);
    assert.equal(v3.signerInfo.signingKey, 'vlek');
    assert.equal(v3.cpuidProduct, 'Milan');
    assert.equal(parseSnpReport(readFixture('amd/azure-cvm-hcl-genoa-trustee/snp_report.bin')).cpuidProduct, 'Genoa');
  });

  test('parsing does not alias or mutate the input Buffer', { skip }, () => {
    const b = readFixture('amd/snp-milan-virtee/report.bin');
    const copy = Buffer.from(b);
    const r = parseSnpReport(b);
    r.measurement.fill(0);
    assert.deepEqual(b, copy);
  });

  test('encode → parse round trip, v2/v3/v5', () => {
    for (const version of [2, 3, 5]) {
      const bytes = encodeSnpReport({
        version,
        guestSvn: 7,
        policy: 0x3001fn,
        vmpl: 2,
        measurement: new Uint8Array(48).fill(0xaa),
        reportedTcb: encodeTcb({ bootloader: 1, tee: 2, snp: 3, microcode: 4 }, 'legacy'),
        cpuid: { family: 0x19, model: 0x11, stepping: 1 },
        launchMitVector: 5n,
        currentFirmware: { major: 1, minor: 55, build: 40 },
        signature: { r: new Uint8Array(48).fill(1), s: new Uint8Array(48).fill(2) },
      });
      const r = parseSnpReport(bytes);
      assert.equal(r.version, version);
      assert.equal(r.guestSvn, 7);
      assert.equal(r.vmpl, 2);
      assert.equal(r.cpuidProduct, version >= 3 ? 'Genoa' : undefined);
      assert.equal(r.launchMitVector, version >= 5 ? 5n : undefined);
      assert.deepEqual(r.currentFirmware, { major: 1, minor: 55, build: 40 });
      assert.deepEqual(decodeTcb(r.reportedTcb, 'legacy').raw, '0102000000000304');
      assert.deepEqual(r.signature.s, new Uint8Array(48).fill(2));
    }
  });

  test('TCB encodings: Milan/Genoa vs Turin', () => {
    assert.deepEqual(decodeTcb(Uint8Array.from([3, 0, 0, 0, 0, 0, 8, 0x73]), 'legacy'), {
      bootloader: 3,
      tee: 0,
      snp: 8,
      microcode: 0x73,
      raw: '0300000000000873',
      tcbm: '7308000000000003',
      u64: BigInt('0x7308000000000003').toString(),
    });
    const t = decodeTcb(Uint8Array.from([1, 2, 3, 4, 0, 0, 0, 9]), 'turin');
    assert.deepEqual([t.fmc, t.bootloader, t.tee, t.snp, t.microcode], [1, 2, 3, 4, 9]);
    assert.deepEqual(encodeTcb({ fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 9 }, 'turin'), Uint8Array.from([1, 2, 3, 4, 0, 0, 0, 9]));
    assert.equal(productFromCpuid(0x1a, 0x02), 'Turin');
    assert.equal(productFromCpuid(0x19, 0xa1), 'Genoa');
    assert.equal(productFromCpuid(0x17, 0x31), undefined);
  });

  test('typed errors: truncated, unsupported version/algorithm, MBZ, policy bit 17, signing key', () => {
    const good = encodeSnpReport({});
    rejects('snp.truncated', () => parseSnpReport(good.subarray(0, 3)));
    rejects('snp.truncated', () => parseSnpReport(good.subarray(0, 0x49f)));
    const mutate = (off: number, v: number): Uint8Array => {
      const m = new Uint8Array(good);
      m[off] = v;
      return m;
    };
    rejects('snp.unsupported', () => parseSnpReport(mutate(0, 1)));
    rejects('snp.unsupported', () => parseSnpReport(mutate(0x34, 2)));
    rejects('snp.malformed', () => parseSnpReport(mutate(0x04c, 1)));
    rejects('snp.malformed', () => parseSnpReport(mutate(0x190, 1)));
    rejects('snp.malformed', () => parseSnpReport(mutate(0x250, 1)));
    rejects('snp.malformed', () => parseSnpReport(mutate(0x400, 1)));
    rejects('snp.malformed', () => parseSnpReport(mutate(0x2a0 + 60, 1))); // r beyond 384 bits
    rejects('snp.malformed', () => parseSnpReport(mutate(0x0a, 0))); // policy bit 17 cleared
    rejects('snp.malformed', () => parseSnpReport(mutate(0x0c, 0x10))); // policy bit 36
    rejects('snp.malformed', () => parseSnpReport(mutate(0x048, 0x20))); // SIGNER_INFO bit 5
    rejects('snp.malformed', () => parseSnpReport(mutate(0x048, 0x08))); // SIGNING_KEY 2
    rejects('snp.malformed', () => parseSnpReport(Buffer.concat([good, Uint8Array.of(1)])));
    assert.equal(parseSnpReport(Buffer.concat([good, new Uint8Array(16)])).version, 3);
    // the v2 reserved range starts at 0x188; v3 puts CPUID there
    const v2 = encodeSnpReport({ version: 2 });
    v2[0x188] = 0x19;
    rejects('snp.malformed', () => parseSnpReport(v2));
  });

  test('pin: the rest of the must-be-zero bytes and ranges per version (ABI spec ATTESTATION_REPORT), and VMPL 0–3', () => {
    const at = (fields: Parameters<typeof encodeSnpReport>[0], off: number, v = 1): Uint8Array => {
      const m = encodeSnpReport(fields);
      m[off] = v;
      return m;
    };
    rejects('snp.malformed', () => parseSnpReport(at({}, 0x2e8 + 48))); // s beyond 384 bits
    rejects('snp.malformed', () => parseSnpReport(at({}, 0x2e8 + 71)));
    rejects('snp.malformed', () => parseSnpReport(at({}, 0x1eb))); // after CURRENT_MAJOR
    rejects('snp.malformed', () => parseSnpReport(at({}, 0x1ef))); // after COMMITTED_MAJOR
    rejects('snp.malformed', () => parseSnpReport(at({}, 0x18b))); // v3: after CPUID_STEP
    for (const version of [2, 3, 4]) rejects('snp.malformed', () => parseSnpReport(at({ version }, 0x1f8))); // LAUNCH_MIT_VECTOR is v5's
    assert.equal(parseSnpReport(at({ version: 5 }, 0x1f8)).launchMitVector, 1n);
    assert.equal(parseSnpReport(at({ version: 5 }, 0x200)).currentMitVector, 1n);
    rejects('snp.malformed', () => parseSnpReport(at({ version: 5 }, 0x208))); // after CURRENT_MIT_VECTOR
    rejects('snp.malformed', () => parseSnpReport(at({ version: 5 }, 0x29f)));
    rejects('snp.malformed', () => parseSnpReport(at({}, 0x30, 4))); // VMPL 4
    assert.equal(parseSnpReport(at({}, 0x30, 3)).vmpl, 3);
    rejects('snp.unsupported', () => parseSnpReport(at({}, 0x34, 0))); // SIGNATURE_ALGO 0
  });
});

describe('detectSnpEvidenceFormat', () => {
  test('raw, azure-hcl (binary and trustee JSON), maa-json', { skip }, () => {
    assert.equal(detectSnpEvidenceFormat(readFixture('amd/snp-milan-virtee/report.bin')), 'raw');
    assert.equal(detectSnpEvidenceFormat(readFixture('amd/azure-cvm-hcl-milan-trustee/hcl_report.bin')), 'azure-hcl');
    assert.equal(detectSnpEvidenceFormat(readFixture('amd/azure-cvm-hcl-milan-trustee/evidence-v0.json')), 'azure-hcl');
    assert.equal(detectSnpEvidenceFormat(readFixture('amd/azure-aci-sidecar/DERIVED_maa_attest_sevsnpvm_request.json')), 'maa-json');
    rejects('snp.truncated', () => detectSnpEvidenceFormat(new Uint8Array(10)));
    rejects('snp.malformed', () => detectSnpEvidenceFormat(Buffer.from('{"x":1}')));
  });
});

describe('property: parsers throw nothing but ConclaveError', () => {
  const onlyConclave = (f: () => unknown): boolean => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof ConclaveError)) throw e;
    }
    return true;
  };
  const base = encodeSnpReport({ policy: 0x3001fn });

  test('parseSnpReport on random bytes and on mutations of a valid report', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1300 }), (b) => onlyConclave(() => parseSnpReport(b))));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.byteLength - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(1300), (edits, len) => {
        const m = new Uint8Array(base);
        for (const [i, v] of edits) m[i] = v;
        return onlyConclave(() => parseSnpReport(m.subarray(0, Math.min(len, m.byteLength))));
      }),
    );
  });

  test('detectSnpEvidenceFormat and parseMaaSevSnpEvidence on random input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1300 }), (b) => onlyConclave(() => detectSnpEvidenceFormat(b))));
    fc.assert(fc.property(fc.string(), (s) => onlyConclave(() => parseMaaSevSnpEvidence(s))));
    fc.assert(fc.property(fc.json(), (s) => onlyConclave(() => parseMaaSevSnpEvidence(s))));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('SnpReport', 'VcekCertChain', 'Endorsements', 'report'), fc.oneof(fc.string(), fc.base64String())), (o) =>
        onlyConclave(() => parseMaaSevSnpEvidence(o)),
      ),
    );
  });
});

describe('MAA SevSnpVm evidence: JSON decoded from inside the request is bounded in depth (bounded work)', () => {
  // The report's JSON and its Endorsements are base64 inside the body, so the edge's depth check never saw
  // them: nested deeper than MAX_JSON_DEPTH (64) they are snp.malformed naming the bound, before JSON.parse.
  const b64u = (s: string) => Buffer.from(s).toString('base64url');
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  const refusedForDepth = (f: () => unknown, what: string) =>
    assert.throws(f, (e: unknown) => isConclaveError(e, 'snp.malformed') && e.detail?.maxDepth === 64, what);

  test('the report JSON, as the whole evidence or inside the body, nested 65 deep or 200 000 deep', () => {
    for (const n of [65, 200_000]) {
      refusedForDepth(() => parseMaaSevSnpEvidence(deep(n)), `evidence ${n} deep`);
      refusedForDepth(() => parseMaaSevSnpEvidence({ report: b64u(deep(n)) }), `report ${n} deep`);
      refusedForDepth(() => parseMaaSevSnpEvidence({ report: b64u(`{"SnpReport":"AA","x":${deep(n - 1)}}`) }), `a member ${n} deep`);
    }
  });

  test('Endorsements nested 65 deep or 200 000 deep; 64 deep is read', () => {
    for (const n of [64, 200_000]) {
      refusedForDepth(() => parseMaaSevSnpEvidence({ SnpReport: 'AA', Endorsements: b64u(`{"x":${deep(n)}}`) }), `Endorsements ${n + 1} deep`);
    }
    const ok = parseMaaSevSnpEvidence({ SnpReport: 'AA', Endorsements: b64u(`{"x":${deep(63)}}`) });
    assert.ok(ok.endorsements && typeof ok.endorsements === 'object');
  });
});
