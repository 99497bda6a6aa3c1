import assert from 'node:assert/strict';
import { createPrivateKey, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { isConclaveError } from '../../core/errors.js';
import { readFixtureJson, skipWithoutFixtures } from '../../../test/fixtures.js';
import {
  assembleTransferBlob,
  findWrappingKey,
  KEY_TRANSFER_ENCS,
  parseTransferBlob,
  selectWrappingKey,
  transferMaterialOf,
  unwrapKeyTransfer,
  wrapKeyForTransfer,
  wrapWithNodeCrypto,
} from './key-transfer.js';
import type { WrappedKeyParts } from './ports.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../../core/keygen.js';

const rsa2048 = generateRsaKeyPair(2048);
const rsa3072 = generateRsaKeyPair(3072);

const materials: Array<[string, Uint8Array, (m: Uint8Array) => void]> = [
  [
    'RSA-2048 PKCS#8',
    transferMaterialOf(generateRsaKeyPair(2048).privateKey),
    (m) => assert.equal(createPrivateKey({ key: Buffer.from(m), format: 'der', type: 'pkcs8' }).asymmetricKeyDetails?.modulusLength, 2048),
  ],
  [
    'EC P-384 PKCS#8',
    transferMaterialOf(generateEcKeyPair('P-384').privateKey),
    (m) => assert.equal(createPrivateKey({ key: Buffer.from(m), format: 'der', type: 'pkcs8' }).asymmetricKeyDetails?.namedCurve, 'secp384r1'),
  ],
  ['32-byte oct', transferMaterialOf(createSecretKey(randomBytes(32))), (m) => assert.equal(m.byteLength, 32)],
];

function runtimeJwk(key: KeyObject, extra: Record<string, unknown>): Record<string, unknown> {
  return { ...(key.export({ format: 'jwk' }) as Record<string, unknown>), ...extra };
}

function expectNoWrappingKey(claims: Record<string, unknown>): void {
  assert.throws(() => selectWrappingKey(claims), (e: unknown) => isConclaveError(e, 'release.no_wrapping_key'));
}

describe('wrapKeyForTransfer / unwrapKeyTransfer', () => {
  for (const enc of KEY_TRANSFER_ENCS) {
    for (const [targetName, target] of [
      ['RSA-2048', rsa2048],
      ['RSA-3072', rsa3072],
    ] as const) {
      for (const [name, material, check] of materials) {
        test(`${enc}, ${targetName} target, ${name}: round-trips`, () => {
          const keyHsm = wrapKeyForTransfer(material, target.publicKey, enc, { kid: 'TpmEphemeralEncryptionKey' });
          const out = unwrapKeyTransfer(keyHsm, target.privateKey);
          assert.deepEqual(out, material);
          check(out);
        });
      }
    }
  }

  test('key_hsm is base64url JSON {schema_version, header{kid, alg:dir, enc}, ciphertext, generator}', () => {
    const keyHsm = wrapKeyForTransfer(new Uint8Array(32).fill(7), rsa2048.publicKey, 'RSA_AES_KEY_WRAP_256', { kid: 'k1' });
    assert.match(keyHsm, /^[A-Za-z0-9_-]+$/);
    const blob = JSON.parse(Buffer.from(keyHsm, 'base64url').toString('utf8'));
    assert.deepEqual(Object.keys(blob), ['schema_version', 'header', 'ciphertext', 'generator']);
    assert.equal(blob.schema_version, '1.0.0');
    assert.deepEqual(blob.header, { kid: 'k1', alg: 'dir', enc: 'RSA_AES_KEY_WRAP_256' });
    // 256-byte RSA-OAEP KEK ‖ 40-byte RFC 5649 wrap of 32 bytes: the 296 bytes of the swagger example.
    assert.equal(Buffer.from(blob.ciphertext, 'base64url').byteLength, 296);
  });

  test('each transfer uses a fresh KEK', () => {
    const m = new Uint8Array(32);
    assert.notEqual(wrapKeyForTransfer(m, rsa2048.publicKey, 'CKM_RSA_AES_KEY_WRAP'), wrapKeyForTransfer(m, rsa2048.publicKey, 'CKM_RSA_AES_KEY_WRAP'));
  });

  test('the wrong private key, a wrong enc or a tampered wrap fail with key.crypto_failed', () => {
    const keyHsm = wrapKeyForTransfer(new Uint8Array(32).fill(1), rsa2048.publicKey, 'RSA_AES_KEY_WRAP_384');
    const other = generateRsaKeyPair(2048);
    assert.throws(() => unwrapKeyTransfer(keyHsm, other.privateKey), (e: unknown) => isConclaveError(e, 'key.crypto_failed'));
    const parts = wrapWithNodeCrypto(new Uint8Array(32).fill(1), rsa2048.publicKey, 'RSA_AES_KEY_WRAP_384') as WrappedKeyParts;
    const mislabelled = assembleTransferBlob(parts, { enc: 'RSA_AES_KEY_WRAP_256' });
    assert.throws(() => unwrapKeyTransfer(mislabelled, rsa2048.privateKey), (e: unknown) => isConclaveError(e, 'key.crypto_failed'));
    const flipped = new Uint8Array(parts.wrappedKey);
    flipped[3] = (flipped[3] ?? 0) ^ 1;
    const tampered = assembleTransferBlob({ wrappedKek: parts.wrappedKek, wrappedKey: flipped }, { enc: 'RSA_AES_KEY_WRAP_384' });
    assert.throws(() => unwrapKeyTransfer(tampered, rsa2048.privateKey), (e: unknown) => isConclaveError(e, 'key.crypto_failed'));
  });

  test('a blob assembled from externally wrapped parts (the PKCS#11 path) unwraps the same', async () => {
    const material = new Uint8Array(randomBytes(48));
    const parts = await wrapWithNodeCrypto(material, rsa3072.publicKey, 'CKM_RSA_AES_KEY_WRAP');
    assert.equal(parts.wrappedKek.byteLength, 384);
    assert.deepEqual(unwrapKeyTransfer(assembleTransferBlob(parts, { enc: 'CKM_RSA_AES_KEY_WRAP', kid: 'x' }), rsa3072.privateKey), material);
  });

  test('malformed key_hsm is refused', () => {
    assert.throws(() => parseTransferBlob('not base64!'), (e: unknown) => isConclaveError(e, 'request.invalid'));
    assert.throws(() => parseTransferBlob(Buffer.from('{"schema_version":"1.0.0"}').toString('base64url')), (e: unknown) => isConclaveError(e, 'request.invalid'));
  });
});

describe('selectWrappingKey', () => {
  const enc = rsa2048.publicKey;

  test('picks the first RSA encryption key (key_ops encrypt, use enc, key_use enc)', () => {
    for (const mark of [{ key_ops: ['encrypt'] }, { use: 'enc' }, { key_use: 'enc' }]) {
      const w = findWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(rsa3072.publicKey, { kid: 'sign', key_ops: ['sign'] }), runtimeJwk(enc, { kid: 'enc', ...mark })] } });
      assert.equal(w.kid, 'enc');
      assert.equal(w.key.asymmetricKeyDetails?.modulusLength, 2048);
    }
  });

  test('refuses sign-only, unmarked, EC and sub-2048-bit keys', () => {
    expectNoWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(enc, { kid: 'HCLAkPub', key_ops: ['sign'] })] } });
    expectNoWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(enc, { kid: 'plain' })] } });
    const ec = generateEcKeyPair('P-256').publicKey;
    expectNoWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(ec, { kid: 'ec', key_ops: ['encrypt'] })] } });
    const small = generateRsaKeyPair(1024).publicKey;
    expectNoWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(small, { kid: 'small', key_ops: ['encrypt'] })] } });
    expectNoWrappingKey({});
    expectNoWrappingKey({ 'x-ms-runtime': { 'client-payload': { keys: [runtimeJwk(enc, { key_ops: ['encrypt'] })] } } });
  });

  test('refuses keys RSA-OAEP cannot encrypt with (modulus over 16384 bits, exponent over 64 bits on a modulus over 3072) and exponents RFC 8017 rules out (below 3, even); the next suitable key is chosen', () => {
    const modulus = (bytes: number) => {
      const n = randomBytes(bytes);
      n[0]! |= 0x80;
      n[bytes - 1]! |= 1;
      return n.toString('base64url');
    };
    const exponent = (hex: string) => Buffer.from(hex, 'hex').toString('base64url');
    const mark = { key_ops: ['encrypt'] };
    const unusable = [
      { kty: 'RSA', n: modulus(2100), e: 'AQAB', kid: 'huge', ...mark },
      { kty: 'RSA', n: modulus(512), e: exponent('010000000000000001'), kid: 'wide-e', ...mark },
      { ...runtimeJwk(enc, { kid: 'e1', ...mark }), e: exponent('01') },
      { ...runtimeJwk(enc, { kid: 'e-even', ...mark }), e: exponent('010000') },
    ];
    for (const k of unusable) expectNoWrappingKey({ 'x-ms-runtime': { keys: [k] } });
    const w = findWrappingKey({ 'x-ms-runtime': { keys: [...unusable, runtimeJwk(enc, { kid: 'good', ...mark })] } });
    assert.equal(w.kid, 'good');
    // Still accepted: a wide exponent on a modulus OpenSSL takes it with (≤ 3072 bits), e = 3.
    assert.equal(findWrappingKey({ 'x-ms-runtime': { keys: [{ ...runtimeJwk(enc, { kid: 'e-wide-2048', ...mark }), e: exponent('010000000000000001') }] } }).kid, 'e-wide-2048');
    assert.equal(findWrappingKey({ 'x-ms-runtime': { keys: [{ ...runtimeJwk(enc, { kid: 'e3', ...mark }), e: exponent('03') }] } }).kid, 'e3');
  });

  test('keys under x-ms-isolation-tee are not used', () => {
    expectNoWrappingKey({ 'x-ms-isolation-tee': { 'x-ms-runtime': { keys: [runtimeJwk(enc, { kid: 'HCLEkPub', key_ops: ['encrypt'] })] } } });
  });
});

