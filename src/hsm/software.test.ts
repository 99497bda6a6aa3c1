/**
 * RSASSA-PSS over a precomputed digest in the software key protector (issue #13): the EMSA-PSS encoding is
 * ours (node:crypto signs only what it hashes itself, docs/security.md says why no library is used), the
 * RSA private-key operation is OpenSSL's. Every case is checked against OpenSSL in both directions, on
 * modulus sizes that exercise each branch of the encoding: a whole number of octets (2048, 3072), one bit
 * more (2049: emLen is one octet shorter than the modulus) and one bit less (2047: the top octet's mask).
 */
import assert from 'node:assert/strict';
import { type JsonWebKey, constants, createHash, randomBytes, sign, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import type { PrivateJwk, SignatureAlgorithm } from '../vault/ports.js';
import { createSealer } from './master-key.js';
import { createSoftwareKeyProtector } from './software.js';
import { generateRsaKeyPair } from '../core/keygen.js';

const PSS = [
  ['PS256', 'sha256'],
  ['PS384', 'sha384'],
  ['PS512', 'sha512'],
] as const;

describe('software key protector: RSASSA-PSS over a digest interoperates with OpenSSL', () => {
  const hsm = createSoftwareKeyProtector(createSealer(randomBytes(32)));
  for (const bits of [2047, 2048, 2049, 3072]) {
    test(`${bits}-bit modulus`, async () => {
      const { privateKey, publicKey } = generateRsaKeyPair(bits);
      const binding = `vault-key:pss-${bits}/0123456789abcdef0123456789abcdef`;
      const p = await hsm.import({ kty: 'RSA', ...(privateKey.export({ format: 'jwk' }) as JsonWebKey) } as PrivateJwk, binding);
      const ref = { family: 'RSA' as const, handle: p.handle, binding };
      for (const [alg, hash] of PSS) {
        const message = Buffer.from(`message for ${alg}`);
        const digest = createHash(hash).update(message).digest();
        const ours = await hsm.sign(ref, alg as SignatureAlgorithm, digest);
        const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
        assert.ok(verify(hash, message, { key: publicKey, ...pss }, ours), `${alg}: OpenSSL verifies ours`);
        assert.ok(await hsm.verify(ref, alg as SignatureAlgorithm, digest, ours), `${alg}: ours verifies ours`);
        const theirs = sign(hash, message, { key: privateKey, ...pss });
        assert.ok(await hsm.verify(ref, alg as SignatureAlgorithm, digest, theirs), `${alg}: ours verifies OpenSSL's`);
        // Salted: two signatures differ, both verify.
        assert.notDeepEqual(Buffer.from(await hsm.sign(ref, alg as SignatureAlgorithm, digest)), Buffer.from(ours));
        // Another digest, a flipped bit, a salt length other than the digest's: refused.
        assert.equal(await hsm.verify(ref, alg as SignatureAlgorithm, createHash(hash).update('other').digest(), ours), false);
        const flipped = Buffer.from(ours);
        flipped[flipped.length - 1]! ^= 1;
        assert.equal(await hsm.verify(ref, alg as SignatureAlgorithm, digest, flipped), false);
        const shortSalt = sign(hash, message, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 0 });
        assert.equal(await hsm.verify(ref, alg as SignatureAlgorithm, digest, shortSalt), false, `${alg}: salt length must be the digest length (JWA §3.5)`);
      }
    });
  }
});
