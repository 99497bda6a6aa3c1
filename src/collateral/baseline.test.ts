import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { DEFAULT_BASELINE, baselineEvaluationNumber, chooseEvaluationNumber, meetsAmdMinimum, parseBaselinePolicy, parseCustomParameter, selectorOf } from './baseline.js';

const published = new Map([
  [17, new Date('2024-03-12T00:00:00Z')],
  [18, new Date('2024-11-12T00:00:00Z')],
  [19, new Date('2025-05-13T00:00:00Z')],
]);

describe('TCB baseline', () => {
  test('default: newest evaluation number public for at least 30 days; 0 days = newest', () => {
    assert.equal(baselineEvaluationNumber(DEFAULT_BASELINE, 'sgx', '00906ED50000', published, new Date('2025-06-01T00:00:00Z')), 18);
    assert.equal(baselineEvaluationNumber(DEFAULT_BASELINE, 'sgx', undefined, published, new Date('2025-06-13T00:00:00Z')), 19);
    assert.equal(baselineEvaluationNumber({ ...DEFAULT_BASELINE, minAgeDays: 0 }, 'sgx', undefined, published, new Date('2025-05-14T00:00:00Z')), 19);
    assert.equal(baselineEvaluationNumber(DEFAULT_BASELINE, 'sgx', undefined, new Map(), new Date()), undefined);
  });

  test('an FMSPC pin wins over a TEE pin, which wins over the age rule', () => {
    const p = parseBaselinePolicy({ minAgeDays: 0, pinned: { sgx: 17, 'sgx:00906ed50000': 18 } });
    assert.equal(baselineEvaluationNumber(p, 'sgx', '00906ED50000', published, new Date()), 18);
    assert.equal(baselineEvaluationNumber(p, 'sgx', '00A067110000', published, new Date()), 17);
    assert.equal(baselineEvaluationNumber(p, 'tdx', '00806F050000', published, new Date()), 19);
  });

  test('the served version is the newest cached one not above the target', () => {
    assert.equal(chooseEvaluationNumber([17, 19], 18), 17);
    assert.equal(chooseEvaluationNumber([17, 19], 19), 19);
    assert.equal(chooseEvaluationNumber([19], 18), undefined);
  });

  test('customParameter and update select versions; both together are rejected', () => {
    assert.deepEqual(parseCustomParameter(Buffer.from('tcbEvaluationDataNumber=14;region=us central').toString('base64')), { tcbEvaluationDataNumber: 14 });
    assert.throws(() => parseCustomParameter(Buffer.from('tcbEvaluationDataNum=11').toString('base64')), (e) => isConclaveError(e, 'request.invalid'));
    assert.deepEqual(selectorOf({}), { type: 'baseline' });
    assert.deepEqual(selectorOf({ update: 'early' }), { type: 'early' });
    assert.deepEqual(selectorOf({ tcbEvaluationDataNumber: '17' }), { type: 'number', number: 17 });
    assert.throws(() => selectorOf({ update: 'early', tcbEvaluationDataNumber: '17' }), (e) => isConclaveError(e, 'request.invalid'));
    assert.throws(() => selectorOf({ update: 'sometimes' }), (e) => isConclaveError(e, 'request.invalid'));
  });

  test('AMD minimum TCB per product', () => {
    const p = parseBaselinePolicy({ amdMinimumTcb: { Milan: { bootloader: 3, tee: 0, snp: 8, microcode: 115 } } });
    assert.equal(meetsAmdMinimum(p, 'Milan', { bootloader: 3, tee: 0, snp: 8, microcode: 115 }), true);
    assert.equal(meetsAmdMinimum(p, 'Milan', { bootloader: 3, tee: 0, snp: 7, microcode: 115 }), false);
    assert.equal(meetsAmdMinimum(p, 'Genoa', { bootloader: 0, tee: 0, snp: 0, microcode: 0 }), true);
    assert.throws(() => parseBaselinePolicy({ pinned: { sgx: -1 } }), (e) => isConclaveError(e, 'request.invalid'));
  });
});
