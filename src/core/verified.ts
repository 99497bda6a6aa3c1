declare const verified: unique symbol;

/**
 * A value that a `verify*` function has checked (signatures, chains, revocation, freshness).
 * Only `verify*` functions construct it; token issuance and key release accept only verified input,
 * so skipping verification is a type error rather than a review finding.
 */
export type Verified<T> = T & { readonly [verified]: true };

/** For `verify*` functions only: marks a checked value as verified. */
export function markVerified<T>(value: T): Verified<T> {
  return value as Verified<T>;
}
