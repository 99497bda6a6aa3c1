import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { test } from 'node:test';
import { fail } from '../core/errors.js';
import type { LogStore } from './ports.js';
import { createSequencer } from './sequencer.js';
import { logKeyId, type SignedTreeHead } from './tree-head.js';
import { generateEcKeyPair } from '../core/keygen.js';

const key = generateEcKeyPair('P-256');
const signer = async () => ({ keyId: logKeyId(key.publicKey), publicKey: key.publicKey, sign: async (d: Uint8Array) => sign('sha256', d, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }) });

/** A store that grants the lease and keeps what it is given, whose batches fail while `failing` is set (an outage, a deleted head). */
function store(state: { failing: boolean; batches: number }): LogStore {
  let head: SignedTreeHead | undefined;
  const nodes = new Map<string, Buffer>();
  return {
    acquire: async (holder) => ({ holder, epoch: 1 }),
    renew: async () => true,
    release: async () => undefined,
    hasPending: async () => true,
    async sequence(_lease, _now, _leaseMs, limit, prepare, signHead) {
      if (state.failing) throw fail('log.head_missing', 'a signed head was deleted');
      state.batches++;
      // A full batch: the sequencer would go on at once.
      const size = head?.treeSize ?? 0;
      const pending = Array.from({ length: limit }, (_, i) => ({ id: size + i, leafHash: Buffer.alloc(32, size + i), createdMs: 0 }));
      const prepared = await prepare({ size, head }, pending);
      if (!prepared) return undefined;
      const batch = { ...prepared, head: await signHead(prepared.head) };
      for (const l of batch.leaves) nodes.set(`0/${l.index}`, l.leafHash);
      for (const n of batch.nodes) nodes.set(`${n.node.level}/${n.node.index}`, n.hash);
      head = batch.head;
      return batch;
    },
    readNodes: async (ids) => ids.map((n) => nodes.get(`${n.level}/${n.index}`)!),
    latestHead: async () => head,
  };
}

test('a failing round backs off (doubling, at most a third of the lease, so the lease survives) and a success resets it; a full batch before a failure does not spin', async () => {
  const state = { failing: false, batches: 0 };
  const seq = createSequencer({ store: store(state), signer, nowMs: () => Date.UTC(2026, 11, 6), holder: 'a', batchMs: 25, leaseMs: 3000, maxBatch: 4 });
  await seq.tick();
  assert.equal(seq.leader, true);
  assert.equal(seq.nextDelayMs(), 0, 'a full batch: the backlog is worked off at once');
  state.failing = true;
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    await assert.rejects(seq.tick(), (e: { code?: string }) => e.code === 'log.head_missing');
    delays.push(seq.nextDelayMs());
  }
  assert.deepEqual(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
  state.failing = false;
  await seq.tick();
  assert.equal(seq.nextDelayMs(), 0);
  await seq.tick();
  assert.equal(state.batches, 3);
});

test('under load the holder goes from batch to batch without polling the queue first; once a round finds nothing, it polls again', async () => {
  let head: SignedTreeHead | undefined;
  const queue: number[] = [];
  let next = 0;
  const calls = { hasPending: 0, sequence: 0 };
  const s: LogStore = {
    acquire: async (holder) => ({ holder, epoch: 1 }),
    renew: async () => true,
    release: async () => undefined,
    hasPending: async () => {
      calls.hasPending++;
      return queue.length > 0;
    },
    async sequence(_lease, _now, _leaseMs, limit, prepare, signHead) {
      calls.sequence++;
      const size = head?.treeSize ?? 0;
      const pending = queue.splice(0, limit).map((id) => ({ id, leafHash: Buffer.alloc(32, id), createdMs: 0 }));
      const prepared = await prepare({ size, head }, pending);
      if (!prepared) return undefined;
      head = await signHead(prepared.head);
      return { ...prepared, head };
    },
    readNodes: async () => [],
    latestHead: async () => head,
  };
  const seq = createSequencer({ store: s, signer, nowMs: () => Date.UTC(2026, 11, 6), holder: 'a', batchMs: 25, leaseMs: 3000, maxBatch: 100 });
  await seq.tick(); // the first head (empty tree)
  const arrive = () => queue.push(++next, ++next);
  arrive();
  await seq.tick(); // idle before: polls, finds entries, sequences them
  assert.deepEqual(calls, { hasPending: 1, sequence: 2 });
  for (let i = 0; i < 3; i++) {
    arrive();
    await seq.tick();
  }
  assert.deepEqual(calls, { hasPending: 1, sequence: 5 }, 'busy: straight to the next batch');
  await seq.tick(); // nothing arrived: this batch finds nothing
  await seq.tick(); // idle again: polls
  assert.deepEqual(calls, { hasPending: 2, sequence: 6 });
  assert.equal(head?.treeSize, 8);
});
