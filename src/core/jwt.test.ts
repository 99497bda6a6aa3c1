import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { b64url } from './bytes.js';
import { isConclaveError } from './errors.js';
import { MAX_JSON_DEPTH } from './json.js';
import { decodeJws, jwksCandidates, type JwtFailure, type JwtUse, type PublicJwk, publicKeyOfJwk, signJws, verifyJwt } from './jwt.js';
import { generateEcKeyPair, generateRsaKeyPair } from './keygen.js';

const ISS = 'https://issuer.example';
const AT = new Date('2025-01-01T00:00:00Z');
const NOW = AT.getTime() / 1000;
const ec = generateEcKeyPair('P-256');
const ec384 = generateEcKeyPair('P-384');
const rsa = generateRsaKeyPair(2048);

function use(keys: KeyObject[] = [ec.publicKey], over: Partial<JwtUse> = {}): JwtUse {
  return {
    what: 'test token',
    errorCode: 'auth.unauthenticated',
    algorithms: ['ES256', 'RS256'],
    issuer: (iss) => (iss === ISS ? ISS : undefined),
    audience: 'me',
    types: ['JWT'],
    keys: () => keys,
    ...over,
  };
}
const claims = { iss: ISS, aud: 'me', sub: 's', iat: NOW, nbf: NOW, exp: NOW + 600 };
const es256 = (c: Record<string, unknown> = {}, h: Record<string, unknown> = {}) => signJws({ alg: 'ES256', typ: 'JWT', kid: 'k', ...h }, { ...claims, ...c }, ec.privateKey);

async function refused(token: string, reason: JwtFailure, u: JwtUse = use()) {
  await assert.rejects(verifyJwt(token, u, AT), (e) => {
    assert.ok(isConclaveError(e, 'auth.unauthenticated'), String(e));
    assert.equal((e.detail as { reason?: string }).reason, reason, e.message);
    return true;
  });
}

