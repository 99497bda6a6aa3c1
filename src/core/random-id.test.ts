import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHexIdPool } from './random-id.js';

describe('createHexIdPool', () => {
  test('hands out every pooled byte once, in order, and fills again only when the pool is used up', () => {
    let fills = 0;
    // Each fill writes bytes no earlier fill wrote (fill n, position i: n*8+i), so a reused slice would show.
    const next = createHexIdPool(2, 8, (b) => {
      for (let i = 0; i < b.length; i++) b[i] = fills * 8 + i;
      fills++;
    });
    const ids = Array.from({ length: 9 }, () => next());
    assert.deepEqual(ids, ['0001', '0203', '0405', '0607', '0809', '0a0b', '0c0d', '0e0f', '1011']);
    assert.equal(fills, 3);
  });

  test('ids from the CSPRNG: the format of randomBytes(16).toString("hex"), distinct across many refills', () => {
    const next = createHexIdPool(16);
    const seen = new Set<string>();
    for (let i = 0; i < 256 * 5 + 3; i++) {
      const id = next();
      assert.match(id, /^[0-9a-f]{32}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 256 * 5 + 3);
  });

  test('a pool that does not hold a whole number of ids is refused', () => {
    assert.throws(() => createHexIdPool(16, 100), RangeError);
    assert.throws(() => createHexIdPool(0), RangeError);
    assert.throws(() => createHexIdPool(16, 8), RangeError);
  });
});
