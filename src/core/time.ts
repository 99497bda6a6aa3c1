import { fail } from './errors.js';

/**
 * The milliseconds of a verification time, refusing an invalid Date (`new Date(NaN)`, `new Date('x')`)
 * with `request.invalid`. Every comparison with NaN is false, so a validity window checked as
 * `at < notBefore || at > notAfter` would never refuse it: an expired or not-yet-valid certificate,
 * CRL, OCSP response, collateral item or token would pass. Each verifier calls this before its first
 * window check.
 */
export function verificationTime(at: Date, what = 'verification time `at`'): number {
  const t = at instanceof Date ? at.getTime() : Number.NaN;
  if (!Number.isFinite(t)) throw fail('request.invalid', `${what} is not a valid date`);
  return t;
}
