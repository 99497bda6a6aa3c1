/**
 * A stale sequencer must not sign. Two sequencers share one store (SQLite: two connections to one file,
 * as two processes; PostgreSQL: two pools). The first holds the lease and pauses just before it signs a
 * tree head (a GC pause, a SIGSTOP, a slow HSM) for longer than its lease; the second takes the lease
 * over and extends the tree; then the first resumes. Whatever the interleaving, every head the log key
 * ever signs must be a stored head (so `audit verify` checks it) and must agree with the final tree: a
 * signed head that was never stored, or one that forks the tree, is a split view an attacker who holds
 * the stale replica could hand out.
 *
 * On PostgreSQL the fork is real: a writer whose transaction took its queue id first commits after a
 * later one, so the stale holder sees only the later entry where the new holder sees both, and the two
 * trees differ at the same size.
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { rootOf } from '../../../src/log/merkle.js';
import { createSequencer, type Sequencer } from '../../../src/log/sequencer.js';
import { type LogSigner, logKeyId } from '../../../src/log/tree-head.js';
import { verifyLog } from '../../../src/log/verify.js';
import type { Database } from '../../../src/storage/database.js';
import { createLogStore, insertLogEntry } from '../../../src/storage/log-store.js';
import { MIGRATIONS } from '../../../src/storage/migrations/index.js';
import { openDatabase } from '../../../src/storage/open.js';
import { createTestDatabase, postgresUnavailable } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/server.js';
import { generateEcKeyPair } from '../../../src/core/keygen.js';

const LEASE_MS = 1000;
const key = generateEcKeyPair('P-256');

interface Signed {
  readonly by: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  readonly signature: Buffer;
}

/** The log key, recording every head it signs (decoded from RFC 9162 TreeHeadDataV2), and able to hold a signature back. */
function recordingSigner(by: string, signed: Signed[], gate: { hold?: Promise<void>; entered?: () => void }): LogSigner {
  return {
    keyId: logKeyId(key.publicKey),
    publicKey: key.publicKey,
    async sign(data) {
      if (gate.hold) {
        gate.entered?.();
        await gate.hold;
      }
      const signature = sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      const b = Buffer.from(data);
      signed.push({ by, treeSize: Number(b.readBigUInt64BE(8)), rootHash: b.subarray(17, 49), signature });
      return signature;
    },
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let n = 0;
const entry = (tag: string) => JSON.stringify({ operation: 'test', tag, n: ++n });

const pgSkip = await postgresUnavailable();
const backends: { name: string; skip: string | undefined; open(): Promise<{ dbs: Database[]; dispose(): Promise<void> }> }[] = [
  {
    name: 'SQLite (two connections to one file)',
    skip: undefined,
    async open() {
      const path = join(tempDir('conclave-stale-seq-'), 'store.db');
      const dbs = [await openDatabase(`sqlite:${path}`), await openDatabase(`sqlite:${path}`), await openDatabase(`sqlite:${path}`)];
      return { dbs, dispose: async () => void (await Promise.all(dbs.map((d) => d.close()))) };
    },
  },
  {
    name: 'PostgreSQL',
    skip: pgSkip,
    async open() {
      const t = await createTestDatabase();
      const dbs = [await openDatabase(t.url, { poolSize: 4 }), await openDatabase(t.url, { poolSize: 4 }), await openDatabase(t.url, { poolSize: 4 })];
      return {
        dbs,
        async dispose() {
          await Promise.all(dbs.map((d) => d.close()));
          await t.drop();
        },
      };
    },
  },
];

describe('scale-out: a sequencer whose lease was taken over signs no head', () => {
  for (const backend of backends) {
    test(`${backend.name}: a batch under a lease taken over is neither signed nor stored`, { skip: backend.skip }, async () => {
      const { dbs, dispose } = await backend.open();
      const [dbA, dbB] = dbs as [Database, Database];
      try {
        await dbA.migrate(MIGRATIONS);
        const a = createLogStore(dbA);
        const b = createLogStore(dbB);
        const now = Date.UTC(2026, 11, 6, 10);
        const stale = await a.acquire('replica-a', now, LEASE_MS);
        assert.ok(stale);
        assert.ok(await b.acquire('replica-b', now + LEASE_MS + 1, LEASE_MS));
        await insertLogEntry(dbA, entry('x'), now);
        let prepared = 0;
        let signs = 0;
        const r = await a.sequence(
          stale,
          now + LEASE_MS + 2,
          LEASE_MS,
          10,
          async (state, pending) => {
            prepared++;
            return { leaves: pending.map((p, i) => ({ id: p.id, index: state.size + i, leafHash: p.leafHash })), nodes: [], head: { treeSize: state.size + pending.length, timestamp: now, rootHash: rootOf(pending.map((p) => p.leafHash)) } };
          },
          async () => {
            signs++;
            throw new Error('a stale holder asked for a signature');
          },
        );
        assert.equal(r, 'lost');
        assert.equal(prepared, 1);
        assert.equal(signs, 0);
        assert.equal(await a.latestHead(), undefined);
      } finally {
        await dispose();
      }
    });

    test(`${backend.name}: the holder pauses before signing past its lease, another takes over and extends the tree; every signed head is stored and none forks`, { skip: backend.skip }, async () => {
      const { dbs, dispose } = await backend.open();
      const [dbA, dbB, writer] = dbs as [Database, Database, Database];
      try {
        await dbA.migrate(MIGRATIONS);
        const clock = { ms: Date.UTC(2026, 11, 6, 10) };
        const signed: Signed[] = [];
        const gateA: { hold?: Promise<void>; entered?: () => void } = {};
        const seq = (db: Database, name: string, gate: typeof gateA): Sequencer =>
          createSequencer({ store: createLogStore(db), signer: async () => recordingSigner(name, signed, gate), nowMs: () => clock.ms, holder: name, batchMs: 5, leaseMs: LEASE_MS, maxBatch: 100 });
        const a = seq(dbA, 'replica-a', gateA);
        const b = seq(dbB, 'replica-b', {});

        // a holds the lease and signs the first heads; b stands by.
        for (let i = 0; i < 3; i++) await insertLogEntry(writer, entry('before'), clock.ms);
        await a.tick();
        await a.tick();
        await b.tick();
        assert.equal(a.leader, true);
        assert.equal(b.leader, false);

        // PostgreSQL: a writer takes its queue id, then commits only after a later writer did.
        let commitEarly: (() => void) | undefined;
        const early =
          writer.dialect === 'postgres'
            ? writer.transaction(async (tx) => {
                await insertLogEntry(tx, entry('early'), clock.ms);
                await new Promise<void>((r) => {
                  commitEarly = r;
                });
              })
            : Promise.resolve();
        if (writer.dialect === 'postgres') while (!commitEarly) await sleep(5);
        await insertLogEntry(writer, entry('late'), clock.ms);

        // a starts a batch and stops just before its signature.
        let resume!: () => void;
        gateA.hold = new Promise<void>((r) => {
          resume = r;
        });
        const paused = new Promise<void>((r) => {
          gateA.entered = r;
        });
        const roundA = a.tick();
        await paused;
        commitEarly?.();
        await early;

        // a's lease runs out; b takes over and sequences what is queued (or waits for a's batch to end).
        clock.ms += LEASE_MS + 1;
        const roundB = b.tick();
        await Promise.race([roundB, sleep(500)]);
        gateA.hold = undefined;
        resume();
        await roundA.catch(() => undefined);
        await roundB.catch(() => undefined);

        // Both go on until everything is signed; the log is then whole and its stored heads consistent.
        for (let i = 0; i < 20; i++) {
          await a.tick().catch(() => undefined);
          await b.tick().catch(() => undefined);
          const r = await writer.get<{ q: number; n: number; s: number | null }>('SELECT (SELECT COUNT(*) FROM log_queue) AS q, (SELECT COUNT(*) FROM log_entries) AS n, (SELECT MAX(tree_size) FROM log_heads) AS s');
          if (Number(r?.q) === 0 && Number(r?.s) === Number(r?.n)) break;
          clock.ms += 10;
        }
        const store = createLogStore(writer);
        const verified = await verifyLog(store, [key.publicKey]);
        assert.ok(verified.ok && verified.pending === 0, JSON.stringify(verified));
        assert.equal(verified.treeSize, writer.dialect === 'postgres' ? 5 : 4);

        // Every head the key signed is a stored head (identical signature) and agrees with the final tree.
        const stored = await store.heads(0, 1000);
        const leaves = (await store.leaves(0, 1000)).map((l) => l.leafHash);
        for (const s of signed) {
          assert.ok(rootOf(leaves.slice(0, s.treeSize)).equals(s.rootHash), `${s.by} signed a head of size ${s.treeSize} that forks the log`);
          assert.ok(
            stored.some((h) => h.treeSize === s.treeSize && h.signature.equals(s.signature)),
            `${s.by} signed a head of size ${s.treeSize} that was never stored (signed sizes: ${signed.map((x) => `${x.by}:${x.treeSize}`).join(', ')})`,
          );
        }
        // Each head keeps the lease epoch it was stored under; a later head never has an earlier epoch.
        const epochs = await writer.all<{ tree_size: number; epoch: number | null }>('SELECT tree_size, epoch FROM log_heads ORDER BY tree_size');
        assert.ok(epochs.every((h, i) => h.epoch !== null && (i === 0 || Number(h.epoch) >= Number(epochs[i - 1]!.epoch))), JSON.stringify(epochs));
        await a.release();
        await b.release();
      } finally {
        await dispose();
      }
    });
  }
});
