import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import { collateralProvenance } from './claims.js';

const sha = (...parts: Uint8Array[]) => createHash('sha256').update(Buffer.concat(parts)).digest('hex');

test('x-ms-sgx-collateral: SHA-256 of each item, chains and CRL pair concatenated', () => {
  const r = (n: number) => new Uint8Array(randomBytes(n));
  const c: QuoteCollateral = {
    pckCrlIssuerChain: [r(300), r(200)],
    rootCaCrl: r(100),
    pckCrl: r(400),
    tcbInfoIssuerChain: [r(310), r(210)],
    tcbInfo: r(900),
    tcbInfoSignature: r(64),
    qeIdentityIssuerChain: [r(320)],
    qeIdentity: r(500),
    qeIdentitySignature: r(64),
  };
  const quote = r(1000);
  assert.deepEqual(collateralProvenance(quote, c), {
    qeidcertshash: sha(...c.qeIdentityIssuerChain),
    qeidcrlhash: sha(c.pckCrl, c.rootCaCrl),
    qeidhash: sha(c.qeIdentity),
    quotehash: sha(quote),
    tcbinfocertshash: sha(...c.tcbInfoIssuerChain),
    tcbinfocrlhash: sha(c.pckCrl, c.rootCaCrl),
    tcbinfohash: sha(c.tcbInfo),
  });
});

test('x-ms-sgx-collateral follows a collateral set changed in place (nothing stale is reused)', () => {
  const c: QuoteCollateral = {
    pckCrlIssuerChain: [new Uint8Array(3)],
    rootCaCrl: new Uint8Array([1]),
    pckCrl: new Uint8Array([2]),
    tcbInfoIssuerChain: [new Uint8Array([3])],
    tcbInfo: new Uint8Array([4, 4]),
    tcbInfoSignature: new Uint8Array(64),
    qeIdentityIssuerChain: [new Uint8Array([5])],
    qeIdentity: new Uint8Array([6]),
    qeIdentitySignature: new Uint8Array(64),
  };
  const quote = new Uint8Array(10);
  assert.equal(collateralProvenance(quote, c).tcbinfohash, sha(c.tcbInfo));
  (c.tcbInfo as Uint8Array)[1] = 9;
  (c.pckCrl as Uint8Array)[0] = 7;
  const after = collateralProvenance(quote, c);
  assert.equal(after.tcbinfohash, sha(Uint8Array.from([4, 9])));
  assert.equal(after.qeidcrlhash, sha(Uint8Array.from([7]), c.rootCaCrl));
  assert.equal(after.quotehash, sha(quote));
});
