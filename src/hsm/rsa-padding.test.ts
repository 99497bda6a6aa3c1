/**
 * The RSA padding both key protectors use, checked against node:crypto (OpenSSL) in both directions:
 * what we encode, OpenSSL verifies; what OpenSSL signs or encrypts, we decode; and tampering fails.
 */
import assert from 'node:assert/strict';
import { constants, createHash, privateDecrypt, privateEncrypt, publicDecrypt, publicEncrypt, randomBytes, sign, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isConclaveError } from '../core/errors.js';
import { DIGEST_INFO, pkcs1v15Unpad, pssEncode, pssVerify } from './rsa-padding.js';
import { generateRsaKeyPair } from '../core/keygen.js';

const keys = [2048, 3072].map((bits) => ({ bits, ...generateRsaKeyPair(bits) }));
const HASHES = ['sha256', 'sha384', 'sha512'] as const;

describe('RSA padding (RFC 8017)', () => {
  test('DigestInfo ‖ digest under PKCS#1 v1.5 is exactly OpenSSL RSASSA-PKCS1-v1_5', () => {
    const { privateKey } = keys[0]!;
    const message = Buffer.from('a message');
    for (const hash of HASHES) {
      const digest = createHash(hash).update(message).digest();
      const ours = privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO[hash.slice(3)]!, digest]));
      assert.deepEqual(ours, sign(hash, message, privateKey), hash);
    }
  });

  test('PSS we encode verifies in OpenSSL, PSS OpenSSL signs verifies here, for 2048- and 3072-bit keys', () => {
    const message = Buffer.from('pss message');
    for (const { bits, privateKey, publicKey } of keys) {
      for (const hash of HASHES) {
        const mHash = createHash(hash).update(message).digest();
        const ours = privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, pssEncode(mHash, bits, hash));
        assert.ok(verify(hash, message, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: mHash.length }, ours), `${bits} ${hash}: OpenSSL accepts ours`);
        const theirs = sign(hash, message, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: mHash.length });
        const em = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, theirs);
        assert.ok(pssVerify(mHash, em, bits, hash), `${bits} ${hash}: we accept OpenSSL's`);
        const otherHash = createHash(hash).update('another message').digest();
        assert.equal(pssVerify(otherHash, em, bits, hash), false, 'another digest fails');
        for (const at of [0, em.length - hLenOf(hash) - 2, em.length - 1]) {
          const bad = Buffer.from(em);
          bad[at]! ^= 0x01;
          assert.equal(pssVerify(mHash, bad, bits, hash), false, `${bits} ${hash}: a flipped bit at ${at} fails`);
        }
      }
    }
  });

  test('a salt shorter than the hash (OpenSSL salt length 0) is refused, as JWA fixes it to the hash length', () => {
    const { bits, privateKey, publicKey } = keys[0]!;
    const message = Buffer.from('m');
    const theirs = sign('sha256', message, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 0 });
    const em = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, theirs);
    assert.equal(pssVerify(createHash('sha256').update(message).digest(), em, bits, 'sha256'), false);
  });

  test('EME-PKCS1-v1_5 decoding recovers what OpenSSL encrypted; every malformed block is the same error', () => {
    const { privateKey, publicKey } = keys[0]!;
    for (const len of [0, 1, 16, 32, 245]) {
      const plain = randomBytes(len);
      const em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, plain));
      assert.deepEqual(pkcs1v15Unpad(em), plain, `${len} bytes`);
    }
    const good = Buffer.concat([Buffer.of(0, 2), Buffer.alloc(8, 0xaa), Buffer.of(0), Buffer.from('secret')]);
    assert.deepEqual(pkcs1v15Unpad(good), Buffer.from('secret'));
    const bad = [
      Buffer.concat([Buffer.of(1, 2), good.subarray(2)]),
      Buffer.concat([Buffer.of(0, 1), good.subarray(2)]),
      Buffer.concat([Buffer.of(0, 2), Buffer.alloc(7, 0xaa), Buffer.of(0), Buffer.from('short padding')]),
      Buffer.concat([Buffer.of(0, 2), Buffer.alloc(20, 0xaa)]),
    ];
    for (const em of bad) {
      assert.throws(
        () => pkcs1v15Unpad(em),
        (e) => isConclaveError(e, 'key.crypto_failed') && e.message === 'decryption failed',
      );
    }
  });
});

describe('EME-PKCS1-v1_5 decoding without branches on the decrypted bytes (issue #13)', () => {
  test('random blocks: decoded exactly when well-formed, else the one error (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 256, maxLength: 256 }), fc.boolean(), (bytes, framed) => {
        const em = Buffer.from(bytes);
        if (framed) {
          em[0] = 0;
          em[1] = 2;
        }
        const sep = em.indexOf(0, 2);
        if (em[0] === 0 && em[1] === 2 && sep >= 10) assert.deepEqual(pkcs1v15Unpad(em), em.subarray(sep + 1));
        else assert.throws(() => pkcs1v15Unpad(em), (e) => isConclaveError(e, 'key.crypto_failed') && e.message === 'decryption failed' && e.detail === undefined);
      }),
      { numRuns: 1000 },
    );
  });

  test('a separator in each position of PS: refused before index 10, accepted from it', () => {
    for (let at = 2; at < 40; at++) {
      const em = Buffer.alloc(256, 0x5a);
      em[0] = 0;
      em[1] = 2;
      em[at] = 0;
      if (at < 10) assert.throws(() => pkcs1v15Unpad(em), (e) => isConclaveError(e, 'key.crypto_failed'));
      else assert.equal(pkcs1v15Unpad(em).length, 256 - at - 1);
    }
  });
});

function hLenOf(hash: string): number {
  return createHash(hash).digest().length;
}
