import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VerifierCache } from './cache.js';
import { RecentBytes } from './recent-bytes.js';
import { sha256Hex } from '../../core/bytes.js';

test('a value is returned only for exactly the bytes it was set for, whatever became of the caller buffer', () => {
  const r = new RecentBytes<string>(2);
  const a = Uint8Array.from([1, 2, 3]);
  r.set(a, 'a');
  assert.equal(r.get(Uint8Array.from([1, 2, 3])), 'a', 'equal bytes in another buffer');
  assert.equal(r.get(Uint8Array.from([1, 2])), undefined, 'a prefix');
  assert.equal(r.get(Uint8Array.from([1, 2, 3, 0])), undefined, 'longer');
  a[1] = 9;
  assert.equal(r.get(a), undefined, 'the same buffer changed in place');
  assert.equal(r.get(Uint8Array.from([1, 2, 3])), 'a', 'a private copy was kept');
  r.set(Uint8Array.from([4]), 'b');
  assert.equal(r.get(Uint8Array.from([1, 2, 3])), 'a', 'a hit makes it the most recent');
  r.set(Uint8Array.from([5]), 'c');
  assert.equal(r.get(Uint8Array.from([4])), undefined, 'the least recently used entry made room');
  assert.equal(r.get(Uint8Array.from([1, 2, 3])), 'a');
  r.clear();
  assert.equal(r.get(Uint8Array.from([5])), undefined);
});

test('VerifierCache.contentId is the SHA-256 of the bytes as they are now', () => {
  const cache = new VerifierCache();
  const b = new Uint8Array(4096).fill(7);
  assert.equal(cache.contentId(b), sha256Hex(b));
  assert.equal(cache.contentId(b), sha256Hex(b));
  b[4000] = 8;
  assert.equal(cache.contentId(b), sha256Hex(b), 'changed in place');
  for (let i = 0; i < 20; i++) assert.equal(cache.contentId(Uint8Array.of(i)), sha256Hex(Uint8Array.of(i)));
});