describe('verifyJwt (the one token verifier)', () => {
  test('a well-formed token verifies and names the configured issuer', async () => {
    const v = await verifyJwt(es256(), use(), AT);
    assert.equal(v.issuer, ISS);
    assert.equal(v.claims.sub, 's');
  });

  test('exp is required, and exp/nbf/iat are NumericDates checked with a bounded skew', async () => {
    await refused(es256({ exp: undefined }), 'malformed');
    await refused(es256({ exp: '2099' }), 'malformed');
    await refused(es256({ exp: NOW - 61 }), 'expired');
    await refused(es256({ nbf: NOW + 61 }), 'not_yet_valid');
    await refused(es256({ iat: NOW + 61 }), 'issued_in_future');
    // a use cannot stretch the skew into a longer lifetime
    await refused(es256({ exp: NOW - 3600 }), 'expired', use(undefined, { clockSkewSeconds: 86400 }));
  });

  test('an invalid verification time (new Date(NaN)) fails closed: an expired token does not pass', async () => {
    // NaN compares false both ways: `now > exp + skew` never refused, so any signed token, however old, passed.
    for (const token of [es256(), es256({ exp: NOW - 3600 * 24 * 365 }), es256({ nbf: NOW + 3600 })]) {
      await assert.rejects(verifyJwt(token, use(), new Date(Number.NaN)), (e) => isConclaveError(e, 'request.invalid'));
    }
  });

  test('crit is refused unless the use understands every listed parameter (RFC 7515 §4.1.11)', async () => {
    await refused(es256({}, { crit: ['exp'] }), 'crit_not_understood');
    await refused(es256({}, { crit: [] }), 'crit_not_understood');
    await refused(es256({}, { crit: ['x-ours'] }), 'crit_not_understood', use(undefined, { understoodCritical: ['x-ours'] }));
    await verifyJwt(es256({}, { crit: ['x-ours'], 'x-ours': 1 }), use(undefined, { understoodCritical: ['x-ours'] }), AT);
  });

  test('the key must be of the type and curve the algorithm binds', async () => {
    await refused(es256(), 'key_alg_mismatch', use([rsa.publicKey]));
    await refused(es256(), 'key_alg_mismatch', use([ec384.publicKey]));
    const rs = signJws({ alg: 'RS256', typ: 'JWT' }, claims, rsa.privateKey);
    await refused(rs, 'key_alg_mismatch', use([ec.publicKey]));
    await verifyJwt(rs, use([rsa.publicKey]), AT);
  });

  test('algorithm allow-list per use; none and HMAC never', async () => {
    await refused(signJws({ alg: 'ES384', typ: 'JWT' }, claims, ec384.privateKey), 'alg_not_allowed', use([ec384.publicKey]));
    const none = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.`;
    await refused(none, 'alg_not_allowed', use(undefined, { algorithms: ['ES256', 'none' as 'ES256'] }));
  });

  test('iss, aud and typ per use', async () => {
    await refused(es256({ iss: 'https://other.example' }), 'untrusted_issuer');
    await refused(es256({ iss: undefined }), 'untrusted_issuer');
    await refused(es256({ aud: 'someone-else' }), 'wrong_audience');
    await refused(es256({ aud: undefined }), 'wrong_audience');
    await verifyJwt(es256({ aud: ['x', 'me'] }), use(), AT);
    await verifyJwt(es256({ aud: undefined }), use(undefined, { audience: null }), AT);
    await refused(es256({}, { typ: 'at+jwt' }), 'wrong_type');
    await refused(es256({}, { typ: undefined }), 'wrong_type');
    await verifyJwt(es256({}, { typ: 'application/jwt' }), use(), AT);
  });

  test('keys come only from the use: a jwk/x5c/jku header naming the signer is ignored', async () => {
    const evil = generateEcKeyPair('P-256');
    const t = signJws({ alg: 'ES256', typ: 'JWT', jwk: evil.publicKey.export({ format: 'jwk' }), jku: 'https://evil.example/keys' }, claims, evil.privateKey);
    await refused(t, 'bad_signature');
    await refused(es256(), 'unknown_kid', use([]));
  });

  test('the key lookup is retried once with refresh when it finds nothing', async () => {
    const calls: boolean[] = [];
    await verifyJwt(
      es256(),
      use(undefined, {
        keys: ({ refresh }) => {
          calls.push(refresh);
          return refresh ? [ec.publicKey] : [];
        },
      }),
      AT,
    );
    assert.deepEqual(calls, [false, true]);
  });

  test('malformed encodings are refused: invalid UTF-8, non-canonical base64url, not three parts', async () => {
    const [, p, s] = es256().split('.');
    const badUtf8 = Buffer.concat([Buffer.from('{"alg":"ES256","typ":"JWT","x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    await refused(`${badUtf8.toString('base64url')}.${p}.${s}`, 'malformed');
    const t = es256();
    const sig = t.split('.')[2]!;
    // The last character of a 64-byte signature carries 4 unused bits: flipping them is a different string, same bytes.
    const last = sig.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
    await refused(`${t.slice(0, -1)}${twin}`, 'malformed');
    await refused(`${t}.x`, 'malformed');
    await refused('a.b', 'malformed');
  });
});

describe('decodeJws', () => {
  const part = (text: string) => Buffer.from(text).toString('base64url');
  test('a header or payload nested deeper than MAX_JSON_DEPTH is refused naming the part, however deep (no stack overflow)', () => {
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    assert.doesNotThrow(() => decodeJws(`${part('{"alg":"none"}')}.${part(deep(MAX_JSON_DEPTH))}.c2ln`));
    for (const n of [MAX_JSON_DEPTH + 1, 200_000]) {
      for (const [token, what] of [
        [`${part('{"alg":"none"}')}.${part(deep(n))}.c2ln`, 'JWS payload'],
        [`${part(deep(n))}.${part('{}')}.c2ln`, 'JWS header'],
      ] as const) {
        assert.throws(
          () => decodeJws(token),
          (e: unknown) => isConclaveError(e, 'request.invalid') && (e.detail as { part?: unknown }).part === what,
        );
      }
    }
  });
});

describe('publicKeyOfJwk', () => {
  test('the same JWK object gives its key again; a member changed in place since gives the key it now names', () => {
    const other = generateRsaKeyPair(2048);
    const jwk: Record<string, unknown> & { kty: string } = { ...(rsa.publicKey.export({ format: 'jwk' }) as { kty: string }), kid: 'k1' };
    const first = publicKeyOfJwk(jwk, ISS);
    assert.ok(first?.equals(rsa.publicKey));
    assert.equal(publicKeyOfJwk(jwk, ISS), first, 'the remembered key');
    // The issuer's JWKS object rewritten in place (another modulus under the same object): never the old key.
    jwk.n = (other.publicKey.export({ format: 'jwk' }) as { n: string }).n;
    assert.ok(publicKeyOfJwk(jwk, ISS)?.equals(other.publicKey));
    // Unreadable stays unreadable, and a JWK made readable in place is read.
    const broken: Record<string, unknown> & { kty: string } = { kty: 'RSA', n: jwk.n };
    assert.equal(publicKeyOfJwk(broken, ISS), null);
    broken.e = 'AQAB';
    assert.ok(publicKeyOfJwk(broken, ISS)?.equals(other.publicKey));
  });
});

describe('jwksCandidates', () => {
  test('entries of a JWKS that are not objects are passed over, not a crash (a string, a number, null)', () => {
    const good = { ...(rsa.publicKey.export({ format: 'jwk' }) as { kty: string }), kid: 'good' };
    for (const kid of [undefined, 'good']) {
      const keys = jwksCandidates(['not a key', 7, null, good] as unknown as PublicJwk[], kid, 'RS256', ISS);
      assert.equal(keys.length, 1, `kid ${kid}`);
      assert.ok(keys[0]!.equals(rsa.publicKey));
    }
  });
});
