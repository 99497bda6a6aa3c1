/**
 * The unchanged @azure/keyvault-keys KeyClient and CryptographyClient in each api-version the JS SDK's
 * releases send (`serviceVersion`: 7.2 … 7.4 of the 4.x releases before 4.9, 7.5, 7.6 and 2025-07-01 of
 * 4.10), with the SDK's challenge-resource check on: the vault is `jsv.vault.localtest:<port>`, resolved
 * to 127.0.0.1 by an https.Agent of the test (name resolution, not a change to the client).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { lookup } from 'node:dns';
import { after, before, describe, test } from 'node:test';
import { CryptographyClient, KeyClient, type KeyClientOptions } from '@azure/keyvault-keys';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, assignRole, type AuthorityStandIn, credentialFor, policyFor, startAuthority } from './harness.js';
import { startNamedVault } from './python-harness.js';

const VERSIONS = ['7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01'] as const;
const since = (v: string, floor: string) => VERSIONS.indexOf(v as (typeof VERSIONS)[number]) >= VERSIONS.indexOf(floor as (typeof VERSIONS)[number]);

let server: TestServer;
let vaultUrl: string;
let authority: AuthorityStandIn;
let agent: Agent;

function options(serviceVersion: string): KeyClientOptions {
  return {
    serviceVersion,
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [
      {
        position: 'perCall',
        policy: {
          name: 'localtest-resolution',
          sendRequest(request, next) {
            request.agent = agent;
            return next(request);
          },
        },
      },
    ],
  };
}

describe('@azure/keyvault-keys in each api-version its releases send', () => {
  before(async () => {
    ({ server, url: vaultUrl } = await startNamedVault('jsv', { flags: { maintenanceInterval: 0 } }));
    agent = new Agent({
      ca: readFileSync(server.caPath, 'utf8'),
      lookup: (host, opts, cb) => lookup(host.endsWith('.localtest') ? '127.0.0.1' : host, opts, cb),
    });
    authority = await startAuthority(server);
    assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(server, server.admin.clientId, 'Managed HSM Crypto Service Release User');
  });
  after(async () => {
    agent?.destroy();
    await authority?.close();
    await server?.stop();
  });
  for (const v of VERSIONS) {
    test(`serviceVersion ${v}`, async () => {
      const credential = credentialFor(server, server.admin.clientId, server.admin.clientSecret);
      const keys = new KeyClient(vaultUrl, credential, options(v));
      const name = `jsv-${v.replace(/\./g, '-')}`;
      const rsa = await keys.createRsaKey(name, { keySize: 2048, tags: { v } });
      assert.ok(rsa.id?.startsWith(`${vaultUrl}/keys/${name}/`), rsa.id);
      assert.equal(rsa.properties.recoverableDays, 90);
      assert.equal(rsa.properties.exportable !== undefined, since(v, '7.3'), `exportable in ${v}`);
      assert.equal(rsa.properties.hsmPlatform !== undefined, since(v, '7.5'), `hsmPlatform in ${v}`);
      assert.equal((await keys.getKey(name.toUpperCase())).id, rsa.id);
      const names: string[] = [];
      for await (const p of keys.listPropertiesOfKeys()) names.push(p.name);
      assert.ok(names.includes(name));
      const updated = await keys.updateKeyProperties(name, rsa.properties.version!, { tags: { v, updated: 'yes' } });
      assert.equal(updated.properties.tags?.updated, 'yes');

      const crypto = new CryptographyClient(rsa, credential, options(v));
      const digest = createHash('sha256').update(v).digest();
      const signed = await crypto.sign('RS256', digest);
      assert.equal((await crypto.verify('RS256', digest, signed.result)).result, true);
      const encrypted = await crypto.encrypt({ algorithm: 'RSA-OAEP-256', plaintext: Buffer.from('secret') });
      assert.equal(Buffer.from((await crypto.decrypt({ algorithm: 'RSA-OAEP-256', ciphertext: encrypted.result })).result).toString(), 'secret');

      const backup = await keys.backupKey(name);
      await (await keys.beginDeleteKey(name, { intervalInMs: 10 })).pollUntilDone();
      assert.equal((await keys.getDeletedKey(name)).name, name);
      await (await keys.beginRecoverDeletedKey(name, { intervalInMs: 10 })).pollUntilDone();
      await (await keys.beginDeleteKey(name, { intervalInMs: 10 })).pollUntilDone();
      await keys.purgeDeletedKey(name);
      assert.equal((await keys.restoreKeyBackup(backup!)).properties.tags?.updated, 'yes');

      if (since(v, '7.3')) {
        assert.equal((await keys.getRandomBytes(16)).length, 16);
        const policy = await keys.updateKeyRotationPolicy(name, { lifetimeActions: [{ action: 'Rotate', timeBeforeExpiry: 'P30D' }], expiresIn: 'P60D' });
        assert.equal(policy.expiresIn, 'P60D');
        assert.equal((await keys.getKeyRotationPolicy(name)).lifetimeActions?.[0]?.timeBeforeExpiry, 'P30D');
        const rotated = await keys.rotateKey(name);
        assert.notEqual(rotated.properties.version, rsa.properties.version);
        assert.equal((rotated.properties.expiresOn!.getTime() - rotated.properties.createdOn!.getTime()) / 86_400_000, 60);
        await keys.createRsaKey(`${name}-skr`, { keySize: 2048, hsm: true, exportable: true, releasePolicy: { encodedPolicy: policyFor(authority.url) } });
        const released = await keys.releaseKey(`${name}-skr`, authority.token(), { nonce: `n-${v}` });
        assert.equal(released.value.split('.').length, 3);
      } else {
        // 7.2 has neither rotation nor release: the service refuses them in that version.
        await assert.rejects(keys.rotateKey(name), (e: { statusCode?: number; message?: string }) => e.statusCode === 400 && /not available in api-version 7\.2/.test(e.message ?? ''));
      }
    });
  }
});
