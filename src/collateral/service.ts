import { type BaselinePolicy, DEFAULT_BASELINE, type EvaluationSelector, baselineEvaluationNumber, chooseEvaluationNumber } from './baseline.js';
import { type CollateralItem, type CollateralKind, intelMeta, signedDatesOf } from './cache/item.js';
import { checkCollateralForward, checkCollateralTarget, checkScopeShape } from './cache/guard.js';
import { verifyCollateralItem } from './cache/verify.js';
import { fail, isConclaveError } from '../core/errors.js';
import { crlBytes } from '../core/x509.js';
import type { CollateralMode, CollateralStore, CollateralUpstream, CollateralWriteGuard, UpstreamAnswer } from './ports.js';
import { fetchNvidiaAgain } from './nvidia.js';

/** Where background refresh failures go (a pino logger fits). */
export interface WarningLogger {
  warn(obj: object, msg: string): void;
}

/**
 * The collateral cache as the routes see it: an in-memory index of every stored item (rebuilt from the
 * store when its version counter moves), upstream fetches on a miss (coalesced by the HTTP client), and
 * the refresh bookkeeping. Routes turn items into ready-to-send answers and memoise those.
 */
export interface CollateralService {
  readonly mode: CollateralMode;
  readonly store: CollateralStore;
  readonly upstream: CollateralUpstream;
  policy(): BaselinePolicy;
  /** Loads newer items from the store; true when something changed. */
  sync(): Promise<boolean>;
  items(): IterableIterator<CollateralItem>;
  get(key: string): CollateralItem | undefined;
  scopeItems(scope: string): readonly CollateralItem[];
  /** Picks among the versions of a TCB info / identity for a selector under a policy. */
  pick(scope: string, tee: string, fmspc: string | undefined, selector: EvaluationSelector, policy?: BaselinePolicy): CollateralItem | undefined;
  /**
   * Stores items an operator brings (an offline bundle, a PCCS upload), checked as upstream answers are:
   * dates and keys re-read from the signed bodies, each item the target its scope names, none older than
   * the cached copy, and all of them again in the one transaction that writes them, against the stored
   * copies (another replica or process may have stored a newer one meanwhile). Throws `collateral.rollback`,
   * `collateral.mismatch` or `collateral.malformed` naming the first refused item, and nothing of a refused
   * import is stored. Returns how many items were written.
   */
  importItems(items: readonly Omit<CollateralItem, 'version'>[]): Promise<number>;
  /** Stores an upstream answer after verifying it; returns the stored item. */
  ingest(kind: CollateralKind, scope: string, versioned: boolean, selector: string | null, r: UpstreamAnswer): Promise<CollateralItem>;
  /** Fetch-on-miss allowed for this kind in this mode. */
  mayFetch(kind: CollateralKind): boolean;
  /** Fetches one stored item again from its source; `force` (an operator's "refresh now") skips only a refresh another replica made while we waited. */
  refresh(item: CollateralItem, opts?: { force?: boolean }): Promise<CollateralItem>;
  /**
   * One upstream fetch per item across concurrent requests and replicas: callers with the same `key`
   * share one promise; across replicas a store lock serialises them, and after waiting for it a replica
   * re-reads the store and returns `fresh()` when another replica already fetched the item.
   */
  fetchOnce(key: string, fresh: () => CollateralItem | undefined, run: () => Promise<CollateralItem>, opts?: { negative?: boolean }): Promise<CollateralItem>;
  /** Background refresh of a stale item, at most once a minute per item; errors are recorded. */
  refreshSoon(item: CollateralItem): void;
  /** Refreshes every upstream-sourced item whose nextUpdate is near (or all, with `force`). */
  refreshDue(force: boolean): Promise<{ key: string; ok: boolean; error?: string }[]>;
  lastError(key: string): { at: number; message: string } | undefined;
  setPolicy(p: BaselinePolicy): Promise<void>;
  /** Calls `listener` whenever what the cache answers may have changed (new items, policy, failed refreshes). */
  onChange(listener: () => void): void;
}

