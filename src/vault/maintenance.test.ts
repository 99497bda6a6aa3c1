/**
 * The scheduled work's walk over rotation candidates, against an in-memory store: every candidate is
 * reached however many there are (keys past the first thousand were once never looked at), what one run
 * does is capped, a key without a stored policy gets AKV's default Notify, and a noticed version is not
 * written again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KeyVersion } from './key.js';
import { createMaintenance } from './maintenance.js';
import type { AuditEntry, RotationCandidate } from './store.js';
import type { VaultCore } from './core.js';

const DAY = 86400;
const NOW = Date.UTC(2031, 0, 1) / 1000;

function fakeCore(candidates: RotationCandidate[]) {
  const noticed = new Set<string>();
  const writes: string[] = [];
  const pages: (string | undefined)[] = [];
  const store = {
    async duePurges() {
      return [];
    },
    async rotationCandidates(after: string | undefined, limit: number) {
      pages.push(after);
      return candidates
        .filter((c) => after === undefined || c.name > after)
        .slice(0, limit)
        .map((c) => ({ ...c, noticed: noticed.has(c.name) }));
    },
    async recordNotice(name: string, _version: string, _now: number, _audit: AuditEntry) {
      writes.push(name);
      if (noticed.has(name)) return false;
      noticed.add(name);
      return true;
    },
  };
  const core = {
    store,
    nowSeconds: () => NOW,
    deps: { now: () => new Date(NOW * 1000), logger: { error: () => undefined, info: () => undefined } },
  } as unknown as VaultCore;
  return { core, writes, pages };
}

function expiring(name: string, inDays: number): RotationCandidate {
  const latest = { name, version: '0'.repeat(32), attributes: { created: NOW - 300 * DAY, exp: NOW + inDays * DAY } } as unknown as KeyVersion;
  return { name, policy: undefined, latest, noticed: false };
}

describe('vault maintenance: the walk over rotation candidates', () => {
  test('keys without a stored policy get the default Notify, 30 days before expiry, once per version', async () => {
    const { core, writes } = fakeCore([expiring('a-soon', 10), expiring('b-later', 40)]);
    const m = createMaintenance(core);
    assert.deepEqual((await m.runMaintenance()).notified, ['a-soon']);
    assert.deepEqual((await m.runMaintenance()).notified, []);
    assert.deepEqual(writes, ['a-soon'], 'a noticed version is skipped without a write');
  });

  test('every candidate is reached, in keyset pages; one run acts on at most 1000 keys and the next run goes on', async () => {
    const names = Array.from({ length: 2500 }, (_, i) => `k${String(i).padStart(5, '0')}`);
    const { core, pages } = fakeCore(names.map((n) => expiring(n, 5)));
    const m = createMaintenance(core);
    const first = await m.runMaintenance();
    assert.equal(first.notified.length, 1000);
    const second = await m.runMaintenance();
    const third = await m.runMaintenance();
    assert.deepEqual([...first.notified, ...second.notified, ...third.notified].sort(), names);
    assert.ok(pages.includes('k00099'), 'the second page starts after the last name of the first');
  });
});
