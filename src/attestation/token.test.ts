import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { decodeJws, verifyJwsSignature } from '../core/jwt.js';
import { markVerified } from '../core/verified.js';
import { issueToken } from './token.js';
import { generateRsaKeyPair } from '../core/keygen.js';

const { privateKey } = generateRsaKeyPair(2048);
const signer = { kid: 'kid-1', privateKey, certDer: new Uint8Array() };
const times = { now: new Date('2026-01-01T00:00:00Z'), lifetimeSeconds: 600 };

test('tokens carry MAA header and registered claims; the header follows issuer and kid; every jti is new', async () => {
  const jtis = new Set<string>();
  // More tokens than one batch of jti bytes, so a refill is crossed.
  for (let i = 0; i < 150; i++) {
    const t = await issueToken(markVerified({ 'x-ms-attestation-type': 'sgx', n: i }), 'https://a.example', signer, times);
    const d = decodeJws(t);
    assert.deepEqual(d.header, { alg: 'RS256', jku: 'https://a.example/certs', kid: 'kid-1', typ: 'JWT' });
    assert.equal(d.payload.n, i);
    assert.equal(d.payload.iss, 'https://a.example');
    assert.equal(d.payload.exp, (d.payload.iat as number) + 600);
    assert.match(String(d.payload.jti), /^[0-9a-f]{64}$/);
    jtis.add(String(d.payload.jti));
    if (i === 0) assert.ok(verifyJwsSignature(d, createPublicKey(privateKey)));
  }
  assert.equal(jtis.size, 150);
  const other = decodeJws(await issueToken(markVerified({}), 'https://b.example', { ...signer, kid: 'kid-2' }, times));
  assert.deepEqual(other.header, { alg: 'RS256', jku: 'https://b.example/certs', kid: 'kid-2', typ: 'JWT' });
});

test('the payload is the JSON of the claims followed by the registered claims, as a spread of both writes it', async () => {
  const cases: Record<string, unknown>[] = [
    {},
    { 'x-ms-attestation-type': 'sgx', 'x-ms-runtime': { keys: [{ kty: 'RSA', n: 'AQAB' }] }, list: [1, 'two', true], nested: { a: { b: null } }, gone: undefined },
    { 7: 'an index-like name', 'x-ms-sgx-svn': 0, 'é "quoted" \u2028': 'a\nb' },
    // A claim with a registered name: the service's value replaces it where it stands.
    { a: 1, iss: 'policy', jti: 'x', b: 2 },
    { 'x-ms-ver': '2.0' },
  ];
  for (const claims of cases) {
    for (const signed of [true, false]) {
      const t = await issueToken(markVerified(claims), 'https://a.example', signed ? signer : 'unsigned', times);
      const text = Buffer.from(t.split('.')[1]!, 'base64url').toString('utf8');
      const jti = (JSON.parse(text) as { jti: string }).jti;
      const iat = times.now.getTime() / 1000;
      assert.equal(text, JSON.stringify({ ...claims, iss: 'https://a.example', iat, nbf: iat, exp: iat + 600, jti, 'x-ms-ver': '1.0' }));
      if (!signed) assert.equal(t.split('.')[0], Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url'));
    }
  }
  // Times that are not whole seconds written as JSON writes them.
  const odd = decodeJws(await issueToken(markVerified({ a: 1 }), 'https://a.example', signer, { now: times.now, lifetimeSeconds: 0.5 }));
  assert.equal(odd.payload.exp, (odd.payload.iat as number) + 0.5);
});
