import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BoundedMap } from './bounded-map.js';

describe('BoundedMap', () => {
  test('never holds more than its bound; the oldest entry goes first', () => {
    const m = new BoundedMap<string, number>(3);
    for (let i = 0; i < 10; i++) m.set(`k${i}`, i);
    assert.equal(m.size, 3);
    assert.deepEqual([...m.keys()], ['k7', 'k8', 'k9']);
  });

  test('replacing a present key drops nothing else', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2).set('a', 3);
    assert.deepEqual([...m.entries()], [['a', 3], ['b', 2]]);
  });

  test('a bound below one is refused', () => {
    assert.throws(() => new BoundedMap(0), RangeError);
  });
});
