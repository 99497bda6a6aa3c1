import type { QuoteCollateral } from './collateral.js';

type Items = readonly (readonly Uint8Array[])[];

/** Every byte string of the set, as lists in a fixed order (the three chains, then each single item). */
function itemsOf(c: QuoteCollateral): Items {
  return [c.pckCrlIssuerChain, c.tcbInfoIssuerChain, c.qeIdentityIssuerChain, [c.rootCaCrl, c.pckCrl, c.tcbInfo, c.tcbInfoSignature, c.qeIdentity, c.qeIdentitySignature]];
}

function sameItems(copy: readonly (readonly Buffer[])[], items: Items): boolean {
  if (copy.length !== items.length) return false;
  for (let i = 0; i < copy.length; i++) {
    const a = copy[i]!;
    const b = items[i]!;
    if (a.length !== b.length) return false;
    for (let j = 0; j < a.length; j++) if (!a[j]!.equals(b[j]!)) return false;
  }
  return true;
}

/**
 * What is computed from a collateral set's bytes alone (its content digest, its provenance hashes),
 * remembered per collateral object and reused only while that object still holds exactly the bytes it
 * was computed from: a hit compares every item with a private copy taken then (memcmp, a fraction of
 * the SHA-256 it saves), so a value never outlives a change of the bytes, in place or not. The collateral
 * sources hand out the same object for as long as they serve a set (attestation/collateral-cache.ts).
 */
export class CollateralMemo<V> {
  readonly #entries = new WeakMap<QuoteCollateral, { readonly copy: readonly (readonly Buffer[])[]; readonly value: V }>();

  get(c: QuoteCollateral, compute: (c: QuoteCollateral) => V): V {
    const items = itemsOf(c);
    const hit = this.#entries.get(c);
    if (hit && sameItems(hit.copy, items)) return hit.value;
    const value = compute(c);
    this.#entries.set(c, { copy: items.map((list) => list.map((b) => Buffer.from(b))), value });
    return value;
  }
}
