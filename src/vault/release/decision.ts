/**
 * Release decides on a verified token only: the policy is evaluated over, and the wrapping key taken
 * from, a `Verified<TargetToken>` (verifyTargetToken), so the type system rejects a release over claims
 * nobody checked. `evaluateReleasePolicy` and `findWrappingKey` stay for dry runs over given claims
 * (`conclave policy check`) and tests.
 */
import type { Verified } from '../../core/verified.js';
import { type WrappingKey, findWrappingKey } from './key-transfer.js';
import { type ReleaseDecision, type ReleasePolicy, evaluateReleasePolicy } from './policy.js';
import type { TargetToken } from './target-token.js';

/** The policy's decision for a verified target token (its claims, its issuer). */
export function decideRelease(policy: ReleasePolicy, token: Verified<TargetToken>): ReleaseDecision {
  return evaluateReleasePolicy(policy, token.claims, token.issuer);
}

/** The TEE's wrapping key from a verified target token (`x-ms-runtime.keys`, RSA ≥ 2048). */
export function wrappingKeyOf(token: Verified<TargetToken>): WrappingKey {
  return findWrappingKey(token.claims);
}