describe('selectWrappingKey on real MAA claims', { skip: skipWithoutFixtures() }, () => {
  test('AzureGuest token: the top-level vTPM key, not the HCL keys', () => {
    const claims = readFixtureJson<Record<string, unknown>>('maa-claims', 'azurevm-sevsnp-sharedeus2-2024-12.payload.json');
    const w = findWrappingKey(claims);
    assert.equal(w.kid, 'TpmEphemeralEncryptionKey');
    assert.equal(w.key.asymmetricKeyDetails?.modulusLength, 2048);
  });

  test('AzureGuest HCL keys lifted to the top level: HCLAkPub (sign) is skipped for HCLEkPub (encrypt)', () => {
    const claims = readFixtureJson<Record<string, Record<string, unknown>>>('maa-claims', 'azurevm-sevsnp-sharedeus2-2024-12.payload.json');
    const tee = claims['x-ms-isolation-tee'] as Record<string, Record<string, unknown>>;
    assert.equal(findWrappingKey({ 'x-ms-runtime': tee['x-ms-runtime'] }).kid, 'HCLEkPub');
    const akOnly = { keys: (tee['x-ms-runtime'] as { keys: unknown[] }).keys.slice(0, 1) };
    expectNoWrappingKey({ 'x-ms-runtime': akOnly });
  });

  test('SevSnpVm docs sample: HCLTransferKey; TDX sample: none', () => {
    assert.equal(findWrappingKey(readFixtureJson('maa-claims', 'docs-sevsnpvm-sample.payload.json')).kid, 'HCLTransferKey');
    expectNoWrappingKey(readFixtureJson('maa-claims', 'docs-tdxvm-sample.payload.json'));
  });

  test('legacy SGX token of the swagger release example: the JWKS in aas-ehd', () => {
    const w = findWrappingKey(readFixtureJson('maa-claims', 'akv-spec-release-example-target.payload.json'));
    assert.equal(w.kid, '5336424c-ef7e-b2af-59f9-4d088f044de5');
  });

  test('the swagger example key_hsm is the raw 256 + 40 byte ciphertext', () => {
    const value = readFixtureJson<{ key: { key_hsm: string } }>('akv-release', 'specs-7.4-release-example.response-value.decoded.json');
    const { header, ciphertext } = parseTransferBlob(value.key.key_hsm);
    assert.deepEqual(header, {});
    assert.equal(ciphertext.byteLength, 296);
  });
});

