import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConclaveError, isConclaveError } from '../../core/errors.js';
import { sha256 } from '../../core/bytes.js';
import { readFixture, skipWithoutFixtures } from '../../../test/fixtures.js';
import { isHclReport, parseHclReport, parseHclRuntimeClaims } from './hcl.js';

const skip = skipWithoutFixtures();

describe('parseHclReport', () => {
  test('real Milan and Genoa HCL reports: SNP report at 32, variable data at 1236', { skip }, () => {
    for (const folder of ['azure-cvm-hcl-milan-trustee', 'azure-cvm-hcl-genoa-trustee']) {
      const bytes = readFixture('amd', folder, 'hcl_report.bin');
      const h = parseHclReport(bytes);
      assert.equal(h.reportType, 'snp');
      assert.equal(h.hashType, 'sha256');
      assert.deepEqual(Buffer.from(h.hwReport), readFixture('amd', folder, 'snp_report.bin'));
      assert.deepEqual(Buffer.from(h.runtimeData), readFixture('amd', folder, 'runtime_data.json'));
      assert.equal(h.reportSize, 32 + 1184 + 20 + h.runtimeData.byteLength);
      assert.deepEqual(Buffer.from(sha256(h.runtimeData)), Buffer.from(h.hwReport.subarray(0x50, 0x70)));
      const claims = parseHclRuntimeClaims(h.runtimeData);
      assert.equal(claims.hclAkPub?.kty, 'RSA');
      assert.equal(claims.vmConfiguration?.['tpm-enabled'], true);
    }
  });

  test('typed errors', { skip }, () => {
    const bytes = new Uint8Array(readFixture('amd/azure-cvm-hcl-milan-trustee/hcl_report.bin'));
    assert.throws(() => parseHclReport(bytes.subarray(0, 1300)), (e: unknown) => isConclaveError(e, 'evidence.truncated'));
    const bad = new Uint8Array(bytes);
    bad[0] = 0;
    assert.equal(isHclReport(bad), false);
    assert.throws(() => parseHclReport(bad), (e: unknown) => isConclaveError(e, 'evidence.malformed'));
    const tdx = new Uint8Array(bytes);
    tdx[1216 + 8] = 4;
    assert.equal(parseHclReport(tdx).reportType, 'tdx');
    tdx[1216 + 8] = 3;
    assert.throws(() => parseHclReport(tdx), (e: unknown) => isConclaveError(e, 'evidence.unsupported'));
  });

  test('property: never throws anything but ConclaveError', { skip }, () => {
    const base = readFixture('amd/azure-cvm-hcl-milan-trustee/hcl_report.bin');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(1300), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(2700), (edits, len) => {
        const m = new Uint8Array(base);
        for (const [i, v] of edits) m[i] = v;
        try {
          parseHclReport(m.subarray(0, len));
        } catch (e) {
          if (!(e instanceof ConclaveError)) throw e;
        }
        return true;
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          parseHclRuntimeClaims(b);
        } catch (e) {
          if (!(e instanceof ConclaveError)) throw e;
        }
        return true;
      }),
    );
  });
});
