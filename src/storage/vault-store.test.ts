import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createTestDatabase, postgresUnavailable, type TestDatabase } from '../../test/helpers/postgres.js';
import type { Database } from './database.js';
import { MIGRATIONS } from './migrations/index.js';
import { openDatabase } from './open.js';
import { createVaultStore } from './vault-store.js';
import { keyOf } from '../../test/helpers/vault-key.js';
import { withMacVaultStore } from '../../test/helpers/vault-store.js';

const pgSkip = await postgresUnavailable();

/** A store as migration 200 left it, holding names that differ only in case, then migrated to now. */
async function migratedFromV200(db: Database): Promise<void> {
  await db.migrate(MIGRATIONS.filter((m) => m.id <= 200));
  const insert = async (name: string, created: number) => {
    await db.run('INSERT INTO vault_keys (name, latest_version, deleted_at, scheduled_purge_at, created_at) VALUES (?, ?, NULL, NULL, ?)', [name, 'a'.repeat(32), created]);
    await db.run(
      'INSERT INTO vault_key_versions (name, version, seq, kty, key_size, crv, key_ops, public_jwk, protected_key, provider, enabled, nbf, exp, exportable, created, updated, tags, release_policy, policy_immutable) VALUES (?, ?, 1, ?, NULL, ?, ?, ?, ?, ?, 1, NULL, NULL, 0, ?, ?, NULL, NULL, 0)',
      [name, 'a'.repeat(32), 'EC', 'P-256', '["sign","verify"]', '{}', Buffer.from([1]), 'software', created, created],
    );
  };
  await insert('Foo', 100);
  await insert('foo', 200);
  await insert('Bar', 300);
  await db.run('INSERT INTO vault_role_assignments (id, principal_id, role, scope, created_at) VALUES (?, ?, ?, ?, ?)', ['a1', 'p1', 'Key Vault Crypto Service Release User', '/keys/Bar', 1]);
  await db.migrate(MIGRATIONS);
}

async function checkCaseInsensitive(db: Database): Promise<void> {
  await migratedFromV200(db);
  const store = createVaultStore(db);
  assert.deepEqual(await store.keyState('bar'), { state: 'live', name: 'Bar' });
  assert.deepEqual(await store.keyState('BAR'), { state: 'live', name: 'Bar' });
  // names that collided before the migration stay apart, each found by its exact spelling
  assert.deepEqual(await store.keyState('Foo'), { state: 'live', name: 'Foo' });
  assert.deepEqual(await store.keyState('foo'), { state: 'live', name: 'foo' });
  assert.deepEqual(await store.keyState('FOO'), { state: 'live', name: 'Foo' }, 'otherwise the first created');
  assert.deepEqual(await store.keyState('baz'), { state: 'absent' });
  assert.equal((await store.getVersion('Bar', undefined))?.name, 'Bar');
  // liveVersion: keyState's choice and getVersion in one read
  assert.equal((await store.liveVersion('bar', undefined))?.name, 'Bar');
  assert.equal((await store.liveVersion('FOO', undefined))?.name, 'Foo');
  assert.equal((await store.liveVersion('foo', 'a'.repeat(32)))?.name, 'foo');
  assert.equal(await store.liveVersion('foo', 'b'.repeat(32)), undefined);
  assert.equal(await store.liveVersion('baz', undefined), undefined);
  // the chosen key deleted: not live, even though another spelling is
  await db.run("UPDATE vault_keys SET deleted_at = 1, scheduled_purge_at = 2 WHERE name = 'Foo'");
  assert.equal(await store.liveVersion('Foo', undefined), undefined);
  assert.equal(await store.liveVersion('FOO', 'a'.repeat(32)), undefined);
  assert.equal((await store.liveVersion('foo', undefined))?.name, 'foo');
  await db.run("UPDATE vault_keys SET deleted_at = NULL, scheduled_purge_at = NULL WHERE name = 'Foo'");
  // migration 202: an assignment made by role name now names the role definition by its id
  assert.deepEqual(await store.assignmentsOf('p1'), [{ roleDefinitionId: '08bbd89e-9f13-488c-ac41-acfcb10c90ab', scope: '/keys/Bar' }]);
}

describe('vault store: migrations 201 (case-insensitive key names) and 202 (role definition ids)', () => {
  test('SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-vs-'));
    const db = await openDatabase(`sqlite:${join(dir, 'v.db')}`);
    try {
      await checkCaseInsensitive(db);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  let pg: TestDatabase | undefined;
  after(() => pg?.drop());
  test('PostgreSQL', { skip: pgSkip }, async () => {
    pg = await createTestDatabase();
    const db = await openDatabase(pg.url, { poolSize: 2 });
    try {
      await checkCaseInsensitive(db);
    } finally {
      await db.close();
    }
  });
});