describe('runtime keys are imported once per key (#20)', () => {
  test('the same modulus and exponent give the same KeyObject; another key its own; a small key is still refused', () => {
    const mark = { key_ops: ['encrypt'] };
    const a = rsa2048.publicKey;
    const first = findWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(a, { kid: 'one', ...mark })] } });
    const again = findWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(a, { kid: 'renamed', ...mark })] } });
    assert.equal(again.key, first.key);
    assert.equal(again.kid, 'renamed');
    const other = findWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(rsa3072.publicKey, { kid: 'two', ...mark })] } });
    assert.notEqual(other.key, first.key);
    assert.equal(other.key.asymmetricKeyDetails?.modulusLength, 3072);
    const small = generateRsaKeyPair(1024).publicKey;
    for (let i = 0; i < 2; i++) expectNoWrappingKey({ 'x-ms-runtime': { keys: [runtimeJwk(small, { kid: 'small', ...mark })] } });
  });
});

test('assembleTransferBlob is base64url of the JSON.stringify text of the blob', () => {
  const parts: WrappedKeyParts = { wrappedKek: new Uint8Array(randomBytes(256)), wrappedKey: new Uint8Array(randomBytes(1232)) };
  for (const opts of [{ enc: 'RSA_AES_KEY_WRAP_256' as const }, { enc: 'CKM_RSA_AES_KEY_WRAP' as const, kid: 'tee "key" \\ é 😀 \u2028', generator: 'gen "x"' }]) {
    const blob = {
      schema_version: '1.0.0',
      header: opts.kid === undefined ? { alg: 'dir', enc: opts.enc } : { kid: opts.kid, alg: 'dir', enc: opts.enc },
      ciphertext: Buffer.concat([parts.wrappedKek, parts.wrappedKey]).toString('base64url'),
      generator: opts.generator ?? 'conclave',
    };
    assert.equal(assembleTransferBlob(parts, opts), Buffer.from(JSON.stringify(blob), 'utf8').toString('base64url'));
  }
});
