import { fail } from '../core/errors.js';

/**
 * A budget of concurrent upstream fetches: at most `perClient` for one client and `total` in all.
 * Over budget, a fetch is refused at once (`upstream.busy`, 503) rather than queued, so clients asking
 * for items nobody has cached cannot take every upstream connection from those who need a refresh.
 */
export interface FetchBudget {
  run<T>(client: string, fn: () => Promise<T>): Promise<T>;
  inFlight(client?: string): number;
}

export function createFetchBudget(limits: { readonly perClient: number; readonly total: number }): FetchBudget {
  const byClient = new Map<string, number>();
  let total = 0;
  return {
    async run(client, fn) {
      const mine = byClient.get(client) ?? 0;
      if (mine >= limits.perClient || total >= limits.total) {
        throw fail('upstream.busy', `too many upstream fetches in flight (${mine >= limits.perClient ? 'for this client' : 'in all'}); cached collateral is still served`, {
          perClient: limits.perClient,
          total: limits.total,
        });
      }
      byClient.set(client, mine + 1);
      total++;
      try {
        return await fn();
      } finally {
        total--;
        const left = (byClient.get(client) ?? 1) - 1;
        if (left === 0) byClient.delete(client);
        else byClient.set(client, left);
      }
    },
    inFlight: (client) => (client === undefined ? total : (byClient.get(client) ?? 0)),
  };
}
