import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { evidenceBytes } from './input.js';

test('binary evidence is taken as is; hex, 0x-hex and base64 text is decoded', () => {
  const quote = Buffer.from([0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x0f]);
  assert.deepEqual(Buffer.from(evidenceBytes(quote)), quote);
  assert.deepEqual(Buffer.from(evidenceBytes(Buffer.from(quote.toString('hex')))), quote);
  assert.deepEqual(Buffer.from(evidenceBytes(Buffer.from(`0x${quote.toString('hex').toUpperCase()}\n`))), quote);
  assert.deepEqual(Buffer.from(evidenceBytes(Buffer.from(quote.toString('base64')))), quote);
  assert.deepEqual(Buffer.from(evidenceBytes(Buffer.from(quote.toString('base64url')))), quote);
  // JSON evidence (MAA SevSnpVm bodies, trustee's vTPM evidence) is text but neither hex nor base64: as is.
  const json = Buffer.from('{"SnpReport":"AAAA"}');
  assert.deepEqual(Buffer.from(evidenceBytes(json)), json);
});

test('every byte string survives its hex and base64 renderings (text of hex digits only reads as hex)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 256 }), (b) => {
      const bytes = Buffer.from(b);
      assert.deepEqual(Buffer.from(evidenceBytes(Buffer.from(`0x${bytes.toString('hex')}`))), bytes);
      // Text that is all hex digits reads as hex (base64 of 000000 is AAAA): base64 is checked where it is not.
      const b64 = bytes.toString('base64');
      if (!/^[0-9a-fA-F]*$/.test(b64)) assert.deepEqual(Buffer.from(evidenceBytes(Buffer.from(b64))), bytes);
    }),
  );
});
