/**
 * Values computed from byte strings, remembered for the last few distinct byte strings seen, each under a
 * private copy of its bytes: a lookup compares the bytes in full with those copies (memcmp), so a value is
 * only ever returned for exactly the bytes it was computed from. For inputs that repeat request after
 * request (a platform's PCK certificate chain, in every quote it sends), where hashing or re-encoding
 * them to look a value up costs more than comparing them.
 */
export class RecentBytes<V> {
  readonly #entries: { readonly copy: Buffer; readonly value: V }[] = [];
  readonly capacity: number;

  constructor(capacity = 8) {
    this.capacity = capacity;
  }

  /** The value remembered for these exact bytes, or undefined. */
  get(bytes: Uint8Array): V | undefined {
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.copy.byteLength === bytes.byteLength && e.copy.equals(bytes)) {
        if (i > 0) {
          entries.splice(i, 1);
          entries.unshift(e);
        }
        return e.value;
      }
    }
    return undefined;
  }

  /** Remembers `value` for a copy of `bytes` (the least recently used entry makes room). */
  set(bytes: Uint8Array, value: V): void {
    this.#entries.unshift({ copy: Buffer.from(bytes), value });
    if (this.#entries.length > this.capacity) this.#entries.pop();
  }

  clear(): void {
    this.#entries.length = 0;
  }
}
