/**
 * Attacks on the vault store's remembered reads (src/storage/vault-store.ts, the change counter of
 * src/storage/sqlite.ts): a read made inside an open transaction after its writes sees them uncommitted,
 * and was remembered under the counter's value of that moment. A request from outside the transaction
 * asked the counter, found the same value (this connection's writes had moved it before the read, and
 * nothing since) and was answered from memory: a grant, or a key, that was not committed (and was then
 * rolled back) authorised it, although every statement from outside waits for the transaction to end.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signal } from '../../test/helpers/signal.js';
import { keyOf } from '../../test/helpers/vault-key.js';
import { withMacVaultStore } from '../../test/helpers/vault-store.js';

const audit = { time: new Date(0).toISOString(), principal: 'admin', operation: 'test', result: 'success' as const, status: 200 };
const RELEASE_USER = '08bbd89e-9f13-488c-ac41-acfcb10c90ab';
describe('vault store (SQLite): a read remembered inside an open transaction', () => {
  test('is not served to a caller outside it before it ends (an uncommitted, then rolled-back, grant or key)', async () => {
    await withMacVaultStore(async ({ db, store }) => {
      const version = 'e'.repeat(32);
      assert.deepEqual(await store.assignmentsOf('p1'), []);
      assert.equal(await store.liveVersion('k', undefined), undefined);
      const [readInside, didRead] = signal();
      const [gate, release] = signal();
      const tx = db.transaction(async () => {
        // Store calls from inside the body join it; their reads see its uncommitted writes.
        await store.addAssignment({ id: 'a1', principalId: 'p1', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }, audit);
        assert.equal(await store.addVersion(keyOf('k', version), 1), 'ok');
        assert.equal((await store.assignmentsOf('p1')).length, 1);
        assert.equal((await store.liveVersion('k', undefined))?.version, version);
        didRead();
        await gate;
        throw new Error('roll back');
      });
      await readInside;
      // Another request, while the transaction is still open: its reads wait for it, as any statement does.
      const roles = store.assignmentsOf('p1');
      const key = store.liveVersion('k', undefined);
      setTimeout(release, 20);
      await assert.rejects(tx, /roll back/);
      assert.deepEqual(await roles, [], 'authorised by a grant that was never committed');
      assert.equal(await key, undefined, 'served a key that was never committed');
    });
  });
});

describe('vault store (SQLite): every change a release or an authorisation depends on is read afresh', () => {
  test('a purged key and another restored under its name, a rotation, a release policy changed, a custom role narrowed, a vault import', async () => {
    await withMacVaultStore(async ({ store }) => {
      const v1 = '1'.repeat(32);
      assert.equal(await store.addVersion({ ...keyOf('k', v1), attributes: { enabled: true, exportable: true, created: 1, updated: 1 }, releasePolicy: { json: '{"a":1}', immutable: false } }, 1), 'ok');
      assert.equal((await store.liveVersion('k', undefined))?.releasePolicy?.json, '{"a":1}');
      // The release policy changed: the next release reads the new one.
      await store.updateVersion('k', v1, (cur) => ({ ...cur, releasePolicy: { json: '{"a":2}', immutable: false }, attributes: { ...cur.attributes, updated: 2 } }), audit);
      assert.equal((await store.liveVersion('k', undefined))?.releasePolicy?.json, '{"a":2}');
      // Rotated: the latest is the new version.
      const v2 = '2'.repeat(32);
      assert.equal(await store.addVersion(keyOf('k', v2), 2), 'ok');
      assert.equal((await store.liveVersion('k', undefined))?.version, v2);
      // Deleted, purged, then another key restored under the name: its material, never the purged one's.
      assert.equal(await store.setDeleted('k', { deletedDate: 3, scheduledPurgeDate: 4 }, audit), true);
      assert.equal(await store.liveVersion('k', undefined), undefined);
      assert.equal(await store.liveVersion('k', v1), undefined);
      assert.equal(await store.purge('k', audit), true);
      const restored = { ...keyOf('k', '3'.repeat(32)), handle: new Uint8Array([9, 9, 9]) };
      assert.equal(await store.restore([restored], restored.version, 5, audit), true);
      assert.deepEqual([...((await store.liveVersion('k', undefined))?.handle ?? [])], [9, 9, 9]);
      assert.equal(await store.liveVersion('k', v2), undefined, 'a purged version served after the purge');
      // A custom role narrowed: the next authorisation reads its new permissions.
      const role = (actions: string[]) => ({ name: 'r1', roleName: 'R1', description: '', type: 'CustomRole' as const, permissions: [{ actions: [], notActions: [], dataActions: actions, notDataActions: [] }], assignableScopes: ['/'] });
      await store.putCustomRole(role(['Microsoft.KeyVault/managedHsm/keys/release/action']), 1, audit);
      assert.deepEqual((await store.customRoles())[0]?.permissions[0]?.dataActions, ['Microsoft.KeyVault/managedHsm/keys/release/action']);
      await store.putCustomRole(role(['Microsoft.KeyVault/managedHsm/keys/read/action']), 2, audit);
      assert.deepEqual((await store.customRoles())[0]?.permissions[0]?.dataActions, ['Microsoft.KeyVault/managedHsm/keys/read/action']);
      // A vault import adds an assignment and an authority: seen at the next read.
      assert.deepEqual(await store.assignmentsOf('p2'), []);
      assert.deepEqual(await store.authorities(), []);
      const r = await store.importVault({ keys: [], customRoles: [], assignments: [{ id: 'a9', principalId: 'p2', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }], authorities: ['https://b.example'] }, 6, audit);
      assert.deepEqual(r, { conflicts: [], keys: 0 });
      assert.equal((await store.assignmentsOf('p2')).length, 1);
      assert.deepEqual(await store.authorities(), ['https://b.example']);
    });
  });
});
