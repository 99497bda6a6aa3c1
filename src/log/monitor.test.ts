import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { test } from 'node:test';
import { consistencyRanges, hashLeaf, hashRanges, type NodeId, rootOf } from './merkle.js';
import { checkLog, type MonitoredLog } from './monitor.js';
import { logKeyId, signTreeHead, treeHeadToWire, type TreeHeadWire } from './tree-head.js';
import { generateEcKeyPair } from '../core/keygen.js';

const key = generateEcKeyPair('P-256');
/** The monitor's clock, and the heads' times (ms) a little before it. */
const NOW = Date.UTC(2030, 0, 1);
const T0 = NOW - 3_600_000;
const other = generateEcKeyPair('P-256');
const signerOf = (k: typeof key) => ({ keyId: logKeyId(k.publicKey), publicKey: k.publicKey, sign: async (d: Uint8Array) => sign('sha256', d, { key: k.privateKey, dsaEncoding: 'ieee-p1363' }) });

/** An honest log over `leaves`, serving the head of `size` (or a head it is told to serve). */
function logOver(leaves: Buffer[], opts: { size?: number; k?: typeof key; noProofs?: boolean; timestamp?: number } = {}): MonitoredLog & { head(): Promise<TreeHeadWire> } {
  const size = opts.size ?? leaves.length;
  const head = async () => treeHeadToWire(await signTreeHead({ treeSize: size, timestamp: opts.timestamp ?? T0 + size, rootHash: rootOf(leaves.slice(0, size)) }, signerOf(opts.k ?? key)));
  const read = async (nodes: readonly NodeId[]) => nodes.map((n) => rootOf(leaves.slice(n.index * 2 ** n.level, (n.index + 1) * 2 ** n.level)));
  return {
    name: 'test',
    head,
    sth: head,
    async consistency(from, to) {
      if (opts.noProofs) throw new Error('HTTP 500');
      return { from, to, consistencyPath: (await hashRanges(consistencyRanges(from, to), read)).map((h) => h.toString('hex')) };
    },
  };
}

const leaves = Array.from({ length: 40 }, (_, i) => hashLeaf(Buffer.from(`entry ${i}`)));

test('a growing, consistent log: heads accepted, the latest kept; an older consistent head is stale, not an alert', async () => {
  const first = await checkLog(logOver(leaves, { size: 13 }), key.publicKey, undefined, NOW);
  assert.equal(first.event.kind, 'head');
  const grown = await checkLog(logOver(leaves, { size: 40 }), key.publicKey, first.latest, NOW);
  assert.deepEqual([grown.event.kind, grown.latest?.treeSize], ['head', 40]);
  const same = await checkLog(logOver(leaves, { size: 40 }), key.publicKey, grown.latest, NOW);
  assert.equal(same.event.kind, 'head');
  const older = await checkLog(logOver(leaves, { size: 20 }), key.publicKey, grown.latest, NOW);
  assert.deepEqual([older.event.kind, older.latest?.treeSize], ['stale', 40]);
});

test('alerts: a fork, an inconsistent head, a missing proof, another key', async () => {
  const seen = (await checkLog(logOver(leaves, { size: 16 }), key.publicKey, undefined, NOW)).latest;
  const forked = [...leaves];
  forked[3] = hashLeaf(Buffer.from('rewritten history'));
  const alert = async (log: MonitoredLog) => {
    const r = await checkLog(log, key.publicKey, seen, NOW);
    assert.equal(r.event.kind, 'alert');
    assert.equal(r.latest, seen, 'the state keeps the last good head');
    return r.event.kind === 'alert' ? r.event.alert : undefined;
  };
  assert.equal(await alert(logOver(forked, { size: 16 })), 'fork');
  assert.equal(await alert(logOver(forked, { size: 30 })), 'inconsistent');
  assert.equal(await alert(logOver(forked, { size: 9 })), 'inconsistent');
  assert.equal(await alert(logOver(leaves, { size: 30, noProofs: true })), 'consistency_missing');
  assert.equal(await alert(logOver(leaves, { size: 30, k: other })), 'signature_invalid');
  assert.equal(await alert({ name: 'x', sth: async () => ({ treeSize: 'big' }), consistency: async () => ({}) }), 'head_malformed');
});

test('time: a larger head dated before the last one seen, a smaller one dated after it, or a head far in the future of the monitor is an alert', async () => {
  const seen = (await checkLog(logOver(leaves, { size: 16 }), key.publicKey, undefined, NOW)).latest!;
  const check = async (opts: { size: number; timestamp: number }, latest: TreeHeadWire | undefined = seen) => {
    const r = await checkLog(logOver(leaves, opts), key.publicKey, latest, NOW);
    if (r.event.kind === 'alert') {
      assert.equal(r.event.code, 'log.inconsistent');
      assert.equal(r.latest, latest, 'the state keeps the last good head');
    }
    return r.event.kind === 'alert' ? r.event.alert : r.event.kind;
  };
  assert.equal(await check({ size: 30, timestamp: seen.timestamp - 1 }), 'timestamp_backwards');
  assert.equal(await check({ size: 9, timestamp: seen.timestamp + 1 }), 'timestamp_backwards');
  assert.equal(await check({ size: 30, timestamp: NOW + 86_400_000 }), 'timestamp_future');
  assert.equal(await check({ size: 5, timestamp: NOW + 86_400_000 }, undefined), 'timestamp_future', 'also the first head');
  // One head per size: the sequencer signs a head only when the tree grows (src/log/sequencer.ts), so a
  // head of the size seen dated before it (backdating what it holds) or after it is a second signature for one size.
  assert.equal(await check({ size: 16, timestamp: seen.timestamp - 60_000 }), 'fork');
  assert.equal(await check({ size: 16, timestamp: seen.timestamp + 1 }), 'fork');
  assert.equal(await check({ size: 16, timestamp: seen.timestamp }), 'head');
  // Equal times, and a clock a little behind the log's, are fine.
  assert.equal(await check({ size: 30, timestamp: seen.timestamp }), 'head');
  assert.equal(await check({ size: 9, timestamp: seen.timestamp }), 'stale');
  assert.equal(await check({ size: 30, timestamp: NOW + 60_000 }), 'head');
});
