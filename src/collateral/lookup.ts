/**
 * Finding collateral for a request: the cached item, else (where the mode allows) one upstream fetch
 * shared by concurrent callers and replicas. The PCS/THIM/KDS routes answer with these items, and the
 * attestation service reads them in process (collateral/sources.ts) when both services run together.
 * PCK certificates and platform registration are collateral/platforms.ts.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { fail, isConclaveError } from '../core/errors.js';
import { decodeTcb, kdsTcbQuery, tcbLayoutOf } from '../evidence/snp/report.js';
import type { AmdProduct } from '../evidence/snp/roots.js';
import type { KdsTcb } from './amd/kds.js';
import { type EvaluationSelector, meetsAmdMinimum } from './baseline.js';
import { type CollateralItem, type CollateralKind, type PcsVersion, type Tee, identityScope, tcbScope } from './cache/item.js';
import type { CollateralService } from './service.js';
import { createFetchBudget } from './budget.js';

export type IntelEnclave = 'qe' | 'qve' | 'qae';

/** A hex request parameter of `len` characters (or a range), upper-cased; `request.invalid` otherwise. */
export function hexParameter(v: string | undefined, len: number | [number, number], name: string): string {
  const [lo, hi] = typeof len === 'number' ? [len, len] : len;
  if (v === undefined || !/^[0-9a-fA-F]*$/.test(v) || v.length < lo || v.length > hi) throw fail('request.invalid', `${name} must be ${lo === hi ? lo : `${lo}–${hi}`} hex characters`, { parameter: name });
  return v.toUpperCase();
}

/** THIM AMD `tcbm`: REPORTED_TCB as a u64 in hex (§3.5), byte 0 least significant. */
export function tcbFromTcbm(product: AmdProduct, tcbm: string): KdsTcb {
  const { bootloader, tee, snp, microcode, fmc } = decodeTcb(Buffer.from(hexParameter(tcbm, 16, 'tcbm'), 'hex').reverse(), tcbLayoutOf(product));
  return { bootloader, tee, snp, microcode, ...(fmc !== undefined ? { fmc } : {}) };
}

export interface CollateralLookup {
  readonly service: CollateralService;
  /** The cached item `key`, else (where the mode allows) one fetch shared by concurrent callers and replicas. */
  cached(kind: CollateralKind, key: string, fetch: () => Promise<CollateralItem>): Promise<CollateralItem>;
  tcbInfo(tee: Tee, version: PcsVersion, fmspc: string, sel: EvaluationSelector): Promise<CollateralItem>;
  enclaveIdentity(tee: Tee, version: PcsVersion, enclave: IntelEnclave, sel: EvaluationSelector): Promise<CollateralItem>;
  tcbEvaluationNumbers(tee: Tee): Promise<CollateralItem>;
  pckCrl(ca: 'processor' | 'platform'): Promise<CollateralItem>;
  rootCaCrl(): Promise<CollateralItem>;
  /** `hwid`: the chip id in hex (the first 8 bytes of it for Turin). */
  vcek(product: AmdProduct, hwid: string, tcb: KdsTcb): Promise<CollateralItem>;
  certChain(product: AmdProduct, key: 'vcek' | 'vlek'): Promise<CollateralItem>;
  /** The CRL the ARK signs over ASKs (`vcek`) or ASVKs (`vlek`). */
  amdCrl(product: AmdProduct, key: 'vcek' | 'vlek'): Promise<CollateralItem>;
  /**
   * One upstream fetch on a miss of `key` (shared by concurrent callers and replicas), under the miss
   * budget of the client {@link asClient} runs for and negative caching: for fetches on a miss that are
   * not {@link cached} items (PCK certificates, collateral/platforms.ts).
   */
  miss(key: string, fresh: () => CollateralItem | undefined, fetch: () => Promise<CollateralItem>): Promise<CollateralItem>;
  /** Whether the last refresh of the item failed (its answers carry a staleness warning). */
  failing(item: CollateralItem): boolean;
  /**
   * Runs `fn` on behalf of `client` (a route passes the caller's address): upstream fetches on a miss
   * count against that client's budget. Outside it (the attestation service in process) only the total counts.
   */
  asClient<T>(client: string, fn: () => Promise<T>): Promise<T>;
}

