import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import type { CollateralItem } from './cache/item.js';
import { createCollateralLookup } from './lookup.js';
import type { CollateralService } from './service.js';

/** A service with nothing cached whose fetches run the lookup's budgeted fetch directly. */
function emptyService(): CollateralService {
  return {
    get: () => undefined,
    mayFetch: () => true,
    fetchOnce: (_key: string, _fresh: unknown, run: () => Promise<CollateralItem>) => run(),
  } as unknown as CollateralService;
}

describe('collateral lookup: the miss budget per client', () => {
  test('counts each asClient caller apart, again after every call has ended', async () => {
    const lookup = createCollateralLookup(emptyService(), { missBudget: { perClient: 1, total: 8 } });
    const item = {} as CollateralItem;
    const busy = (e: unknown) => isConclaveError(e, 'upstream.busy');
    for (const round of [1, 2]) {
      let release!: () => void;
      const held = new Promise<CollateralItem>((r) => {
        release = () => r(item);
      });
      // Client a holds its one upstream fetch; its second miss is refused, client b's is not.
      const first = lookup.asClient('a', () => lookup.cached('tcb', `k${round}-1`, () => held));
      await new Promise((r) => setImmediate(r));
      await assert.rejects(lookup.asClient('a', () => lookup.cached('tcb', `k${round}-2`, async () => item)), busy, `round ${round}`);
      assert.equal(await lookup.asClient('b', () => lookup.cached('tcb', `k${round}-3`, async () => item)), item);
      release();
      assert.equal(await first, item);
      // Every call has ended: a's budget is free again.
      assert.equal(await lookup.asClient('a', () => lookup.cached('tcb', `k${round}-4`, async () => item)), item);
    }
  });
});
