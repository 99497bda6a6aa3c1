import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import { buildCollateral, buildSignedQuote, createDcapHierarchy, issueCrl } from '../evidence/dcap/testing.js';
import { VerifierCache, verifyQuote } from '../evidence/dcap/index.js';
import { isConclaveError } from '../core/errors.js';
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

test('a stale PCK CRL or root CA CRL alone is named in x-conclave-collateral-expired (azure) and is crl.expired (strict), cold and with a warm cache', () => {
  // Each CRL is an item of its own: the PCK CRL vouches for the PCK, the root CA CRL for the PCK CA and the TCB
  // signer. With the verified collateral cached (the service's warm mode), the windows are still read at each call.
  const h = createDcapHierarchy();
  const stale = [new Date('2024-01-01T00:00:00Z'), new Date('2024-02-01T00:00:00Z')] as const;
  const at = new Date('2025-01-01T00:00:00Z');
  for (const tee of ['sgx', 'tdx'] as const) {
    const quote = buildSignedQuote(h, { tee });
    for (const item of ['pckCrl', 'rootCaCrl'] as const) {
      const collateral = { ...buildCollateral(h, { tee }), [item]: issueCrl(item === 'pckCrl' ? h.pckCa : h.root, ...stale) };
      const cache = new VerifierCache();
      const claimsAt = (when: Date, c?: VerifierCache) => {
        const r = verifyQuote(quote, collateral, { at: when, freshness: 'azure', trustAnchors: { intelRoot: h.root.certificate }, ...(c ? { cache: c } : {}) });
        return r.tee === 'sgx' ? sgxClaims(r, quote, collateral) : tdxClaims(r, quote, collateral);
      };
      assert.deepEqual(claimsAt(at)['x-conclave-collateral-expired'], [item], `${tee} ${item} cold`);
      // Warm: verified first while the CRL was current (no claim), then after its nextUpdate (named).
      assert.equal('x-conclave-collateral-expired' in claimsAt(new Date('2024-01-15T00:00:00Z'), cache), false, `${tee} ${item} warm, current`);
      assert.deepEqual(claimsAt(at, cache)['x-conclave-collateral-expired'], [item], `${tee} ${item} warm, stale`);
      assert.throws(
        () => verifyQuote(quote, collateral, { at, trustAnchors: { intelRoot: h.root.certificate } }),
        (e) => isConclaveError(e, 'crl.expired'),
        `${tee} ${item} strict`,
      );
    }
  }
});
