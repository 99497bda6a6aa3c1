/**
 * With `--hsm pkcs11:…` the release response JWS is signed by an RSA-2048 key generated in the token
 * (label `conclave-service:release-signing:<vault host>`, not extractable); its self-signed certificate in x5c is
 * stored in service_keys and survives restarts, and a server on another store finds the same token key.
 */
import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject, verify, X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pkcs11js from 'pkcs11js';
import { decodeReleaseResponse } from '../../../src/vault/release/index.js';
import { startTestServer, type TestServer, tempDir } from '../../helpers/server.js';
import { sharedSoftHsm, type SoftHsmToken, skipWithoutSoftHsm } from '../../helpers/softhsm.js';
import { adminJson, adminKeyClient, assignRole, policyFor, startAuthority } from '../vault/harness.js';

const skip = skipWithoutSoftHsm();
const LABEL = 'conclave-service:release-signing:127.0.0.1';

/** Starts a vault on the token, releases one key and returns the release JWS. */
async function releaseOn(server: TestServer, keyName: string): Promise<string> {
  const authority = await startAuthority(server);
  try {
    assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
    const client = adminKeyClient(server);
    const releasePolicy = { encodedPolicy: policyFor(authority.url), contentType: 'application/json; charset=utf-8' };
    await client.createRsaKey(keyName, { hsm: true, keySize: 2048, exportable: true, releasePolicy });
    return (await client.releaseKey(keyName, authority.token(), { algorithm: 'CKM_RSA_AES_KEY_WRAP' })).value;
  } finally {
    await authority.close();
  }
}

/** Verifies the JWS with its own x5c[0] and returns that certificate. */
function verifiedLeaf(jws: string): X509Certificate {
  const { header } = decodeReleaseResponse(jws);
  assert.equal(header.alg, 'RS256');
  const x5c = header.x5c as string[];
  const leaf = new X509Certificate(Buffer.from(x5c[0]!, 'base64'));
  const [h, p, sig] = jws.split('.');
  assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), leaf.publicKey, Buffer.from(sig!, 'base64url')), 'JWS verifies with x5c[0]');
  assert.ok(leaf.verify(leaf.publicKey), 'the certificate is self-signed by the token key');
  return leaf;
}

/** Reads the release-signing objects straight from the token with pkcs11js (the server stays logged in). */
function tokenObjects(token: SoftHsmToken): { publicKeys: KeyObject[]; privateExponent: string; sensitive: boolean; extractable: boolean } {
  const lib = new pkcs11js.PKCS11();
  lib.load(token.module);
  try {
    lib.C_Initialize();
  } catch (e) {
    if (!String(e).includes('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw e;
  }
  const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === token.label)!;
  const s = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  try {
    try {
      lib.C_Login(s, pkcs11js.CKU_USER, token.pin);
    } catch (e) {
      if (!String(e).includes('CKR_USER_ALREADY_LOGGED_IN')) throw e;
    }
    lib.C_FindObjectsInit(s, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: LABEL },
    ]);
    const keys = lib.C_FindObjects(s, 16);
    lib.C_FindObjectsFinal(s);
    const publicKeys = keys.map((k) => {
      const [n, e] = lib.C_GetAttributeValue(s, k, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
      return createPublicKey({ key: { kty: 'RSA', n: (n!.value as Buffer).toString('base64url'), e: (e!.value as Buffer).toString('base64url') }, format: 'jwk' });
    });
    const key = keys[0]!;
    let privateExponent = 'readable';
    try {
      lib.C_GetAttributeValue(s, key, [{ type: pkcs11js.CKA_PRIVATE_EXPONENT }]);
    } catch (e) {
      privateExponent = /CKR_[A-Z_]+/.exec(String(e))?.[0] ?? String(e);
    }
    const [sensitive, extractable] = lib.C_GetAttributeValue(s, key, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }]);
    return { publicKeys, privateExponent, sensitive: (sensitive!.value as Buffer)[0] === 1, extractable: (extractable!.value as Buffer)[0] === 1 };
  } finally {
    lib.C_CloseSession(s);
  }
}

const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' }).toString('base64');

describe('release-signing key in a PKCS#11 token', { skip }, () => {
  const dirs: string[] = [];
  let token: SoftHsmToken;
  before(() => {
    token = sharedSoftHsm();
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('the release JWS is signed in the token, the key is not extractable, and restarts reuse it', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    let server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    let first: X509Certificate;
    try {
      first = verifiedLeaf(await releaseOn(server, 'signed-1'));
      const objects = tokenObjects(token);
      assert.equal(objects.publicKeys.length, 1);
      assert.equal(spki(objects.publicKeys[0]!), spki(first.publicKey), 'x5c[0] certifies the token key');
      assert.equal(objects.privateExponent, 'CKR_ATTRIBUTE_SENSITIVE');
      assert.equal(objects.sensitive, true);
      assert.equal(objects.extractable, false);
      const row = await server.ctx.db.get<{ sealed_private: Uint8Array; cert_der: Uint8Array }>('SELECT sealed_private, cert_der FROM service_keys WHERE name = ?', ['pkcs11:release-signing:127.0.0.1']);
      assert.equal(row?.sealed_private.byteLength, 0);
      assert.deepEqual(Buffer.from(row!.cert_der), Buffer.from(first.raw));
      assert.equal(await server.ctx.db.get('SELECT name FROM service_keys WHERE name = ?', ['release-signing:127.0.0.1']), undefined);
    } finally {
      await server.stop();
    }

    server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    try {
      const again = verifiedLeaf(await releaseOn(server, 'signed-2'));
      assert.deepEqual(Buffer.from(again.raw), Buffer.from(first.raw), 'same x5c after a restart');
    } finally {
      await server.stop();
    }

    // Another store on the same token (a replica, or a lost database) finds the key by label.
    server = await startTestServer({ services: 'vault', hsm: token.spec });
    try {
      const replica = verifiedLeaf(await releaseOn(server, 'signed-3'));
      assert.equal(spki(replica.publicKey), spki(first.publicKey));
      assert.equal(tokenObjects(token).publicKeys.length, 1, 'no second key pair was generated');
    } finally {
      await server.stop();
    }
  });

  test('a stored certificate whose key the token lacks is replaced by one over the token key', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    let server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    try {
      // A certificate over another key (as after the token was re-initialised).
      const other = verifiedLeaf(await releaseOn(server, 'stale-0'));
      const stale = await startTestServer({ services: 'vault', hsm: undefined });
      try {
        const soft = verifiedLeaf(await releaseOn(stale, 'soft-0'));
        assert.notEqual(spki(soft.publicKey), spki(other.publicKey), 'without --hsm the software key signs');
        await server.ctx.db.run('UPDATE service_keys SET cert_der = ? WHERE name = ?', [Buffer.from(soft.raw), 'pkcs11:release-signing:127.0.0.1']);
      } finally {
        await stale.stop();
      }
    } finally {
      await server.stop();
    }
    server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    try {
      const leaf = verifiedLeaf(await releaseOn(server, 'stale-1'));
      assert.equal(spki(leaf.publicKey), spki(tokenObjects(token).publicKeys[0]!));
    } finally {
      await server.stop();
    }
  });
});
