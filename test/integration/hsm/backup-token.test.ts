/**
 * Backups of keys held in a PKCS#11 token restore only into a vault on that token: the backup holds a
 * handle, not the material, so a vault with the same master key but another token (or none) is refused
 * with `backup.foreign` before anything is written, as docs/vault.md says, instead of taking keys it
 * cannot use.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { tempDir, type TestServer } from '../../helpers/server.js';
import { initSoftHsm, type SoftHsmToken, skipWithoutSoftHsm } from '../../helpers/softhsm.js';
import { akvCall, startVault } from '../vault/harness.js';

const skip = skipWithoutSoftHsm();
const V = '7.6';

describe('backups of keys in a PKCS#11 token', { skip }, () => {
  let tokens: SoftHsmToken[] = [];
  let source: TestServer;
  const backupDir = tempDir('conclave-hsm-backup-');
  const container = pathToFileURL(join(backupDir, 'c')).href;
  let blob: string;
  let folder: string;

  /** A vault with `source`'s master key (a fresh store), on the given token or none. */
  async function sameMasterKey(hsm: string | undefined): Promise<TestServer> {
    const dataDir = tempDir();
    copyFileSync(join(source.dataDir, 'master.key'), join(dataDir, 'master.key'));
    return startVault({ flags: { maintenanceInterval: 0, backupDir, hsm }, dataDir });
  }

  before(async () => {
    // Both tokens before the first C_Initialize of the process (test/helpers/softhsm.ts), one PIN for both.
    const pin = randomBytes(6).toString('hex');
    tokens = [initSoftHsm({ pin }), initSoftHsm({ pin })];
    source = await startVault({ flags: { maintenanceInterval: 0, backupDir, hsm: tokens[0]!.spec } });
    assert.equal((await akvCall(source, 'POST', '/keys/tk/create', { kty: 'EC', crv: 'P-256' }, V)).status, 200);
    const b = await akvCall(source, 'POST', '/keys/tk/backup', undefined, V);
    assert.equal(b.status, 200);
    blob = b.json.value;
    const full = await akvCall(source, 'POST', '/backup', { storageResourceUri: container, token: '' }, V);
    assert.equal(full.status, 202, JSON.stringify(full.json));
    folder = (full.json.azureStorageBlobContainerUri as string).slice(container.length + 1);
  });
  after(async () => {
    await source?.stop();
    for (const t of tokens) t.remove();
  });

  for (const [what, hsm] of [
    ['without --hsm', () => undefined],
    ['on another token', () => tokens[1]!.spec],
  ] as const) {
    test(`a vault with the same master key ${what} refuses them with backup.foreign and writes nothing`, async () => {
      const other = await sameMasterKey(hsm());
      try {
        const sas = { storageResourceUri: container, token: '' };
        const foreign = (r: { status: number; json: any }, call: string) => {
          assert.equal(r.status, 400, `${call}: ${JSON.stringify(r.json)}`);
          assert.equal(r.json.error.innererror.code, 'backup.foreign', call);
          assert.match(r.json.error.message, /PKCS#11 token/, call);
        };
        foreign(await akvCall(other, 'POST', '/keys/restore', { value: blob }, V), 'POST /keys/restore');
        foreign(await akvCall(other, 'PUT', '/keys/tk/restore', { sasTokenParameters: sas, folder }, V), 'PUT /keys/tk/restore');
        foreign(await akvCall(other, 'PUT', '/prerestore', { sasTokenParameters: sas, folderToRestore: folder }, V), 'PUT /prerestore');
        foreign(await akvCall(other, 'PUT', '/restore', { sasTokenParameters: sas, folderToRestore: folder }, V), 'PUT /restore');
        assert.equal((await akvCall(other, 'GET', '/keys/tk', undefined, V)).status, 404, 'nothing restored');
      } finally {
        await other.stop();
      }
    });
  }

  test('control: a vault with the same master key on the same token restores the key, and it signs', async () => {
    const twin = await sameMasterKey(tokens[0]!.spec);
    try {
      const r = await akvCall(twin, 'POST', '/keys/restore', { value: blob }, V);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const sig = await akvCall(twin, 'POST', '/keys/tk/sign', { alg: 'ES256', value: randomBytes(32).toString('base64url') }, V);
      assert.equal(sig.status, 200, JSON.stringify(sig.json));
      await akvCall(twin, 'DELETE', '/keys/tk', undefined, V);
      assert.equal((await akvCall(twin, 'DELETE', '/deletedkeys/tk', undefined, V)).status, 204);
      const pre = await akvCall(twin, 'PUT', '/prerestore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: folder }, V);
      assert.equal(pre.status, 202, JSON.stringify(pre.json));
      const full = await akvCall(twin, 'PUT', '/restore', { sasTokenParameters: { storageResourceUri: container, token: '' }, folderToRestore: folder }, V);
      assert.equal(full.status, 202, JSON.stringify(full.json));
      assert.equal((await akvCall(twin, 'POST', '/keys/tk/sign', { alg: 'ES256', value: randomBytes(32).toString('base64url') }, V)).status, 200);
    } finally {
      await twin.stop();
    }
  });
});
