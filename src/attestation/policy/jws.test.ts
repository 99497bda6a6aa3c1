import assert from 'node:assert/strict';
import { createHash, type KeyObject, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ConclaveError } from '../../core/errors.js';
import { SGX_DEFAULT, SGX_SIGNED_JWS, SGX_SIGNED_JWS_2020, SGX_UNSIGNED_JWS } from './examples.test-data.js';
import { decodePolicyJws, encodePolicyJws, policyHash, policyTokenHash } from './jws.js';
import { parsePolicy } from './parser.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../../core/keygen.js';

const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

async function selfSigned(alg: 'RS256' | 'ES256'): Promise<{ der: Uint8Array; privateKey: KeyObject }> {
  const { privateKey, publicKey } =
    alg === 'RS256' ? generateRsaKeyPair(2048) : generateEcKeyPair('P-256');
  const algorithm = alg === 'RS256' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = {
    privateKey: await crypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']),
    publicKey: await crypto.subtle.importKey('spki', publicKey.export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']),
  };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Conclave policy signer test',
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2034-01-01T00:00:00Z'),
    signingAlgorithm: algorithm,
    keys,
  });
  return { der: new Uint8Array(cert.rawData), privateKey };
}

function signPolicy(text: string, alg: 'RS256' | 'ES256', der: Uint8Array, key: KeyObject): string {
  const h = b64u(JSON.stringify({ alg, x5c: [Buffer.from(der).toString('base64')] }));
  const p = b64u(JSON.stringify({ AttestationPolicy: b64u(text) }));
  const sig = alg === 'RS256' ? sign('sha256', Buffer.from(`${h}.${p}`), key) : sign('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' });
  return `${h}.${p}.${b64u(sig)}`;
}

