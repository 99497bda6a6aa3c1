/**
 * Secure Key Release end to end, all three services in one server: a workload key pair in runtime data →
 * evidence from the simulated TEE → token from our attestation service → `releaseKey` through the
 * unchanged @azure/keyvault-keys SDK → the workload unwraps key_hsm and holds the vault's key.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { KeyClient } from '@azure/keyvault-keys';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { decodeReleaseResponse, unwrapKeyTransfer } from '../../../src/vault/release/index.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

const MEASUREMENT = 'a1'.repeat(48);
const MRENCLAVE = 'b2'.repeat(32);

function credential(server: TestServer) {
  return { getToken: async () => ({ token: await server.adminToken(), expiresOnTimestamp: Date.now() + 3_000_000 }) };
}

describe('Secure Key Release end to end (simulated TEE → our attestation → our vault)', () => {
  let server: TestServer;
  let keys: KeyClient;
  const workload = generateRsaKeyPair(2048);
  const jwk = { ...workload.publicKey.export({ format: 'jwk' }), kid: 'workload', key_ops: ['encrypt'] };
  const runtime = new TextEncoder().encode(JSON.stringify({ keys: [jwk] }));

  before(async () => {
    server = await startTestServer({ simulate: true });
    keys = new KeyClient(server.url, credential(server), {
      tlsOptions: { ca: readFileSync(server.caPath, 'utf8') },
      disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 0 },
    });
    const r = await server.sendHttps('PUT', '/admin/vault/roleAssignments', {
      headers: { authorization: `Bearer ${await server.adminToken()}` },
      body: { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' },
    });
    assert.equal(r.status, 200, r.text);
  });
  after(() => server.stop());

  const policyFor = (claims: { claim: string; equals: string }[]) => ({
    encodedPolicy: new TextEncoder().encode(JSON.stringify({ version: '1.0.0', anyOf: [{ authority: server.url, allOf: claims }] })),
  });

  async function attest(tee: 'sgx' | 'snp', opts: { measurement?: string; mrenclave?: string } = {}): Promise<string> {
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee, runtimeData: runtime, ...opts });
    const r = await server.sendHttps('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
    assert.equal(r.status, 200, r.text);
    return r.json().token;
  }

  function unwrap(value: string): { material: Uint8Array; released: Record<string, any> } {
    const { payload } = decodeReleaseResponse(value) as any;
    const released = payload.response.key.key;
    return { material: unwrapKeyTransfer(released.key_hsm, workload.privateKey), released };
  }

  test('an RSA-HSM key bound to an SNP measurement is released and matches the vault public key', async () => {
    const name = `rsa-${randomBytes(4).toString('hex')}`;
    const created = await keys.createRsaKey(name, {
      hsm: true,
      keySize: 2048,
      exportable: true,
      releasePolicy: policyFor([
        { claim: 'x-ms-sevsnpvm-launchmeasurement', equals: MEASUREMENT },
        { claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' },
      ]),
    });
    const token = await attest('snp', { measurement: MEASUREMENT });
    for (const algorithm of ['CKM_RSA_AES_KEY_WRAP', 'RSA_AES_KEY_WRAP_256', 'RSA_AES_KEY_WRAP_384'] as const) {
      const { value } = await keys.releaseKey(name, token, { nonce: 'nonce-1', algorithm });
      const { material } = unwrap(value);
      const priv = (await import('node:crypto')).createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' });
      const pub = createPublicKey(priv).export({ format: 'jwk' });
      assert.equal(pub.n, Buffer.from(created.key!.n!).toString('base64url'), `${algorithm}: released key is the vault key`);
    }
  });

  test('an EC key and an oct key bound to an SGX MRENCLAVE are released; the oct key decrypts what the vault encrypted', async () => {
    const policy = policyFor([{ claim: 'x-ms-sgx-mrenclave', equals: MRENCLAVE }]);
    const ecName = `ec-${randomBytes(4).toString('hex')}`;
    const ec = await keys.createEcKey(ecName, { hsm: true, curve: 'P-256', exportable: true, releasePolicy: policy });
    const octName = `oct-${randomBytes(4).toString('hex')}`;
    await keys.createOctKey(octName, { hsm: true, keySize: 256, exportable: true, releasePolicy: policy });
    const token = await attest('sgx', { mrenclave: MRENCLAVE });

    const ecRelease = unwrap((await keys.releaseKey(ecName, token)).value);
    const ecPriv = (await import('node:crypto')).createPrivateKey({ key: Buffer.from(ecRelease.material), format: 'der', type: 'pkcs8' });
    assert.equal(createPublicKey(ecPriv).export({ format: 'jwk' }).x, Buffer.from(ec.key!.x!).toString('base64url'));

    const octRelease = unwrap((await keys.releaseKey(octName, token)).value);
    assert.equal(octRelease.material.byteLength, 32);
    const crypto = keys.getCryptographyClient(octName);
    const plaintext = new TextEncoder().encode('only the enclave can read this');
    const enc = await crypto.encrypt({ algorithm: 'A256GCM', plaintext });
    const d = createDecipheriv('aes-256-gcm', octRelease.material, enc.iv!);
    d.setAuthTag(Buffer.from(enc.authenticationTag!));
    assert.equal(Buffer.concat([d.update(enc.result), d.final()]).toString(), 'only the enclave can read this');
  });

  test('a wrong measurement is denied with 403, naming the failed claim with expected and actual values', async () => {
    const name = `deny-${randomBytes(4).toString('hex')}`;
    await keys.createRsaKey(name, { hsm: true, exportable: true, releasePolicy: policyFor([{ claim: 'x-ms-sevsnpvm-launchmeasurement', equals: MEASUREMENT }]) });
    const token = await attest('snp', { measurement: 'ff'.repeat(48) });
    await assert.rejects(keys.releaseKey(name, token), (e: { statusCode?: number; message?: string }) => {
      assert.equal(e.statusCode, 403);
      assert.match(e.message ?? '', /x-ms-sevsnpvm-launchmeasurement/);
      assert.match(e.message ?? '', new RegExp(MEASUREMENT));
      assert.match(e.message ?? '', /ff{20}/);
      return true;
    });
  });

  test('tokens of the simulated TEE say so, and a policy can refuse them', async () => {
    const name = `nosim-${randomBytes(4).toString('hex')}`;
    await keys.createRsaKey(name, {
      hsm: true,
      exportable: true,
      releasePolicy: policyFor([
        { claim: 'x-ms-sgx-mrenclave', equals: MRENCLAVE },
        { claim: 'x-conclave-simulated', equals: 'false' },
      ]),
    });
    const token = await attest('sgx', { mrenclave: MRENCLAVE });
    await assert.rejects(keys.releaseKey(name, token), (e: { statusCode?: number; message?: string }) => e.statusCode === 403 && /x-conclave-simulated/.test(e.message ?? ''));
  });
});
