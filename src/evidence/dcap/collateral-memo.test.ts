import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { QuoteCollateral } from './collateral.js';
import { CollateralMemo } from './collateral-memo.js';

function collateral(): QuoteCollateral {
  const r = (n: number) => new Uint8Array(randomBytes(n));
  return {
    pckCrlIssuerChain: [r(30), r(20)],
    rootCaCrl: r(10),
    pckCrl: r(40),
    tcbInfoIssuerChain: [r(31), r(21)],
    tcbInfo: r(90),
    tcbInfoSignature: r(64),
    qeIdentityIssuerChain: [r(32)],
    qeIdentity: r(50),
    qeIdentitySignature: r(64),
  };
}

test('a collateral set is computed once while its bytes stay the same, again after any byte changes in place', () => {
  const memo = new CollateralMemo<number>();
  let calls = 0;
  const compute = () => ++calls;
  const c = collateral();
  assert.equal(memo.get(c, compute), 1);
  assert.equal(memo.get(c, compute), 1);
  // Every item, chains included, is compared: a flipped byte anywhere is a new computation.
  const items = [...c.pckCrlIssuerChain, ...c.tcbInfoIssuerChain, ...c.qeIdentityIssuerChain, c.rootCaCrl, c.pckCrl, c.tcbInfo, c.tcbInfoSignature, c.qeIdentity, c.qeIdentitySignature];
  let expected = 1;
  for (const item of items) {
    item[item.byteLength - 1]! ^= 0x01;
    assert.equal(memo.get(c, compute), ++expected);
    assert.equal(memo.get(c, compute), expected);
  }
  // A chain that gains a certificate (same object) is another set.
  (c.tcbInfoIssuerChain as Uint8Array[]).push(new Uint8Array(3));
  assert.equal(memo.get(c, compute), ++expected);
  // Another object with the same bytes is computed on its own.
  assert.equal(memo.get({ ...c }, compute), ++expected);
});
