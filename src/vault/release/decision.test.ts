/**
 * Release decides on a verified token only. The `@ts-expect-error` lines are checked by `tsc` (npm run
 * lint): if one compiled, the directive would be unused and the type check would fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideRelease, wrappingKeyOf } from './decision.js';
import type { ReleasePolicy } from './policy.js';
import type { TargetToken } from './target-token.js';

/** Never called: the type checker reads it. */
export function unverifiedTokensDoNotCompile(policy: ReleasePolicy, decoded: TargetToken) {
  // @ts-expect-error a decoded but unverified token cannot be judged against a release policy
  decideRelease(policy, decoded);
  // @ts-expect-error nor yield the key a release is wrapped to
  wrappingKeyOf(decoded);
}

test('the unverified-token cases above are type errors (checked by tsc, not at run time)', () => {
  assert.equal(typeof unverifiedTokensDoNotCompile, 'function');
});
