import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { signDigestEcdsa, verifyDigestEcdsa } from './ecdsa.js';
import type { CurveName } from './ports.js';

const CASES: Array<[CurveName, string, 'sha256' | 'sha384' | 'sha512']> = [
  ['P-256', 'prime256v1', 'sha256'],
  ['P-384', 'secp384r1', 'sha384'],
  ['P-521', 'secp521r1', 'sha512'],
  ['P-256K', 'secp256k1', 'sha256'],
];

describe('ECDSA over a digest', () => {
  for (const [crv, named, hash] of CASES) {
    test(`${crv}: our signature verifies with OpenSSL and OpenSSL's with ours`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: named });
      const jwk = privateKey.export({ format: 'jwk' });
      const data = Buffer.from(`message for ${crv}`);
      const digest = createHash(hash).update(data).digest();
      const sig = signDigestEcdsa(crv, Buffer.from(jwk.d!, 'base64url'), digest);
      assert.ok(verify(hash, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig));
      const theirs = sign(hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const x = Buffer.from(jwk.x!, 'base64url');
      const y = Buffer.from(jwk.y!, 'base64url');
      assert.ok(verifyDigestEcdsa(crv, x, y, digest, theirs));
      const tampered = Buffer.from(theirs);
      tampered[5] = (tampered[5] ?? 0) ^ 1;
      assert.equal(verifyDigestEcdsa(crv, x, y, digest, tampered), false);
      assert.equal(verifyDigestEcdsa(crv, x, y, createHash(hash).update('other').digest(), theirs), false);
    });
  }
});
