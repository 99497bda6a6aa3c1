/**
 * Scheduled rotation, rotation notices and purge exactly once across replicas on PostgreSQL: several vault services,
 * each with its own connection pool to one database (as replicas have), run their due work at the same
 * time; every due rotation yields one new version, every due Notify one notice and every due purge one
 * deletion, each with one audit record, and the audit chain verifies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSealer } from '../../../src/hsm/master-key.js';
import type { Database } from '../../../src/storage/database.js';
import { MIGRATIONS } from '../../../src/storage/migrations/index.js';
import { openDatabase } from '../../../src/storage/open.js';
import { createVaultStore } from '../../../src/storage/vault-store.js';
import { LATEST } from '../../../src/vault/api-version.js';
import type { VaultService } from '../../../src/vault/service.js';
import { createTestDatabase, postgresUnavailable, type TestDatabase } from '../../helpers/postgres.js';
import { testVaultService } from '../../helpers/vault-store.js';

const skip = await postgresUnavailable();
const DAY = 86400;
const REPLICAS = 3;
const KEYS = 4;

describe('vault maintenance across replicas (PostgreSQL)', { skip }, () => {
  let pg: TestDatabase;
  const dbs: Database[] = [];
  const services: VaultService[] = [];
  let t = Date.UTC(2031, 0, 1);
  const admin = { id: 'admin', displayName: 'admin', isAdmin: true };

  before(async () => {
    pg = await createTestDatabase();
    const sealer = createSealer(new Uint8Array(randomBytes(32)));
    for (let i = 0; i < REPLICAS; i++) {
      const db = await openDatabase(pg.url, { poolSize: 4 });
      await db.migrate(MIGRATIONS);
      dbs.push(db);
      services.push(
        testVaultService(createVaultStore(db), sealer, { now: () => new Date(t), logger: { error: (o, m) => console.error(m, o) } }),
      );
    }
  });
  after(async () => {
    for (const db of dbs) await db.close();
    await pg?.drop();
  });

  test('due rotations, notices and purges happen once, whichever replica gets there', async () => {
    const s = services[0]!;
    for (let k = 0; k < KEYS; k++) {
      await s.create(admin, LATEST, `rot${k}`, { kty: 'EC', crv: 'P-256' });
      await s.setRotationPolicy(admin, LATEST, `rot${k}`, { lifetimeActions: [{ trigger: { timeAfterCreate: 'P7D' }, action: { type: 'Rotate' } }] });
      await s.create(admin, LATEST, `del${k}`, { kty: 'EC', crv: 'P-256' });
      await s.delete(admin, LATEST, `del${k}`);
      // The default policy: Notify 30 days before expiry; this key expires 20 days after the clock moves.
      await s.create(admin, LATEST, `note${k}`, { kty: 'EC', crv: 'P-256', attributes: { exp: Math.floor(t / 1000) + 28 * DAY } });
    }
    t += 8 * DAY * 1000;
    const reports = await Promise.all(services.flatMap((svc) => [svc.runMaintenance(), svc.runMaintenance()]));
    const rotated = reports.flatMap((r) => r.rotated).sort();
    const purged = reports.flatMap((r) => r.purged).sort();
    const notified = reports.flatMap((r) => r.notified).sort();
    assert.deepEqual(notified, Array.from({ length: KEYS }, (_, k) => `note${k}`));
    assert.deepEqual(rotated, Array.from({ length: KEYS }, (_, k) => `rot${k}`));
    assert.deepEqual(purged, Array.from({ length: KEYS }, (_, k) => `del${k}`));
    for (let k = 0; k < KEYS; k++) {
      const versions = await s.listVersions(admin, LATEST, `rot${k}`, 0, 25);
      assert.equal(versions.items.length, 2, `rot${k} has one rotation`);
    }
    // Every audit record is a log entry (no sequencer runs here: they wait for their index).
    const rows = await dbs[0]!.all<{ entry: string }>('SELECT entry FROM log_queue UNION ALL SELECT entry FROM log_entries');
    const records = rows.map((r) => JSON.parse(r.entry) as { operation: string; principal: string });
    assert.equal(records.filter((r) => r.operation === 'rotate' && r.principal === 'conclave:maintenance').length, KEYS);
    assert.equal(records.filter((r) => r.operation === 'purge' && r.principal === 'conclave:maintenance').length, KEYS);
    assert.equal(records.filter((r) => r.operation === 'rotationNotify' && r.principal === 'conclave:maintenance').length, KEYS);
  });
});
