import { sha256Hex } from '../../core/bytes.js';
import { BoundedMap } from '../../core/bounded-map.js';
import type { Certificate } from '../../core/x509.js';
import { RecentBytes } from './recent-bytes.js';

/**
 * Memory of facts already verified, keyed by the SHA-256 of the bytes they were verified from (and of the
 * trust anchor), so a repeated collateral set or PCK chain is not re-parsed or re-verified. Only
 * time-independent facts are kept (signatures, chains, parsed JSON); validity windows, revocation lookups
 * and every per-quote check (QE report signature, quote signature, attestation key binding, TCB match)
 * run on each call. Pass one instance to `verifyQuote` through its `cache` option; there is no global.
 */
export class VerifierCache {
  readonly maxEntries: number;
  readonly #maps = new Map<string, Map<string, unknown>>();
  readonly #rootIds = new WeakMap<Certificate, string>();
  readonly #recentIds = new RecentBytes<string>();
  hits = 0;
  misses = 0;

  constructor(opts: { maxEntries?: number } = {}) {
    this.maxEntries = opts.maxEntries ?? 1024;
  }

  /** The content id of a trust anchor (SHA-256 of its DER), memoised per parsed certificate. */
  rootId(root: Certificate): string {
    let id = this.#rootIds.get(root);
    if (id === undefined) {
      id = sha256Hex(root.der);
      this.#rootIds.set(root, id);
    }
    return id;
  }

  /**
   * The content id of a byte string (SHA-256, hex), for the memo keys: the ids of the last few distinct
   * strings are remembered under private copies and reused only for exactly the same bytes (memcmp of a
   * 4 KB PCK chain instead of its SHA-256).
   */
  contentId(bytes: Uint8Array): string {
    let id = this.#recentIds.get(bytes);
    if (id === undefined) {
      id = sha256Hex(bytes);
      this.#recentIds.set(bytes, id);
    }
    return id;
  }

  /** Returns the cached value of `kind`/`key`, or computes, stores and returns it (failures are not cached). */
  memo<T>(kind: 'collateral' | 'pckChain' | 'attestationKey', key: string, compute: () => T): T {
    let map = this.#maps.get(kind);
    if (!map) {
      map = new BoundedMap(this.maxEntries);
      this.#maps.set(kind, map);
    }
    if (map.has(key)) {
      this.hits++;
      return map.get(key) as T;
    }
    this.misses++;
    const value = compute();
    map.set(key, value);
    return value;
  }

  clear(): void {
    this.#maps.clear();
    this.#recentIds.clear();
    this.hits = 0;
    this.misses = 0;
  }
}

