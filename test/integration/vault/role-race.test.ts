/**
 * Attack on a role assignment's check-then-use across replicas: replica B reads the custom role it is asked
 * to assign (that it exists, where it may be assigned) and then writes the assignment; between the two,
 * replica A deletes that role (refused while it is assigned, and it is not yet) or narrows where it may be
 * assigned, and A's caller is told it is done. B's assignment must not then be written: an assignment that
 * names a deleted role grants whatever a role later defined under that id grants (a Managed HSM client
 * chooses the id: anyone who may write role definitions), and one outside the role's assignable scopes is
 * one the role no longer allows. Each replica has its own store and connection pool on one database
 * (PostgreSQL; SQLite with two connections to one file).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { isConclaveError } from '../../../src/core/errors.js';
import { createSealer } from '../../../src/hsm/master-key.js';
import type { Database } from '../../../src/storage/database.js';
import { MIGRATIONS } from '../../../src/storage/migrations/index.js';
import { createVaultStore } from '../../../src/storage/vault-store.js';
import { LATEST } from '../../../src/vault/api-version.js';
import type { VaultService } from '../../../src/vault/service.js';
import type { VaultStore } from '../../../src/vault/store.js';
import { postgresUnavailable } from '../../helpers/postgres.js';
import { signal } from '../../helpers/signal.js';
import { replicaBackends, testVaultService } from '../../helpers/vault-store.js';

const pgSkip = await postgresUnavailable();
const admin = { id: 'admin', displayName: 'admin', isAdmin: true };
const ROLE = '6a2f4c1e-9d3b-4e8f-a1b2-c3d4e5f60718';
const roleBody = (assignableScopes: string[]) => ({
  properties: { roleName: 'Releaser', permissions: [{ dataActions: ['Microsoft.KeyVault/managedHsm/keys/release/action'] }], assignableScopes },
});

const CHANGES: [string, (a: VaultService) => Promise<unknown>][] = [
  ['deletes the role', (a) => a.deleteRoleDefinition(admin, LATEST, '/', ROLE)],
  ['narrows where the role may be assigned', (a) => a.putRoleDefinition(admin, LATEST, '/', ROLE, roleBody(['/keys/other']))],
];

const backends = replicaBackends(pgSkip);

for (const backend of backends) {
  describe(`role assignment across replicas (${backend.name}): the role changes on A between B's check and B's write`, { skip: backend.skip }, () => {
    for (const [what, change] of CHANGES) {
      test(`A ${what}: B's assignment is refused and nothing is written`, async () => {
        const store = await backend.open();
        const dbs: Database[] = [];
        try {
          const sealer = createSealer(new Uint8Array(randomBytes(32)));
          // B's assignment write waits while `hold` is set: the moment between B's check and its write.
          let hold: { reached: () => void; gate: Promise<void> } | undefined;
          const replica = async (gated: boolean) => {
            const db = await store.open();
            dbs.push(db);
            await db.migrate(MIGRATIONS);
            const s = createVaultStore(db);
            const vaultStore: VaultStore = gated
              ? {
                  ...s,
                  addAssignment: async (...args) => {
                    const h = hold;
                    if (h) {
                      h.reached();
                      await h.gate;
                    }
                    return s.addAssignment(...args);
                  },
                }
              : s;
            return {
              store: s,
              service: testVaultService(vaultStore, sealer),
            };
          };
          const a = await replica(false);
          const b = await replica(true);
          await a.service.putRoleDefinition(admin, LATEST, '/', ROLE, roleBody(['/']));

          const [reached, fireReached] = signal();
          const [gate, open] = signal();
          hold = { reached: fireReached, gate };
          const assigned = b.service.assign(admin, { principalId: 'p', role: ROLE, scope: '/' });
          assigned.catch(() => undefined);
          await reached;
          hold = undefined;
          // A's change commits, and A's caller is answered, while B's assignment waits to be written.
          await change(a.service);
          open();
          const outcome = await assigned.then(
            () => 'assigned',
            (e: unknown) => (isConclaveError(e) ? e.code : String(e)),
          );
          assert.equal(outcome, 'role.conflict', 'B assigned a role that was deleted or narrowed before the assignment was written');
          assert.deepEqual(await a.store.assignmentsOf('p'), [], 'an assignment was written');
        } finally {
          for (const db of dbs) await db.close();
          await store.done();
        }
      });
    }
  });
}
