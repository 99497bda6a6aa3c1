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
