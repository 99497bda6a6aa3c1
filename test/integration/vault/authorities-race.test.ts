/**
 * Two replacements of the trusted-authority list racing on two replicas (PostgreSQL, each replica its own
 * pool). A replacement deletes every row and inserts its list; under READ COMMITTED the second DELETE
 * does not see the rows the first inserted (they committed after it began), so both lists were kept: an
 * authority trusted that neither administrator's list named last, and a record of each saying otherwise.
 * The result must be one of the two lists. (SQLite has one writer: the two cannot interleave there.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { postgresUnavailable } from '../../helpers/postgres.js';
import { withPgReplicas } from '../../helpers/vault-store.js';

const skip = await postgresUnavailable();
const audit = { time: new Date(0).toISOString(), principal: 'admin', operation: 'setAuthorities', result: 'success' as const, status: 200 };

describe('trusted authorities replaced on two replicas at once (PostgreSQL)', { skip }, () => {
  test('the list is one of the two replacements, never their union', () =>
    withPgReplicas(async ({ storeA, storeB, raw, waitFor }) => {
      await storeA.setAuthorities(['https://old.example'], 1, audit);

      // Holds the old row, so that both replacements begin their DELETE before either commits.
      await raw.query('BEGIN');
      await raw.query('SELECT authority FROM vault_authorities FOR UPDATE');
      const first = storeA.setAuthorities(['https://a.example'], 2, audit);
      first.catch(() => undefined);
      await waitFor(1, 'the first replacement');
      const second = storeB.setAuthorities(['https://b.example'], 2, audit);
      second.catch(() => undefined);
      await waitFor(2, 'the second replacement');
      await raw.query('COMMIT');
      await Promise.all([first, second]);

      const list = await storeB.authorities();
      assert.ok(
        JSON.stringify(list) === JSON.stringify(['https://a.example']) || JSON.stringify(list) === JSON.stringify(['https://b.example']),
        `the trusted authorities are ${JSON.stringify(list)}, which no replacement set`,
      );
    }));

  test('a restore that adds authorities while a replacement runs: a replacement recorded after the restore leaves its own list alone', () =>
    // A restore merges the backup's authorities into the list (INSERT … ON CONFLICT DO NOTHING). Committed
    // while a replacement's DELETE was under way, its rows were not seen by that DELETE and were kept, so
    // the replacement, recorded after the restore, left an authority trusted that its list did not name.
    withPgReplicas(async ({ b, storeA, storeB, raw, waiting, waitFor }) => {
      await storeA.setAuthorities(['https://old.example'], 1, audit);

      // Holds the old row, so that the replacement's DELETE has begun when the restore runs.
      await raw.query('BEGIN');
      await raw.query('SELECT authority FROM vault_authorities FOR UPDATE');
      const replaced = storeA.setAuthorities(['https://a.example'], 2, audit);
      replaced.catch(() => undefined);
      await waitFor(1, 'the replacement');
      let restoreDone = false;
      const restored = storeB.importVault({ keys: [], customRoles: [], assignments: [], authorities: ['https://restored.example'] }, 2, { ...audit, operation: 'restore' });
      restored.then(
        () => (restoreDone = true),
        () => (restoreDone = true),
      );
      // The restore either commits at once or waits for the replacement (then it runs after it).
      for (let i = 0; !restoreDone && (await waiting()) < 2; i++) {
        assert.ok(i < 200, 'the restore neither finished nor waited');
        await sleep(10);
      }
      await raw.query('COMMIT');
      await Promise.all([replaced, restored]);

      const order = (await b.all<{ entry: string }>('SELECT entry FROM log_leaves ORDER BY id')).map((e) => (JSON.parse(e.entry) as { operation: string }).operation);
      const list = await storeB.authorities();
      if (order.lastIndexOf('setAuthorities') > order.indexOf('restore')) {
        assert.deepEqual(list, ['https://a.example'], `the replacement was recorded after the restore, but the trusted authorities are ${JSON.stringify(list)}`);
      } else {
        assert.deepEqual(list, ['https://a.example', 'https://restored.example']);
      }
    }));
});
