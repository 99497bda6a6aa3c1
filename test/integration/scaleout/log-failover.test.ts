/**
 * The transparency log's sequencer across two replicas on one PostgreSQL: the replica holding the lease
 * is SIGKILLed in the middle of a write load on both; writes go on meanwhile (they never wait for the
 * sequencer), the survivor takes the lease when it expires and sequences the backlog, no acknowledged
 * entry is lost, and the tree after the fail-over is consistent with the heads signed before it.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { verifyConsistency } from '../../../src/log/merkle.js';
import { checkTreeHead, parseTreeHeadWire } from '../../../src/log/tree-head.js';
import { verifyLog } from '../../../src/log/verify.js';
import type { Database } from '../../../src/storage/database.js';
import { createLogStore, storedLogKeys } from '../../../src/storage/log-store.js';
import { openDatabase } from '../../../src/storage/open.js';
import { waitSequenced } from '../../helpers/log.js';
import { createTestDatabase, postgresUnavailable } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/server.js';
import { type Replica, builtCliMissing, startReplica } from './replica.js';
import { akv } from './vault.js';

const built = builtCliMissing();
const pgSkip = await postgresUnavailable();
const LEASE_MS = 1000;

async function holderPid(db: Database): Promise<number | undefined> {
  const row = await db.get<{ holder: string | null; lease_until_ms: number }>('SELECT holder, lease_until_ms FROM log_sequencer WHERE id = 1');
  return row?.holder ? Number(row.holder.split('/')[1]) : undefined;
}

/** Writers create keys through `r` until `stop()`; returns the names whose creation was acknowledged. */
function load(r: Replica, prefix: string): { acked: string[]; stop(): Promise<void> } {
  const acked: string[] = [];
  let stopped = false;
  let n = 0;
  const writer = async () => {
    while (!stopped) {
      const name = `${prefix}-${++n}`;
      try {
        const res = await akv(r, 'POST', `/keys/${name}/create`, { kty: 'EC', crv: 'P-256' });
        if (res.status === 200) acked.push(name);
      } catch {
        // The replica died: this write was never acknowledged.
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  };
  const writers = [writer(), writer(), writer()];
  return {
    acked,
    async stop() {
      stopped = true;
      await Promise.all(writers);
    },
  };
}

describe('scale-out: log sequencer fail-over', { skip: built || pgSkip }, () => {
  test('PostgreSQL: the lease holder is killed under load; no acknowledged entry is lost and the tree stays consistent', async (t) => {
    const store = await createTestDatabase();
    const dataDir = tempDir('conclave-log-failover-');
    const extra = ['--services', 'vault', '--log-lease-ms', String(LEASE_MS), '--log-batch-ms', '10'];
    const replicas: Replica[] = [];
    const db = await openDatabase(store.url, { poolSize: 2 });
    try {
      replicas.push(await startReplica({ db: store.url, dataDir, extra }));
      replicas.push(await startReplica({ db: store.url, dataDir, extra }));
      for (const r of replicas) await r.adminToken();
      let pid: number | undefined;
      for (let i = 0; i < 100 && pid === undefined; i++) {
        pid = await holderPid(db);
        if (pid === undefined) await new Promise((res) => setTimeout(res, 50));
      }
      const holder = replicas.find((r) => r.process.pid === pid);
      const survivor = replicas.find((r) => r !== holder)!;
      assert.ok(holder, `one replica holds the lease (holder pid ${pid})`);
      const epochBefore = Number((await db.get<{ epoch: number }>('SELECT epoch FROM log_sequencer WHERE id = 1'))!.epoch);

      const onHolder = load(holder, 'h');
      const onSurvivor = load(survivor, 's');
      // The kill comes once both replicas acknowledged writes and the survivor's signed head covers a run of
      // them (was: a fixed 1.5 s of load, which on an idle machine is hundreds of writes more than needed).
      let before = parseTreeHeadWire((await survivor.send('GET', '/log/sth')).json());
      for (const until = Date.now() + 30_000; Date.now() < until; ) {
        if (onHolder.acked.length >= 20 && onSurvivor.acked.length >= 20 && before.treeSize >= 20) break;
        await new Promise((res) => setTimeout(res, 20));
        before = parseTreeHeadWire((await survivor.send('GET', '/log/sth')).json());
      }
      await holder.kill();
      await onHolder.stop();
      const killedAt = Date.now();
      // Writes through the survivor go on while nobody sequences (until the lease expires).
      await new Promise((res) => setTimeout(res, LEASE_MS + 800));
      await onSurvivor.stop();
      const ackedDuringOutage = onSurvivor.acked.length;

      const size = await waitSequenced(db, 30_000);
      t.diagnostic(`acknowledged: ${onHolder.acked.length} through the killed holder, ${onSurvivor.acked.length} through the survivor; tree ${before.treeSize} before the kill, ${size} after; sequenced again ${Date.now() - killedAt} ms after the kill`);
      assert.ok(onHolder.acked.length > 0 && ackedDuringOutage > 0, 'both replicas acknowledged writes');
      assert.equal(await holderPid(db), survivor.process.pid, 'the survivor holds the lease');
      assert.ok(Number((await db.get<{ epoch: number }>('SELECT epoch FROM log_sequencer WHERE id = 1'))!.epoch) > epochBefore);

      // Every acknowledged creation is an entry of the signed tree.
      const logged = new Set(
        (await db.all<{ entry: string }>("SELECT entry FROM log_entries WHERE idx IS NOT NULL AND entry LIKE '%\"operation\":\"create\"%'"))
          .map((r) => JSON.parse(r.entry) as { key?: string; result: string })
          .filter((e) => e.result === 'success')
          .map((e) => e.key),
      );
      const lost = [...onHolder.acked, ...onSurvivor.acked].filter((name) => !logged.has(name));
      assert.deepEqual(lost, [], 'acknowledged writes missing from the log');

      // The whole log verifies, and the head signed before the kill is a prefix of the one after.
      const verified = await verifyLog(createLogStore(db), await storedLogKeys(db));
      assert.ok(verified.ok && verified.pending === 0, JSON.stringify(verified));
      const after = parseTreeHeadWire((await survivor.send('GET', '/log/sth')).json());
      const key = (await storedLogKeys(db))[0]!;
      checkTreeHead(after, key);
      const proof = await survivor.send('GET', `/log/proof/consistency?from=${before.treeSize}&to=${after.treeSize}`);
      assert.equal(proof.status, 200, proof.text);
      const path = (proof.json().consistencyPath as string[]).map((h) => Buffer.from(h, 'hex'));
      assert.ok(verifyConsistency(before.treeSize, after.treeSize, before.rootHash, after.rootHash, path), 'the tree after the fail-over extends the head signed before it');
    } finally {
      for (const r of replicas) await r.stop().catch(() => undefined);
      await db.close();
      await store.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
