import 'reflect-metadata';
import assert from 'node:assert/strict';
import { type KeyObject, constants, createCipheriv, createPrivateKey, publicEncrypt, randomBytes, webcrypto } from 'node:crypto';
import { describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import { signJws } from '../core/jwt.js';
import { RELEASE_ENC_HASH, type ReleaseEnc, checkReleaseAnswersRequest, releasedKeyOf, unwrapKeyHsm, verifyReleaseJws } from './release.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../core/keygen.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) } as const;

async function makeCa(name: string) {
  const keys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 86400_000),
    signingAlgorithm: RSA,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { keys, cert };
}

async function makeLeaf(ca: { keys: CryptoKeyPair; cert: x509.X509Certificate }, notAfter = new Date(Date.now() + 86400_000)) {
  const keys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=vault release signer',
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 7200_000),
    notAfter,
    signingAlgorithm: RSA,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { cert, privateKey: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }) };
}

/** A key_hsm made the way §2.4 describes, independent of the code under test. */
function wrap(material: Uint8Array, wrappingKey: KeyObject, enc: ReleaseEnc): string {
  const kek = randomBytes(32);
  const wrappedKek = publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: RELEASE_ENC_HASH[enc] }, kek);
  const c = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
  const ciphertext = Buffer.concat([wrappedKek, c.update(material), c.final()]).toString('base64url');
  return Buffer.from(JSON.stringify({ schema_version: '1.0.0', header: { alg: 'dir', enc }, ciphertext })).toString('base64url');
}

function releaseJws(signer: KeyObject, x5c: x509.X509Certificate[], keyHsm: string, enc: ReleaseEnc, kty: string): string {
  const header = { alg: 'RS256', x5c: x5c.map((c) => Buffer.from(c.rawData).toString('base64')) };
  const payload = {
    request: { 'api-version': '7.4', enc, kid: 'https://v/keys/k' },
    response: { key: { attributes: {}, key: { kid: 'https://v/keys/k/0123', kty, key_ops: ['encrypt', 'decrypt'], key_hsm: keyHsm }, release_policy: {} } },
  };
  return signJws(header, payload, signer);
}

