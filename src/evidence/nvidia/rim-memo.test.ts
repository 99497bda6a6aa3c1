/**
 * verifyRim's memo is keyed by the bytes, never by the buffer object: a caller that rewrites a RIM's
 * buffer in place has the new bytes verified afresh (real RIM from test/vectors/nvidia/rims).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { readFixture, skipWithoutFixtures } from '../../../test/fixtures.js';
import { isConclaveError } from '../../core/errors.js';
import { RimCache, verifyRim } from './rim.js';

const skip = skipWithoutFixtures();
const FILE = '1010_0200_882_96005E0001_PROD.swidtag';
const AT = new Date('2024-06-22T00:00:00Z');

/** Flips one character of the colloquialVersion attribute: signed content, still well-formed XML. */
function flipSignedByte(buf: Buffer): void {
  const at = buf.indexOf('colloquialVersion="') + 'colloquialVersion="'.length;
  assert.ok(at > 'colloquialVersion="'.length, 'the RIM carries a colloquialVersion');
  buf[at] = buf[at] === 0x39 ? 0x38 : 0x39;
}

describe('verifyRim memo (content, not identity)', { skip }, () => {
  for (const withCache of [true, false]) {
    test(`a buffer rewritten in place is verified afresh (${withCache ? 'with' : 'without'} a RimCache)`, () => {
      const buf = Buffer.from(readFixture('nvidia', 'rims', FILE));
      const cache = withCache ? new RimCache() : undefined;
      const first = verifyRim(buf, { at: AT, cache });
      assert.equal(first.sha256, createHash('sha256').update(buf).digest('hex'));
      // The same object, new bytes in the signed region.
      flipSignedByte(buf);
      assert.throws(
        () => verifyRim(buf, { at: AT, cache }),
        (e) => isConclaveError(e) && /^rim\.(digest_mismatch|signature_invalid)$/.test(e.code),
      );
      // Restored in place, it is the verified RIM again (from the memo or afresh: same content hash).
      flipSignedByte(buf);
      assert.equal(verifyRim(buf, { at: AT, cache }).sha256, first.sha256);
    });
  }

  test('a Uint8Array view into a rewritten buffer is not mistaken for the bytes it held before', () => {
    const backing = Buffer.from(readFixture('nvidia', 'rims', FILE));
    const view = new Uint8Array(backing.buffer, backing.byteOffset, backing.byteLength);
    const cache = new RimCache();
    verifyRim(view, { at: AT, cache });
    flipSignedByte(backing);
    assert.throws(() => verifyRim(view, { at: AT, cache }), (e) => isConclaveError(e) && e.code.startsWith('rim.'));
  });
});
