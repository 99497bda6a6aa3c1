/**
 * A purge and a recover of one deleted key racing on two replicas (PostgreSQL, each replica its own pool):
 * the purge deletes the key's versions in one statement and its key row in the next, each statement
 * reading what has committed when it starts (READ COMMITTED). A recover that commits between them made
 * the second delete nothing: the purge answered "not found" and left no record, the recover answered
 * "recovered" (with its record), and the key was live with no version left: its material destroyed,
 * with no purge in the audit log. Exactly one of the two must win, and the loser change nothing.
 * (SQLite has one writer: the two cannot interleave there.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { postgresUnavailable } from '../../helpers/postgres.js';
import { keyOf } from '../../helpers/vault-key.js';
import { withPgReplicas } from '../../helpers/vault-store.js';

const skip = await postgresUnavailable();
const audit = (operation: string) => ({ time: new Date(0).toISOString(), principal: 'admin', operation, result: 'success' as const, status: 200 });

describe('purge and recover of one key on two replicas (PostgreSQL)', { skip }, () => {
  test('a recover that commits while the purge runs: one of them wins whole, no key is left without its versions', () =>
    withPgReplicas(async ({ b, storeA, storeB, raw, waitFor }) => {
      assert.equal(await storeA.addVersion(keyOf('k', '1'.repeat(32)), 1), 'ok');
      assert.equal(await storeA.addVersion(keyOf('k', '2'.repeat(32)), 2), 'ok');
      assert.equal(await storeA.setDeleted('k', { deletedDate: 3, scheduledPurgeDate: 4 }, audit('delete')), true);

      // Holds the version rows, so that A's purge stops inside its transaction, after its first statement
      // began (and saw the key deleted), until the test lets it go on.
      await raw.query('BEGIN');
      await raw.query("SELECT version FROM vault_key_versions WHERE name = 'k' FOR UPDATE");
      const purged = storeA.purge('k', audit('purge'));
      purged.catch(() => undefined);
      await waitFor(1, 'the purge (for the version rows)');
      // B recovers the key meanwhile (it may have to wait for the purge: then it finds the key purged).
      const recovered = storeB.setDeleted('k', undefined, audit('recover'));
      recovered.catch(() => undefined);
      await sleep(200);
      await raw.query('COMMIT');
      const [p, r] = await Promise.all([purged, recovered]);

      assert.equal(Number(p) + Number(r), 1, `exactly one of purge (${p}) and recover (${r}) wins`);
      if (r) {
        assert.equal((await storeB.liveVersion('k', undefined))?.version, '2'.repeat(32), 'the key was recovered, but its versions were purged');
        assert.equal((await storeB.allVersions('k')).length, 2);
      } else {
        assert.deepEqual(await storeB.keyState('k'), { state: 'absent' });
      }
      const ops = (await b.all<{ entry: string }>('SELECT entry FROM log_leaves')).map((e) => (JSON.parse(e.entry) as { operation: string }).operation).sort();
      assert.deepEqual(ops, ['delete', p ? 'purge' : 'recover'].sort(), 'the audit log records the change that was made');
    }));
});
