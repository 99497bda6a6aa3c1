/**
 * Bearer tokens go through the one token verifier (core/jwt.ts): the server refuses what the SDK refuses.
 * The same four forgeries as src/sdk/token.test.ts (no exp, crit, an RSA key under ES256, wrong aud),
 * against our own access tokens and an external OIDC issuer's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { signJws } from '../core/jwt.js';
import type { ClientStore } from '../storage/client-store.js';
import { ACCESS_TOKEN_AUDIENCE, createAuthenticator, type ExternalIssuer } from './auth.js';
import type { ServiceKey } from '../hsm/service-keys.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../core/keygen.js';

const ISSUER = 'https://conclave.test';
const EXT = 'https://idp.test';
const NOW = 1_750_000_000;
const es = generateEcKeyPair('P-256');
const rsa = generateRsaKeyPair(2048);
const key = { name: 'access-token', alg: 'ES256', privateKey: es.privateKey, publicKey: es.publicKey, certDer: new Uint8Array(), kid: 'k1' } as ServiceKey;
const db = { get: async (id: string) => (id === 'client-1' ? { displayName: 'one', secretSha256: 'x' } : undefined), add: async () => {}, remove: async () => {} } satisfies ClientStore;
const extKeys = { keys: [{ ...(es.publicKey.export({ format: 'jwk' }) as { kty: string }), kid: 'ek' }, { ...(rsa.publicKey.export({ format: 'jwk' }) as { kty: string }), kid: 'rk' }] };
const external: ExternalIssuer = { issuer: EXT, audience: 'api://conclave', adminSubjects: [], getJwks: async () => extKeys };
const auth = createAuthenticator(db, key, () => ISSUER, () => undefined, external);

const own = (c: Record<string, unknown> = {}, h: Record<string, unknown> = {}) =>
  signJws({ alg: 'ES256', typ: 'JWT', kid: 'k1', ...h }, { iss: ISSUER, sub: 'client-1', aud: ACCESS_TOKEN_AUDIENCE, iat: NOW, nbf: NOW, exp: NOW + 3600, ...c }, es.privateKey);
const ext = (c: Record<string, unknown> = {}, h: Record<string, unknown> = {}) =>
  signJws({ alg: 'ES256', typ: 'JWT', kid: 'ek', ...h }, { iss: EXT, sub: 'user-1', aud: 'api://conclave', iat: NOW, nbf: NOW, exp: NOW + 3600, ...c }, es.privateKey);

async function refused(token: string, reason: string) {
  await assert.rejects(auth.authenticate(`Bearer ${token}`, NOW), (e) => {
    assert.ok(isConclaveError(e, 'auth.unauthenticated'), String(e));
    assert.equal((e.detail as { reason?: string } | undefined)?.reason, reason, e.message);
    return true;
  });
}

describe('bearer tokens (one verifier with the SDK)', () => {
  test('valid own and external tokens authenticate', async () => {
    assert.equal((await auth.authenticate(`Bearer ${own()}`, NOW)).id, 'client-1');
    assert.equal((await auth.authenticate(`Bearer ${ext()}`, NOW)).id, `${EXT}#user-1`);
  });

  for (const [name, make] of [['own access token', own], ['external OIDC token', ext]] as const) {
    test(`${name}: without exp → refused`, () => refused(make({ exp: undefined }), 'malformed'));
    test(`${name}: with crit → refused`, () => refused(make({}, { crit: ['exp'] }), 'crit_not_understood'));
    test(`${name}: wrong aud → refused`, () => refused(make({ aud: 'someone-else' }), 'wrong_audience'));
  }

  test('own access token: an RSA key under ES256 → refused', async () => {
    const rsaKeyed = createAuthenticator(db, { ...key, publicKey: rsa.publicKey }, () => ISSUER, () => undefined);
    await assert.rejects(rsaKeyed.authenticate(`Bearer ${own()}`, NOW), (e) => isConclaveError(e, 'auth.unauthenticated') && (e.detail as { reason: string }).reason === 'key_alg_mismatch');
  });

  test('external OIDC token: an RSA key (its kid) under ES256 → refused', () => refused(ext({}, { kid: 'rk' }), 'key_alg_mismatch'));

  // Issue #14 item 9: access tokens' aud was not checked; any token our key signed was a bearer token.
  test('regression: a token signed by the access-token key without our aud is not a bearer token', () => refused(own({ aud: undefined }), 'wrong_audience'));
});

describe('verified access tokens are remembered (#20), never beyond what a full verification accepts', () => {
  /** A key whose kid is read once per signature verification: the count of full verifications. */
  function countingAuth(iss = () => ISSUER) {
    let verifications = 0;
    const counted = {
      ...key,
      get kid() {
        verifications++;
        return 'k1';
      },
    } as ServiceKey;
    return { auth: createAuthenticator(db, counted, iss, () => undefined), count: () => verifications };
  }

  test('the same token is verified once and then recognised by its exact text', async () => {
    const { auth: a, count } = countingAuth();
    const token = own();
    for (let i = 0; i < 5; i++) assert.equal((await a.authenticate(`Bearer ${token}`, NOW + i)).id, 'client-1');
    assert.equal(count(), 1);
  });

  test('a remembered token still expires', async () => {
    const { auth: a } = countingAuth();
    const token = own({ exp: NOW + 60 });
    assert.equal((await a.authenticate(`Bearer ${token}`, NOW)).id, 'client-1');
    await assert.rejects(a.authenticate(`Bearer ${token}`, NOW + 61 + 600), (e) => isConclaveError(e, 'auth.unauthenticated') && (e.detail as { reason: string }).reason === 'expired');
  });

  test('after the real token was remembered, the same claims with another signature are refused', async () => {
    const { auth: a } = countingAuth();
    const token = own();
    await a.authenticate(`Bearer ${token}`, NOW);
    const [h, p, sig] = token.split('.');
    const other = Buffer.from(sig!, 'base64url');
    other[5]! ^= 1;
    await assert.rejects(a.authenticate(`Bearer ${h}.${p}.${other.toString('base64url')}`, NOW), (e) => isConclaveError(e, 'auth.unauthenticated') && (e.detail as { reason: string }).reason === 'bad_signature');
  });

  test('a remembered token is not accepted once the server answers under another issuer name', async () => {
    let name = ISSUER;
    const { auth: a } = countingAuth(() => name);
    const token = own();
    await a.authenticate(`Bearer ${token}`, NOW);
    name = 'https://renamed.test';
    await assert.rejects(a.authenticate(`Bearer ${token}`, NOW), (e) => isConclaveError(e, 'auth.unauthenticated'));
  });
});
