/**
 * The release JWS verifies as Azure's SKR sidecar verifies it — signature by x5c[0], chain to a trusted
 * root, leaf valid for the vault host — for a TEE that trusts the server's local CA, and for an
 * operator's CA with --release-cert/--release-key; with no self-signed exception anywhere. OpenSSL
 * (`openssl verify -purpose sslserver -verify_hostname`) checks the chain independently of our code.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { webcrypto, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import { verifyReleaseJws } from '../../../src/sdk/release.js';
import { decodeReleaseResponse } from '../../../src/vault/release/index.js';
import { tempDir, type TestServer } from '../../helpers/server.js';
import { adminJson, akvCall, assignRole, type AuthorityStandIn, policyFor, startAuthority, startVault } from './harness.js';
import { generateEcKeyPair } from '../../../src/core/keygen.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const pem = (der: Uint8Array | ArrayBuffer) => `-----BEGIN CERTIFICATE-----\n${(Buffer.from(der as Uint8Array).toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;

async function releaseOn(server: TestServer, authority: AuthorityStandIn, name: string): Promise<{ status: number; value?: string; json: any }> {
  const c = await akvCall(server, 'POST', `/keys/${name}/create`, {
    kty: 'EC-HSM',
    crv: 'P-256',
    attributes: { exportable: true },
    release_policy: { data: Buffer.from(policyFor(authority.url)).toString('base64url') },
  });
  assert.equal(c.status, 200, JSON.stringify(c.json));
  const r = await akvCall(server, 'POST', `/keys/${name}/release`, { target: authority.token() });
  return { status: r.status, value: r.json?.value, json: r.json };
}

async function prepare(server: TestServer): Promise<AuthorityStandIn> {
  const authority = await startAuthority(server);
  assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
  await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
  return authority;
}

/** `openssl verify` of the x5c chain against `caPem`, for the TLS server purpose and the vault host. */
function opensslVerifies(value: string, caPem: string, host: string): boolean {
  const dir = tempDir('conclave-openssl-');
  const x5c = decodeReleaseResponse(value).header.x5c as string[];
  writeFileSync(join(dir, 'leaf.pem'), pem(Buffer.from(x5c[0]!, 'base64')));
  writeFileSync(join(dir, 'ca.pem'), caPem);
  try {
    execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslserver', host.match(/^[\d.]+$/) ? '-verify_ip' : '-verify_hostname', host, join(dir, 'leaf.pem')], { stdio: 'pipe' });
    return true;
  } catch (e) {
    if (process.env.DEBUG_OPENSSL) console.error(String((e as { stderr?: Buffer }).stderr));
    return false;
  }
}

describe('release certificate issued by the local CA', () => {
  let server: TestServer;
  let authority: AuthorityStandIn;
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
    authority = await prepare(server);
  });
  after(async () => {
    await authority?.close();
    await server?.stop();
  });

  test('x5c = [leaf for the vault host, local CA]; the SDK with trustStore = tls/ca.pem and OpenSSL verify it', async () => {
    const r = await releaseOn(server, authority, 'ca-issued');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const { header } = decodeReleaseResponse(r.value!);
    const x5c = header.x5c as string[];
    assert.equal(x5c.length, 2);
    const caPem = readFileSync(server.caPath, 'utf8');
    assert.equal(new X509Certificate(Buffer.from(x5c[1]!, 'base64')).fingerprint256, new X509Certificate(caPem).fingerprint256, 'the chain ends in the server CA');
    const leaf = new X509Certificate(Buffer.from(x5c[0]!, 'base64'));
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(leaf.ca, false);
    assert.ok(verifyReleaseJws(r.value!, { trustStore: caPem, vaultHost: '127.0.0.1' }));
    assert.throws(() => verifyReleaseJws(r.value!, { allowSelfSignedReleaseCert: true }), { code: 'sdk.release_jws_invalid' }, 'not self-signed any more');
    assert.throws(() => verifyReleaseJws(r.value!, { trustStore: caPem, vaultHost: 'other.vault.localtest' }), { code: 'sdk.release_jws_invalid' });
    assert.equal(opensslVerifies(r.value!, caPem, '127.0.0.1'), true);
    assert.equal(opensslVerifies(r.value!, caPem, '10.0.0.1'), false, 'not for another host');
  });
});

/** An operator's CA and a P-256 release certificate it issues for `host`. */
async function operatorIdentity(dir: string, host: string | undefined): Promise<{ certPath: string; keyPath: string; caPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const caKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Operator CA',
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
    signingAlgorithm: alg,
    keys: caKeys,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const leafKeys = generateEcKeyPair('prime256v1');
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=operator release signing',
    issuer: ca.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
    signingAlgorithm: alg,
    publicKey: new Uint8Array(leafKeys.publicKey.export({ type: 'spki', format: 'der' })),
    signingKey: caKeys.privateKey,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), ...(host ? [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: host }])] : [])],
  });
  const certPath = join(dir, 'release.pem');
  const keyPath = join(dir, 'release.key');
  writeFileSync(certPath, pem(leaf.rawData) + pem(ca.rawData));
  writeFileSync(keyPath, leafKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  return { certPath, keyPath, caPem: pem(ca.rawData) };
}

// hsm: undefined — the operator's key is a file, exclusive with --hsm (scripts/test-hsm.mjs sets one otherwise).
describe("an operator's release certificate (--release-cert/--release-key)", () => {
  test('ES256 over the operator chain; the TEE trusts the operator CA', async () => {
    const dir = tempDir();
    const op = await operatorIdentity(dir, '127.0.0.1');
    const server = await startVault({ flags: { maintenanceInterval: 0, releaseCert: op.certPath, releaseKey: op.keyPath, hsm: undefined } });
    const authority = await prepare(server);
    try {
      const r = await releaseOn(server, authority, 'op-signed');
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(decodeReleaseResponse(r.value!).header.alg, 'ES256');
      assert.ok(verifyReleaseJws(r.value!, { trustStore: op.caPem, vaultHost: '127.0.0.1' }));
      assert.throws(() => verifyReleaseJws(r.value!, { trustStore: readFileSync(server.caPath, 'utf8') }), { code: 'sdk.release_jws_invalid' });
      assert.equal(opensslVerifies(r.value!, op.caPem, '127.0.0.1'), true);
    } finally {
      await authority.close();
      await server.stop();
    }
  });

  test('a certificate that does not name the vault host signs nothing; a key that is not the certificate\'s stops the start', async () => {
    const dir = tempDir();
    const op = await operatorIdentity(dir, undefined);
    const server = await startVault({ flags: { maintenanceInterval: 0, releaseCert: op.certPath, releaseKey: op.keyPath, hsm: undefined } });
    const authority = await prepare(server);
    try {
      const r = await releaseOn(server, authority, 'op-unnamed');
      assert.equal(r.status, 500);
      assert.equal(r.json.error.innererror.code, 'config.invalid');
    } finally {
      await authority.close();
      await server.stop();
    }
    const other = await operatorIdentity(tempDir(), '127.0.0.1');
    await assert.rejects(startVault({ flags: { releaseCert: op.certPath, releaseKey: other.keyPath, hsm: undefined } }), (e: { code?: string }) => e.code === 'config.invalid');
    await assert.rejects(startVault({ flags: { releaseCert: op.certPath, hsm: undefined } }), (e: { code?: string }) => e.code === 'config.invalid');
  });
});
