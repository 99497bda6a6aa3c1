import assert from 'node:assert/strict';
import { createHash, sign, verify, X509Certificate } from 'node:crypto';
import { describe, test } from 'node:test';
import { readFixtureJson, skipWithoutFixtures } from '../../../test/fixtures.js';
import { unwrapKeyTransfer, wrapKeyForTransfer } from './key-transfer.js';
import { buildReleaseResponse, decodeReleaseResponse, type ReleaseResponseInput, releaseAnswerJson, releasePayloadAround, releaseResponsePayload } from './release-jws.js';
import { createFakeAuthority } from './testing.js';
import { generateRsaKeyPair } from '../../core/keygen.js';

interface FixtureValue {
  attributes: Record<string, unknown>;
  key: Record<string, unknown>;
  release_policy: Record<string, unknown>;
}

const target = generateRsaKeyPair(2048);
const kid = 'https://myvault.vault.azure.net/keys/exportable-aes-key/4eb68492b5f6421e835d961ad2be3155';

function input(keyHsm: string): ReleaseResponseInput {
  return {
    apiVersion: '7.4',
    enc: 'RSA_AES_KEY_WRAP_256',
    kid,
    nonce: 'ADE0101',
    keyJwk: { key_ops: ['decrypt', 'encrypt'], kid, kty: 'oct', key_hsm: keyHsm },
    attributes: { created: 1587425174, enabled: true, exportable: true, recoverableDays: 90, recoveryLevel: 'Recoverable+Purgeable', updated: 1587425174 },
    releasePolicy: { contentType: 'application/json; charset=utf-8', data: 'eyJ2ZXJzaW9uIjoiMS4wLjAifQ' },
  };
}

describe('buildReleaseResponse', () => {
  test('an RS256 JWS with alg, kid, x5c, x5t#S256 whose signature verifies with x5c[0]', async () => {
    const vault = await createFakeAuthority('https://myvault.vault.azure.net');
    const material = new Uint8Array(32).fill(9);
    const keyHsm = wrapKeyForTransfer(material, target.publicKey, 'RSA_AES_KEY_WRAP_256');
    const jws = await buildReleaseResponse(input(keyHsm), {
      sign: (data) => sign('sha256', data, vault.privateKey),
      certificateChainDer: [vault.certificateDer],
    });
    const [h, p, s] = jws.split('.') as [string, string, string];
    assert.ok([h, p, s].every((seg) => /^[A-Za-z0-9_-]+$/.test(seg)), 'unpadded base64url segments');
    const { header, payload } = decodeReleaseResponse(jws);
    assert.deepEqual(Object.keys(header), ['alg', 'kid', 'x5c', 'x5t#S256']);
    assert.equal(header.alg, 'RS256');
    const leaf = Buffer.from((header.x5c as string[])[0] ?? '', 'base64');
    assert.deepEqual(new Uint8Array(leaf), vault.certificateDer);
    assert.equal(header['x5t#S256'], createHash('sha256').update(leaf).digest('base64url'));
    assert.equal(header.kid, header['x5t#S256']);
    assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), new X509Certificate(leaf).publicKey, Buffer.from(s, 'base64url')));
    assert.deepEqual(payload.request, { 'api-version': '7.4', enc: 'RSA_AES_KEY_WRAP_256', kid, nonce: 'ADE0101' });
    assert.deepEqual(unwrapKeyTransfer(payload.response.key.key.key_hsm, target.privateKey, payload.request.enc), material);
  });

  test('a signer kid is used as the header kid; no nonce means no request.nonce', async () => {
    const vault = await createFakeAuthority('https://myvault.vault.azure.net');
    const { nonce: _omit, ...noNonce } = input('AA');
    const jws = await buildReleaseResponse(noNonce, { sign: async (d) => sign('sha256', d, vault.privateKey), certificateChainDer: [vault.certificateDer], kid: 'release-signer' });
    const { header, payload } = decodeReleaseResponse(jws);
    assert.equal(header.kid, 'release-signer');
    assert.deepEqual(Object.keys(payload.request), ['api-version', 'enc', 'kid']);
  });

  test('an empty certificate chain is a configuration error', async () => {
    await assert.rejects(buildReleaseResponse(input('AA'), { sign: () => new Uint8Array(), certificateChainDer: [] }), { code: 'config.invalid' });
  });

  test('the payload has the key set and nesting of the swagger release example', { skip: skipWithoutFixtures() }, async () => {
    const fixture = readFixtureJson<FixtureValue>('akv-release', 'specs-7.4-release-example.response-value.decoded.json');
    const vault = await createFakeAuthority('https://myvault.vault.azure.net');
    const jws = await buildReleaseResponse(
      { ...input(fixture.key.key_hsm as string), attributes: fixture.attributes, releasePolicy: fixture.release_policy },
      { sign: (d) => sign('sha256', d, vault.privateKey), certificateChainDer: [vault.certificateDer] },
    );
    const released = decodeReleaseResponse(jws).payload.response.key;
    const shape = (v: unknown): unknown =>
      typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]).sort()) : typeof v;
    assert.deepEqual(shape(released), shape(fixture));
    assert.deepEqual(Object.keys(released), Object.keys(fixture));
  });
});

test('releaseAnswerJson is the JSON.stringify text of the answer, the audit entry escaped', () => {
  const entry = JSON.stringify({ detail: { note: 'quote " backslash \\ newline \n tab \t nul \u0000 é 😀 \u2028' }, operation: 'release' });
  const answer = { value: 'eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln-_' as never, 'x-conclave-log': { leafHash: 'ab'.repeat(32), entry } };
  const text = releaseAnswerJson(answer);
  assert.equal(text, JSON.stringify(answer));
  assert.deepEqual(JSON.parse(text), answer);
});

test('releasePayloadAround: before + key_hsm + after is the JSON.stringify text of the payload with that key_hsm', () => {
  const hsm = ['AA', 'eyJzY2hlbWFfdmVyc2lvbiI6IjEuMC4wIn0', 'a_b-c'.repeat(400)];
  const nonces = [undefined, '', 'ADE0101', 'quote " backslash \\ nl \n nul \u0000 é 😀 \u2028 lone \ud800', '","key_hsm":"x'];
  const jwks: Array<Record<string, unknown>> = [
    { key_ops: ['decrypt', 'encrypt'], kid, kty: 'oct' },
    { kid, kty: 'RSA', n: 'AQAB'.repeat(64), e: 'AQAB', key_ops: ['wrapKey'], dropped: undefined },
    { kid: 'k "quoted"', kty: 'EC-HSM', crv: 'P-256', x: 'xx', y: 'yy', '1': 'integer-like member first' },
    {},
  ];
  for (const nonce of nonces) {
    for (const jwk of jwks) {
      const { keyJwk: _k, nonce: _n, ...rest } = input('AA');
      const base = { ...rest, ...(nonce === undefined ? {} : { nonce }), releasePolicy: { contentType: 'application/json; charset=utf-8', data: 'e30', immutable: true } };
      const [before, after] = releasePayloadAround({ ...base, keyJwk: jwk });
      for (const keyHsm of hsm) {
        assert.equal(`${before}${keyHsm}${after}`, JSON.stringify(releaseResponsePayload({ ...base, keyJwk: { ...jwk, key_hsm: keyHsm } as never })));
      }
    }
  }
  // A JWK that already names key_hsm would put the member elsewhere: refused.
  const { keyJwk: _k, ...rest } = input('AA');
  assert.throws(() => releasePayloadAround({ ...rest, keyJwk: { kid, kty: 'oct', key_hsm: 'x' } }), { code: 'internal' });
});
