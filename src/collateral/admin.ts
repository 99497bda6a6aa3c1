/**
 * The operator's view of the collateral cache: what is cached and how fresh, forced refresh, the TCB
 * baseline and its dry run over recently seen platforms, the AMD host identity THIM answers for, and
 * offline bundles.
 */
import { fail } from '../core/errors.js';
import { splitSignedResponse } from '../evidence/dcap/signed-json.js';
import { type TcbInfo, parseTcbInfo } from '../evidence/dcap/tcb-info.js';
import { type BaselinePolicy, dryRunBaseline } from './baseline.js';
import { decodeBundle, encodeBundle } from './cache/bundle.js';
import { type CollateralItem, tcbScope } from './cache/item.js';
import { verifyCollateralItem } from './cache/verify.js';
import type { CollateralService } from './service.js';

/** The AMD host identity (`/metadata/THIM/amd/certification` without parameters). */
export interface AmdHostIdentity {
  readonly product: string;
  readonly chipId: string;
  readonly tcbm: string;
}

export function createCollateralAdmin(svc: CollateralService, now: () => Date) {
  const { store, upstream } = svc;

  function describe(i: CollateralItem) {
    const t = now().getTime();
    const err = svc.lastError(i.key);
    const refreshAt = i.nextUpdate !== null ? i.nextUpdate - 24 * 3600_000 : null;
    return {
      key: i.key,
      kind: i.kind,
      scope: i.scope,
      tcbEvaluationDataNumber: i.evalNumber,
      selector: i.selector,
      source: i.source,
      fetchedAt: new Date(i.fetchedAt).toISOString(),
      ageSeconds: Math.round((t - i.fetchedAt) / 1000),
      issueDate: i.issueDate !== null ? new Date(i.issueDate).toISOString() : null,
      nextUpdate: i.nextUpdate !== null ? new Date(i.nextUpdate).toISOString() : null,
      nextRefresh: refreshAt !== null && upstream.owns(i.source) && svc.mode !== 'offline' ? new Date(Math.max(refreshAt, t)).toISOString() : null,
      stale: (i.nextUpdate !== null && t > i.nextUpdate) || err !== undefined,
      lastError: err ? { at: new Date(err.at).toISOString(), message: err.message } : undefined,
    };
  }

  /**
   * The version the default answer serves under a policy, from cached items only (as lookup.ts answers when
   * it cannot fetch): the baseline, else Intel's standard answer, else its early one.
   */
  function servedUnder(scope: string, tee: string, fmspc: string | undefined, policy: BaselinePolicy): CollateralItem | undefined {
    return svc.pick(scope, tee, fmspc, { type: 'baseline' }, policy) ?? svc.pick(scope, tee, fmspc, { type: 'standard' }, policy) ?? svc.pick(scope, tee, fmspc, { type: 'early' }, policy);
  }

  /** The TCB info each platform sees under a policy (cached items only; a dry run never fetches). */
  function tcbInfoUnder(policy: BaselinePolicy) {
    return (p: { tee: 'sgx' | 'tdx'; fmspc: string }): TcbInfo | undefined => {
      const item = servedUnder(tcbScope(p.tee, 'v4', p.fmspc), p.tee, p.fmspc, policy);
      return item ? parseTcbInfo(splitSignedResponse(item.body, 'tcbInfo').signed) : undefined;
    };
  }

  function baselineView(policy: BaselinePolicy) {
    const scopes = new Map<string, CollateralItem[]>();
    for (const i of svc.items()) if (i.evalNumber !== null) scopes.set(i.scope, [...(scopes.get(i.scope) ?? []), i]);
    return [...scopes.entries()].map(([scope, list]) => {
      const [tee, , what, fmspc] = scope.split('/');
      const served = servedUnder(scope, tee!, what === 'tcb' ? fmspc : undefined, policy);
      return { scope, available: list.map((i) => i.evalNumber).sort((a, b) => a! - b!), served: served?.evalNumber ?? null };
    });
  }

  return {
    async status() {
      await svc.sync();
      return [...svc.items()].map(describe);
    },
    /** Refreshes one item now (`key`), or every upstream-sourced item. */
    async refresh(key: string | undefined): Promise<{ key: string; ok: boolean; error?: string }[]> {
      if (key === undefined) return svc.refreshDue(true);
      const item = svc.get(key);
      if (!item) throw fail('collateral.not_found', `${key} is not cached`, { key });
      await svc.refresh(item, { force: true });
      return [{ key, ok: true }];
    },
    async baseline() {
      await svc.sync();
      return { policy: svc.policy(), scopes: baselineView(svc.policy()) };
    },
    async setBaseline(policy: BaselinePolicy) {
      await svc.setPolicy(policy);
      return { policy, scopes: baselineView(policy) };
    },
    /** Which platforms seen in the last `days` days change status under a candidate baseline. */
    async dryRun(candidate: BaselinePolicy, days: number) {
      const platforms = await store.platforms(new Date(now().getTime() - days * 86_400_000));
      const rows = dryRunBaseline(platforms, tcbInfoUnder(svc.policy()), tcbInfoUnder(candidate));
      return {
        current: { policy: svc.policy(), scopes: baselineView(svc.policy()) },
        candidate: { policy: candidate, scopes: baselineView(candidate) },
        platforms: rows.map((r) => ({ ...r.platform, lastSeen: r.platform.lastSeen?.toISOString() })).map((p, n) => ({ ...p, current: rows[n]!.current, candidate: rows[n]!.candidate, changed: rows[n]!.changed })),
        changed: rows.filter((r) => r.changed).length,
      };
    },
    amdHost: () => store.getSetting<AmdHostIdentity>('amd_host'),
    async setAmdHost(id: AmdHostIdentity) {
      await store.putSetting('amd_host', id, now());
      await svc.sync();
    },
    async exportBundle(): Promise<string> {
      await svc.sync();
      return encodeBundle([...svc.items()], now());
    },
    /**
     * Imports a bundle: every item verified first (signatures and chains, then the guard upstream answers
     * pass: the target its scope names, never older than the cached copy), then all stored in one
     * transaction, never older than the stored copy either.
     */
    async importBundle(text: string): Promise<number> {
      const decoded = decodeBundle(text);
      for (const i of decoded) verifyCollateralItem({ ...i, version: 0 });
      return svc.importItems(decoded);
    },
  };
}

export type CollateralAdmin = ReturnType<typeof createCollateralAdmin>;
