import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseImportParameters } from './key.js';
import { isConclaveError } from '../core/errors.js';
import { generateRsaKeyPair } from '../core/keygen.js';

/** The longest string `fn` hands BigInt (the one-key check reads members as numbers with it). */
function longestBigIntText(fn: () => void): number {
  const real = globalThis.BigInt;
  let longest = 0;
  globalThis.BigInt = ((v: string | number | bigint | boolean) => {
    if (typeof v === 'string') longest = Math.max(longest, v.length);
    return real(v);
  }) as BigIntConstructor;
  try {
    fn();
  } finally {
    globalThis.BigInt = real;
  }
  return longest;
}

describe('import: the one-key check reads no member longer than the modulus', () => {
  const jwk = generateRsaKeyPair(2048).privateKey.export({ format: 'jwk' }) as Record<string, string>;
  const zeros = (count: number, v: string) => Buffer.concat([Buffer.alloc(count), Buffer.from(v, 'base64url')]).toString('base64url');

  test('n padded with leading zero octets does not let members of hundreds of kilobytes reach BigInt', () => {
    // n of 240 kB, 256 of them significant: its size check reads 2048 bits, and members as long as the padding
    // were read as numbers and multiplied (≈ 25 ms of the event loop for one 1 MB request).
    const big = Buffer.concat([Buffer.from([0xff]), Buffer.alloc(240_000, 0x5a)]).toString('base64url');
    const key = { ...jwk, n: zeros(240_000, jwk.n!), p: big, q: big };
    let error: unknown;
    const longest = longestBigIntText(() => {
      try {
        parseImportParameters({ key });
      } catch (e) {
        error = e;
      }
    });
    assert.ok(isConclaveError(error, 'key.invalid'), String(error));
    assert.ok(longest <= 2 * 257 + 2, `BigInt read a member of ${longest} characters`);
  });

  test('a modulus with one leading zero octet (as some libraries write it) still imports', () => {
    const key = { ...jwk, n: zeros(1, jwk.n!), d: zeros(1, jwk.d!) };
    assert.equal(parseImportParameters({ key }).kty, 'RSA');
  });
});
