/**
 * Attack on a release's check-then-use across replicas: replica A reads the key, its release policy, the
 * caller's roles and the trusted authorities, then waits (here: for the authority's JWKS, which can take
 * as long as the authority takes to answer) before it decides, stores its record and sends the key. While
 * it waits, replica B commits a change that revokes the release: the policy tightened, the key disabled,
 * the caller's role removed, the authority that signed the token no longer trusted; B's caller is told it
 * is done. A release whose record commits after that change must not send the key: it is judged by the
 * terms in force when it commits, not by those it read before. Each replica has its own store and
 * connection pool on one database, as replicas have (PostgreSQL; SQLite with two connections to one file).
 *
 * A waits at one of two points: before its decision (the JWKS lookup), or after it, right before its
 * success record is handed to the store. The second is where the release's terms must be read again only
 * once the record committed: terms read while the record is still being written (say, alongside it) may
 * precede a revocation that commits before the record does, and B's caller is told it is done while A
 * sends the key.
 */
import assert from 'node:assert/strict';
import { randomBytes, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { isConclaveError } from '../../../src/core/errors.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';
import { createSealer } from '../../../src/hsm/master-key.js';
import type { Database } from '../../../src/storage/database.js';
import { MIGRATIONS } from '../../../src/storage/migrations/index.js';
import { createVaultStore } from '../../../src/storage/vault-store.js';
import { LATEST } from '../../../src/vault/api-version.js';
import { compileReleasePolicy } from '../../../src/vault/release/index.js';
import { createFakeAuthority } from '../../../src/vault/release/testing.js';
import type { VaultService } from '../../../src/vault/service.js';
import { postgresUnavailable } from '../../helpers/postgres.js';
import { signal } from '../../helpers/signal.js';
import { replicaBackends, testVaultService } from '../../helpers/vault-store.js';

const pgSkip = await postgresUnavailable();
const admin = { id: 'admin', displayName: 'admin', isAdmin: true };
const app = { id: 'tee-app', displayName: 'tee-app', isAdmin: false };
const ISSUER = 'https://authority.test';
const policyOf = (...types: string[]) =>
  Buffer.from(JSON.stringify({ version: '1.0.0', anyOf: types.map((type) => ({ authority: ISSUER, allOf: [{ claim: 'x-ms-attestation-type', equals: type }] })) })).toString('base64url');

type Revocation = (b: VaultService, assignmentId: string) => Promise<unknown>;
const REVOCATIONS: [string, string, Revocation][] = [
  ['the release policy tightened', 'release.policy_unsatisfied', (b) => b.update(admin, LATEST, 'k', undefined, { release_policy: { data: policyOf('tdxvm') } })],
  ['the key disabled', 'key.operation_not_allowed', (b) => b.update(admin, LATEST, 'k', undefined, { attributes: { enabled: false } })],
  ['the key deleted', 'key.not_found', (b) => b.delete(admin, LATEST, 'k')],
  ['the caller’s release role removed', 'auth.forbidden', (b, id) => b.unassign(admin, id)],
  ['the token’s authority no longer trusted', 'release.token_invalid', (b) => b.setAuthorities(admin, { authorities: [] })],
  // Changes that revoke nothing: the release goes ahead (no refusal for a change it does not depend on).
  ['(control) the key’s tags changed', 'released', (b) => b.update(admin, LATEST, 'k', undefined, { tags: { a: 'b' } })],
  ['(control) the key rotated', 'released', (b) => b.rotate(admin, LATEST, 'k')],
  ['(control) the release policy changed to one that still admits the token', 'released', (b) => b.update(admin, LATEST, 'k', undefined, { release_policy: { data: policyOf('sevsnpvm', 'tdxvm') } })],
];

const backends = replicaBackends(pgSkip);

/** Where A waits while B revokes: before its decision (the JWKS lookup), or before its record is written. */
type StallPoint = 'jwks' | 'record';
const STALL_POINTS: [StallPoint, string][] = [
  ['jwks', 'while A’s release is being decided'],
  ['record', 'after A decided, before A’s record is written'],
];

for (const backend of backends) {
  for (const [at, when] of STALL_POINTS) describe(`release across replicas (${backend.name}): a revocation committed on B ${when}`, { skip: backend.skip }, () => {
    // At the record, only the revocations (and one control): the controls are the same there.
    for (const [what, codes, revoke] of at === 'jwks' ? REVOCATIONS : REVOCATIONS.filter(([w]) => !w.startsWith('(control)') || w.includes('still admits'))) {
      test(`${what}: ${codes === 'released' ? 'A releases' : 'A does not send the key'}`, async () => {
        const store = await backend.open();
        const dbs: Database[] = [];
        try {
          const authority = await createFakeAuthority(ISSUER, { alg: 'RS256' });
          const sealer = createSealer(new Uint8Array(randomBytes(32)));
          const signing = generateRsaKeyPair(2048);
          // A's JWKS lookup (at 'jwks') or A's next audit record (at 'record') waits while `stall` is set:
          // the moment between A's reads and its decision, or between its decision and its record.
          let stall: { reached: () => void; gate: Promise<void> } | undefined;
          const replica = async (stalls: boolean) => {
            const db = await store.open();
            dbs.push(db);
            await db.migrate(MIGRATIONS);
            const vaultStore = createVaultStore(db);
            // The authority is trusted by the store (conclave authorities), not by configuration.
            return testVaultService(
              {
                ...vaultStore,
                audit: async (record) => {
                  const s = stalls && at === 'record' ? stall : undefined;
                  if (s) {
                    stall = undefined;
                    s.reached();
                    await s.gate;
                  }
                  return vaultStore.audit(record);
                },
              },
              sealer,
              {
                getJwks: async () => {
                  const s = stalls && at === 'jwks' ? stall : undefined;
                  if (s) {
                    s.reached();
                    await s.gate;
                  }
                  return { keys: [authority.jwk] };
                },
                releaseKey: async () => ({ certDer: new Uint8Array(randomBytes(64)), sign: async (data: Uint8Array) => new Uint8Array(sign('sha256', data, signing.privateKey)) }),
              },
            );
          };
          const a = await replica(true);
          const b = await replica(false);
          await b.setAuthorities(admin, { authorities: [ISSUER] });
          const { id } = await b.assign(admin, { principalId: app.id, role: 'Key Vault Crypto Service Release User', scope: '/' });
          await b.create(admin, LATEST, 'k', { kty: 'RSA-HSM', key_size: 2048, attributes: { exportable: true }, release_policy: { data: policyOf('sevsnpvm') } });
          const now = Math.floor(Date.now() / 1000);
          const tee = generateRsaKeyPair(2048).publicKey.export({ format: 'jwk' });
          const target = authority.token({ iat: now, nbf: now, exp: now + 600, 'x-ms-attestation-type': 'sevsnpvm', 'x-ms-runtime': { keys: [{ ...tee, kid: 'tee', key_ops: ['encrypt'] }] } });

          // Before the change, A releases.
          assert.ok((await a.release(app, LATEST, 'k', undefined, { target })).value);

          const [reached, fireReached] = signal();
          const [gate, open] = signal();
          stall = { reached: fireReached, gate };
          const release = a.release(app, LATEST, 'k', undefined, { target });
          release.catch(() => undefined);
          await reached;
          stall = undefined;
          // B's change commits, and B's caller is answered, while A's release waits.
          await revoke(b, id);
          open();
          const outcome = await release.then(
            () => 'released',
            (e: unknown) => (isConclaveError(e) ? e.code : String(e)),
          );
          assert.match(outcome, new RegExp(`^(${codes})$`), `the key was sent (${outcome}) under terms revoked before the release committed`);
          if (codes !== 'released') {
            // The success record was stored before the terms were read again: the refusal's record names it.
            const releases = (await dbs[0]!.all<{ leaf_hash: string; entry: string }>('SELECT leaf_hash, entry FROM log_leaves ORDER BY id'))
              .map((r) => ({ leafHash: r.leaf_hash, ...(JSON.parse(r.entry) as { operation: string; result: string; detail?: { notSent?: { leafHash: string } } }) }))
              .filter((r) => r.operation === 'release');
            const refusal = releases.at(-1);
            assert.equal(refusal?.result === 'success', false);
            assert.equal(releases.find((r) => r.leafHash === refusal?.detail?.notSent?.leafHash)?.result, 'success', 'the refusal names the stored success record (notSent)');
          }
          if (what.includes('still admits')) {
            // The release was decided again under the policy now in force: its audit trail names that policy
            // (the success record itself, or a record that names it), not only the one it was first decided by.
            const hashOf = (data: string) => compileReleasePolicy(Buffer.from(data, 'base64url').toString('utf8')).hash;
            const admitted = hashOf(policyOf('sevsnpvm', 'tdxvm'));
            const entries = (await dbs[0]!.all<{ leaf_hash: string; entry: string }>('SELECT leaf_hash, entry FROM log_leaves ORDER BY id')).map((r) => ({
              leafHash: r.leaf_hash,
              ...(JSON.parse(r.entry) as { operation: string; result: string; detail?: Record<string, unknown> }),
            }));
            const success = entries.filter((r) => r.operation === 'release' && r.result === 'success').at(-1)!;
            assert.equal(success.detail?.policyHash, hashOf(policyOf('sevsnpvm')), 'the success record names the policy the release was first decided by');
            const naming = entries.filter((r) => r.detail?.policyHash === admitted && (r.leafHash === success.leafHash || JSON.stringify(r.detail).includes(success.leafHash)));
            assert.equal(naming.length, 1, `no audit record names the policy in force that admitted the release (${admitted}): ${JSON.stringify(entries.slice(-2))}`);
          }
          // And the next release through A is refused as well (or, after a change that revokes nothing, released).
          const next = a.release(app, LATEST, 'k', undefined, { target });
          if (codes === 'released') assert.ok((await next).value);
          else await assert.rejects(next);
        } finally {
          for (const db of dbs) await db.close();
          await store.done();
        }
      });
    }
  });
}
