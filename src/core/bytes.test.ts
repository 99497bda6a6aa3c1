import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isConclaveError } from './errors.js';
import { fromB64 } from './bytes.js';

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