export interface CollateralLookupOptions {
  /** Concurrent upstream fetches on a miss, per client and in all (the upstream pool holds 16 connections). */
  readonly missBudget?: { readonly perClient: number; readonly total: number };
}

export function createCollateralLookup(svc: CollateralService, opts: CollateralLookupOptions = {}): CollateralLookup {
  const { upstream } = svc;
  const client = new AsyncLocalStorage<string>();
  /**
   * asClient calls in flight. An enabled AsyncLocalStorage hooks every promise the process makes (Node 20),
   * releases and attestations included, so the client is followed only while such a call runs: disabled when
   * the last one ends, enabled again by the next one's run().
   */
  let asClients = 0;
  const limits = opts.missBudget ?? { perClient: 4, total: 8 };
  const perClient = createFetchBudget(limits);
  const inProcess = createFetchBudget({ perClient: limits.total, total: limits.total });

  /**
   * Upstream fetches on a miss run under a budget per client and in all, so anonymous misses cannot take
   * every upstream connection (refreshes of cached items do not count against it); a failed miss is
   * remembered briefly (negative caching, in the service), so repeating it does not reach the upstream.
   */
  function onMiss(key: string, fresh: () => CollateralItem | undefined, fetch: () => Promise<CollateralItem>): Promise<CollateralItem> {
    const who = client.getStore();
    const budgeted = who === undefined ? () => inProcess.run('in-process', fetch) : () => perClient.run(who, fetch);
    return svc.fetchOnce(key, fresh, budgeted, { negative: true });
  }

  async function cached(kind: CollateralKind, key: string, fetch: () => Promise<CollateralItem>): Promise<CollateralItem> {
    const hit = svc.get(key);
    if (hit) return hit;
    if (!svc.mayFetch(kind)) throw fail('collateral.not_found', `${key} is not cached${svc.mode !== 'lazy' ? ` (mode ${svc.mode})` : ''}`, { key });
    try {
      return await onMiss(key, () => svc.get(key), fetch);
    } catch (e) {
      // Another replica (or an import) stored a newer copy while this fetch ran, and the store refused the
      // older answer over it (service.ts ingest): the caller is answered with the stored copy.
      const stored = isConclaveError(e, 'upstream.collateral_rollback') ? svc.get(key) : undefined;
      if (stored) return stored;
      throw e;
    }
  }

  function newestOf(scope: string): CollateralItem | undefined {
    return svc.scopeItems(scope).reduce<CollateralItem | undefined>((a, b) => (b.evalNumber !== null && (!a || b.evalNumber > a.evalNumber!) ? b : a), undefined);
  }

  async function versioned(kind: CollateralKind, tee: Tee, version: PcsVersion, scope: string, fmspc: string | undefined, sel: EvaluationSelector, path: string, query: Record<string, string>): Promise<CollateralItem> {
    let item = svc.pick(scope, tee, fmspc, sel);
    if (item) return item;
    let error: unknown;
    if (svc.mayFetch(kind)) {
      const q: Record<string, string> = { ...query };
      if (sel.type === 'number') q.tcbEvaluationDataNumber = String(sel.number);
      else if (version === 'v4') q.update = sel.type === 'early' ? 'early' : 'standard';
      const selector = sel.type === 'number' ? null : sel.type === 'early' ? 'early' : 'standard';
      try {
        // One fetch per URL across concurrent misses and replicas; a replica that waited finds the item stored.
        await onMiss(`${scope}?${new URLSearchParams(q).toString()}`, () => svc.pick(scope, tee, fmspc, sel), async () =>
          svc.ingest(kind, scope, true, selector, await upstream.intel(tee, version, path, q)),
        );
      } catch (e) {
        error = e;
      }
    }
    // Without an upstream answer, the newest cached version stands in for `early`, Intel's standard one for a
    // baseline number the upstream no longer has, and Intel's early one for a standard one it cannot give;
    // an explicit number has no stand-in.
    item =
      svc.pick(scope, tee, fmspc, sel) ??
      (sel.type === 'number' ? undefined : (svc.pick(scope, tee, fmspc, { type: 'standard' }) ?? svc.pick(scope, tee, fmspc, { type: 'early' }) ?? undefined));
    if (sel.type === 'early') item = svc.pick(scope, tee, fmspc, sel) ?? newestOf(scope);
    if (!item) throw error ?? fail('collateral.not_found', `no ${kind} cached for ${scope}${sel.type === 'number' ? ` at evaluation number ${sel.number}` : ''}`, { scope });
    return item;
  }

  return {
    service: svc,
    async asClient(who, fn) {
      asClients++;
      try {
        return await client.run(who, fn);
      } finally {
        if (--asClients === 0) client.disable();
      }
    },
    cached,
    miss: onMiss,
    tcbInfo: (tee, version, fmspc, sel) => versioned('tcb', tee, version, tcbScope(tee, version, fmspc), fmspc, sel, 'tcb', { fmspc }),
    enclaveIdentity: (tee, version, enclave, sel) => versioned(`${enclave}_identity` as CollateralKind, tee, version, identityScope(tee, version, enclave), undefined, sel, `${enclave}/identity`, {}),
    tcbEvaluationNumbers(tee) {
      const scope = `${tee}/v4/tcbevaluationdatanumbers`;
      return cached('tcb_eval_numbers', scope, async () => svc.ingest('tcb_eval_numbers', scope, false, null, await upstream.intel(tee, 'v4', 'tcbevaluationdatanumbers', {})));
    },
    pckCrl(ca) {
      const scope = `sgx/pckcrl/${ca}`;
      return cached('pckcrl', scope, async () => svc.ingest('pckcrl', scope, false, null, await upstream.intel('sgx', 'v4', 'pckcrl', { ca, encoding: 'der' })));
    },
    rootCaCrl() {
      const scope = 'sgx/rootcacrl';
      return cached('rootcacrl', scope, async () => svc.ingest('rootcacrl', scope, false, null, await upstream.intelRootCaCrl()));
    },
    async vcek(prod, hwid, tcb) {
      if (!meetsAmdMinimum(svc.policy(), prod, tcb)) throw fail('collateral.below_baseline', `the requested TCB is below the minimum TCB configured for ${prod}`, { product: prod });
      const id = hexParameter(hwid, prod === 'Turin' ? 16 : 128, 'hwid').toLowerCase();
      const spec = `${prod === 'Turin' ? `${tcb.fmc ?? 0}-` : ''}${tcb.bootloader}-${tcb.tee}-${tcb.snp}-${tcb.microcode}`;
      const scope = `amd/vcek/${prod}/${id}/${spec}`;
      const query = kdsTcbQuery(tcb, tcbLayoutOf(prod));
      return cached('vcek', scope, async () => svc.ingest('vcek', scope, false, null, await upstream.amd(`/vcek/v1/${prod}/${id}?${query}`)));
    },
    certChain(prod, key) {
      const kind: CollateralKind = key === 'vcek' ? 'vcek_chain' : 'vlek_chain';
      const scope = `amd/${kind}/${prod}`;
      return cached(kind, scope, async () => svc.ingest(kind, scope, false, null, await upstream.amd(`/${key}/v1/${prod}/cert_chain`)));
    },
    amdCrl(prod, key) {
      const kind: CollateralKind = key === 'vcek' ? 'vcek_crl' : 'vlek_crl';
      const scope = `amd/${kind}/${prod}`;
      return cached(kind, scope, async () => svc.ingest(kind, scope, false, null, await upstream.amd(`/${key}/v1/${prod}/crl`)));
    },
    failing: (item) => svc.lastError(item.key) !== undefined,
  };
}
