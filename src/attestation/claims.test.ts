import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import { buildCollateral, buildSignedQuote, createDcapHierarchy } from '../evidence/dcap/testing.js';
import { verifyQuote } from '../evidence/dcap/index.js';
import { collateralProvenance, incomingClaims, sgxClaims, tdxClaims } from './claims.js';

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

test('the incoming claims a policy sees: scalars, arrays of scalars item by item, objects as JSON text, the isolation TEE by dot path', () => {
  const claims = {
    s: 'x',
    n: 0,
    b: false,
    gone: undefined,
    none: null,
    list: ['a', 2, true],
    mixed: ['a', { b: 1 }],
    obj: { k: [1, 2], v: 'w' },
    'x-ms-isolation-tee': { 'x-ms-attestation-type': 'sevsnpvm', svn: 3, o: { a: null }, absent: null },
  };
  assert.deepEqual(incomingClaims(claims), [
    { type: 's', value: 'x' },
    { type: 'n', value: 0 },
    { type: 'b', value: false },
    { type: 'list', value: 'a' },
    { type: 'list', value: 2 },
    { type: 'list', value: true },
    { type: 'mixed', value: '["a",{"b":1}]' },
    { type: 'obj', value: '{"k":[1,2],"v":"w"}' },
    { type: 'x-ms-isolation-tee', value: JSON.stringify(claims['x-ms-isolation-tee']) },
    { type: 'x-ms-isolation-tee.x-ms-attestation-type', value: 'sevsnpvm' },
    { type: 'x-ms-isolation-tee.svn', value: 3 },
    { type: 'x-ms-isolation-tee.o', value: '{"a":null}' },
  ]);
  // An array in the isolation TEE's place is not a set of nested claims.
  assert.deepEqual(incomingClaims({ 'x-ms-isolation-tee': ['a'] }), [{ type: 'x-ms-isolation-tee', value: 'a' }]);
});

test('a token verified with collateral past its nextUpdate (azure freshness) names the expired items; fresh collateral adds nothing', () => {
  // docs/collateral.md: under the default freshness, collateral past nextUpdate "is reported in the token". A
  // stale PCK CRL cannot vouch for revocations after it: the relying party must be able to tell.
  const h = createDcapHierarchy();
  const at = new Date('2025-01-01T00:00:00Z');
  const opts = { at, freshness: 'azure' as const, trustAnchors: { intelRoot: h.root.certificate } };
  const stale = { issueDate: new Date('2024-01-01T00:00:00Z'), nextUpdate: new Date('2024-02-01T00:00:00Z') };
  for (const tee of ['sgx', 'tdx'] as const) {
    const quote = buildSignedQuote(h, { tee });
    const claimsFor = (collateral: QuoteCollateral) => {
      const r = verifyQuote(quote, collateral, opts);
      return r.tee === 'sgx' ? sgxClaims(r, quote, collateral) : tdxClaims(r, quote, collateral);
    };
    const old = buildCollateral(h, { tee, ...stale });
    assert.deepEqual(claimsFor(old)['x-conclave-collateral-expired'], ['tcbInfo', 'qeIdentity'], tee);
    const fresh = buildCollateral(h, { tee });
    assert.equal('x-conclave-collateral-expired' in claimsFor(fresh), false, tee);
  }
});
