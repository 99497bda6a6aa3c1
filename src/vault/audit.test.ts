import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from './audit.js';

test('canonical JSON sorts keys at every level and drops undefined members, so a record has one encoding', () => {
  const a = canonicalJson({ time: 't', detail: { z: 1, a: [{ y: 2, b: undefined, c: 'é' }] }, principal: 'p', key: undefined });
  const b = canonicalJson({ principal: 'p', detail: { a: [{ c: 'é', y: 2 }], z: 1 }, time: 't' });
  assert.equal(a, b);
  assert.equal(a, '{"detail":{"a":[{"c":"é","y":2}],"z":1},"principal":"p","time":"t"}');
  assert.equal(canonicalJson([undefined, null, 1]), '[null,null,1]');
});