export interface ServiceDeps {
  readonly mode: CollateralMode;
  readonly store: CollateralStore;
  readonly upstream: CollateralUpstream;
  readonly now: () => Date;
  readonly logger: WarningLogger;
  /** Renew collateral this long before its nextUpdate. */
  readonly refreshAheadMs?: number;
  /** Checks an answer before it is stored; the vendor-root check by default (tests substitute fake roots). */
  readonly verifyItem?: (item: CollateralItem) => void;
  /** How long a failed fetch on a miss is answered from memory instead of asking the upstream again (default 30 s). */
  readonly negativeTtlMs?: number;
}

const INTEL_KINDS = new Set<CollateralKind>(['tcb', 'qe_identity', 'qve_identity', 'qae_identity', 'tcb_eval_numbers', 'pckcrl', 'rootcacrl', 'pckcert', 'pckcerts', 'fmspcs']);
const CRL_KINDS = new Set<CollateralKind>(['pckcrl', 'rootcacrl', 'vcek_crl', 'vlek_crl']);
/** Kinds cached in versions by evaluation number (their keys carry it). */
const VERSIONED_KINDS = new Set<CollateralKind>(['tcb', 'qe_identity', 'qve_identity', 'qae_identity']);

function withoutVersion({ version: _v, ...rest }: CollateralItem): Omit<CollateralItem, 'version'> {
  return rest;
}

function mergeSelectors(a: string | null, b: string | null): string | null {
  const s = new Set([...(a ?? '').split(','), ...(b ?? '').split(',')].filter(Boolean));
  return s.size ? [...s].sort().join(',') : null;
}

/** The newest version of a scope among `items` that Intel answered as its `tag` (standard or early) collateral. */
function newestTagged(items: readonly CollateralItem[], tag: string): CollateralItem | undefined {
  return items.filter((i) => i.evalNumber !== null && i.selector?.split(',').includes(tag)).reduce<CollateralItem | undefined>((a, b) => (!a || b.evalNumber! > a.evalNumber! ? b : a), undefined);
}

/**
 * Throws `upstream.collateral_rollback` when `item` would move `scopeItems` (the items of its scope, in
 * this replica's index or in the store) backwards: older than the item of its key, or, for each of `tags`,
 * below the newest evaluation number so tagged; an early one also below the newest standard one (Intel's
 * early collateral is never behind its standard collateral, so such an answer is a replayed one).
 */
function checkForward(item: Omit<CollateralItem, 'version'>, scopeItems: readonly CollateralItem[], tags: readonly string[]): void {
  for (const tag of tags) checkCollateralForward(item, undefined, newestTagged(scopeItems, tag));
  if (tags.includes('early')) checkCollateralForward(item, undefined, newestTagged(scopeItems, 'standard'));
  checkCollateralForward(item, scopeItems.find((i) => i.key === item.key));
}

/**
 * The same guard in the store transaction that writes (CollateralStore.put), against the stored copies: the
 * check against the index came first, and another replica, an upload or an import may have stored a newer
 * copy since. The item keeps the selectors the stored copy was tagged with.
 */
function againstStored(tagsFor: (item: Omit<CollateralItem, 'version'>) => readonly string[]): CollateralWriteGuard {
  return (item, stored) => {
    checkForward(item, stored, tagsFor(item));
    return { ...item, selector: mergeSelectors(stored.find((i) => i.key === item.key)?.selector ?? null, item.selector) };
  };
}

/** An upstream answer's refusal, as the refusal of an item an operator imports. */
function asImported(e: unknown): unknown {
  if (isConclaveError(e, 'upstream.collateral_rollback')) return fail('collateral.rollback', e.message.replace(/^upstream answer for/, 'imported'), { ...e.detail }, e);
  if (isConclaveError(e, 'upstream.collateral_mismatch')) return fail('collateral.mismatch', e.message.replace(/^upstream answer for/, 'imported'), { ...e.detail }, e);
  return e;
}

