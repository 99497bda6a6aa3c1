/**
 * The SDK verifies attestation tokens with the one token verifier (core/jwt.ts): the same four forgeries
 * as src/server/auth.test.ts (no exp, crit, an RSA key under ES256, wrong aud) are refused here too.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { signJws } from '../core/jwt.js';
import { verifyAttestationToken } from './token.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../core/keygen.js';

const ISSUER = 'https://maa.test';
const AT = new Date('2025-06-01T00:00:00Z');
const NOW = AT.getTime() / 1000;
const es = generateEcKeyPair('P-256');
const rsa = generateRsaKeyPair(2048);
const jwks = { keys: [{ ...(es.publicKey.export({ format: 'jwk' }) as { kty: string }), kid: 'ek' }, { ...(rsa.publicKey.export({ format: 'jwk' }) as { kty: string }), kid: 'rk' }] };
const token = (c: Record<string, unknown> = {}, h: Record<string, unknown> = {}) =>
  signJws({ alg: 'ES256', typ: 'JWT', kid: 'ek', ...h }, { iss: ISSUER, aud: 'relying-party', iat: NOW, nbf: NOW, exp: NOW + 3600, 'x-ms-ver': '1.0', ...c }, es.privateKey);
const verify = (t: string) => verifyAttestationToken(t, { issuer: ISSUER, audience: 'relying-party', jwks, at: AT });

async function refused(t: string, reason: string) {
  await assert.rejects(verify(t), (e) => {
    assert.ok(isConclaveError(e, 'sdk.token_invalid'), String(e));
    assert.equal((e.detail as { reason?: string }).reason, reason, e.message);
    return true;
  });
}

describe('SDK verifyAttestationToken', () => {
  test('a valid token verifies', async () => assert.equal((await verify(token())).claims['x-ms-ver'], '1.0'));
  test('without exp → refused', () => refused(token({ exp: undefined }), 'malformed'));
  test('with crit → refused', () => refused(token({}, { crit: ['exp'] }), 'crit_not_understood'));
  test('an RSA key under ES256 → refused', () => refused(token({}, { kid: 'rk' }), 'key_alg_mismatch'));
  test('wrong aud → refused', () => refused(token({ aud: 'someone-else' }), 'wrong_audience'));
  test('another issuer → refused', () => refused(token({ iss: 'https://evil.test' }), 'untrusted_issuer'));
  test('without an audience option, aud is not required (MAA tokens carry none)', async () => {
    await verifyAttestationToken(token({ aud: undefined }), { issuer: ISSUER, jwks, at: AT });
  });
  // A token minted from the simulated TEE (a `--simulate` attestation service) is refused unless the
  // caller opts in, as a vault without --simulate refuses it (release.token_invalid, reason simulated).
  // An invalid skew must not switch the lifetime checks off (NaN compares false with everything).
  test('an expired token with a skewSeconds that is not a number → refused, never accepted', async () => {
    const expired = token({ iat: NOW - 7200, nbf: NOW - 7200, exp: NOW - 3600 });
    for (const skewSeconds of [Number.NaN, 'sixty' as unknown as number]) {
      await assert.rejects(verifyAttestationToken(expired, { issuer: ISSUER, jwks, at: AT, skewSeconds }), (e) => isConclaveError(e, 'request.invalid'), String(skewSeconds));
    }
    await refused(expired, 'expired');
  });
  test('a token from simulated evidence (x-conclave-simulated) → refused unless allowSimulated', async () => {
    await refused(token({ 'x-conclave-simulated': true }), 'simulated');
    await refused(token({ 'x-conclave-simulated': false }), 'simulated');
    const v = await verifyAttestationToken(token({ 'x-conclave-simulated': true }), { issuer: ISSUER, audience: 'relying-party', jwks, at: AT, allowSimulated: true });
    assert.equal(v.claims['x-conclave-simulated'], true);
  });
});
