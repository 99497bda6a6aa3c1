/**
 * A release's success record is appended while its response is signed (#20: the commit's flush and the
 * signature overlap), and is durable before the answer. A signature that fails after the record was
 * stored leaves that record and a failure record that names it: the log never hides a release, and says
 * that this one was not sent.
 */
import assert from 'node:assert/strict';
import { randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSealer } from '../hsm/master-key.js';
import { hashLeaf } from '../log/merkle.js';
import { createSoftwareKeyProtector } from '../hsm/software.js';
import { MIGRATIONS } from '../storage/migrations/index.js';
import { openDatabase } from '../storage/open.js';
import { createVaultStore } from '../storage/vault-store.js';
import { LATEST } from './api-version.js';
import { createFakeAuthority, fakeJwksPort } from './release/testing.js';
import { createVaultService } from './service.js';
import { generateRsaKeyPair } from '../core/keygen.js';

test('the release record is stored with the answer; a signature failing after it is stored is a second record naming the first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-release-audit-'));
  const db = await openDatabase(`sqlite:${join(dir, 'v.db')}`);
  try {
    await db.migrate(MIGRATIONS);
    const issuer = 'https://authority.test';
    const authority = await createFakeAuthority(issuer, { alg: 'RS256' });
    const signing = generateRsaKeyPair(2048);
    let failSigning = false;
    const sealer = createSealer(new Uint8Array(randomBytes(32)));
    const admin = { id: 'admin', displayName: 'admin', isAdmin: true };
    const service = createVaultService({
      store: createVaultStore(db),
      protector: createSoftwareKeyProtector(sealer),
      getJwks: fakeJwksPort({ [issuer]: { keys: [authority.jwk] } }),
      releaseKey: async () => ({
        certDer: new Uint8Array(randomBytes(64)),
        sign: async (data: Uint8Array) => {
          if (failSigning) throw new Error('the signing key is unavailable');
          return new Uint8Array(sign('sha256', data, signing.privateKey));
        },
      }),
      sealer,
      now: () => new Date(),
      baseUrl: () => 'https://vault.test',
      trustedAuthorities: [issuer],
      simulate: false,
      softDelete: { recoverableDays: 7, purgeProtection: false },
      logger: { error: () => undefined },
    });
    await service.assign(admin, { principalId: 'admin', role: 'Key Vault Crypto Service Release User', scope: '/' });
    const policy = { version: '1.0.0', anyOf: [{ authority: issuer, allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] };
    await service.create(admin, LATEST, 'k', { kty: 'RSA-HSM', key_size: 2048, attributes: { exportable: true }, release_policy: { data: Buffer.from(JSON.stringify(policy)).toString('base64url') } });
    const tee = generateRsaKeyPair(2048).publicKey.export({ format: 'jwk' });
    const now = Math.floor(Date.now() / 1000);
    const target = authority.token({ iat: now, nbf: now, exp: now + 600, 'x-ms-attestation-type': 'sevsnpvm', 'x-ms-runtime': { keys: [{ ...tee, kid: 'tee', key_ops: ['encrypt'] }] } });
    const releases = async () =>
      (await db.all<{ entry: string }>('SELECT entry FROM log_queue UNION ALL SELECT entry FROM log_entries'))
        .map((r) => JSON.parse(r.entry) as { operation: string; result: string; detail?: Record<string, unknown> })
        .filter((r) => r.operation === 'release');

    const answer = await service.release(admin, LATEST, 'k', undefined, { target, enc: 'RSA_AES_KEY_WRAP_256' });
    const [ok] = await releases();
    assert.equal((await releases()).length, 1, 'one release, one record');
    assert.equal(ok?.result, 'success');
    assert.equal(JSON.stringify(ok), JSON.stringify(JSON.parse(answer['x-conclave-log'].entry)), 'the answer carries the stored record');

    failSigning = true;
    await assert.rejects(service.release(admin, LATEST, 'k', undefined, { target, enc: 'RSA_AES_KEY_WRAP_256' }));
    const after = (await releases()).slice(1);
    assert.deepEqual(
      after.map((r) => r.result),
      ['success', 'failed'],
      'the record stored while signing, then the failure',
    );
    const stored = (await db.all<{ entry: string }>('SELECT entry FROM log_queue UNION ALL SELECT entry FROM log_entries')).map((r) => r.entry).filter((e) => JSON.parse(e).operation === 'release')[1]!;
    assert.equal((after[1]!.detail!.notSent as { leafHash: string }).leafHash, hashLeaf(Buffer.from(stored, 'utf8')).toString('hex'), 'the failure names the record of the release that was not sent');
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
