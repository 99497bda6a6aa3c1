import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bucketize, collateralGroupOf, failedClauses, groupCollateral, routeOf, searchAudit, stepOfError, stepStates, tcbStatusCounts, type TraceNode } from './model.js';

describe('console model', () => {
  test('routeOf maps a location hash to its page, and a malformed %-escape to the page with the segment as written', () => {
    assert.deepEqual(routeOf(''), []);
    assert.deepEqual(routeOf('#/keys/app-key'), ['keys', 'app-key']);
    assert.deepEqual(routeOf('#keys/a%20b'), ['keys', 'a b']);
    assert.deepEqual(routeOf('#/code=abc'), ['overview']);
    // decodeURIComponent throws URIError on these: the console's root component would fail to render.
    assert.deepEqual(routeOf('#/keys/%'), ['keys', '%']);
    assert.deepEqual(routeOf('#/keys/%E0%A4%A'), ['keys', '%E0%A4%A']);
  });

  test('bucketize counts events per interval and series, dropping those outside the window', () => {
    const now = new Date('2026-01-01T10:30:00Z');
    const at = (iso: string, series: number) => ({ time: new Date(iso), series });
    const b = bucketize([at('2026-01-01T10:05:00Z', 0), at('2026-01-01T10:59:00Z', 1), at('2026-01-01T09:00:00Z', 0), at('2025-12-30T00:00:00Z', 0)], now, 3_600_000, 2, 2);
    assert.deepEqual(
      b.map((x) => [x.start.toISOString(), x.values]),
      [
        ['2026-01-01T09:00:00.000Z', [1, 0]],
        ['2026-01-01T10:00:00.000Z', [1, 1]],
      ],
    );
  });

  test('each error code stops at its verification step', () => {
    const cases: [string, number][] = [
      ['quote.truncated', 0],
      ['snp.malformed', 0],
      ['request.invalid', 0],
      ['quote.signature_invalid', 1],
      ['evidence.untrusted_root', 1],
      ['cert.expired', 1],
      ['snp.chain_invalid', 1],
      ['collateral.expired', 2],
      ['quote.tcb_level_not_found', 2],
      // A quote verified at a TCB Intel revoked: its signatures and chain verified; the TCB level stops it (aec6d26).
      ['quote.tcb_revoked', 2],
      ['snp.tcb_mismatch', 2],
      ['attestation.runtime_data_mismatch', 3],
      ['snp.host_data_mismatch', 3],
      ['attestation.policy_denied', 4],
      ['attestation.policy_syntax', 4],
    ];
    for (const [code, step] of cases) assert.equal(stepOfError(code), step, code);
    assert.deepEqual(stepStates('attestation.policy_denied'), ['passed', 'passed', 'passed', 'passed', 'failed', 'not reached']);
    assert.deepEqual(stepStates(undefined), Array(6).fill('passed'));
  });

  test('failedClauses lists every unmet claim with its authority, and an authority that did not match', () => {
    const trace: TraceNode = {
      path: '',
      kind: 'policy',
      result: false,
      children: [
        { path: '/anyOf/0', kind: 'authority', result: false, authority: 'https://a', authorityMatched: true, children: [{ path: '/anyOf/0/allOf', kind: 'allOf', result: false, children: [{ path: '/anyOf/0/allOf/0', kind: 'claim', result: true, claim: 'x', condition: 'equals', expected: 1, actual: 1 }, { path: '/anyOf/0/allOf/1', kind: 'claim', result: false, claim: 'm', condition: 'equals', expected: 'aa', actual: 'bb' }] }] },
        { path: '/anyOf/1', kind: 'authority', result: false, authority: 'https://b', authorityMatched: false },
      ],
    };
    assert.deepEqual(failedClauses(trace, 'https://a'), [
      { path: '/anyOf/0/allOf/1', authority: 'https://a', claim: 'm', condition: 'equals', expected: 'aa', actual: 'bb' },
      { path: '/anyOf/1', authority: 'https://b', claim: 'iss', condition: 'authority', expected: 'https://b', actual: 'https://a' },
    ]);
  });

  test('collateral groups: per FMSPC, per AMD product, then what all platforms share', () => {
    assert.equal(collateralGroupOf('sgx/v4/tcb/00906ed50000'), 'Intel FMSPC 00906ED50000');
    assert.equal(collateralGroupOf('amd/vcek/Genoa/abc/def'), 'AMD Genoa');
    assert.equal(collateralGroupOf('sgx/pckcrl/processor'), 'Intel, all platforms');
    assert.deepEqual(
      groupCollateral([{ scope: 'sgx/rootcacrl' }, { scope: 'amd/vcek_chain/Milan' }, { scope: 'tdx/v4/tcb/B0C06F000000' }]).map((g) => g.title),
      ['Intel FMSPC B0C06F000000', 'AMD Milan', 'Intel, all platforms'],
    );
  });

  test('TCB statuses are counted best first; audit search matches every word', () => {
    assert.deepEqual(tcbStatusCounts(['OutOfDate', 'UpToDate', 'UpToDate', 'Weird']), [
      { label: 'UpToDate', count: 2, tone: 'ok' },
      { label: 'OutOfDate', count: 1, tone: 'bad' },
      { label: 'Weird', count: 1, tone: 'info' },
    ]);
    const e = [{ record: { result: 'denied', key: 'app-key', operation: 'release' } }, { record: { result: 'success', key: 'app-key', operation: 'create' } }];
    assert.equal(searchAudit(e, 'APP release', '').length, 1);
    assert.equal(searchAudit(e, 'app-key', 'success').length, 1);
    assert.equal(searchAudit(e, '', '').length, 2);
  });
});
