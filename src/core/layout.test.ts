import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ByteReader } from './bytes.js';
import { type Layout, decodeLayout, encodeLayout, indexLayout, layoutSize, reservedRanges, zeroLayout } from './layout.js';

const T = [
  { name: 'version', offset: 0, type: 'u32' },
  { name: 'flags', offset: 4, type: 'u16' },
  { name: 'kind', offset: 6, type: 'u8' },
  { name: 'pad', offset: 7, type: 1 },
  { name: 'counter', offset: 8, type: 'u64' },
  { name: 'id', offset: 16, type: 16 },
] as const satisfies Layout;

test('a table decodes what it encodes, integers little-endian, and names a truncated field', () => {
  fc.assert(
    fc.property(fc.nat(0xffffffff), fc.nat(0xffff), fc.nat(0xff), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (version, flags, kind, counter, id) => {
      const values = { ...zeroLayout(T), version, flags, kind, counter, id };
      const bytes = encodeLayout(T, values, 'T');
      assert.equal(bytes.byteLength, layoutSize(T));
      assert.equal(new DataView(bytes.buffer).getBigUint64(8, true), counter);
      assert.deepEqual(decodeLayout(new ByteReader(bytes, 'T', 'quote.truncated'), T, 'T'), values);
    }),
  );
  const short = encodeLayout(T, zeroLayout(T), 'T').subarray(0, 12);
  assert.throws(() => decodeLayout(new ByteReader(short, 'T', 'quote.truncated'), T, 'T'), (e: { code?: string; message: string }) => e.code === 'quote.truncated' && /counter/.test(e.message));
  assert.throws(() => encodeLayout(T, { ...zeroLayout(T), kind: 256 }, 'T'), /T\.kind must be a u8/);
  assert.throws(() => encodeLayout(T, { ...zeroLayout(T), id: new Uint8Array(15) }, 'T'), /T\.id must be 16 bytes/);
});

test('reserved ranges give way to the fields a version defines inside them', () => {
  const R = [
    { name: 'version', offset: 0, type: 'u32' },
    { name: 'reserved 0x04', offset: 4, type: 12, reserved: true },
    { name: 'a', offset: 4, type: 'u8', since: 2 },
    { name: 'b', offset: 8, type: 'u32', since: 3 },
    { name: 'tail', offset: 16, type: 4 },
  ] as const satisfies Layout;
  assert.deepEqual(reservedRanges(R, 1), [[4, 16, 'reserved 0x04']]);
  assert.deepEqual(reservedRanges(R, 2), [[5, 16, 'reserved 0x04']]);
  assert.deepEqual(reservedRanges(R, 3), [
    [5, 8, 'reserved 0x04'],
    [12, 16, 'reserved 0x04'],
  ]);
  assert.deepEqual(indexLayout(R).b, { offset: 8, size: 4, since: 3 });
});