describe('policy JWS', () => {
  test('encodePolicyJws produces the @azure/attestation unsigned form and round-trips', () => {
    const jws = encodePolicyJws(SGX_DEFAULT);
    assert.ok(jws.startsWith('eyJhbGciOiJub25lIn0.'));
    assert.ok(jws.endsWith('.'));
    const d = decodePolicyJws(jws);
    assert.equal(d.policyText, SGX_DEFAULT);
    assert.equal(d.signed, false);
    assert.deepEqual(d.header, { alg: 'none' });
  });

  for (const alg of ['RS256', 'ES256'] as const) {
    test(`a ${alg} policy signed with node:crypto verifies against x5c[0] and returns the signer`, async () => {
      const { der, privateKey } = await selfSigned(alg);
      const jws = signPolicy(SGX_DEFAULT, alg, der, privateKey);
      const d = decodePolicyJws(jws);
      assert.equal(d.signed, true);
      assert.equal(d.policyText, SGX_DEFAULT);
      assert.deepEqual(d.signingCertificateDer, der);
      assert.equal(d.header.alg, alg);

      const [h, p, s] = jws.split('.') as [string, string, string];
      const tamperedPayload = b64u(JSON.stringify({ AttestationPolicy: b64u(SGX_DEFAULT.replace('permit', 'deny')) }));
      assert.throws(() => decodePolicyJws(`${h}.${tamperedPayload}.${s}`), { code: 'attestation.policy_invalid' });
      const other = await selfSigned(alg);
      const swapped = b64u(JSON.stringify({ alg, x5c: [Buffer.from(other.der).toString('base64')] }));
      assert.throws(() => decodePolicyJws(`${swapped}.${p}.${s}`), { code: 'attestation.policy_invalid' });
      assert.throws(() => decodePolicyJws(`${h}.${p}.`), { code: 'attestation.policy_invalid' });
    });
  }

  test("Microsoft's published signed samples verify (RS256 2020 and the current \"RSA256\" one)", () => {
    const current = decodePolicyJws(SGX_SIGNED_JWS);
    assert.equal(current.signed, true);
    assert.equal(current.header.alg, 'RSA256');
    assert.match(current.policyText, /^version=1\.0;authorizationrules \{c:\[type=="\$is-debuggable"\] && \[value==true\] => deny\(\);/);
    const old = decodePolicyJws(SGX_SIGNED_JWS_2020);
    assert.equal(old.signed, true);
    // The 2020 sample carries the text itself in AttestationPolicy.
    assert.ok(old.policyText.startsWith('version= 1.0;authorizationrules{c:[type=="$is-debuggable"] => permit();}'));
    assert.equal(createHash('sha256').update(old.signingCertificateDer!).digest('hex').length, 64);
    parsePolicy(current.policyText);
    parsePolicy(old.policyText);
  });

  test("Microsoft's published unsigned sample decodes to the default SGX 1.0 policy", () => {
    const d = decodePolicyJws(SGX_UNSIGNED_JWS);
    assert.equal(d.signed, false);
    assert.ok(d.policyText.startsWith('version= 1.0;authorizationrules{c:[type=="$is-debuggable"] => permit();};'));
    assert.equal(parsePolicy(d.policyText).issuanceRules.length, 6);
  });

  test('malformed JWS are attestation.policy_invalid', () => {
    const none = b64u('{"alg":"none"}');
    for (const bad of [
      'abc',
      `${none}.`,
      `${none}..`, // reset body: no AttestationPolicy
      `${none}.${b64u('{"x":1}')}.`,
      `${none}.${b64u('[1]')}.`,
      `${b64u('{}')}.${b64u('{"AttestationPolicy":"dg"}')}.`,
      `${none}.${b64u('{"AttestationPolicy":"dg"}')}.c2ln`,
      `${b64u('{"alg":"HS256"}')}.${b64u('{"AttestationPolicy":"dg"}')}.c2ln`,
      `${b64u('{"alg":"RS256"}')}.${b64u('{"AttestationPolicy":"dg"}')}.c2ln`,
      `${b64u('{"alg":"RS256","x5c":["AAAA"]}')}.${b64u('{"AttestationPolicy":"dg"}')}.c2ln`,
      `${none}.!!!.`,
    ]) {
      assert.throws(() => decodePolicyJws(bad), { code: 'attestation.policy_invalid' }, bad);
    }
  });

  test('an alg that names a member of Object.prototype is refused as an unsupported alg, naming it', async () => {
    // Attack: ALGORITHMS[header.alg] read a plain object, so alg toString, constructor, __proto__, … found a
    // prototype member and was taken for a supported algorithm: its hash (undefined) went to crypto.verify,
    // which then uses the RSA key's default digest, SHA-256, so an RS256 signature under any such alg was
    // accepted as a signed policy (and an EC one refused as "does not verify"), a JWS no JOSE verifier takes.
    const { der, privateKey } = await selfSigned('RS256');
    const p = b64u(JSON.stringify({ AttestationPolicy: b64u('version=1.0; authorizationrules { => permit(); };') }));
    for (const alg of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString']) {
      const h = b64u(JSON.stringify({ alg, x5c: [Buffer.from(der).toString('base64')] }));
      const jws = `${h}.${p}.${b64u(sign('sha256', Buffer.from(`${h}.${p}`), privateKey))}`;
      assert.throws(() => decodePolicyJws(jws), (e: unknown) => {
        assert.ok(e instanceof ConclaveError, `alg ${alg}: not a ConclaveError: ${String(e)}`);
        assert.equal(e.code, 'attestation.policy_invalid', alg);
        assert.equal(e.status, 400, alg);
        assert.equal(e.message, `unsupported JWS alg ${alg}`);
        assert.deepEqual(e.detail, { alg });
        return true;
      });
    }
  });

  test("the Python SDK's form verifies: alg RSA256 or ECDH256 (an EC signature in DER), x5c inside jwk; two different chains are refused", async () => {
    // azure-security-attestation 1.0 (_models.py _create_secured_jwt) signs this way; its EC path needs a
    // cryptography that takes sign(data, algorithm=...), so the DER form is checked here, not with the SDK.
    const text = 'version=1.0; authorizationrules { => permit(); };';
    const p = b64u(JSON.stringify({ AttestationPolicy: b64u(text) }));
    for (const [alg, kind] of [['RSA256', 'RS256'], ['ECDH256', 'ES256']] as const) {
      const { der, privateKey } = await selfSigned(kind);
      const h = b64u(JSON.stringify({ alg, jwk: { x5c: [Buffer.from(der).toString('base64')] } }));
      const sig = kind === 'RS256' ? sign('sha256', Buffer.from(`${h}.${p}`), privateKey) : sign('sha256', Buffer.from(`${h}.${p}`), { key: privateKey, dsaEncoding: 'der' });
      const decoded = decodePolicyJws(`${h}.${p}.${b64u(sig)}`);
      assert.equal(decoded.signed, true, alg);
      assert.equal(decoded.policyText, text, alg);
      assert.deepEqual(decoded.signingCertificateDer, der, alg);
      // ES256 stays JOSE's r ‖ s: the DER form is taken only under the Python SDK's own alg name.
      if (kind === 'ES256') {
        const es = b64u(JSON.stringify({ alg: 'ES256', jwk: { x5c: [Buffer.from(der).toString('base64')] } }));
        assert.throws(() => decodePolicyJws(`${es}.${p}.${b64u(sign('sha256', Buffer.from(`${es}.${p}`), { key: privateKey, dsaEncoding: 'der' }))}`), /does not verify/);
      }
    }
    const a = await selfSigned('RS256');
    const b = await selfSigned('RS256');
    const both = b64u(JSON.stringify({ alg: 'RS256', x5c: [Buffer.from(a.der).toString('base64')], jwk: { x5c: [Buffer.from(b.der).toString('base64')] } }));
    assert.throws(() => decodePolicyJws(`${both}.${p}.${b64u(sign('sha256', Buffer.from(`${both}.${p}`), a.privateKey))}`), /two certificate chains/);
  });

  test('random strings throw nothing but ConclaveErrors', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.tuple(fc.base64String(), fc.base64String(), fc.string()).map((t) => t.join('.'))), (s) => {
        try {
          decodePolicyJws(s);
        } catch (e) {
          if (!(e instanceof ConclaveError)) throw e;
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('policy hashes', () => {
  test('x-ms-policy-hash = BASE64URL(SHA256(BASE64URL(UTF8(text)))), the same for the text and its JWS', () => {
    const expected = createHash('sha256').update(Buffer.from(SGX_DEFAULT, 'utf8').toString('base64url')).digest('base64url');
    assert.equal(policyHash(SGX_DEFAULT), expected);
    assert.equal(policyHash(encodePolicyJws(SGX_DEFAULT)), expected);
    assert.notEqual(policyHash(`${SGX_DEFAULT} `), expected);
  });

  test('the published signed sample hashes as its policy text', () => {
    const text = decodePolicyJws(SGX_SIGNED_JWS).policyText;
    assert.equal(policyHash(SGX_SIGNED_JWS), policyHash(text));
  });

  test('x-ms-policy-token-hash is over the JWS string as sent', () => {
    const jws = encodePolicyJws(SGX_DEFAULT);
    assert.equal(policyTokenHash(jws), createHash('sha256').update(jws).digest('base64url'));
  });
});
