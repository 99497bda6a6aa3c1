/** Group commit: concurrent writers share commits, each answered only by the commit that stored it, a failure fails its whole batch. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupCommit } from './group-commit.js';

/** A commit that waits for the test to open it, recording each batch. */
function gatedStore() {
  const batches: number[][] = [];
  const gates: Array<(fail?: Error) => void> = [];
  const commit = (items: readonly number[]) =>
    new Promise<number[]>((resolve, reject) => {
      batches.push([...items]);
      gates.push((e) => (e ? reject(e) : resolve(items.map((i) => i * 10))));
    });
  return { batches, gates, commit };
}

const settled = () => new Promise((r) => setImmediate(r));

test('N concurrent writers share fewer than N commits, and each gets its own result', async () => {
  const s = gatedStore();
  const gc = groupCommit(s.commit);
  const first = Promise.all([1, 2, 3].map((i) => gc.add(i)));
  await settled();
  // Writers arriving while the first commit is in flight wait for the next one, together.
  const second = Promise.all([4, 5, 6, 7].map((i) => gc.add(i)));
  await settled();
  assert.deepEqual(s.batches, [[1, 2, 3]]);
  s.gates[0]!();
  assert.deepEqual(await first, [10, 20, 30]);
  await settled();
  assert.deepEqual(s.batches, [[1, 2, 3], [4, 5, 6, 7]]);
  s.gates[1]!();
  assert.deepEqual(await second, [40, 50, 60, 70]);
  assert.deepEqual({ ...gc.stats }, { commits: 2, items: 7, largestBatch: 4 });
});

test('nothing is answered before its commit returned', async () => {
  const s = gatedStore();
  const gc = groupCommit(s.commit);
  let answered = 0;
  const all = Promise.all([1, 2, 3, 4].map((i) => gc.add(i).then(() => answered++)));
  await settled();
  await settled();
  assert.equal(answered, 0);
  s.gates[0]!();
  await all;
  assert.equal(answered, 4);
});

test('a failed commit fails every writer of its batch, and the next batch commits on its own', async () => {
  const s = gatedStore();
  const gc = groupCommit(s.commit);
  const doomed = [1, 2, 3].map((i) => gc.add(i));
  await settled();
  const later = gc.add(9);
  s.gates[0]!(new Error('disk full'));
  for (const d of doomed) await assert.rejects(d, /disk full/);
  await settled();
  s.gates[1]!();
  assert.equal(await later, 90);
  assert.deepEqual(s.batches, [[1, 2, 3], [9]]);
});

test('batches are cut at maxBatch; a commit returning the wrong count fails its batch', async () => {
  const sizes: number[] = [];
  const gc = groupCommit(
    async (items: readonly number[]) => {
      sizes.push(items.length);
      return items;
    },
    { maxBatch: 4 },
  );
  assert.deepEqual(await Promise.all(Array.from({ length: 10 }, (_, i) => gc.add(i))), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(sizes, [4, 4, 2]);
  const broken = groupCommit(async () => [1]);
  await assert.rejects(Promise.all([broken.add(1), broken.add(2)]), /returned 1 results for 2 items/);
});

test('a writer arriving just as the queue drains still gets a commit', async () => {
  const gc = groupCommit(async (items: readonly number[]) => items);
  for (let i = 0; i < 50; i++) {
    const a = gc.add(i);
    // Queued from the microtask in which the previous drain may be ending.
    const b = a.then(() => gc.add(i + 1000));
    assert.equal(await b, i + 1000);
  }
});

test('with inFlight 2 the next batch commits while the last one waits; each is answered by its own commit', async () => {
  const s = gatedStore();
  const gc = groupCommit(s.commit, { inFlight: 2 });
  const first = Promise.all([1, 2].map((i) => gc.add(i)));
  await settled();
  const second = Promise.all([3, 4].map((i) => gc.add(i)));
  await settled();
  const third = gc.add(5);
  await settled();
  // Two in flight; the third waits for a slot.
  assert.deepEqual(s.batches, [[1, 2], [3, 4]]);
  s.gates[1]!();
  assert.deepEqual(await second, [30, 40]);
  await settled();
  assert.deepEqual(s.batches, [[1, 2], [3, 4], [5]]);
  s.gates[0]!(new Error('lost'));
  await assert.rejects(first, /lost/);
  s.gates[2]!();
  assert.equal(await third, 50);
});
