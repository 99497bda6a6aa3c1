import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isConclaveError } from './errors.js';
import { fromB64, isAllZero } from './bytes.js';

test('fromB64 reads base64 and base64url, padded or not, into a buffer of its own', () => {
  for (let len = 0; len < 70; len++) {
    const b = randomBytes(len);
    for (const text of [b.toString('base64'), b.toString('base64url'), b.toString('base64').replace(/=+$/, '')]) {
      const out = fromB64(text);
      assert.deepEqual(Buffer.from(out), b, text);
      assert.equal(out.byteOffset, 0);
      assert.equal(out.buffer.byteLength, len, 'no pooled or oversized backing store');
    }
  }
  assert.deepEqual(Buffer.from(fromB64('-_-_')), Buffer.from('+/+/', 'base64'));
});

test('fromB64 refuses characters outside both alphabets and padding inside the text', () => {
  for (const bad of ['ab$d', 'ab=d', 'a b', 'abc===', 'ab\ncd']) assert.throws(() => fromB64(bad, 'field'), (e) => isConclaveError(e) && e.code === 'request.invalid', bad);
});

test('isAllZero looks at the whole array, or at [start, end) only', () => {
  const b = new Uint8Array([1, 0, 0, 2]);
  assert.equal(isAllZero(b), false);
  assert.equal(isAllZero(new Uint8Array(3)), true);
  assert.equal(isAllZero(b, 1, 3), true);
  assert.equal(isAllZero(b, 1), false);
  assert.equal(isAllZero(b, 0, 2), false);
  assert.equal(isAllZero(b, 2, 2), true);
});