describe('vault store: liveVersion gives a verified row out again only while the row is the same', () => {
  test('SQLite, with row MACs', async () => {
    await withMacVaultStore(async ({ db, store }) => {
      const version = 'c'.repeat(32);
      const key = keyOf('k', version);
      assert.equal(await store.addVersion(key, 1), 'ok');
      const first = await store.liveVersion('k', undefined);
      const again = await store.liveVersion('K', undefined);
      assert.equal(again, first, 'the same row: the same (frozen) version');
      assert.ok(Object.isFrozen(first) && Object.isFrozen(first!.attributes) && Object.isFrozen(first!.keyOps));
      assert.throws(() => {
        (first!.attributes as { exportable: boolean }).exportable = true;
      }, TypeError);
      // Changed through the store: the new row is read and parsed.
      const updated = await store.updateVersion('k', version, (cur) => ({ ...cur, attributes: { ...cur.attributes, enabled: false, updated: 2 } }), {
        time: new Date(0).toISOString(),
        principal: 'p',
        operation: 'update',
        result: 'success',
        status: 200,
      });
      assert.equal(updated?.attributes.enabled, false);
      assert.equal((await store.liveVersion('k', version))?.attributes.enabled, false);
      // Changed outside Conclave, its MAC kept: refused, though the row under that MAC was read before.
      await store.liveVersion('k', undefined);
      await db.run("UPDATE vault_key_versions SET exportable = 1 WHERE name = 'k'");
      await assert.rejects(store.liveVersion('k', undefined), (e: { code?: string }) => e.code === 'store.integrity');
      await assert.rejects(store.liveVersion('k', version), (e: { code?: string }) => e.code === 'store.integrity');
      await db.run("UPDATE vault_key_versions SET exportable = 0 WHERE name = 'k'");
      assert.equal((await store.liveVersion('k', undefined))?.attributes.exportable, false);
      // The sealed material swapped, one byte: refused too (bytes are compared as bytes).
      await db.run("UPDATE vault_key_versions SET protected_key = ? WHERE name = 'k'", [Buffer.from([1, 2, 4])]);
      await assert.rejects(store.liveVersion('k', undefined), (e: { code?: string }) => e.code === 'store.integrity');
      await db.run("UPDATE vault_key_versions SET protected_key = ? WHERE name = 'k'", [Buffer.from([1, 2, 3])]);
      assert.deepEqual([...(await store.liveVersion('k', undefined))!.handle], [1, 2, 3]);
      // Deleted: no longer live, whatever was read before.
      await db.run("UPDATE vault_keys SET deleted_at = 5, scheduled_purge_at = 6 WHERE name = 'k'");
      assert.equal(await store.liveVersion('k', undefined), undefined);
    });
  });
});

