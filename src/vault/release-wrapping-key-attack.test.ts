/**
 * Attack on the choice of the TEE's wrapping key (src/vault/release/key-transfer.ts findWrappingKey): a
 * hostile TEE (any holder of a token the policy releases to) puts in x-ms-runtime.keys an RSA key of a size
 * the choice accepts that RSA-OAEP still cannot encrypt with: an even modulus (OpenSSL's Montgomery
 * arithmetic: "no inverse") or a public exponent not below the modulus ("bad e value"). The release was
 * decided, a software key's success record stored while it was wrapped, and the wrap then failed: a 500
 * internal, and the log held a success record for a key that never left (fcb38f8 closed this for the
 * modulus and exponent sizes, not for these).
 */
import assert from 'node:assert/strict';
import { randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateRsaKeyPair } from '../core/keygen.js';
import { createSealer } from '../hsm/master-key.js';
import { createSoftwareKeyProtector } from '../hsm/software.js';
import { MIGRATIONS } from '../storage/migrations/index.js';
import { openDatabase } from '../storage/open.js';
import { createVaultStore } from '../storage/vault-store.js';
import { LATEST } from './api-version.js';
import { createFakeAuthority, fakeJwksPort } from './release/testing.js';
import { createVaultService } from './service.js';

test('a TEE key RSA-OAEP cannot encrypt with (an even modulus, an exponent not below the modulus) is refused before any record: a 400, one failure record, no success', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-release-wrap-'));
  const db = await openDatabase(`sqlite:${join(dir, 'v.db')}`);
  try {
    await db.migrate(MIGRATIONS);
    const issuer = 'https://authority.test';
    const authority = await createFakeAuthority(issuer, { alg: 'RS256' });
    const signing = generateRsaKeyPair(2048);
    const sealer = createSealer(new Uint8Array(randomBytes(32)));
    const admin = { id: 'admin', displayName: 'admin', isAdmin: true };
    const service = createVaultService({
      store: createVaultStore(db),
      protector: createSoftwareKeyProtector(sealer),
      getJwks: fakeJwksPort({ [issuer]: { keys: [authority.jwk] } }),
      releaseKey: async () => ({ certDer: new Uint8Array(randomBytes(64)), sign: async (data: Uint8Array) => new Uint8Array(sign('sha256', data, signing.privateKey)) }),
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
    const releases = async () =>
      (await db.all<{ entry: string }>('SELECT entry FROM log_queue UNION ALL SELECT entry FROM log_entries'))
        .map((r) => JSON.parse(r.entry) as { operation: string; result: string; code?: string })
        .filter((r) => r.operation === 'release');
    // A real 2048-bit public key, then changed: its modulus made even; its exponent set to the modulus itself.
    const good = generateRsaKeyPair(2048).publicKey.export({ format: 'jwk' }) as { n: string; e: string };
    const n = Buffer.from(good.n, 'base64url');
    const even = Buffer.from(n);
    even[even.length - 1]! &= 0xfe;
    const unusable = [
      { kty: 'RSA', n: even.toString('base64url'), e: good.e },
      { kty: 'RSA', n: good.n, e: good.n },
    ];
    const now = Math.floor(Date.now() / 1000);
    for (const [i, jwk] of unusable.entries()) {
      const target = authority.token({ iat: now, nbf: now, exp: now + 600, 'x-ms-attestation-type': 'sevsnpvm', 'x-ms-runtime': { keys: [{ ...jwk, kid: 'tee', key_ops: ['encrypt'] }] } });
      await assert.rejects(service.release(admin, LATEST, 'k', undefined, { target, enc: 'RSA_AES_KEY_WRAP_256' }), (e: { code?: string; status?: number }) => e.code === 'release.no_wrapping_key' && e.status === 400, `key ${i}`);
      assert.deepEqual(
        (await releases()).slice(i).map((r) => [r.result, r.code]),
        [['failed', 'release.no_wrapping_key']],
        `key ${i}: a success record for a key that was not sent`,
      );
    }
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
