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
