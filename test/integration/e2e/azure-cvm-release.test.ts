/**
 * Azure's own Secure Key Release story against Conclave: Azure's default CVM release policy
 * (cvm-default-skr-policy.json, authorities pointed at Conclave) releases a key to a real Azure CVM's
 * token, wrapped to the TPM encryption key in that token; a simulated CVM with secure boot off is refused
 * with the clause named; an AzureGuest token (sealed to the vTPM, opened by the fake TPM) satisfies
 * Azure's CVM data-disk policy.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { KeyClient } from '@azure/keyvault-keys';
import { b64url } from '../../../src/core/bytes.js';
import { simulateAzureCvm } from '../../../src/evidence/azure-vtpm/testing.js';
import { FakeTpm } from '../../../src/evidence/tpm/testing.js';
import { generateRsaKeyPair, type KeyPair } from '../../../src/core/keygen.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { decodeReleaseResponse, unwrapKeyTransfer } from '../../../src/vault/release/index.js';
import { readFixture, readFixtureJson, skipWithoutFixtures } from '../../fixtures.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();

function credential(server: TestServer) {
  return { getToken: async () => ({ token: await server.adminToken(), expiresOnTimestamp: Date.now() + 3_000_000 }) };
}

async function vault(server: TestServer): Promise<KeyClient> {
  const r = await server.sendHttps('PUT', '/admin/vault/roleAssignments', {
    headers: { authorization: `Bearer ${await server.adminToken()}` },
    body: { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' },
  });
  assert.equal(r.status, 200, r.text);
  return new KeyClient(server.url, credential(server), { tlsOptions: { ca: readFileSync(server.caPath, 'utf8') }, disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } });
}

/** An Azure published policy with every authority replaced by this server's URL. */
function azurePolicy(file: string, server: TestServer): Uint8Array {
  const p = readFixtureJson<{ anyOf: { authority: string }[] }>('skr-policies', file);
  return new TextEncoder().encode(JSON.stringify({ ...p, anyOf: p.anyOf.map((a) => ({ ...a, authority: `${server.url}/` })) }));
}

function payload(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

/** What the guest attestation library does with MAA's sealed answer (cvm-guest-attestation `DecryptMaaToken`). */
export function openSealedToken(sealed: string, tpmDecrypt: (c: Uint8Array) => Uint8Array): string {
  const doc = JSON.parse(Buffer.from(sealed, 'base64url').toString('utf8'));
  assert.deepEqual({ ...doc.EncryptionParams, Iv: undefined }, { BlockMode: 'ChainingModeGCM', BlockPadding: 'PKCS7', Cipher: 'AES', KeySizeInBits: 256, Iv: undefined });
  const key = tpmDecrypt(Buffer.from(doc.EncryptedInnerKey, 'base64'));
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(doc.EncryptionParams.Iv, 'base64'));
  d.setAAD(Buffer.from('Transport Key'));
  d.setAuthTag(Buffer.from(doc.AuthenticationData, 'base64'));
  return Buffer.concat([d.update(Buffer.from(doc.Jwt, 'base64')), d.final()]).toString('utf8');
}

