/**
 * The Merkle tree of RFC 9162 §2.1 (the hashing of RFC 6962): leaf hashes SHA-256(0x00 ‖ entry),
 * interior nodes SHA-256(0x01 ‖ left ‖ right), the tree over n leaves split at the largest power of two
 * below n. Proof generation (§2.1.3.1, §2.1.4.1) is expressed as the list of subtree ranges whose hashes
 * make the proof, so a store can serve it from the perfect subtrees it keeps; verification follows the
 * algorithms of §2.1.3.2 and §2.1.4.2.
 *
 * Sizes and indices are JavaScript safe integers: the arithmetic here never uses the 32-bit bitwise
 * operators.
 */
import { createHash, hash } from 'node:crypto';

export const HASH_SIZE = 32;

/** MTH({}) = SHA-256() (§2.1.1). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// The prefixed input is written into one buffer and hashed by the one-shot `crypto.hash` (no Hash
// object per call: a node hash 1.6 → 1.0 µs, one per leaf on average plus a batch's root).

export function hashLeaf(entry: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + entry.length);
  input[0] = 0;
  input.set(entry, 1);
  return hash('sha256', input, 'buffer');
}

/** {@link hashLeaf} of a text's UTF-8 bytes, encoded straight into the hashed buffer. */
export function hashLeafText(entry: string): Buffer {
  const input = Buffer.allocUnsafe(1 + Buffer.byteLength(entry, 'utf8'));
  input[0] = 0;
  input.write(entry, 1, 'utf8');
  return hash('sha256', input, 'buffer');
}

export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = 1;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return hash('sha256', input, 'buffer');
}

/** The largest power of two strictly below `n` (n ≥ 2): the split point k of §2.1.1. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isPowerOfTwo = (n: number) => n >= 1 && splitPoint(n + 1) === n;
const half = (n: number) => Math.floor(n / 2);
const odd = (n: number) => n % 2 === 1;

/** A perfect subtree: the 2^level leaves from index·2^level. Level 0 is a leaf. */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A contiguous run of leaves [start, end) whose Merkle tree hash is one element of a proof. */
export interface LeafRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The perfect subtrees that make up [start, end), largest first. Every range a proof of §2.1 names is
 * a subtree of the tree (its start is a multiple of the smallest power of two ≥ its length), so its
 * hash is these subtrees folded from the right ({@link foldRange}).
 */
export function perfectSubtrees(range: LeafRange): NodeId[] {
  const out: NodeId[] = [];
  let at = range.start;
  while (at < range.end) {
    let size = 1;
    let level = 0;
    while (size * 2 <= range.end - at && at % (size * 2) === 0) {
      size *= 2;
      level++;
    }
    out.push({ level, index: at / size });
    at += size;
  }
  return out;
}

/** MTH of a range from the hashes of its {@link perfectSubtrees}, in that order. */
export function foldRange(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return EMPTY_ROOT;
  let h: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i--) h = hashChildren(hashes[i]!, h);
  return h;
}

/** The ranges whose hashes form PATH(index, D[0:size]) (§2.1.3.1), leaf level first. */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) throw new RangeError(`no inclusion proof for leaf ${index} in a tree of ${size}`);
  const out: LeafRange[] = [];
  const path = (m: number, lo: number, hi: number): void => {
    if (hi - lo === 1) return;
    const k = splitPoint(hi - lo);
    if (m < k) {
      path(m, lo, lo + k);
      out.push({ start: lo + k, end: hi });
    } else {
      path(m - k, lo + k, hi);
      out.push({ start: lo, end: lo + k });
    }
  };
  path(index, 0, size);
  return out;
}

/** The ranges whose hashes form PROOF(from, D[0:to]) (§2.1.4.1), for 0 < from < to; empty when from = to. */
export function consistencyRanges(from: number, to: number): LeafRange[] {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || from > to) throw new RangeError(`no consistency proof from ${from} to ${to}`);
  const out: LeafRange[] = [];
  const subproof = (m: number, lo: number, hi: number, complete: boolean): void => {
    if (m === hi - lo) {
      if (!complete) out.push({ start: lo, end: hi });
      return;
    }
    const k = splitPoint(hi - lo);
    if (m <= k) {
      subproof(m, lo, lo + k, complete);
      out.push({ start: lo + k, end: hi });
    } else {
      subproof(m - k, lo + k, hi, false);
      out.push({ start: lo, end: lo + k });
    }
  };
  subproof(from, 0, to, true);
  return out;
}