describe('vault store: remembered reads never outlive a change', () => {
  const audit = { time: new Date(0).toISOString(), principal: 'admin', operation: 'test', result: 'success' as const, status: 200 };
  const RELEASE_USER = '08bbd89e-9f13-488c-ac41-acfcb10c90ab';
  /** Runs one statement on the file from another process (the CLI, a sqlite3 shell, a second server). */
  const fromAnotherProcess = async (path: string, sql: string) => {
    const { spawnSync } = await import('node:child_process');
    const { createRequire } = await import('node:module');
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const script = `const D = require(${JSON.stringify(driver)}); const d = new D(${JSON.stringify(path)}); d.pragma('busy_timeout = 10000'); d.prepare(${JSON.stringify(sql)}).run(); d.close();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };

  /** {@link withMacVaultStore} and a second connection to the same file (`other`). */
  async function withStores(fn: (s: { db: Database; other: Database; path: string; store: ReturnType<typeof createVaultStore> }) => Promise<void>): Promise<void> {
    await withMacVaultStore(async ({ db, path, store }) => {
      const other = await openDatabase(`sqlite:${path}`);
      try {
        await fn({ db, other, path, store });
      } finally {
        await other.close();
      }
    });
  }

  test('SQLite: read again from memory while nothing changed; the log appends do not count, any other write does', async () => {
    await withStores(async ({ db, store }) => {
      await store.addAssignment({ id: 'a1', principalId: 'p1', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }, audit);
      await store.setAuthorities(['https://a.example'], 1, audit);
      assert.equal(await store.addVersion(keyOf('k', 'c'.repeat(32)), 1), 'ok');
      const roles = await store.assignmentsOf('p1');
      const auths = await store.authorities();
      const key = await store.liveVersion('k', undefined);
      assert.ok(Object.isFrozen(roles) && Object.isFrozen(roles[0]) && Object.isFrozen(auths));
      // Remembered: the very same objects, also after audit records (log_queue) were appended.
      await store.audit(audit);
      await store.audit(audit);
      assert.equal(await store.assignmentsOf('p1'), roles);
      assert.equal(await store.authorities(), auths);
      assert.equal(await store.liveVersion('k', undefined), key);
      // Any other write of this connection (here a backup job row) is a change: read again, the same content.
      await store.putBackupJob({ jobId: 'j1', kind: 'backup', status: 'InProgress', startTime: 1, principal: 'admin' });
      const rolesAgain = await store.assignmentsOf('p1');
      assert.notEqual(rolesAgain, roles);
      assert.deepEqual(rolesAgain, roles);
      assert.notEqual(await store.authorities(), auths);
      // A write the counter cannot read the table of counts too.
      const before = await store.assignmentsOf('p1');
      await db.run("WITH v (x) AS (VALUES (1)) UPDATE vault_keys SET created_at = created_at WHERE name = 'nothing'");
      assert.notEqual(await store.assignmentsOf('p1'), before);
    });
  });

  test('SQLite: a revoked role, a disabled or deleted key, a removed authority take effect at the next read, whoever changed them', async () => {
    await withStores(async ({ db, other, path, store }) => {
      const version = 'c'.repeat(32);
      assert.equal(await store.addVersion(keyOf('k', version), 1), 'ok');
      const revocations: ReadonlyArray<readonly [string, (id: string) => Promise<void>]> = [
        ['through the store', async (id) => void (await store.removeAssignment(id, audit))],
        ['by SQL on the same connection', async (id) => void (await db.run('DELETE FROM vault_role_assignments WHERE id = ?', [id]))],
        ['by another connection', async (id) => void (await other.run('DELETE FROM vault_role_assignments WHERE id = ?', [id]))],
        ['by another process', (id) => fromAnotherProcess(path, `DELETE FROM vault_role_assignments WHERE id = '${id}'`)],
      ];
      for (const [how, revoke] of revocations) {
        const id = `a-${how.replaceAll(' ', '-')}`;
        await store.addAssignment({ id, principalId: 'p1', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }, audit);
        assert.equal((await store.assignmentsOf('p1')).length, 1, how);
        assert.equal((await store.assignmentsOf('p1')).length, 1, how);
        await store.audit(audit); // an append in between changes nothing of this
        await revoke(id);
        assert.deepEqual(await store.assignmentsOf('p1'), [], `revoked ${how}, yet still authorised`);
      }
      // A key disabled through the store, then by another process; deleted by another connection.
      assert.equal((await store.liveVersion('k', undefined))?.attributes.enabled, true);
      await store.updateVersion('k', version, (cur) => ({ ...cur, attributes: { ...cur.attributes, enabled: false, updated: 2 } }), audit);
      assert.equal((await store.liveVersion('k', undefined))?.attributes.enabled, false);
      await store.updateVersion('k', version, (cur) => ({ ...cur, attributes: { ...cur.attributes, enabled: true, updated: 3 } }), audit);
      assert.equal((await store.liveVersion('k', version))?.attributes.enabled, true);
      // Another process changes the row (its MAC no longer matches): refused, not served from memory.
      await fromAnotherProcess(path, "UPDATE vault_key_versions SET enabled = 0 WHERE name = 'k'");
      await assert.rejects(store.liveVersion('k', version), (e: { code?: string }) => e.code === 'store.integrity');
      await fromAnotherProcess(path, "UPDATE vault_key_versions SET enabled = 1 WHERE name = 'k'");
      assert.equal((await store.liveVersion('k', version))?.attributes.enabled, true);
      await other.run("UPDATE vault_keys SET deleted_at = 5, scheduled_purge_at = 6 WHERE name = 'k'");
      assert.equal(await store.liveVersion('k', version), undefined, 'deleted by another connection, yet still live');
      // Authorities: removed by another process.
      await store.setAuthorities(['https://a.example'], 1, audit);
      assert.deepEqual(await store.authorities(), ['https://a.example']);
      await fromAnotherProcess(path, 'DELETE FROM vault_authorities');
      assert.deepEqual(await store.authorities(), []);
    });
  });

  test('SQLite: each read checks afresh, even with no await since the last one (a change committed in between, in the same turn, is seen)', async () => {
    // Pins the contract against sharing one freshness check among the reads of a request or a turn
    // (bench/README.md, "storecut"): a commit this thread made happen between two reads, with no await between
    // them (another process run synchronously, another connection of this thread), precedes the second read,
    // which must see it.
    await withStores(async ({ other, path, store }) => {
      const version = 'c'.repeat(32);
      const driver = createRequire(import.meta.url).resolve('better-sqlite3');
      const anotherProcessNow = (sql: string) => {
        const script = `const D = require(${JSON.stringify(driver)}); const d = new D(${JSON.stringify(path)}); d.pragma('busy_timeout = 10000'); d.prepare(${JSON.stringify(sql)}).run(); d.close();`;
        const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      };
      assert.equal(await store.addVersion(keyOf('k', version), 1), 'ok');
      await store.setAuthorities(['https://a.example'], 1, audit);
      await store.addAssignment({ id: 'a1', principalId: 'p1', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }, audit);
      await store.addAssignment({ id: 'a2', principalId: 'p2', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }, audit);
      // Remembered first, so that a shared check would serve them from memory.
      assert.equal((await store.assignmentsOf('p1')).length, 1);
      assert.equal((await store.assignmentsOf('p2')).length, 1);
      assert.equal((await store.liveVersion('k', undefined))?.version, version);
      assert.deepEqual(await store.authorities(), ['https://a.example']);
      // The reads of one release, one after another without an await, a revocation by another process between.
      const roles = store.assignmentsOf('p1');
      anotherProcessNow("DELETE FROM vault_authorities");
      const auths = store.authorities();
      anotherProcessNow("UPDATE vault_keys SET deleted_at = 5, scheduled_purge_at = 6 WHERE name = 'k'");
      const key = store.liveVersion('k', undefined);
      const rolesAfter = store.assignmentsOf('p1');
      assert.equal((await roles).length, 1);
      assert.deepEqual(await auths, [], 'an authority removed before the read, yet still trusted');
      assert.equal(await key, undefined, 'a key deleted before the read, yet still live');
      // Another connection of this thread, its statement run at the call (nothing awaited before the next read).
      const revoking = other.run("DELETE FROM vault_role_assignments WHERE id = 'a2'");
      const rolesP2 = store.assignmentsOf('p2');
      await revoking;
      assert.deepEqual(await rolesP2, [], 'revoked by another connection before the read, yet still authorised');
      assert.equal((await rolesAfter).length, 1);
    });
  });

  test('SQLite: a read made inside a transaction that then rolls back is not remembered past the rollback', async () => {
    await withStores(async ({ db, store }) => {
      const version = 'd'.repeat(32);
      assert.deepEqual(await store.assignmentsOf('p1'), []);
      assert.equal(await store.liveVersion('k', undefined), undefined);
      await assert.rejects(
        db.transaction(async () => {
          // Store calls from inside the body join it; their reads see its uncommitted writes.
          await store.addAssignment({ id: 'a1', principalId: 'p1', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }, audit);
          assert.equal(await store.addVersion(keyOf('k', version), 1), 'ok');
          assert.equal((await store.assignmentsOf('p1')).length, 1);
          assert.equal((await store.liveVersion('k', undefined))?.version, version);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.deepEqual(await store.assignmentsOf('p1'), [], 'a grant rolled back, yet still authorised');
      assert.equal(await store.liveVersion('k', undefined), undefined, 'a key rolled back, yet still live');
    });
  });

  let pg: TestDatabase | undefined;
  after(() => pg?.drop());
  test('PostgreSQL: nothing remembered, another connection\'s revocation is seen at once', { skip: pgSkip }, async () => {
    pg = await createTestDatabase();
    const db = await openDatabase(pg.url, { poolSize: 2 });
    const other = await openDatabase(pg.url, { poolSize: 1 });
    try {
      await db.migrate(MIGRATIONS);
      const store = createVaultStore(db);
      await store.addAssignment({ id: 'a1', principalId: 'p1', roleDefinitionId: RELEASE_USER, scope: '/', createdAt: 1 }, audit);
      assert.equal((await store.assignmentsOf('p1')).length, 1);
      await other.run('DELETE FROM vault_role_assignments WHERE id = ?', ['a1']);
      assert.deepEqual(await store.assignmentsOf('p1'), []);
    } finally {
      await other.close();
      await db.close();
    }
  });
});
