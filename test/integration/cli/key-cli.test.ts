/** `conclave key …` subcommands through the compiled CLI (test/helpers/cli.ts) against a running server: success and failure. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { conclave } from '../../helpers/cli.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../../../src/core/keygen.js';

const work = mkdtempSync(join(tmpdir(), 'conclave-key-cli-'));
const file = (name: string, text: string) => {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
};

describe('conclave key (binary)', () => {
  let server: TestServer;
  let base: string[];
  const k = (...args: string[]) => conclave(['key', ...args, ...base, '-o', 'json']);
  before(async () => {
    server = await startTestServer({ simulate: true });
    base = ['--data-dir', server.dataDir, '--url', server.url];
  });
  after(() => server.stop());

  test('create --name with a release policy file, update, and a malformed policy file (2)', async () => {
    const policy = file('p.json', JSON.stringify({ version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-sgx-mrenclave', equals: 'aa'.repeat(32) }] }] }));
    const created = await k('create', '--exportable', '--kty', 'RSA-HSM', '--name', 'cli-rsa', '--policy', policy);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.json().exportable, true);
    assert.equal(created.json().releasePolicy.anyOf[0].authority, server.url);
    const updated = await k('update', 'cli-rsa', '--tags', 'team=pay,env=dev', '--disable');
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal(updated.json().enabled, false);
    assert.deepEqual(updated.json().tags, { team: 'pay', env: 'dev' });
    assert.equal((await k('update', 'cli-rsa', '--enable')).code, 0);
    const bad = await k('create', '--name', 'cli-bad', '--exportable', '--policy', file('bad.json', 'not json'));
    assert.equal(bad.code, 2);
    const missing = await k('get', 'no-such-key');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);
  });

  test('encrypt/decrypt, wrap/unwrap and sign/verify round trips; a wrong signature exits 1', async () => {
    assert.equal((await k('create', 'cli-ops', '--kty', 'RSA', '--size', '2048')).code, 0);
    const plain = Buffer.from('cli secret').toString('base64url');
    const enc = await k('encrypt', 'cli-ops', '--alg', 'RSA-OAEP-256', '--value', plain);
    assert.equal(enc.code, 0, enc.stderr);
    const dec = await k('decrypt', 'cli-ops', '--alg', 'RSA-OAEP-256', '--value', enc.json().value);
    assert.equal(dec.json().value, plain);
    const wrapped = await k('wrap', 'cli-ops', '--alg', 'RSA-OAEP', '--value', Buffer.alloc(32, 7).toString('base64url'));
    assert.equal((await k('unwrap', 'cli-ops', '--alg', 'RSA-OAEP', '--value', wrapped.json().value)).json().value, Buffer.alloc(32, 7).toString('base64url'));
    const digest = createHash('sha256').update('message').digest('base64url');
    const sig = await k('sign', 'cli-ops', '--alg', 'PS256', '--digest', digest);
    assert.equal(sig.code, 0, sig.stderr);
    assert.equal((await k('verify', 'cli-ops', '--alg', 'PS256', '--digest', digest, '--signature', sig.json().value)).code, 0);
    const other = createHash('sha256').update('other').digest('base64url');
    const wrong = await k('verify', 'cli-ops', '--alg', 'PS256', '--digest', other, '--signature', sig.json().value);
    assert.equal(wrong.code, 1);
    assert.equal((await k('encrypt', 'cli-ops', '--alg', 'RSA-OAEP-256', '--value', '!!not base64!!')).code, 2);
  });

  test('import a JWK, backup and restore after purge', async () => {
    const { privateKey } = generateEcKeyPair('P-256');
    const jwk = file('ec.jwk', JSON.stringify(privateKey.export({ format: 'jwk' })));
    const imported = await k('import', 'cli-ec', '--jwk', jwk);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.json().kty, 'EC');
    const backupFile = join(work, 'cli-ec.backup');
    const backup = await k('backup', 'cli-ec', '--file', backupFile);
    assert.equal(backup.code, 0, backup.stderr);
    assert.ok(readFileSync(backupFile, 'utf8').length > 100);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600, 'the backup is the user\'s alone');
    // A symbolic link planted where the backup goes is not written through.
    const elsewhere = file('elsewhere.txt', 'untouched');
    const link = join(work, 'planted.backup');
    symlinkSync(elsewhere, link);
    const refused = await k('backup', 'cli-ec', '--file', link);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /symbolic link/);
    assert.equal(readFileSync(elsewhere, 'utf8'), 'untouched');
    assert.equal((await k('delete', 'cli-ec')).code, 0);
    assert.equal((await k('purge', 'cli-ec')).code, 0);
    const restored = await k('restore', '--file', backupFile);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.json().kid, /\/keys\/cli-ec\//);
    assert.equal((await k('import', 'cli-x', '--jwk', join(work, 'missing.jwk'))).code, 2);
  });

  test('release with a token from the attestation service, unwrapped with --private-key; denied without the role', async () => {
    const policy = file('rel.json', JSON.stringify({ version: '1.0.0', anyOf: [{ authority: server.url, allOf: [{ claim: 'x-ms-sgx-is-debuggable', equals: 'false' }] }] }));
    assert.equal((await k('create', 'cli-rel', '--kty', 'oct-HSM', '--size', '256', '--exportable', '--policy', policy)).code, 0);
    const tee = generateRsaKeyPair(2048);
    const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ ...tee.publicKey.export({ format: 'jwk' }), kid: 't', key_ops: ['encrypt'] }] }));
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: runtime });
    const att = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
    const tokenFile = file('token.jwt', att.json().token);
    const pem = file('tee.pem', tee.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    const denied = await k('release', 'cli-rel', '--token', tokenFile, '--private-key', pem);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /403/);
    const role = await conclave(['role', 'assign', '--principal', server.admin.clientId, '--role', 'Key Vault Crypto Service Release User', '--scope', '/keys/cli-rel', ...base, '-o', 'json']);
    assert.equal(role.code, 0, role.stderr);
    const released = await k('release', 'cli-rel', '--token', tokenFile, '--private-key', pem);
    assert.equal(released.code, 0, released.stderr);
    assert.equal(released.json().key.kty, 'oct');
    assert.equal(Buffer.from(released.json().key.k, 'base64url').length, 32);
  });
});
