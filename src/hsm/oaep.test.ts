/**
 * Host-side EME-OAEP decoding for tokens without OAEP-SHA-2 (the private-key operation stays in the
 * token). A Manger-style oracle needs two distinguishable failures: every malformed encoding must fail
 * with one identical error. Encoded messages come from OpenSSL's own encoder (publicEncrypt with OAEP,
 * then the raw RSA inverse), so the decoder is checked against an independent implementation.
 */
import assert from 'node:assert/strict';
import { constants, privateDecrypt, publicEncrypt, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isConclaveError } from '../core/errors.js';
import { oaepDecode } from './oaep.js';
import { generateRsaKeyPair } from '../core/keygen.js';

const { privateKey, publicKey } = generateRsaKeyPair(2048);
const emOf = (msg: Uint8Array, hash: 'sha1' | 'sha256') =>
  privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, msg));

let reference: { code: string; message: string; detail: unknown } | undefined;
function failsUniformly(em: Uint8Array, hash: 'sha1' | 'sha256') {
  assert.throws(
    () => oaepDecode(Buffer.from(em), hash),
    (e) => {
      assert.ok(isConclaveError(e, 'key.crypto_failed'), String(e));
      const seen = { code: e.code, message: e.message, detail: e.detail };
      reference ??= seen;
      assert.deepEqual(seen, reference);
      return true;
    },
  );
}

describe('oaepDecode', () => {
  for (const hash of ['sha1', 'sha256'] as const) {
    test(`${hash}: decodes what OpenSSL encodes, any message length`, () => {
      for (const len of [0, 1, 32, 100, 256 - 2 * (hash === 'sha1' ? 20 : 32) - 2]) {
        const msg = randomBytes(len);
        assert.deepEqual(oaepDecode(emOf(msg, hash), hash), msg);
      }
    });

    test(`${hash}: every class of padding failure gives one identical error`, () => {
      const good = emOf(randomBytes(32), hash);
      const hLen = hash === 'sha1' ? 20 : 32;
      const flip = (i: number) => Uint8Array.from(good.map((b, j) => (j === i ? b ^ 1 : b)));
      failsUniformly(flip(0), hash); // first octet not zero
      failsUniformly(flip(1), hash); // seed changed: lHash and separator both wrong
      failsUniformly(flip(1 + hLen), hash); // lHash' ≠ lHash
      failsUniformly(new Uint8Array(256), hash); // no separator at all
      failsUniformly(good.subarray(0, 2 * hLen + 1), hash); // too short
    });
  }

  test('random encoded messages: decoded only when well-formed, else the one error (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 256, maxLength: 256 }), (em) => {
        try {
          oaepDecode(Buffer.from(em), 'sha256');
        } catch (e) {
          assert.ok(isConclaveError(e, 'key.crypto_failed'));
          assert.equal(e.message, reference?.message);
        }
      }),
      { numRuns: 500 },
    );
  });
});
