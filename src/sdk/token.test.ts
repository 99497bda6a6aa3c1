/**
 * The SDK verifies attestation tokens with the one token verifier (core/jwt.ts): the same four forgeries
 * as src/server/auth.test.ts (no exp, crit, an RSA key under ES256, wrong aud) are refused here too.
 */
import assert from 'node:assert/strict';
import { type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
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

/**
 * The JWKS comes from the issuer's own origin: OpenID metadata naming a `jwks_uri` elsewhere (another
 * host or port, plain http to a loopback listener any local process could hold) moves trust to an
 * origin the caller never configured, so it is refused before that origin is asked.
 */
describe('SDK verifyAttestationToken: the issuer metadata and its JWKS', () => {
  const attacker = generateEcKeyPair('P-256');
  const servers: Server[] = [];
  let issuer = '';
  let elsewhere = '';
  let elsewhereAsked = 0;
  let jwksUri = '';
  const listen = async (s: Server) => {
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  };
  const json = (res: ServerResponse, body: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  before(async () => {
    issuer = await listen(
      createServer((req, res) => {
        if (req.url === '/.well-known/openid-configuration') json(res, { issuer, jwks_uri: jwksUri });
        else json(res, jwks);
      }),
    );
    elsewhere = await listen(
      createServer((_req, res) => {
        elsewhereAsked += 1;
        json(res, { keys: [{ ...(attacker.publicKey.export({ format: 'jwk' }) as { kty: string }), kid: 'ek' }] });
      }),
    );
  });
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
  const forged = () => signJws({ alg: 'ES256', typ: 'JWT', kid: 'ek' }, { iss: issuer, iat: NOW, nbf: NOW, exp: NOW + 3600 }, attacker.privateKey);
  const honest = () => signJws({ alg: 'ES256', typ: 'JWT', kid: 'ek' }, { iss: issuer, iat: NOW, nbf: NOW, exp: NOW + 3600 }, es.privateKey);

  test('a jwks_uri on the issuer origin is fetched and verifies', async () => {
    jwksUri = `${issuer}/certs`;
    const v = await verifyAttestationToken(honest(), { issuer, at: AT });
    assert.equal(v.claims.iss, issuer);
  });

  test('a jwks_uri on another origin is refused, and that origin is never asked', async () => {
    elsewhereAsked = 0;
    for (const uri of [`${elsewhere}/certs`, `${elsewhere.replace('127.0.0.1', 'localhost')}/certs`]) {
      jwksUri = uri;
      await assert.rejects(verifyAttestationToken(forged(), { issuer, at: AT }), (e) => {
        assert.ok(isConclaveError(e, 'sdk.token_invalid'), String(e));
        assert.equal((e.detail as { reason?: string }).reason, 'untrusted_jwks_uri', e.message);
        return true;
      });
    }
    assert.equal(elsewhereAsked, 0);
  });
});
