/**
 * A Map that holds at most `max` entries: adding a new key to a full map first drops the oldest one
 * (insertion order). The bound every verifier memo uses, so no cache grows with what callers send.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly max: number;

  constructor(max: number) {
    super();
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`BoundedMap needs a positive bound, not ${max}`);
    this.max = max;
  }

  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}
