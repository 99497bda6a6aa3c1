/**
 * The attestation service's in-memory copy of Intel collateral (issue #23 item 2): it only moves forward
 * while it asks an upstream itself, and it follows the collateral cache behind it when that cache says it
 * changed (the cache is guarded on its own, and an operator's pinned TCB baseline may choose an older
 * evaluation number on purpose).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFixture, skipWithoutFixtures } from '../../test/fixtures.js';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import { QUOTE_COLLATERAL_TTL_MS, cachedQuoteCollateralSource } from './collateral-cache.js';

const skip = skipWithoutFixtures();

function set(evalNumber: number, issueDate: string): QuoteCollateral {
  const crl = new Uint8Array(readFixture('intel', 'tdx-v5-fmspc90C06F', 'pck_crl.der'));
  const member = new Uint8Array(Buffer.from(JSON.stringify({ tcbEvaluationDataNumber: evalNumber, issueDate })));
  return { pckCrl: crl, rootCaCrl: crl, tcbInfo: member, qeIdentity: member, pckCrlIssuerChain: [], tcbInfoIssuerChain: [], qeIdentityIssuerChain: [], tcbInfoSignature: new Uint8Array(), qeIdentitySignature: new Uint8Array() };
}

const req = { tee: 'tdx', fmspc: '90C06F000000', pceId: '0000', caType: 'platform' } as const;
const evalOf = (c: QuoteCollateral) => (JSON.parse(Buffer.from(c.tcbInfo).toString('utf8')) as { tcbEvaluationDataNumber: number }).tcbEvaluationDataNumber;

describe('cachedQuoteCollateralSource', { skip }, () => {
  test('an older set from its source is not taken while the newer one is in use', async () => {
    let t = 0;
    let next = set(18, '2026-02-18T00:00:00Z');
    const src = cachedQuoteCollateralSource(async () => next, () => t);
    assert.equal(evalOf(await src.getQuoteCollateral(req)), 18);
    next = set(17, '2026-01-01T00:00:00Z');
    t += QUOTE_COLLATERAL_TTL_MS + 1;
    assert.equal(evalOf(await src.getQuoteCollateral(req)), 18, 'the rolled-back answer is not used');
  });

  test('after clear() (the guarded cache behind changed, e.g. a baseline pinned to an older number) it follows the cache', async () => {
    let next = set(18, '2026-02-18T00:00:00Z');
    const src = cachedQuoteCollateralSource(async () => next, () => 0);
    assert.equal(evalOf(await src.getQuoteCollateral(req)), 18);
    next = set(17, '2026-01-01T00:00:00Z');
    src.clear();
    assert.equal(evalOf(await src.getQuoteCollateral(req)), 17, 'the pinned baseline is what attestation uses');
  });
});