/** The tags an item was answered or imported under, against which {@link checkForward} compares it. */
const tagsOf = (versioned: boolean, selector: string | null): string[] => (versioned ? (selector ?? '').split(',').filter(Boolean) : []);

export function selectorOfUrl(url: string): string | null {
  const q = new URL(url).searchParams;
  if (q.has('tcbEvaluationDataNumber')) return null;
  return q.get('update')?.toLowerCase() === 'early' ? 'early' : 'standard';
}

export function createCollateralService(d: ServiceDeps): CollateralService {
  const index = new Map<string, CollateralItem>();
  const byScope = new Map<string, CollateralItem[]>();
  const errors = new Map<string, { at: number; message: string }>();
  const lastTry = new Map<string, number>();
  const pending = new Map<string, Promise<CollateralItem>>();
  let version = 0;
  /** Failed misses by fetch key (negative caching), so repeated anonymous misses cannot multiply upstream calls. */
  const failedMisses = new Map<string, { at: number; error: unknown }>();
  const negativeTtl = d.negativeTtlMs ?? 30_000;
  let policy: BaselinePolicy = DEFAULT_BASELINE;
  const listeners: (() => void)[] = [];
  const changed = () => {
    for (const l of listeners) l();
  };
  const refreshAhead = d.refreshAheadMs ?? 24 * 3600_000;

  function put(item: CollateralItem): void {
    const old = index.get(item.key);
    index.set(item.key, item);
    const list = byScope.get(item.scope) ?? [];
    const next = old ? list.map((i) => (i.key === item.key ? item : i)) : [...list, item];
    byScope.set(item.scope, next);
  }

  /** When each evaluation number became public: the TCB recovery event date Intel lists, else the earliest issueDate we hold. */
  function published(tee: string): Map<number, Date> {
    const out = new Map<number, Date>();
    for (const i of index.values()) {
      if (!i.scope.startsWith(`${tee}/`) || i.evalNumber === null || i.issueDate === null) continue;
      const cur = out.get(i.evalNumber);
      if (!cur || i.issueDate < cur.getTime()) out.set(i.evalNumber, new Date(i.issueDate));
    }
    for (const i of index.values()) {
      if (i.kind !== 'tcb_eval_numbers' || !i.scope.startsWith(`${tee}/`)) continue;
      try {
        const o = JSON.parse(Buffer.from(i.body).toString('utf8')) as { tcbEvaluationDataNumbers?: { tcbEvalNumbers?: { tcbEvaluationDataNumber: number; tcbRecoveryEventDate: string }[] } };
        for (const e of o.tcbEvaluationDataNumbers?.tcbEvalNumbers ?? []) out.set(e.tcbEvaluationDataNumber, new Date(e.tcbRecoveryEventDate));
      } catch {
        // a malformed list never reaches the store (it is verified); ignore defensively
      }
    }
    return out;
  }


  /** The PPID of the PCK certificates already cached for the platform of a pckcert/pckcerts scope. */
  function platformPpid(kind: CollateralKind, scope: string): string | undefined {
    if (kind !== 'pckcert' && kind !== 'pckcerts') return undefined;
    // sgx/pckcert/{pceid}/{platform key}/{cpusvn}/{pcesvn} and sgx/pckcerts/{pceid}/{platform key}
    const parts = scope.split('/');
    const key = (kind === 'pckcert' ? parts.slice(3, -2) : parts.slice(3)).join('/');
    const single = `sgx/pckcert/${parts[2]}/${key}/`;
    const all = `sgx/pckcerts/${parts[2]}/${key}`;
    for (const i of index.values()) {
      if (!(i.scope.startsWith(single) || i.scope === all)) continue;
      try {
        const { ppid } = checkCollateralTarget(i);
        if (ppid !== undefined) return ppid;
      } catch {
        // an item cached before these checks existed that fails them does not vouch for a PPID
      }
    }
    return undefined;
  }

  /**
   * An upstream answer as a cache item, after every check: signatures and chains, the target it was asked
   * for, and that it does not move the cache backwards. Throws; nothing is stored by this function.
   */
  function checkedAnswer(kind: CollateralKind, scope: string, versioned: boolean, selector: string | null, r: UpstreamAnswer): Omit<CollateralItem, 'version'> {
    const body = CRL_KINDS.has(kind) ? crlBytes(new Uint8Array(r.body)) : new Uint8Array(r.body);
    const dates = signedDatesOf(kind, body, scope);
    const key = versioned ? `${scope}#${dates.evalNumber ?? 'unknown'}` : scope;
    const meta = INTEL_KINDS.has(kind) ? intelMeta(kind, r.headers) : { contentType: r.headers['content-type'] ?? 'application/octet-stream' };
    const item: Omit<CollateralItem, 'version'> = {
      key,
      kind,
      scope,
      evalNumber: dates.evalNumber,
      selector: mergeSelectors(index.get(key)?.selector ?? null, selector),
      meta,
      body,
      source: r.url,
      fetchedAt: d.now().getTime(),
      issueDate: dates.issueDate,
      nextUpdate: dates.nextUpdate,
    };
    (d.verifyItem ?? verifyCollateralItem)({ ...item, version: 0 });
    checkCollateralTarget(item, platformPpid(kind, scope));
    // Never older than the cached copy of its key; an answer to update=standard|early also never below the newest
    // number cached under that selector, and an early one never below the newest standard one (checkForward).
    checkForward(item, byScope.get(scope) ?? [], tagsOf(versioned, selector));
    return item;
  }

  /** Fetches an item again from the URL it came from and stores the answer. */
  async function fetchAgain(item: CollateralItem): Promise<CollateralItem> {
    try {
      if (item.kind === 'nvidia_rim' || item.kind === 'nvidia_ocsp') return await fetchNvidiaAgain(service, item);
      const url = new URL(item.source);
      const path = url.pathname;
      const r = INTEL_KINDS.has(item.kind)
        ? item.kind === 'rootcacrl'
          ? await d.upstream.intelRootCaCrl()
          : await d.upstream.intel(path.split('/')[1] as 'sgx' | 'tdx', path.split('/')[3] as 'v3' | 'v4', path.split('/').slice(4).join('/'), Object.fromEntries(url.searchParams))
        : await d.upstream.amd(`${path}${url.search}`);
      return await service.ingest(item.kind, item.scope, item.evalNumber !== null, selectorOfUrl(item.source), r);
    } catch (e) {
      errors.set(item.key, { at: d.now().getTime(), message: isConclaveError(e) ? e.message : String(e) });
      throw e;
    }
  }

  /**
   * The items to store of an import ({@link CollateralService.importItems}), checked against this replica's
   * index; throws as importItems does.
   */
  function admit(items: readonly Omit<CollateralItem, 'version'>[]): Omit<CollateralItem, 'version'>[] {
    const out: Omit<CollateralItem, 'version'>[] = [];
    const seen = new Set<string>();
    for (const given of items) {
      try {
        if (typeof given.source !== 'string' || !Number.isFinite(given.fetchedAt) || (given.selector !== null && typeof given.selector !== 'string')) {
          throw fail('collateral.malformed', `${given.key}: source, fetchedAt or selector is malformed`, { key: given.key });
        }
        checkScopeShape(given.kind, given.scope);
        const dates = signedDatesOf(given.kind, given.body, given.scope);
        const versioned = VERSIONED_KINDS.has(given.kind);
        const key = versioned ? `${given.scope}#${dates.evalNumber ?? 'unknown'}` : given.scope;
        if (key !== given.key) throw fail('collateral.mismatch', `${given.key} is filed under the wrong key: its signed content makes it ${key}`, { key: given.key, expected: key });
        if (seen.has(key)) throw fail('collateral.mismatch', `${key} appears twice`, { key });
        seen.add(key);
        const item = { ...given, ...dates };
        checkCollateralTarget(item, platformPpid(item.kind, item.scope));
        const cached = index.get(key);
        const selector = mergeSelectors(cached?.selector ?? null, item.selector);
        // The bytes already cached: kept as they are, with their source (an upstream copy stays refreshable).
        if (cached && Buffer.from(cached.body).equals(item.body)) {
          if (selector !== cached.selector) out.push({ ...withoutVersion(cached), selector });
          continue;
        }
        // As for upstream answers: never older than the cached copy of the same key, and an item tagged
        // standard or early never older than the newest number cached under that tag. An untagged older
        // number is a version (as a tcbEvaluationDataNumber=N answer is), kept for requests of that number.
        checkForward(item, byScope.get(item.scope) ?? [], tagsOf(versioned, item.selector));
        out.push({ ...item, selector });
      } catch (e) {
        if (isConclaveError(e)) throw asImported(e);
        throw fail('collateral.malformed', `${given.key} cannot be read as ${given.kind}`, { key: given.key, kind: given.kind }, e);
      }
    }
    return out;
  }

  const service: CollateralService = {
    mode: d.mode,
    store: d.store,
    upstream: d.upstream,
    policy: () => policy,
    async sync() {
      const v = await d.store.currentVersion();
      if (v === version) return false;
      for (const item of await d.store.itemsSince(version)) put(item);
      policy = (await d.store.getSetting<BaselinePolicy>('baseline')) ?? DEFAULT_BASELINE;
      version = v;
      changed();
      return true;
    },
    items: () => index.values(),
    get: (key) => index.get(key),
    scopeItems: (scope) => byScope.get(scope) ?? [],
    pick(scope, tee, fmspc, selector, p = policy) {
      const list = (byScope.get(scope) ?? []).filter((i) => i.evalNumber !== null);
      if (list.length === 0) return undefined;
      // Versions Intel answered as its standard or early collateral. One without a selector was asked for by
      // number, which anyone may do in lazy mode: it answers for its own number (and as the baseline's
      // exact number), never for Intel's standard answer or in place of a baseline it is below. Nor does an
      // early answer stand in for the standard one (PCCS keeps them apart): the standard one is fetched, and
      // the early one serves only where it cannot be had (lookup.ts).
      const standard = () => newestTagged(list, 'standard');
      switch (selector.type) {
        case 'early':
          return newestTagged(list, 'early');
        case 'standard':
          return standard();
        case 'number':
          return list.find((i) => i.evalNumber === selector.number);
        default: {
          const target = baselineEvaluationNumber(p, tee, fmspc, published(tee), d.now());
          if (target === undefined) return standard();
          const eligible = list.filter((i) => i.selector !== null || i.evalNumber === target);
          const n = chooseEvaluationNumber(
            eligible.map((i) => i.evalNumber!),
            target,
          );
          return n === undefined ? undefined : eligible.find((i) => i.evalNumber === n);
        }
      }
    },
    async importItems(items) {
      await service.sync();
      const admitted = admit(items);
      const tags = new Map(items.map((i) => [i.key, tagsOf(VERSIONED_KINDS.has(i.kind), i.selector)]));
      try {
        await d.store.put(admitted, againstStored((i) => tags.get(i.key) ?? []));
      } catch (e) {
        throw asImported(e);
      }
      await service.sync();
      return admitted.length;
    },
    async ingest(kind, scope, versioned, selector, r) {
      let item: Omit<CollateralItem, 'version'>;
      try {
        item = checkedAnswer(kind, scope, versioned, selector, r);
      } catch (e) {
        // Whatever is wrong with an upstream answer is the upstream's failure (503), never the client's.
        if (isConclaveError(e) && e.code.startsWith('upstream.')) throw e;
        throw fail('upstream.unavailable', `upstream answer for ${scope} does not verify`, { key: scope, url: r.url, cause: isConclaveError(e) ? e.code : undefined }, e);
      }
      try {
        await d.store.put([item], againstStored(() => tagsOf(versioned, selector)));
      } catch (e) {
        // Another writer stored a newer copy after the check above: it stays, and this replica serves it.
        if (isConclaveError(e, 'upstream.collateral_rollback')) await service.sync();
        throw e;
      }
      errors.delete(item.key);
      await service.sync();
      return index.get(item.key)!;
    },
    mayFetch(kind) {
      if (d.mode === 'offline') return false;
      if (INTEL_KINDS.has(kind)) return d.upstream.hasIntel && d.mode === 'lazy';
      if (kind === 'nvidia_rim') return d.upstream.hasNvidiaRim;
      if (kind === 'nvidia_ocsp') return d.upstream.hasNvidiaOcsp;
      return d.upstream.hasAmd;
    },
    fetchOnce(key, fresh, run, opts = {}) {
      let p = pending.get(key);
      if (!p) {
        if (opts.negative) {
          const failed = failedMisses.get(key);
          if (failed && d.now().getTime() - failed.at < negativeTtl) return Promise.reject(failed.error);
        }
        p = d.store
          .withFetchLock(`collateral-fetch:${key}`, async () => {
            await service.sync();
            return fresh() ?? run();
          })
          .then(
            (item) => {
              failedMisses.delete(key);
              return item;
            },
            (e: unknown) => {
              // A fetch refused over the miss budget did not fail: remembered, one burst would block its key for everyone.
              if (opts.negative && !isConclaveError(e, 'upstream.busy')) {
                if (failedMisses.size >= 10_000) failedMisses.clear();
                failedMisses.set(key, { at: d.now().getTime(), error: e });
              }
              throw e;
            },
          )
          .finally(() => pending.delete(key));
        pending.set(key, p);
      }
      return p;
    },
    async refresh(item, opts = {}) {
      if (!d.upstream.owns(item.source)) throw fail('collateral.not_found', `${item.key} did not come from a configured upstream`, { key: item.key });
      const started = d.now().getTime();
      lastTry.set(item.key, started);
      // Fetched within the last minute (by this replica, or by another while we waited for the fetch
      // lock): the upstream has nothing newer to give yet, so asking again would only add load.
      const refreshedMeanwhile = () => {
        const cur = index.get(item.key);
        if (!cur) return undefined;
        if (opts.force) return cur.fetchedAt > item.fetchedAt ? cur : undefined;
        return started - cur.fetchedAt < 60_000 ? cur : undefined;
      };
      return service.fetchOnce(`refresh:${item.source}`, refreshedMeanwhile, () => fetchAgain(item));
    },
    refreshSoon(item) {
      if (d.mode === 'offline' || !d.upstream.owns(item.source)) return;
      const t = d.now().getTime();
      if (t - (lastTry.get(item.key) ?? 0) < 60_000) return;
      lastTry.set(item.key, t);
      service.refresh(item).catch((e) => d.logger.warn({ key: item.key, err: isConclaveError(e) ? e.message : String(e) }, 'collateral refresh failed; serving stale'));
    },
    async refreshDue(force) {
      const out: { key: string; ok: boolean; error?: string }[] = [];
      if (d.mode === 'offline') return out;
      const t = d.now().getTime();
      const due = [...index.values()].filter((i) => {
        if (!d.upstream.owns(i.source) || i.kind === 'pckcert' || i.kind === 'pckcerts' || i.kind === 'vcek') return false;
        if (force) return true;
        // A failed item waits 5 minutes before the schedule tries again.
        if (t - (errors.get(i.key)?.at ?? 0) < 300_000) return false;
        return i.nextUpdate !== null ? i.nextUpdate - t < refreshAhead : t - i.fetchedAt > refreshAhead;
      });
      // Versioned items are refreshed once per source URL (standard and early answers), not per evaluation number.
      const seen = new Set<string>();
      for (const i of due) {
        if (seen.has(i.source)) continue;
        seen.add(i.source);
        try {
          await service.refresh(i, { force });
          out.push({ key: i.key, ok: true });
        } catch (e) {
          out.push({ key: i.key, ok: false, error: isConclaveError(e) ? e.message : String(e) });
        }
      }
      if (out.length > 0) changed();
      return out;
    },
    lastError: (key) => errors.get(key),
    onChange: (listener) => void listeners.push(listener),
    async setPolicy(p) {
      await d.store.putSetting('baseline', p, d.now());
      await service.sync();
    },
  };
  return service;
}