/** Reads the hashes of perfect subtrees (leaf hashes at level 0); one entry per requested node, in order. */
export type NodeReader = (nodes: readonly NodeId[]) => Promise<Uint8Array[]>;

/** The hashes of `ranges`, reading every perfect subtree they need in one call. */
export async function hashRanges(ranges: readonly LeafRange[], read: NodeReader): Promise<Buffer[]> {
  const parts = ranges.map(perfectSubtrees);
  const hashes = await read(parts.flat());
  let at = 0;
  return parts.map((p) => {
    const slice = hashes.slice(at, at + p.length);
    at += p.length;
    return foldRange(slice);
  });
}

/** MTH(D[0:n]) of a list of leaf hashes, straight from the definition (for verification and tests). */
export function rootOf(leafHashes: readonly Uint8Array[]): Buffer {
  const range = new CompactRange();
  for (const h of leafHashes) range.append(h);
  return range.root();
}

/**
 * The right edge of a tree grown from leaf 0: the roots of the perfect subtrees of its size's binary
 * decomposition, largest first. Appending a leaf merges equal-sized subtrees and reports each perfect
 * node it completes, which is what a store keeps to serve proofs.
 */
export class CompactRange {
  #size: number;
  readonly #hashes: Buffer[];

  constructor(size = 0, hashes: readonly Uint8Array[] = []) {
    const want = perfectSubtrees({ start: 0, end: size }).length;
    if (hashes.length !== want) throw new RangeError(`a tree of ${size} leaves has ${want} edge subtrees, got ${hashes.length}`);
    this.#size = size;
    this.#hashes = hashes.map((h) => Buffer.from(h));
  }

  get size(): number {
    return this.#size;
  }

  /** The edge subtree hashes, largest first (those of `perfectSubtrees({start: 0, end: size})`). */
  get hashes(): readonly Buffer[] {
    return this.#hashes;
  }

  /** Appends one leaf hash; `onNode` sees every perfect interior node (level ≥ 1) this completes. */
  append(leafHash: Uint8Array, onNode?: (node: NodeId, hash: Buffer) => void): void {
    let h: Buffer = Buffer.from(leafHash);
    let index = this.#size;
    let level = 0;
    for (let s = this.#size; odd(s); s = half(s)) {
      h = hashChildren(this.#hashes.pop()!, h);
      level++;
      index = half(index);
      onNode?.({ level, index }, h);
    }
    this.#hashes.push(h);
    this.#size++;
  }

  root(): Buffer {
    return foldRange(this.#hashes);
  }

  clone(): CompactRange {
    return new CompactRange(this.#size, this.#hashes);
  }
}

const sameHash = (a: Uint8Array, b: Uint8Array) => a.length === HASH_SIZE && b.length === HASH_SIZE && Buffer.from(a).equals(Buffer.from(b));

/**
 * §2.1.3.2: whether `proof` proves that the leaf with hash `leafHash` is at `index` in the tree of
 * `size` leaves whose root is `root`. Every hash must be 32 bytes; a proof with extra or missing
 * elements fails.
 */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (leafHash.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = hashChildren(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(r, root);
}

/**
 * §2.1.4.2: whether `proof` proves that the tree of `size2` leaves with root `root2` extends the tree of
 * `size1` leaves with root `root1`. Equal sizes need an empty proof and equal roots; a consistency
 * proof from the empty tree is meaningless and fails (any tree extends it).
 */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size2 < size1) return false;
  if (proof.some((p) => p.length !== HASH_SIZE)) return false;
  if (size1 === size2) return proof.length === 0 && Buffer.from(root1).equals(Buffer.from(root2));
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(fr, root1) && sameHash(sr, root2);
}
