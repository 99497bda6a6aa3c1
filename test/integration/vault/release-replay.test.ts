/**
 * The SDK and the CLI verify what they unwrap (issue #23 item 7): a vault (or anything answering as one)
 * that replays a real, validly signed release of key A when key B was asked for, or tampers with a
 * release, is refused before any key material is unwrapped.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { releaseKey } from '../../../src/sdk/index.js';
import { conclave } from '../../helpers/cli.js';
import { type TestServer, tempDir } from '../../helpers/server.js';
import { adminJson, adminKeyClient, assignRole, type AuthorityStandIn, policyFor, startAuthority, startVault } from './harness.js';

describe('release responses are proven before anything is unwrapped', () => {
  let server: TestServer;
  let authority: AuthorityStandIn;
  let fake: Server;
  let fakeUrl = '';
  let answer = '';
  const work = tempDir();

  before(async () => {
    server = await startVault();
    authority = await startAuthority(server);
    assert.equal((await adminJson(server, 'PUT', '/admin/vault/authorities', { authorities: [authority.url] })).status, 200);
    await assignRole(server, server.admin.clientId, 'Key Vault Crypto Service Release User');
    const client = adminKeyClient(server);
    const releasePolicy = { encodedPolicy: policyFor(authority.url), contentType: 'application/json; charset=utf-8' };
    await client.createOctKey('key-a', { hsm: true, keySize: 256, exportable: true, releasePolicy });
    await client.createOctKey('key-b', { hsm: true, keySize: 256, exportable: true, releasePolicy });
    // A real, validly signed release of key A, as a replaying vault would hold it.
    answer = (await client.releaseKey('key-a', authority.token(), { nonce: 'n-a' })).value;
    // Something answering as the vault, with the vault's own TLS identity (as a compromised proxy would).
    const tls = { key: readFileSync(join(server.dataDir, 'tls', 'server.key')), cert: readFileSync(join(server.dataDir, 'tls', 'server.pem')) };
    fake = createServer(tls, (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/oauth2/token')) res.end(JSON.stringify({ access_token: 'x', token_type: 'Bearer', expires_in: 3600 }));
      else if (/\/release/.test(req.url ?? '')) res.end(JSON.stringify({ value: answer }));
      else res.writeHead(404).end('{}');
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    fakeUrl = `https://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => fake?.close(() => r()));
    await authority?.close();
    await server?.stop();
  });

  const sdkRelease = (keyName: string) =>
    releaseKey({
      vaultUrl: fakeUrl,
      keyName,
      token: authority.token(),
      credential: () => 'x',
      privateKey: authority.workload.privateKey,
      ca: readFileSync(server.caPath),
      trustStore: readFileSync(server.caPath, 'utf8'),
    });

  test('SDK: key A released again for a request of key B is refused (key named, nonce echoed)', async () => {
    await assert.rejects(sdkRelease('key-b'), (e: { code?: string; message?: string }) => e.code === 'sdk.release_jws_invalid' && /key|nonce/.test(e.message ?? ''));
    // Even asked for key A, a replayed answer does not echo this request's fresh nonce.
    await assert.rejects(sdkRelease('key-a'), (e: { code?: string; message?: string }) => e.code === 'sdk.release_jws_invalid' && /nonce/.test(e.message ?? ''));
  });

  test('CLI: key release --private-key refuses a replayed or tampered release and unwraps nothing', async () => {
    const tokenFile = join(work, 'token.jwt');
    writeFileSync(tokenFile, authority.token());
    const pem = join(work, 'tee.pem');
    writeFileSync(pem, authority.workload.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    // The fake vault gets a credential of its own, given explicitly: admin.json's goes only to the server
    // that wrote it (a loopback address, as this fake's, is still allowed it; this test does not rely on that).
    const cli = (...args: string[]) =>
      conclave(['key', 'release', ...args, '--token', tokenFile, '--private-key', pem, '--url', fakeUrl, '--client-id', 'fake-client', '--client-secret', 'fake-secret', '--data-dir', server.dataDir, '-o', 'json']);
    const replayed = await cli('key-b', '--release-trust', server.caPath);
    assert.equal(replayed.code, 1, replayed.stderr);
    assert.match(replayed.stderr, /not trusted/);
    assert.doesNotMatch(replayed.stdout, /"k"/, 'no key material printed');
    const [h, p, s] = answer.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8'));
    payload.request.nonce = 'forged';
    answer = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    const tampered = await cli('key-a', '--release-trust', server.caPath, '--nonce', 'forged');
    assert.equal(tampered.code, 1, tampered.stderr);
    assert.match(tampered.stderr, /not trusted/);
    const byDefault = await cli('key-b');
    assert.equal(byDefault.code, 1, 'by default the pinned server CA is the anchor, and the checks still hold');
    assert.match(byDefault.stderr, /not trusted/);
  });
});
