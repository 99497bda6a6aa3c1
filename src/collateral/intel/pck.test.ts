import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type PckCertEntry, isRealPpid, parsePckCerts, pckCertScope, platformKey, selectPckCert } from './pck.js';

const entry = (comps: number[], pcesvn: number): PckCertEntry => ({ components: [...comps, ...Array(16 - comps.length).fill(0)], pcesvn, tcbm: '00'.repeat(18), cert: `cert ${comps.join('.')}/${pcesvn}` });
const raw = (comps: number[], pcesvn: number) => ({ cpusvn: Buffer.from([...comps, ...Array(16 - comps.length).fill(0)]).toString('hex'), pcesvn });

describe('PCK platform identity', () => {
  test('an all-zero or empty PPID is no PPID; a real one is', () => {
    assert.equal(isRealPpid('0'.repeat(768)), false);
    assert.equal(isRealPpid(''), false);
    assert.equal(isRealPpid(undefined), false);
    assert.equal(isRealPpid(`${'0'.repeat(767)}1`), true);
  });

  test('QE ID keys quote-time lookups; a real PPID with it keeps that answer apart; PPID alone for PCS callers', () => {
    assert.equal(platformKey({ pceId: '0000', qeId: 'AA' }), 'qe:AA');
    assert.equal(platformKey({ pceId: '0000', qeId: 'AA', encPpid: 'B1' }), 'qe:AA/ppid:B1');
    assert.equal(platformKey({ pceId: '0000', encPpid: 'B1' }), 'ppid:B1');
    assert.throws(() => platformKey({ pceId: '0000' }), { code: 'request.invalid' });
    assert.notEqual(pckCertScope({ pceId: '0000', qeId: 'AA' }, '00', '0D00'), pckCertScope({ pceId: '0000', qeId: 'BB' }, '00', '0D00'));
  });
});

describe('PCK certificate selection (PCKCertSelection semantics)', () => {
  const levels = [
    { components: [5, 5], pcesvn: 13 },
    { components: [3, 3], pcesvn: 11 },
    { components: [1, 1], pcesvn: 7 },
  ];
  const certs = [entry([1, 1], 7), entry([5, 5], 13), entry([3, 3], 11), entry([3, 3], 13)];

  test('the highest certificate the raw TCB reaches, in TCB info level order', () => {
    assert.equal(selectPckCert(raw([6, 6], 14), certs, levels), 1);
    assert.equal(selectPckCert(raw([4, 4], 13), certs, levels), 3);
    assert.equal(selectPckCert(raw([4, 4], 12), certs, levels), 2);
    assert.equal(selectPckCert(raw([2, 9], 7), certs, levels), 0);
  });

  test('no certificate at or below the raw TCB: none selected', () => {
    assert.equal(selectPckCert(raw([0, 9], 20), certs, levels), undefined);
    assert.equal(selectPckCert(raw([9, 9], 6), certs, levels), undefined);
  });

  test('"Not available" entries are never chosen; without TCB levels the highest reachable wins', () => {
    const withNa = [{ ...entry([5, 5], 13), cert: undefined }, entry([3, 3], 11)];
    assert.equal(selectPckCert(raw([6, 6], 14), withNa, levels), 1);
    assert.equal(selectPckCert(raw([6, 6], 14), certs), 1);
  });

  test('parsePckCerts reads PCS JSON and refuses malformed entries', () => {
    const tcb = Object.fromEntries([...Array.from({ length: 16 }, (_, i) => [`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`, i]), ['pcesvn', 13]]);
    const [e] = parsePckCerts([{ tcb, tcbm: 'ab'.repeat(18), cert: encodeURIComponent('-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n') }]);
    assert.equal(e!.components[15], 15);
    assert.equal(e!.tcbm, 'AB'.repeat(18));
    assert.match(e!.cert!, /^-----BEGIN CERTIFICATE-----\n/);
    assert.equal(parsePckCerts([{ tcb, tcbm: 'ab'.repeat(18), cert: 'Not available' }])[0]!.cert, undefined);
    assert.throws(() => parsePckCerts({}), { code: 'collateral.malformed' });
    assert.throws(() => parsePckCerts([{ tcb: { ...tcb, pcesvn: 70000 }, tcbm: 'ab'.repeat(18), cert: 'x' }]), { code: 'collateral.malformed' });
    assert.throws(() => parsePckCerts([{ tcb, tcbm: 'xyz', cert: 'x' }]), { code: 'collateral.malformed' });
  });
});
