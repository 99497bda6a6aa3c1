import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { readFixtureJson } from '../../test/fixtures.js';
import {
  CompactRange,
  consistencyRanges,
  EMPTY_ROOT,
  hashChildren,
  hashLeaf,
  hashLeafText,
  hashRanges,
  inclusionRanges,
  type NodeId,
  rootOf,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

interface InclusionCase {
  file: string;
  leafIdx: number;
  treeSize: number;
  root: string | null;
  leafHash: string | null;
  proof: string[] | null;
  wantErr: boolean;
}
interface ConsistencyCase {
  file: string;
  size1: number;
  size2: number;
  root1: string | null;
  root2: string | null;
  proof: string[] | null;
  wantErr: boolean;
}

const vectors = readFixtureJson('tlog', 'transparency-dev-proofs.json') as { inclusion: InclusionCase[]; consistency: ConsistencyCase[] };
const reference = readFixtureJson('tlog', 'rfc6962-reference-tree.json') as { leafInputs: string[]; nodeHashes: string[][]; rootHashes: string[] };
const b64 = (s: string | null) => Buffer.from(s ?? '', 'base64');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** MTH straight from the recursive definition of RFC 9162 §2.1.1, independent of the code under test. */
function mth(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return hashChildren(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** A node reader over an in-memory list of leaf hashes (the store's job in production). */
const readerOf =
  (leaves: readonly Buffer[]) =>
  async (nodes: readonly NodeId[]): Promise<Buffer[]> =>
    nodes.map((n) => mth(leaves.slice(n.index * 2 ** n.level, (n.index + 1) * 2 ** n.level)));

const leafHashes = (n: number) => Array.from({ length: n }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));

describe('RFC 9162 Merkle tree: the RFC 6962 reference tree (transparency-dev/merkle testonly data)', () => {
  const leaves = reference.leafInputs.map((h) => hashLeaf(Buffer.from(h, 'hex')));

  test('leaf hashes and every perfect subtree hash', () => {
    assert.deepEqual(leaves.map(hex), reference.nodeHashes[0]);
    const nodes: Record<number, string[]> = {};
    const range = new CompactRange();
    for (const l of leaves) range.append(l, (n, h) => void (nodes[n.level] ??= []).push(hex(h)));
    assert.deepEqual([reference.nodeHashes[0], nodes[1], nodes[2], nodes[3]], reference.nodeHashes);
  });

  test('the root of every prefix, including the empty tree', () => {
    for (let n = 0; n <= leaves.length; n++) assert.equal(hex(rootOf(leaves.slice(0, n))), reference.rootHashes[n], `size ${n}`);
  });
});

describe('RFC 9162 proof verification: transparency-dev/merkle testdata (inclusion and consistency, valid and mutated)', () => {
  test(`${vectors.inclusion.length} inclusion cases`, () => {
    assert.ok(vectors.inclusion.length > 90);
    for (const c of vectors.inclusion) {
      const ok = verifyInclusion(b64(c.leafHash), c.leafIdx, c.treeSize, (c.proof ?? []).map(b64), b64(c.root));
      assert.equal(ok, !c.wantErr, c.file);
    }
  });

  test(`${vectors.consistency.length} consistency cases`, () => {
    assert.ok(vectors.consistency.length > 90);
    for (const c of vectors.consistency) {
      const ok = verifyConsistency(c.size1, c.size2, b64(c.root1), b64(c.root2), (c.proof ?? []).map(b64));
      assert.equal(ok, !c.wantErr, c.file);
    }
  });

  test('the proofs generated for the reference tree are the published ones', async () => {
    const leaves = reference.leafInputs.map((h) => hashLeaf(Buffer.from(h, 'hex')));
    const read = readerOf(leaves);
    for (const c of vectors.inclusion.filter((v) => v.file.endsWith('happy-path.json'))) {
      const proof = await hashRanges(inclusionRanges(c.leafIdx, c.treeSize), read);
      assert.deepEqual(proof.map((p) => p.toString('base64')), c.proof ?? [], c.file);
    }
    for (const c of vectors.consistency.filter((v) => v.file.endsWith('happy-path.json') && v.size1 > 0)) {
      const proof = await hashRanges(consistencyRanges(c.size1, c.size2), read);
      assert.deepEqual(proof.map((p) => p.toString('base64')), c.proof ?? [], c.file);
    }
  });
});

describe('RFC 9162 Merkle tree: properties over random trees and sizes', () => {
  test('the compact range computes the recursive MTH and completes exactly the perfect nodes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), (n) => {
        const leaves = leafHashes(n);
        const range = new CompactRange();
        let nodes = 0;
        for (const l of leaves) range.append(l, (id, h) => {
          nodes++;
          assert.equal(hex(h), hex(mth(leaves.slice(id.index * 2 ** id.level, (id.index + 1) * 2 ** id.level))));
        });
        assert.equal(hex(range.root()), hex(mth(leaves)));
        // A tree of n leaves has n − popcount(n) perfect interior nodes.
        assert.equal(nodes, n - [...n.toString(2)].filter((c) => c === '1').length);
        const resumed = new CompactRange(range.size, range.hashes);
        assert.equal(hex(resumed.root()), hex(range.root()));
      }),
      { numRuns: 60 },
    );
  });

  test('every inclusion proof verifies, and fails for another leaf, index or root, or a changed, extended or shortened path', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 200 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 0, max: 31 }))), async ([n, m, bit]) => {
        const leaves = leafHashes(n);
        const root = mth(leaves);
        const proof = await hashRanges(inclusionRanges(m, n), readerOf(leaves));
        assert.ok(verifyInclusion(leaves[m]!, m, n, proof, root));
        assert.ok(!verifyInclusion(hashLeaf(Buffer.from('other')), m, n, proof, root));
        if (n > 1) assert.ok(!verifyInclusion(leaves[m]!, (m + 1) % n, n, proof, root));
        assert.ok(!verifyInclusion(leaves[m]!, m, n, [...proof, root], root));
        if (proof.length > 0) {
          const bad = proof.map((p) => Buffer.from(p));
          bad[bit % bad.length]![bit] ^= 1;
          assert.ok(!verifyInclusion(leaves[m]!, m, n, bad, root));
          assert.ok(!verifyInclusion(leaves[m]!, m, n, proof.slice(1), root));
        }
      }),
      { numRuns: 150 },
    );
  });

  test('every consistency proof verifies, and fails against a forked or truncated history', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 200 }).chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n), fc.integer({ min: 0, max: 31 }))), async ([m, n, bit]) => {
        const leaves = leafHashes(n);
        const root1 = mth(leaves.slice(0, m));
        const root2 = mth(leaves);
        const proof = await hashRanges(consistencyRanges(m, n), readerOf(leaves));
        assert.ok(verifyConsistency(m, n, root1, root2, proof));
        // A fork: the same sizes, one earlier leaf changed.
        const forked = [...leaves];
        forked[bit % m] = hashLeaf(Buffer.from('forked'));
        assert.ok(!verifyConsistency(m, n, root1, mth(forked), proof));
        if (m < n) {
          assert.ok(!verifyConsistency(m, n, mth(forked.slice(0, m)), root2, proof));
          assert.ok(!verifyConsistency(m, n, root1, root2, proof.slice(0, -1)));
          const bad = proof.map((p) => Buffer.from(p));
          bad[bit % bad.length]![bit] ^= 1;
          assert.ok(!verifyConsistency(m, n, root1, root2, bad));
        }
      }),
      { numRuns: 150 },
    );
  });

  test('sizes beyond 2^32 use no 32-bit arithmetic', () => {
    const n = 2 ** 40 + 3;
    assert.equal(splitPoint(n), 2 ** 40);
    const ranges = inclusionRanges(2 ** 40 + 1, n);
    assert.deepEqual(ranges.at(-1), { start: 0, end: 2 ** 40 });
    assert.deepEqual(consistencyRanges(2 ** 33, n), [{ start: 2 ** 33, end: 2 ** 34 }, ...Array.from({ length: 6 }, (_, i) => ({ start: 2 ** (34 + i), end: 2 ** (35 + i) })), { start: 2 ** 40, end: n }]);
  });
});

