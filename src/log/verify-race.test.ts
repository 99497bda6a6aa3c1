/**
 * audit verify against a live log: a batch that commits between verify's read of the latest head and its
 * read of the entries beyond it is a newer head, not a deleted one (seen as a flaky log.head_missing in
 * test/integration/scaleout/crash.test.ts, where the second replica's sequencer runs during the verify).
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { test } from 'node:test';
import { createLogAppender, createLogStore } from '../storage/log-store.js';
import { MIGRATIONS } from '../storage/migrations/index.js';
import { openDatabase } from '../storage/open.js';
import { createSequencer } from './sequencer.js';
import { type LogSigner, logKeyId } from './tree-head.js';
import { verifyLog } from './verify.js';
import { generateEcKeyPair } from '../core/keygen.js';

test('a head signed while verify reads is not a deleted head; a head really deleted still is', async () => {
  const db = await openDatabase('sqlite::memory:');
  try {
    await db.migrate(MIGRATIONS);
    const { privateKey, publicKey } = generateEcKeyPair('P-256');
    const signer: LogSigner = { keyId: logKeyId(publicKey), publicKey, sign: async (d) => sign('sha256', d, { key: privateKey, dsaEncoding: 'ieee-p1363' }) };
    const store = createLogStore(db);
    const seq = createSequencer({ store, signer: async () => signer, nowMs: () => Date.now(), holder: 'a', batchMs: 5, leaseMs: 60_000, maxBatch: 100 });
    const appender = createLogAppender(db);
    const batch = async (n: number) => {
      await Promise.all(Array.from({ length: n }, (_, i) => appender.append(JSON.stringify({ n: i, r: Math.random() }), Date.now())));
      await seq.tick();
    };
    await seq.tick();
    await batch(3);
    const older = (await store.latestHead())!;
    await batch(2);
    // The reader's first look at the latest head is from before the last batch committed.
    let first = true;
    const racing = {
      ...store,
      async latestHead() {
        if (first) {
          first = false;
          return older;
        }
        return store.latestHead();
      },
    };
    const r = await verifyLog(racing, [publicKey]);
    assert.equal(r.ok, true, JSON.stringify(r));
    // A head deleted for real is still found.
    await db.run('DELETE FROM log_heads WHERE tree_size = (SELECT MAX(tree_size) FROM log_heads)');
    const deleted = await verifyLog(store, [publicKey]);
    assert.equal(deleted.ok ? 'ok' : deleted.code, 'log.head_missing');
  } finally {
    await db.close();
  }
});