describe('Azure CVM Secure Key Release against Conclave', { skip }, () => {
  test('a real Azure CVM (Milan) token satisfies Azure\'s default CVM release policy; the key is wrapped to its TPM encryption key', async () => {
    const server = await startTestServer({}, { now: () => new Date('2025-06-01T00:00:00Z') });
    try {
      const keys = await vault(server);
      const name = `cvm-${randomBytes(4).toString('hex')}`;
      await keys.createRsaKey(name, { hsm: true, keySize: 2048, exportable: true, releasePolicy: { encodedPolicy: azurePolicy('cvm-default-skr-policy.json', server) } });
      const r = await server.sendHttps('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { report: b64url(readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'evidence-v0.json')) } });
      assert.equal(r.status, 200, r.text);
      const token = r.json().token;
      const claims = payload(token);
      assert.equal(claims['x-ms-compliance-status'], 'azure-compliant-cvm');
      const { value } = await keys.releaseKey(name, token);
      const released = (decodeReleaseResponse(value) as any).payload.response.key.key;
      const blob = JSON.parse(Buffer.from(released.key_hsm, 'base64url').toString('utf8'));
      // The wrapping key is the vTPM's encryption key of the token (HCLEkPub), RSA-2048: RSA-OAEP(KEK) is its first 256 bytes.
      assert.equal(blob.header.kid, 'HCLEkPub');
      const ek = claims['x-ms-runtime'].keys.find((k: { kid: string }) => k.kid === 'HCLEkPub');
      assert.equal(Buffer.from(ek.n, 'base64url').length, 256);
      assert.ok(Buffer.from(blob.ciphertext, 'base64url').length > 256);
    } finally {
      await server.stop();
    }
  });

  describe('simulated CVMs (one --simulate server)', () => {
    let server: TestServer;
    let keys: KeyClient;
    before(async () => {
      server = await startTestServer({ simulate: true });
      keys = await vault(server);
    });
    after(() => server?.stop());
    // The simulated CVMs' AK and HCLEkPub (RSA-2048, about 0.15 s of CPU each to make); each CVM has its own
    // TPM state (boot, PCRs), and each release is wrapped to the EK or to a fresh ephemeral TPM key.
    let vtpmKeys: { ak: KeyPair; ek: KeyPair } | undefined;
    const cvm = (secureBoot: boolean) => {
      vtpmKeys ??= { ak: generateRsaKeyPair(2048), ek: generateRsaKeyPair(2048) };
      return simulateAzureCvm(loadOrCreateSimulatedTee(server.dataDir).snp, { secureBoot, tpm: new FakeTpm({ ak: vtpmKeys.ak }).bootLinux(secureBoot), ek: vtpmKeys.ek });
    };

    test('a simulated CVM: secure boot on is released (unwrapped with HCLEkPub), secure boot off is denied naming the clause', async () => {
      const name = `cvm-${randomBytes(4).toString('hex')}`;
      const created = await keys.createRsaKey(name, { hsm: true, keySize: 2048, exportable: true, releasePolicy: { encodedPolicy: azurePolicy('cvm-default-skr-policy.json', server) } });

      const on = cvm(true);
      const good = await server.sendHttps('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { report: b64url(on.trusteeV1()) } });
      assert.equal(good.status, 200, good.text);
      assert.equal(payload(good.json().token)['x-conclave-simulated'], true);
      const { value } = await keys.releaseKey(name, good.json().token);
      const material = unwrapKeyTransfer((decodeReleaseResponse(value) as any).payload.response.key.key.key_hsm, on.ekPrivate);
      const pub = createPublicKey(createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
      assert.equal(pub.n, Buffer.from(created.key!.n!).toString('base64url'));

      const off = cvm(false);
      const bad = await server.sendHttps('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { report: b64url(off.trusteeV1()) } });
      assert.equal(bad.status, 200, bad.text);
      const claims = payload(bad.json().token);
      assert.equal(claims['x-conclave-secure-boot-config'], false);
      assert.equal(claims['x-ms-compliance-status'], undefined);
      await assert.rejects(keys.releaseKey(name, bad.json().token), (e: any) => {
        assert.equal(e.statusCode, 403);
        assert.match(e.message, /x-ms-compliance-status/);
        assert.match(e.message, /azure-compliant-cvm/);
        return true;
      });
    });

    test('AzureGuest: the sealed token opens only in the vTPM, satisfies Azure\'s data-disk policy and releases to TpmEphemeralEncryptionKey', async () => {
      const vm = cvm(true);
      const guest = vm.guestInfo({ clientPayload: { nonce: 'abc' } });
      const r = await server.sendHttps('POST', '/attest/AzureGuest?api-version=2020-10-01', { body: { AttestationInfo: guest.attestationInfo } });
      assert.equal(r.status, 200, r.text);
      const sealed = r.json().token as string;
      assert.equal(sealed.split('.').length, 1, 'the answer is the sealed document, not a bare JWT');
      const token = openSealedToken(sealed, guest.decrypt);
      const claims = payload(token);
      assert.equal(claims['x-ms-attestation-type'], 'azurevm');
      assert.equal(claims.secureboot, true);
      assert.equal(claims['x-ms-azurevm-debuggersdisabled'], true);
      assert.equal(claims['x-ms-isolation-tee']['x-ms-compliance-status'], 'azure-compliant-cvm');
      assert.equal(claims['x-ms-runtime'].keys[0].kid, 'TpmEphemeralEncryptionKey');
      assert.deepEqual(claims['x-ms-runtime']['client-payload'], { nonce: 'abc' });
      // Another TPM (or this one after a PCR changed) cannot open it.
      vm.tpm.measure(7, 4, Buffer.from('after'));
      assert.throws(() => openSealedToken(sealed, guest.decrypt), /PCRs changed/);

      const name = `disk-${randomBytes(4).toString('hex')}`;
      const created = await keys.createRsaKey(name, { hsm: true, keySize: 2048, exportable: true, releasePolicy: { encodedPolicy: azurePolicy('cvm-datadisk-skr-policy.json', server) } });
      const { value } = await keys.releaseKey(name, token);
      const material = unwrapKeyTransfer((decodeReleaseResponse(value) as any).payload.response.key.key.key_hsm, guest.ephemeralPrivate);
      const pub = createPublicKey(createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
      assert.equal(pub.n, Buffer.from(created.key!.n!).toString('base64url'));
    });
  });
});
