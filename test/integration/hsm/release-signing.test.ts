/**
 * With `--hsm pkcs11:…` the release response JWS is signed by an RSA-2048 key generated in the token
 * (label `conclave-service:release-signing:<vault host>`, not extractable); x5c is a certificate the local CA
 * issues for that key, then the CA; the token key's self-signed certificate, its pin, is stored in service_keys
 * and survives restarts, and a server on another store finds the same token key.
 */
import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject, verify, X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pkcs11js from 'pkcs11js';
import { decodeReleaseResponse } from '../../../src/vault/release/index.js';
import { startTestServer, type TestServer, tempDir } from '../../helpers/server.js';
import { sharedSoftHsm, type SoftHsmToken, skipWithoutSoftHsm } from '../../helpers/softhsm.js';
import { runCli } from '../agent/helpers.js';
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

/** Verifies the JWS with its own x5c[0], x5c[0] by the CA in x5c[1], and returns the leaf. */
function verifiedLeaf(jws: string): X509Certificate {
  const { header } = decodeReleaseResponse(jws);
  assert.equal(header.alg, 'RS256');
  const x5c = header.x5c as string[];
  const leaf = new X509Certificate(Buffer.from(x5c[0]!, 'base64'));
  const [h, p, sig] = jws.split('.');
  assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), leaf.publicKey, Buffer.from(sig!, 'base64url')), 'JWS verifies with x5c[0]');
  assert.equal(x5c.length, 2);
  assert.ok(leaf.verify(new X509Certificate(Buffer.from(x5c[1]!, 'base64')).publicKey), 'the local CA issued the certificate of the token key');
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

type Lib = pkcs11js.PKCS11;

/** A logged-in session on the test token from a second PKCS#11 application (the "other PIN holder"). */
function withTokenSession(token: SoftHsmToken, fn: (lib: Lib, s: Buffer) => void): void {
  const lib = new pkcs11js.PKCS11();
  lib.load(token.module);
  try {
    lib.C_Initialize();
  } catch (e) {
    if (!String(e).includes('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw e;
  }
  const slot = lib.C_GetSlotList(true).find((x) => lib.C_GetTokenInfo(x).label.trim() === token.label)!;
  const s = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    try {
      lib.C_Login(s, pkcs11js.CKU_USER, token.pin);
    } catch (e) {
      if (!String(e).includes('CKR_USER_ALREADY_LOGGED_IN')) throw e;
    }
    fn(lib, s);
  } finally {
    lib.C_CloseSession(s);
  }
}

function findLabelled(lib: Lib, s: Buffer): Buffer[] {
  lib.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_LABEL, value: LABEL }]);
  try {
    return lib.C_FindObjects(s, 64);
  } finally {
    lib.C_FindObjectsFinal(s);
  }
}

/** An RSA pair under the release-signing label; `thenLock` makes it sensitive and unextractable after the fact. */
function generateLabelledPair(lib: Lib, s: Buffer, o: { extractable: boolean; sensitive: boolean; thenLock?: boolean }): void {
  const common = [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: LABEL },
    { type: pkcs11js.CKA_ID, value: Buffer.alloc(16) },
  ];
  const { privateKey } = lib.C_GenerateKeyPair(
    s,
    { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
    [...common, { type: pkcs11js.CKA_VERIFY, value: true }, { type: pkcs11js.CKA_MODULUS_BITS, value: 2048 }, { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }],
    [...common, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: o.sensitive }, { type: pkcs11js.CKA_EXTRACTABLE, value: o.extractable }, { type: pkcs11js.CKA_SIGN, value: true }],
  );
  if (o.thenLock) {
    lib.C_SetAttributeValue(s, privateKey, [
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    ]);
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
      assert.equal(spki(new X509Certificate(Buffer.from(row!.cert_der)).publicKey), spki(first.publicKey), 'the stored pin is of the same key');
      assert.equal(await server.ctx.db.get('SELECT name FROM service_keys WHERE name = ?', ['release-signing:127.0.0.1']), undefined);
    } finally {
      await server.stop();
    }

    server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    try {
      const again = verifiedLeaf(await releaseOn(server, 'signed-2'));
      assert.equal(spki(again.publicKey), spki(first.publicKey), 'the same token key after a restart');
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

  test('a PIN holder who swaps the release-signing key in the token: the server refuses to start and to certify it', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    let server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    let genuine: X509Certificate;
    const db = String(server.ctx.config.db);
    try {
      genuine = verifiedLeaf(await releaseOn(server, 'swap-0'));
    } finally {
      await server.stop();
    }
    // Another process with the user PIN destroys the pair and plants an extractable one under the label.
    withTokenSession(token, (lib, s) => {
      for (const h of findLabelled(lib, s)) lib.C_DestroyObject(s, h);
      generateLabelledPair(lib, s, { extractable: true, sensitive: false });
    });
    const started = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir }).then(
      async (s) => {
        await s.stop();
        return 'started';
      },
      (e: { code?: string; message?: string }) => e,
    );
    assert.equal(typeof started === 'object' ? started.code : started, 'hsm.key_untrusted', String(typeof started === 'object' ? started.message : started));
    // The operator unpins (as after a deliberate re-initialisation): the planted pair is still refused.
    const unpin = await runCli(['hsm', 'unpin-service-key', 'release-signing:127.0.0.1', '--db', db, '--output', 'json']);
    assert.equal(unpin.code, 0, unpin.stderr);
    server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    try {
      await assert.rejects(releaseOn(server, 'swap-1'), (e: { statusCode?: number; code?: string; message?: string }) => {
        assert.equal(e.statusCode, 503, e.message);
        assert.match(String(e.message), /CKA_EXTRACTABLE|CKA_SENSITIVE/);
        return true;
      });
      const row = await server.ctx.db.get('SELECT name FROM service_keys WHERE name = ?', ['pkcs11:release-signing:127.0.0.1']);
      assert.equal(row, undefined, 'the planted key was not certified');
    } finally {
      await server.stop();
    }
    // A pair imported as sensitive and not extractable but once readable (CKA_ALWAYS_SENSITIVE false) is refused too.
    withTokenSession(token, (lib, s) => {
      for (const h of findLabelled(lib, s)) lib.C_DestroyObject(s, h);
      generateLabelledPair(lib, s, { extractable: true, sensitive: false, thenLock: true });
    });
    server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    try {
      await assert.rejects(releaseOn(server, 'swap-2'), (e: { statusCode?: number; message?: string }) => e.statusCode === 503 && /CKA_ALWAYS_SENSITIVE|CKA_NEVER_EXTRACTABLE/.test(String(e.message)));
    } finally {
      await server.stop();
    }
    // With the planted objects gone, the next start generates and certifies a new protected key.
    withTokenSession(token, (lib, s) => {
      for (const h of findLabelled(lib, s)) lib.C_DestroyObject(s, h);
    });
    server = await startTestServer({ services: 'vault', hsm: token.spec }, { dataDir });
    try {
      const fresh = verifiedLeaf(await releaseOn(server, 'swap-3'));
      assert.notEqual(spki(fresh.publicKey), spki(genuine.publicKey));
      const objects = tokenObjects(token);
      assert.equal(objects.extractable, false);
      assert.equal(objects.sensitive, true);
    } finally {
      await server.stop();
    }
  });
});
