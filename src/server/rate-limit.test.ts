import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { createRateLimiter } from './rate-limit.js';

test('a token bucket per key: burst, refusal with Retry-After, refill, and other keys unaffected', () => {
  let t = 0;
  const l = createRateLimiter({ perSecond: 2, burst: 3, now: () => t });
  for (let i = 0; i < 3; i++) l.take('a', 'drafts');
  assert.throws(() => l.take('a', 'drafts'), (e) => isConclaveError(e, 'request.rate_limited') && (e.detail as { retryAfterSeconds: number }).retryAfterSeconds === 1);
  l.take('b', 'drafts');
  t += 500;
  l.take('a', 'drafts');
  assert.throws(() => l.take('a', 'drafts'));
});
