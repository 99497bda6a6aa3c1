import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { isConclaveError } from '../../core/errors.js';
import { readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import type { JsonWebKeySet } from './ports.js';
import { DEFAULT_CLOCK_SKEW_SECONDS, publicKeyOfJwk, type TargetTokenFailure, verifyTargetToken } from './target-token.js';
import { createFakeAuthority, type FakeAuthority, fakeJwksPort, signJws } from './testing.js';
import { generateEcKeyPair } from '../../core/keygen.js';

const ISSUER = 'https://maa.example.test';
const IAT = 1_734_719_094;
const AT = new Date((IAT + 3600) * 1000);
const claims = { iat: IAT, nbf: IAT, exp: IAT + 28_800, 'x-ms-attestation-type': 'sevsnpvm' };

async function expectRejected(p: Promise<unknown>, reason: TargetTokenFailure): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isConclaveError(e, 'release.token_invalid'), String(e));
    assert.equal(e.detail?.reason, reason, e.message);
    return true;
  });
}

describe('verifyTargetToken', () => {
  let maa: FakeAuthority;
  let attacker: FakeAuthority;
  let jwks: JsonWebKeySet;

  before(async () => {
    maa = await createFakeAuthority(ISSUER, { kid: 'maa-key-1' });
    attacker = await createFakeAuthority('https://attacker.example', { kid: 'maa-key-1' });
    jwks = { keys: [maa.jwk] };
  });

  const opts = (sets: Record<string, JsonWebKeySet> = { [ISSUER]: jwks }) => ({ trustedAuthorities: [`${ISSUER}/`], getJwks: fakeJwksPort(sets), at: AT });

  test('a good token passes and yields header, claims and issuer', async () => {
    const o = opts();
    const v = await verifyTargetToken(maa.token(claims), o);
    assert.equal(v.issuer, ISSUER);
    assert.equal(v.authority, `${ISSUER}/`);
    assert.equal(v.claims['x-ms-attestation-type'], 'sevsnpvm');
    assert.equal(v.header.kid, 'maa-key-1');
    // The port is asked for the trusted authority as configured, without a forced refresh.
    assert.deepEqual(o.getJwks.calls, [{ issuer: `${ISSUER}/`, forceRefresh: false }]);
  });

  for (const alg of ['PS256', 'ES256', 'ES384'] as const) {
    test(`${alg} tokens verify`, async () => {
      const a = await createFakeAuthority(ISSUER, { alg, kid: `k-${alg}` });
      const v = await verifyTargetToken(a.token(claims), opts({ [ISSUER]: { keys: [a.jwk] } }));
      assert.equal(v.header.alg, alg);
    });
  }

  test('a JWKS entry with only x5c (MAA /certs) is read from its certificate', async () => {
    const a = await createFakeAuthority(ISSUER, { kid: 'x5c-only', x5cOnly: true });
    assert.equal(a.jwk.n, undefined);
    const v = await verifyTargetToken(a.token(claims), opts({ [ISSUER]: { keys: [a.jwk] } }));
    assert.equal(v.header.kid, 'x5c-only');
  });

  test('an untrusted issuer is refused before any key is fetched', async () => {
    const o = opts();
    await expectRejected(verifyTargetToken(attacker.token(claims), o), 'untrusted_issuer');
    assert.equal(o.getJwks.calls.length, 0);
    await expectRejected(verifyTargetToken(maa.token({ ...claims, iss: undefined }), opts()), 'untrusted_issuer');
    await expectRejected(verifyTargetToken(maa.token({ ...claims, iss: 'https://maa.example.test.evil' }), opts()), 'untrusted_issuer');
  });

  test('a forged signature is refused', async () => {
    const good = maa.token(claims);
    const [h, , s] = good.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ iss: ISSUER, ...claims, 'x-ms-attestation-type': 'tdxvm' })).toString('base64url')}.${s}`;
    await expectRejected(verifyTargetToken(tampered, opts()), 'bad_signature');
  });

  test('alg none is refused', async () => {
    await expectRejected(verifyTargetToken(signJws({ alg: 'none', kid: maa.kid }, { iss: ISSUER, ...claims }, ''), opts()), 'alg_not_allowed');
  });

  test('HS256 keyed with the authority public key is refused', async () => {
    const pem = maa.publicKey.export({ format: 'pem', type: 'spki' }) as string;
    const hs = signJws({ alg: 'HS256', kid: maa.kid }, { iss: ISSUER, ...claims }, pem);
    await expectRejected(verifyTargetToken(hs, opts()), 'alg_not_allowed');
  });

  test('an unknown kid triggers one forced refresh, then fails', async () => {
    const o = opts();
    await expectRejected(verifyTargetToken(maa.token(claims, { kid: 'rotated-away' }), o), 'unknown_kid');
    assert.deepEqual(o.getJwks.calls, [
      { issuer: `${ISSUER}/`, forceRefresh: false },
      { issuer: `${ISSUER}/`, forceRefresh: true },
    ]);
  });

  test('a key published after rotation is found by the refresh', async () => {
    const rotated = await createFakeAuthority(ISSUER, { kid: 'new-key' });
    const getJwks = fakeJwksPort({ [ISSUER]: (force) => ({ keys: force ? [maa.jwk, rotated.jwk] : [maa.jwk] }) });
    const v = await verifyTargetToken(rotated.token(claims), { trustedAuthorities: [ISSUER], getJwks, at: AT });
    assert.equal(v.header.kid, 'new-key');
    assert.equal(getJwks.calls.length, 2);
  });

  test('a jku (or x5c/jwk) header naming the attacker keys is ignored', async () => {
    const o = opts({ [ISSUER]: jwks, 'https://attacker.example': { keys: [attacker.jwk] } });
    const forged = attacker.token(
      { ...claims, iss: ISSUER },
      { jku: 'https://attacker.example/certs', x5c: attacker.jwk.x5c, jwk: attacker.publicKey.export({ format: 'jwk' }) },
    );
    await expectRejected(verifyTargetToken(forged, o), 'bad_signature');
    assert.ok(o.getJwks.calls.every((c) => c.issuer === `${ISSUER}/`));
  });

  test('expiry and not-before are enforced with a small skew', async () => {
    const exp = IAT + 100;
    const token = maa.token({ ...claims, exp });
    const atSeconds = (s: number) => ({ ...opts(), at: new Date(s * 1000) });
    await verifyTargetToken(token, atSeconds(exp + DEFAULT_CLOCK_SKEW_SECONDS));
    await expectRejected(verifyTargetToken(token, atSeconds(exp + DEFAULT_CLOCK_SKEW_SECONDS + 1)), 'expired');
    await expectRejected(verifyTargetToken(token, { ...atSeconds(exp + 10), clockSkewSeconds: 0 }), 'expired');
    await verifyTargetToken(token, atSeconds(IAT - DEFAULT_CLOCK_SKEW_SECONDS));
    await expectRejected(verifyTargetToken(token, atSeconds(IAT - DEFAULT_CLOCK_SKEW_SECONDS - 1)), 'not_yet_valid');
  });

  test('malformed tokens are refused', async () => {
    await expectRejected(verifyTargetToken('abc.def', opts()), 'malformed');
    await expectRejected(verifyTargetToken('e30.e30.e30.e30', opts()), 'malformed');
    await expectRejected(verifyTargetToken(`${Buffer.from('not json').toString('base64url')}.e30.`, opts()), 'malformed');
    await expectRejected(verifyTargetToken(maa.token({ ...claims, exp: undefined }), opts()), 'malformed');
    await expectRejected(verifyTargetToken(maa.token({ ...claims, exp: 'tomorrow' }), opts()), 'malformed');
    await expectRejected(verifyTargetToken(maa.token(claims, { crit: ['b64'] }), opts()), 'crit_not_understood');
  });

  test('a key of the wrong type for the alg does not verify', async () => {
    const { publicKey } = generateEcKeyPair('P-256');
    const ecJwk = { ...(publicKey.export({ format: 'jwk' }) as { kty: string }), kid: maa.kid };
    await expectRejected(verifyTargetToken(maa.token(claims), opts({ [ISSUER]: { keys: [ecJwk] } })), 'key_alg_mismatch');
  });
});

describe('publicKeyOfJwk (the authority keys)', () => {
  test('a certificate-only JWK whose x5c array is changed in place gives the key of its new first certificate', async () => {
    const a = await createFakeAuthority(ISSUER, { x5cOnly: true });
    const b = await createFakeAuthority(ISSUER, { x5cOnly: true });
    const x5c = [...(a.jwk.x5c as string[])];
    const jwk = { kty: 'RSA', kid: a.kid, x5c };
    assert.ok(publicKeyOfJwk(jwk, ISSUER)?.equals(a.publicKey));
    assert.ok(publicKeyOfJwk(jwk, ISSUER)?.equals(a.publicKey));
    x5c[0] = (b.jwk.x5c as string[])[0]!;
    assert.ok(publicKeyOfJwk(jwk, ISSUER)?.equals(b.publicKey));
  });
});

describe('verifyTargetToken with real MAA artefacts', { skip: skipWithoutFixtures() }, () => {
  test('the /certs example key (x5c only) loads as an RSA-2048 public key', () => {
    const certs = readFixtureJson<JsonWebKeySet>('maa-claims', 'maa-certs.spec-example-2025-06-01.json');
    const key = publicKeyOfJwk({ kid: certs.keys[0]?.kid, kty: 'RSA', x5c: certs.keys[0]?.x5c });
    assert.equal(key?.asymmetricKeyDetails?.modulusLength, 2048);
  });

  test('the real AzureGuest token is refused when its issuer does not publish its kid', async () => {
    const jwt = readFixtureText('maa-claims', 'azurevm-sevsnp-sharedeus2-2024-12.jwt').trim();
    const certs = readFixtureJson<JsonWebKeySet>('maa-claims', 'maa-certs.spec-example-2025-06-01.json');
    const getJwks = fakeJwksPort({ 'https://sharedeus2.eus2.attest.azure.net/': certs });
    await expectRejected(
      verifyTargetToken(jwt, { trustedAuthorities: ['https://sharedeus2.eus2.attest.azure.net/'], getJwks, at: new Date(1_734_720_000_000) }),
      'unknown_kid',
    );
    assert.equal(getJwks.calls.length, 2);
  });
});
