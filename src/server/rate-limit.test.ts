import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { clientKey, createRateLimiter } from './rate-limit.js';

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

test('an attacker rotating through maxKeys fresh addresses does not reset the bucket of the address it is limited at', () => {
  const t = 0;
  const l = createRateLimiter({ perSecond: 1, burst: 2, maxKeys: 100, now: () => t });
  l.take('198.51.100.7', 'sign-in attempts');
  l.take('198.51.100.7', 'sign-in attempts');
  assert.throws(() => l.take('198.51.100.7', 'sign-in attempts'), (e) => isConclaveError(e, 'request.rate_limited'));
  // One request from each of 1,000 other addresses, fast: more than the limiter tracks.
  for (let i = 0; i < 1000; i++) {
    try {
      l.take(`10.0.${i >> 8}.${i & 255}`, 'sign-in attempts');
    } catch {
      // newcomers beyond maxKeys may be limited together; what matters is the first address
    }
  }
  assert.throws(() => l.take('198.51.100.7', 'sign-in attempts'), (e) => isConclaveError(e, 'request.rate_limited'), 'the limited address got a fresh burst');
  assert.ok(l.size <= 100, `memory stays bounded (${l.size} buckets)`);
});

test('newcomers beyond maxKeys share one bucket while every tracked bucket still limits; buckets idle long enough to be full are forgotten first', () => {
  let t = 0;
  const l = createRateLimiter({ perSecond: 1, burst: 2, maxKeys: 2, now: () => t });
  l.take('a', 'drafts');
  l.take('b', 'drafts');
  l.take('c', 'drafts');
  l.take('d', 'drafts');
  assert.throws(() => l.take('e', 'drafts'), (e) => isConclaveError(e, 'request.rate_limited'), 'c, d and e share one bucket of 2');
  assert.equal(l.size, 2);
  t += 2_000; // a and b have refilled to the burst: forgetting them loses nothing
  l.take('e', 'drafts');
  l.take('e', 'drafts');
  assert.throws(() => l.take('e', 'drafts'), (e) => isConclaveError(e, 'request.rate_limited'), 'e has a bucket of its own now');
  assert.equal(l.size, 1);
});

test('IPv6 clients are limited by their /64 (one host can rotate through the rest); IPv4-mapped addresses by the IPv4 address', () => {
  const t = 0;
  const l = createRateLimiter({ perSecond: 1, burst: 2, now: () => t });
  l.take('2001:db8:1:2::1', 'sign-in attempts');
  l.take('2001:0db8:0001:0002:ffff:eeee:dddd:cccc', 'sign-in attempts');
  assert.throws(() => l.take('2001:db8:1:2:0:0:0:9', 'sign-in attempts'), (e) => isConclaveError(e, 'request.rate_limited'));
  l.take('2001:db8:1:3::1', 'sign-in attempts');
  l.take('::ffff:192.0.2.1', 'sign-in attempts');
  l.take('192.0.2.1', 'sign-in attempts');
  assert.throws(() => l.take('::ffff:192.0.2.1', 'sign-in attempts'), (e) => isConclaveError(e, 'request.rate_limited'));
  l.take('::ffff:192.0.2.2', 'sign-in attempts');
});

test('clientKey: the /64 of every IPv6 spelling', () => {
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('2001::1:2:3:4:5:6'), '2001:0:1:2::/64');
  assert.equal(clientKey('2001:0DB8:0000:0001:1:2:3:4'), '2001:db8:0:1::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('::'), '0:0:0:0::/64');
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(clientKey('1:2:3:4::'), '1:2:3:4::/64');
  assert.equal(clientKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  assert.equal(clientKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(clientKey('192.0.2.1'), '192.0.2.1');
});

test('buckets are kept in least-recently-used order: a bucket taken from again does not keep a refilled one from being forgotten', () => {
  let t = 0;
  const l = createRateLimiter({ perSecond: 1, burst: 2, maxKeys: 2, now: () => t });
  l.take('a', 'drafts');
  l.take('b', 'drafts');
  t += 2_000; // both have refilled
  l.take('a', 'drafts'); // a is the most recently used now; b, refilled, is the least
  // c is a newcomer at maxKeys: b is forgotten and c gets a bucket of its own (not the overflow bucket).
  l.take('c', 'drafts');
  l.take('c', 'drafts');
  assert.throws(() => l.take('c', 'drafts'), (e) => isConclaveError(e, 'request.rate_limited'));
  assert.equal(l.size, 2);
  // d finds a and c still refilling: it takes from the overflow bucket, untouched so far.
  l.take('d', 'drafts');
});