describe('release JWS and key_hsm', async () => {
  const ca = await makeCa('Test Vault CA');
  const otherCa = await makeCa('Other CA');
  const leaf = await makeLeaf(ca);
  const trustStore = ca.cert.toString('pem');
  const workload = generateRsaKeyPair(2048);

  // One RSA key as the released material for the three encs (each test wraps it with its own enc).
  let rsaMaterial: KeyObject | undefined;
  const materials = {
    RSA: () => {
      const k = (rsaMaterial ??= generateRsaKeyPair(2048).privateKey);
      return { material: new Uint8Array(k.export({ format: 'der', type: 'pkcs8' })), check: (o: KeyObject) => assert.equal(o.asymmetricKeyType, 'rsa') };
    },
    EC: () => {
      const k = generateEcKeyPair('P-256').privateKey;
      const d = (k.export({ format: 'jwk' }) as { d: string }).d;
      return { material: new Uint8Array(k.export({ format: 'der', type: 'pkcs8' })), check: (_o: KeyObject, jwk: JsonWebKey) => assert.equal(jwk.d, d) };
    },
    'oct-HSM': () => {
      const raw = randomBytes(32);
      return { material: new Uint8Array(raw), check: (_o: KeyObject, jwk: JsonWebKey) => assert.equal(jwk.k, raw.toString('base64url')) };
    },
  };

  for (const [kty, make] of Object.entries(materials)) {
    for (const enc of Object.keys(RELEASE_ENC_HASH) as ReleaseEnc[]) {
      test(`${kty} with ${enc}: verifies and unwraps`, () => {
        const { material, check } = make();
        const jws = releaseJws(leaf.privateKey, [leaf.cert, ca.cert], wrap(material, workload.publicKey, enc), enc, kty);
        const payload = verifyReleaseJws(jws, { trustStore });
        assert.equal(payload.request.enc, enc);
        const released = releasedKeyOf(unwrapKeyHsm(payload.response.key.key.key_hsm, payload.request.enc, workload.privateKey), payload.response.key.key);
        check(released.keyObject, released.jwk);
        assert.equal(released.jwk.kid, 'https://v/keys/k/0123');
        assert.equal(released.jwk.kty, kty === 'oct-HSM' ? 'oct' : kty);
      });
    }
  }

  test('a leaf-only x5c chains to its CA in the trust store', () => {
    const jws = releaseJws(leaf.privateKey, [leaf.cert], wrap(randomBytes(16), workload.publicKey, 'RSA_AES_KEY_WRAP_256'), 'RSA_AES_KEY_WRAP_256', 'oct');
    assert.ok(verifyReleaseJws(jws, { trustStore }));
  });

  test('a tampered payload fails the signature check', () => {
    const jws = releaseJws(leaf.privateKey, [leaf.cert, ca.cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    const [h, p, s] = jws.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8'));
    payload.request.enc = 'RSA_AES_KEY_WRAP_384';
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    assert.throws(() => verifyReleaseJws(tampered, { trustStore }), { code: 'sdk.release_jws_invalid', message: /signature/ });
  });

  test('a chain to another CA is refused', () => {
    const jws = releaseJws(leaf.privateKey, [leaf.cert, ca.cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    assert.throws(() => verifyReleaseJws(jws, { trustStore: otherCa.cert.toString('pem') }), { code: 'sdk.release_jws_invalid' });
  });

  test('a signer cert that claims the trusted CA as issuer but was signed by another key is refused', async () => {
    const forged = await makeLeaf({ keys: otherCa.keys, cert: ca.cert });
    const jws = releaseJws(forged.privateKey, [forged.cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    assert.throws(() => verifyReleaseJws(jws, { trustStore }), { code: 'sdk.release_jws_invalid' });
  });

  test('an expired signer certificate is refused', async () => {
    const old = await makeLeaf(ca, new Date(Date.now() - 3600_000));
    const jws = releaseJws(old.privateKey, [old.cert, ca.cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    assert.throws(() => verifyReleaseJws(jws, { trustStore }), { code: 'sdk.release_jws_invalid' });
  });

  test('self-signed x5c[0]: refused by default, accepted with allowSelfSignedReleaseCert', async () => {
    const keys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '03', name: 'CN=conclave', notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 86400_000), signingAlgorithm: RSA, keys });
    const pk = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' });
    const jws = releaseJws(pk, [cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    assert.throws(() => verifyReleaseJws(jws), { code: 'sdk.release_jws_invalid' });
    assert.ok(verifyReleaseJws(jws, { allowSelfSignedReleaseCert: true }));
    // a CA-issued leaf is not "self-signed" and needs a trust store
    const issued = releaseJws(leaf.privateKey, [leaf.cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    assert.throws(() => verifyReleaseJws(issued, { allowSelfSignedReleaseCert: true }), { code: 'sdk.release_jws_invalid' });
  });

  test('an invalid verification time fails closed: an expired signer is not valid at NaN', async () => {
    const keys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '04', name: 'CN=conclave', notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000), signingAlgorithm: RSA, keys });
    const pk = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' });
    const selfSigned = releaseJws(pk, [cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    assert.throws(() => verifyReleaseJws(selfSigned, { allowSelfSignedReleaseCert: true }), { code: 'sdk.release_jws_invalid' });
    assert.throws(() => verifyReleaseJws(selfSigned, { allowSelfSignedReleaseCert: true, at: new Date(Number.NaN) }), { code: 'request.invalid' });
    const old = await makeLeaf(ca, new Date(Date.now() - 3600_000));
    const chained = releaseJws(old.privateKey, [old.cert, ca.cert], wrap(randomBytes(32), workload.publicKey, 'CKM_RSA_AES_KEY_WRAP'), 'CKM_RSA_AES_KEY_WRAP', 'oct');
    assert.throws(() => verifyReleaseJws(chained, { trustStore, at: new Date(Number.NaN) }), { code: 'request.invalid' });
  });

  test('unwrap with the wrong workload key or the wrong enc fails', () => {
    const keyHsm = wrap(randomBytes(32), workload.publicKey, 'RSA_AES_KEY_WRAP_256');
    const other = generateRsaKeyPair(2048).privateKey;
    assert.throws(() => unwrapKeyHsm(keyHsm, 'RSA_AES_KEY_WRAP_256', other), { code: 'sdk.unwrap_failed' });
    assert.throws(() => unwrapKeyHsm(keyHsm, 'CKM_RSA_AES_KEY_WRAP', workload.privateKey), { code: 'sdk.unwrap_failed' });
    assert.throws(() => unwrapKeyHsm(keyHsm, 'A256KW', workload.privateKey), { code: 'sdk.unwrap_failed' });
  });

  test('corrupt key material ciphertext fails the AES unwrap integrity check', () => {
    const blob = JSON.parse(Buffer.from(wrap(randomBytes(32), workload.publicKey, 'RSA_AES_KEY_WRAP_384'), 'base64url').toString('utf8'));
    const ct = Buffer.from(blob.ciphertext, 'base64url');
    ct[ct.length - 1]! ^= 1;
    blob.ciphertext = ct.toString('base64url');
    assert.throws(() => unwrapKeyHsm(Buffer.from(JSON.stringify(blob)).toString('base64url'), 'RSA_AES_KEY_WRAP_384', workload.privateKey), { code: 'sdk.unwrap_failed' });
  });

  test('a transfer blob that is not JSON, or JSON without a string ciphertext, is sdk.unwrap_failed', () => {
    for (const text of ['{not json', '{}', 'null', '{"ciphertext":7}', '{"header":{"enc":"CKM_RSA_AES_KEY_WRAP"}}']) {
      const keyHsm = Buffer.from(text).toString('base64url');
      assert.throws(() => unwrapKeyHsm(keyHsm, undefined, workload.privateKey), { code: 'sdk.unwrap_failed' }, text);
    }
  });
});

describe('checkReleaseAnswersRequest: the signed response answers this request', () => {
  const payload = (request: Record<string, string>, kid: string | undefined) => ({ request, response: { key: { key: { kty: 'RSA', key_hsm: 'x', ...(kid ? { kid } : {}) } } } });
  const kid = 'https://vault.example/keys/App-Key/0123abcd';
  const ok = { keyName: 'app-key', nonce: 'n1', enc: 'CKM_RSA_AES_KEY_WRAP' };
  const refused = (e: { code?: string }) => e.code === 'sdk.release_jws_invalid';

  test('the same key (names are case-insensitive), version, nonce and enc pass', () => {
    assert.doesNotThrow(() => checkReleaseAnswersRequest(payload({ nonce: 'n1', enc: 'CKM_RSA_AES_KEY_WRAP', kid }, kid), { ...ok, version: '0123abcd' }));
  });
  test('another key, another version, no kid, a missing or different nonce, another enc are refused', () => {
    assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1' }, 'https://vault.example/keys/other/1'), ok), refused);
    assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1' }, kid), { ...ok, version: 'ffff' }), refused);
    assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1' }, undefined), ok), refused);
    assert.throws(() => checkReleaseAnswersRequest(payload({}, kid), ok), refused);
    assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n0' }, kid), ok), refused);
    assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1', enc: 'RSA_AES_KEY_WRAP_256' }, kid), ok), refused);
  });
  test('a response that leaves out enc is refused when another than the default was asked, before anything is unwrapped', () => {
    // Otherwise the key would be unwrapped with the default (RSA-OAEP SHA-1) the caller did not ask for.
    for (const enc of ['RSA_AES_KEY_WRAP_256', 'RSA_AES_KEY_WRAP_384']) {
      assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1' }, kid), { ...ok, enc }), refused, enc);
    }
    // Nothing asked means the default was asked: a response naming another enc does not answer it.
    assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1', enc: 'RSA_AES_KEY_WRAP_256' }, kid), { keyName: 'app-key', nonce: 'n1' }), refused);
  });
  test("key_hsm's transfer-blob header naming another enc than the one asked and echoed is refused, before anything is unwrapped", () => {
    // The CLI unwraps with the blob header's enc: a header that disagrees would unwrap with an enc nobody asked for.
    const blob = (header: Record<string, unknown>) => Buffer.from(JSON.stringify({ schema_version: '1.0.0', header, ciphertext: 'AAAA' })).toString('base64url');
    const withBlob = (request: Record<string, string>, keyHsm: string) => ({ request, response: { key: { key: { kty: 'RSA', key_hsm: keyHsm, kid } } } });
    const asked256 = { ...ok, enc: 'RSA_AES_KEY_WRAP_256' };
    assert.throws(() => checkReleaseAnswersRequest(withBlob({ nonce: 'n1', enc: 'RSA_AES_KEY_WRAP_256' }, blob({ alg: 'dir', enc: 'CKM_RSA_AES_KEY_WRAP' })), asked256), refused);
    assert.throws(() => checkReleaseAnswersRequest(withBlob({ nonce: 'n1' }, blob({ alg: 'dir', enc: 'RSA_AES_KEY_WRAP_384' })), ok), refused);
    assert.throws(() => checkReleaseAnswersRequest(withBlob({ nonce: 'n1', enc: 'RSA_AES_KEY_WRAP_256' }, blob({ alg: 'dir', enc: 7 })), asked256), refused);
    // The same enc in the header, or none (then the echoed one is used), passes.
    assert.doesNotThrow(() => checkReleaseAnswersRequest(withBlob({ nonce: 'n1', enc: 'RSA_AES_KEY_WRAP_256' }, blob({ alg: 'dir', enc: 'RSA_AES_KEY_WRAP_256' })), asked256));
    assert.doesNotThrow(() => checkReleaseAnswersRequest(withBlob({ nonce: 'n1', enc: 'RSA_AES_KEY_WRAP_256' }, blob({ alg: 'dir' })), asked256));
    assert.doesNotThrow(() => checkReleaseAnswersRequest(withBlob({ nonce: 'n1' }, blob({ alg: 'dir', enc: 'CKM_RSA_AES_KEY_WRAP' })), ok));
  });
  test('a kid with a malformed % escape (in the response key or the echoed request) is sdk.release_jws_invalid, not a URIError', () => {
    for (const bad of ['https://vault.example/keys/app-key%E0%A4%A/0123abcd', 'https://vault.example/keys/app-key/%zz', 'https://vault.example/keys/%/1']) {
      assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1', enc: 'CKM_RSA_AES_KEY_WRAP' }, bad), ok), refused, bad);
      assert.throws(() => checkReleaseAnswersRequest(payload({ nonce: 'n1', enc: 'CKM_RSA_AES_KEY_WRAP', kid: bad }, kid), ok), refused, `request.kid ${bad}`);
    }
  });
  test('the default enc asked (or nothing asked): a response that leaves enc out or echoes the default passes (what AKV may send)', () => {
    for (const asked of [{ ...ok }, { keyName: 'app-key', nonce: 'n1' }]) {
      assert.doesNotThrow(() => checkReleaseAnswersRequest(payload({ nonce: 'n1' }, kid), asked));
      assert.doesNotThrow(() => checkReleaseAnswersRequest(payload({ nonce: 'n1', enc: 'CKM_RSA_AES_KEY_WRAP' }, kid), asked));
    }
    assert.doesNotThrow(() => checkReleaseAnswersRequest(payload({ nonce: 'n1', enc: 'RSA_AES_KEY_WRAP_384' }, kid), { ...ok, enc: 'RSA_AES_KEY_WRAP_384' }));
  });
});