test('leaf and node hashes are SHA-256 of the RFC 9162 prefixed input, the text form over its UTF-8 bytes', () => {
  const sha = (...parts: Uint8Array[]) => {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const texts = ['', 'a', '{"a":1}', 'é😀\u2028', '\ud800 lone \udfff', 'x'.repeat(5000), '\u0000'];
  for (const t of texts) {
    const bytes = Buffer.from(t, 'utf8');
    assert.deepEqual(hashLeafText(t), sha(Buffer.of(0), bytes), JSON.stringify(t.slice(0, 20)));
    assert.deepEqual(hashLeaf(bytes), sha(Buffer.of(0), bytes));
  }
  const a = sha(Buffer.from('a'));
  const b = sha(Buffer.from('b'));
  assert.deepEqual(hashChildren(a, b), sha(Buffer.of(1), a, b));
  assert.notDeepEqual(hashChildren(a, b), hashChildren(b, a));
  // A view into a larger buffer hashes only its own bytes.
  const big = Buffer.concat([Buffer.alloc(7, 9), a, b]);
  assert.deepEqual(hashChildren(big.subarray(7, 39), big.subarray(39)), sha(Buffer.of(1), a, b));
  assert.deepEqual(hashLeaf(big.subarray(7, 39)), sha(Buffer.of(0), a));
});
