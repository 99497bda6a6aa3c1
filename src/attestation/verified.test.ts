/**
 * Trust by type: claims building and token issuance accept only what a `verify*` function returned.
 * The `@ts-expect-error` lines are checked by `tsc` (npm run lint): if one of them compiled, the
 * directive would be unused and the type check would fail, so this file fails when the rule is lost.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { SgxQuoteVerificationResult } from '../evidence/dcap/result.js';
import type { SnpVerificationResult } from '../evidence/snp/verify.js';
import { type Claims, sgxClaims, snpClaims } from './claims.js';
import { type TokenSigner, issueToken } from './token.js';

/** Never called: the type checker reads it. */
export function unverifiedInputsDoNotCompile(parsed: SgxQuoteVerificationResult, report: SnpVerificationResult, collateral: QuoteCollateral, claims: Claims, signer: TokenSigner) {
  // @ts-expect-error a parsed, unverified quote result cannot become claims
  sgxClaims(parsed, new Uint8Array(), collateral);
  // @ts-expect-error nor can an unverified SNP report
  snpClaims(report, 'container');
  // @ts-expect-error a token is issued over claims that verification established, not any record
  void issueToken(claims, 'https://issuer', signer, { now: new Date(), lifetimeSeconds: 60 });
}

test('the unverified-input cases above are type errors (checked by tsc, not at run time)', () => {
  assert.equal(typeof unverifiedInputsDoNotCompile, 'function');
});
