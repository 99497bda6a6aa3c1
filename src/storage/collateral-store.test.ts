/** Platform sightings (#20): a platform seen again within a minute costs no store write; later, another source, or a failed write does. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCollateralStore } from './collateral-store.js';
import type { Database } from './database.js';
import { MIGRATIONS } from './migrations/index.js';
import { openDatabase } from './open.js';

test('sightings of one platform are written at most once a minute per source', async () => {
  const db = await openDatabase('sqlite::memory:');
  try {
    await db.migrate(MIGRATIONS);
    let writes = 0;
    let failNext = false;
    const counting: Database = {
      ...db,
      async run(sql, params) {
        if (sql.includes('collateral_platforms')) {
          writes++;
          if (failNext) {
            failNext = false;
            throw new Error('store down');
          }
        }
        return db.run(sql, params);
      },
    };
    const store = createCollateralStore(counting);
    const p = { tee: 'sgx' as const, fmspc: '00906ED50000', cpusvn: '1515020401800e000000000000000000', pcesvn: 13 };
    const t0 = Date.UTC(2026, 11, 6, 8, 0, 0);
    await store.recordPlatformSeen(p, 'attestation', new Date(t0));
    for (let i = 1; i <= 10; i++) await store.recordPlatformSeen(p, 'attestation', new Date(t0 + i * 1000));
    assert.equal(writes, 1);
    await store.recordPlatformSeen(p, 'registration', new Date(t0 + 11_000));
    assert.equal(writes, 2);
    await store.recordPlatformSeen(p, 'registration', new Date(t0 + 71_000));
    assert.equal(writes, 3);
    const seen = await store.platforms(new Date(t0));
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.lastSeen?.getTime(), t0 + 71_000);
    // A failed write is not remembered: the next sighting writes.
    failNext = true;
    await assert.rejects(store.recordPlatformSeen({ ...p, pcesvn: 14 }, 'attestation', new Date(t0)), /store down/);
    await store.recordPlatformSeen({ ...p, pcesvn: 14 }, 'attestation', new Date(t0 + 1000));
    assert.equal(writes, 5);
  } finally {
    await db.close();
  }
});
