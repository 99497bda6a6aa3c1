/**
 * Attack on the attestation service's policy cache (src/attestation/service.ts): a policy read that was in
 * flight when the policy changed (a slow store read on PostgreSQL, another replica's change, or this
 * replica's own setPolicy) finished after the cache had been emptied and already refilled with the new
 * policy at the new version, and wrote the old policy back over it. The version check then found nothing
 * to do, so the replica evaluated every attestation under the replaced policy (say, one that still
 * admitted debuggable enclaves) until the next policy change or a restart.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_POLICIES } from './policy/index.js';
import type { PolicyStore, StoredPolicy } from './ports.js';
import { createAttestationService } from './service.js';

const OLD = DEFAULT_POLICIES.SgxEnclave;
const NEW = `${DEFAULT_POLICIES.SgxEnclave}\n`;

describe('attestation service: the policy cache', () => {
  test('a read that started before a policy change never puts the old policy back after the new one was cached', async () => {
    let stored: StoredPolicy = { text: OLD, jws: 'old' };
    let version = 0;
    /** While set, getPolicy answers what the store held when it was called, but only when released. */
    let hold: { release(): void } | undefined;
    const policies = {
      async getPolicy() {
        const seen = stored;
        if (hold) {
          await new Promise<void>((resolve) => {
            hold = { release: resolve };
          });
        }
        return seen;
      },
      async version() {
        return version;
      },
    } as unknown as PolicyStore;
    let clock = 10_000;
    const service = createAttestationService({
      collateral: {} as never,
      snpCertificates: {} as never,
      policies,
      signer: () => Promise.reject(new Error('unused')),
      issuer: () => 'https://attest.example',
      now: () => new Date(0),
      cacheClockMs: () => clock,
      tokenLifetimeSeconds: 60,
    });
    hold = { release: () => undefined };
    // A: reads the policy (version 0) while it is still the old one; its read is slow.
    const a = service.policy('SgxEnclave');
    await new Promise((resolve) => setImmediate(resolve));
    // The policy changes (another replica, or this one) and the version moves on.
    stored = { text: NEW, jws: 'new' };
    version = 1;
    clock += 1_001;
    const slowRead = hold;
    hold = undefined;
    // C: the version check notices the change and caches the new policy.
    assert.equal((await service.policy('SgxEnclave')).jws, 'new');
    // A's read ends now, with what it read before the change.
    slowRead?.release();
    await a;
    clock += 1_001;
    assert.equal((await service.policy('SgxEnclave')).jws, 'new', 'the replaced policy came back into force');
  });
});
