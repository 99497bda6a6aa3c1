/**
 * Attacks on `PUT /keys/{name}` (KeyImportParameters): a private JWK whose members do not belong together.
 * The vault publishes the public half it was given (n, e or x, y) and operates with the private members it
 * was given; where they are of two keys, its signatures do not verify under the key it publishes, its
 * decryptions answer garbage, and a release hands a TEE a key that is not the one the vault names.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer } from '../../helpers/server.js';
import { akvCall, startVault } from './harness.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../../../src/core/keygen.js';

let server: TestServer;

function refused(r: { status: number; json: any }, what: string): void {
  assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.json).slice(0, 300)}`);
  assert.equal(r.json.error.innererror.code, 'key.invalid', what);
}

describe('import: the members of a private JWK must be of one key', () => {
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
  });
  after(() => server?.stop());

  test('an RSA JWK whose d, or whose p, q, dp, dq, qi, are of another key is refused; one of a single key imports', async () => {
    const a = generateRsaKeyPair(2048).privateKey.export({ format: 'jwk' });
    const b = generateRsaKeyPair(2048).privateKey.export({ format: 'jwk' });
    refused(await akvCall(server, 'PUT', '/keys/rsa-mixed-d', { key: { ...a, d: b.d } }), 'd of another key');
    refused(await akvCall(server, 'PUT', '/keys/rsa-mixed-crt', { key: { ...a, p: b.p, q: b.q, dp: b.dp, dq: b.dq, qi: b.qi } }), 'p, q, dp, dq, qi of another key');
    refused(await akvCall(server, 'PUT', '/keys/rsa-mixed-dp', { key: { ...a, dp: b.dp } }), 'dp of another key');
    refused(await akvCall(server, 'PUT', '/keys/rsa-mixed-qi', { key: { ...a, qi: b.qi } }), 'qi of another key');
    refused(await akvCall(server, 'PUT', '/keys/rsa-swapped-n', { key: { ...a, n: b.n } }), 'n of another key');
    const ok = await akvCall(server, 'PUT', '/keys/rsa-whole', { key: a });
    assert.equal(ok.status, 200, JSON.stringify(ok.json).slice(0, 300));
  });

  test('an RSA JWK with e = 1 or an even e is refused', async () => {
    const a = generateRsaKeyPair(2048).privateKey.export({ format: 'jwk' });
    // e = 1 "encrypts" to the plaintext and "signs" with the identity (d = 1 makes the key consistent).
    refused(await akvCall(server, 'PUT', '/keys/rsa-e1', { key: { ...a, e: 'AQ', d: 'AQ', dp: 'AQ', dq: 'AQ' } }), 'e = 1');
    refused(await akvCall(server, 'PUT', '/keys/rsa-e2', { key: { ...a, e: 'Ag' } }), 'e = 2');
    // e no smaller than n, and members longer than n (refused before any is read as a number).
    refused(await akvCall(server, 'PUT', '/keys/rsa-e-n', { key: { ...a, e: a.n } }), 'e = n');
    const long = Buffer.alloc(300_000, 0xff).toString('base64url');
    for (const m of ['e', 'd', 'p', 'q', 'dp', 'dq', 'qi']) refused(await akvCall(server, 'PUT', '/keys/rsa-long', { key: { ...a, [m]: long } }), `a ${m} longer than n`);
  });

  test('an EC JWK whose d is not the private key of its point (x, y) is refused; one of a single key imports', async () => {
    for (const crv of ['P-256', 'P-384', 'P-521', 'P-256K']) {
      const named = crv === 'P-256K' ? 'secp256k1' : crv;
      const a = generateEcKeyPair(named).privateKey.export({ format: 'jwk' });
      const b = generateEcKeyPair(named).privateKey.export({ format: 'jwk' });
      const key = { ...a, crv };
      // On main: 200, and its signatures (made with d) do not verify under the point it publishes.
      refused(await akvCall(server, 'PUT', `/keys/ec-mixed-${crv}`, { key: { ...key, d: b.d } }), `${crv}: d of another key`);
      const ok = await akvCall(server, 'PUT', `/keys/ec-whole-${crv}`, { key });
      assert.equal(ok.status, 200, `${crv}: ${JSON.stringify(ok.json).slice(0, 300)}`);
    }
  });

  test('each relation of one RSA key is checked on its own: a JWK that breaks only one is refused (pin, defended on main)', async () => {
    const int = (v: string) => BigInt(`0x${Buffer.from(v, 'base64url').toString('hex') || '0'}`);
    const b64 = (x: bigint) => {
      const hex = x.toString(16);
      return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString('base64url');
    };
    // A key whose n leaves room below 2^2048 for e or d raised by a multiple of λ = lcm(p−1, q−1) to at least n.
    let a: Record<string, string>;
    let n: bigint, e: bigint, d: bigint, p: bigint, q: bigint, dp: bigint, dq: bigint, qi: bigint, lambda: bigint;
    const gcd = (x: bigint, y: bigint): bigint => (y === 0n ? x : gcd(y, x % y));
    const above = (x: bigint) => x + lambda * ((n - x) / lambda + 1n);
    do {
      a = generateRsaKeyPair(2048).privateKey.export({ format: 'jwk' }) as Record<string, string>;
      [n, e, d, p, q, dp, dq, qi] = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => int(a[m]!)) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
      lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
    } while (above(e) >= 1n << 2048n || above(d) >= 1n << 2048n);
    const cases: [string, Record<string, string>][] = [
      // The same key in every residue the CRT members fix, written out of range (mutation: without d < n).
      ['d raised by a multiple of λ to at least n', { ...a, d: b64(above(d)) }],
      // e ≡ e modulo λ, so e·d ≡ 1 still holds (mutation: without e < n).
      ['e raised by a multiple of λ to at least n', { ...a, e: b64(above(e)) }],
      // qi·q ≡ 1 (mod p) still holds (mutation: without qi < p).
      ['qi + p', { ...a, qi: b64(qi + p) }],
      // d no longer agrees with dp modulo p−1, only with dq (mutation: without dp = d mod p−1), and the other way round.
      ['d + (q − 1): d mod p−1 is not dp', { ...a, d: b64(d + q - 1n) }],
      ['d + (p − 1): d mod q−1 is not dq', { ...a, d: b64(d + p - 1n) }],
      // d and dp agree, but dp no longer inverts e modulo p−1 (mutation: without e·dp ≡ 1), and the other way round.
      ['d + (q − 1) with dp = d mod p−1', { ...a, d: b64(d + q - 1n), dp: b64((d + q - 1n) % (p - 1n)) }],
      ['d + (p − 1) with dq = d mod q−1', { ...a, d: b64(d + p - 1n), dq: b64((d + p - 1n) % (q - 1n)) }],
      // A factor of 1: p − 1 = 0 must be refused, not divided by (mutations: without p > 1, without q > 1: a 500).
      ['p = 1, q = n', { ...a, p: 'AQ', q: a.n!, dq: b64(d % (n - 1n)), qi: 'AA' }],
      ['q = 1, p = n', { ...a, q: 'AQ', p: a.n!, dp: b64(d % (n - 1n)), qi: 'AA' }],
    ];
    for (const [what, key] of cases) refused(await akvCall(server, 'PUT', '/keys/rsa-one-relation', { key }), what);
    assert.equal((await akvCall(server, 'GET', '/keys/rsa-one-relation')).status, 404, 'nothing imported');
    assert.deepEqual([dp, dq], [d % (p - 1n), d % (q - 1n)], 'the key the cases start from is one key');
  });

  test('an EC point member longer than the curve size is refused, not a 500 (pin, defended on main)', async () => {
    // Mutation: without isEcdsaKeyPair's length check, fixed() throws a RangeError on x or y (500).
    const ec = generateEcKeyPair('P-256').privateKey.export({ format: 'jwk' }) as Record<string, string>;
    const longer = (v: string) => Buffer.concat([Buffer.alloc(1), Buffer.from(v, 'base64url')]).toString('base64url');
    for (const m of ['x', 'y', 'd']) refused(await akvCall(server, 'PUT', '/keys/ec-long-member', { key: { ...ec, crv: 'P-256', [m]: longer(ec[m]!) } }), `${m} of 33 octets`);
  });

  test('a JWK that is no key of its kty and crv, or of a size the vault does not take, is refused (pin, defended on main)', async () => {
    const rsa = generateRsaKeyPair(2048).privateKey.export({ format: 'jwk' });
    const ec = generateEcKeyPair('P-256').privateKey.export({ format: 'jwk' });
    const cases: [string, Record<string, unknown>][] = [
      ['a P-256 key named P-384', { ...ec, crv: 'P-384' }],
      ['a P-256 key named P-521', { ...ec, crv: 'P-521' }],
      ['an EC key without its point', { kty: 'EC', crv: 'P-256', d: ec.d }],
      ['an EC key with an unknown curve', { ...ec, crv: 'secp224r1' }],
      ['EC members under kty RSA', { ...ec, kty: 'RSA' }],
      ['RSA members under kty EC', { ...rsa, kty: 'EC', crv: 'P-256' }],
      ['an RSA key without p, q, dp, dq, qi', { kty: 'RSA', n: rsa.n, e: rsa.e, d: rsa.d }],
      ['an unknown key_ops entry', { ...ec, key_ops: ['sign', 'derive'] }],
      ['an operation the family has not', { ...ec, key_ops: ['decrypt'] }],
    ];
    for (const bytes of [0, 1, 15, 17, 31, 33, 48, 64, 65]) cases.push([`a ${bytes}-byte oct key`, { kty: 'oct', k: Buffer.alloc(bytes, 1).toString('base64url') }]);
    for (const [what, key] of cases) refused(await akvCall(server, 'PUT', '/keys/import-pin', { key }), what);
    assert.equal((await akvCall(server, 'GET', '/keys/import-pin')).status, 404, 'nothing imported');
  });
});
