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
