/**
 * The PCCS side of the cache: platform registrations and the PCK certificates of each platform, in the
 * three PCCS fill modes (DCAP QuoteGeneration/pccs README "Caching Fill Mode"):
 *
 * - lazy: a PCK certificate missing from the cache is fetched when asked for, using the PPID or platform
 *   manifest the platform registered with (or its QE ID, where the upstream is a PCCS-like service);
 * - request: registration fetches the certificate and the verification collateral of its FMSPC; runtime
 *   requests are answered from the cache only;
 * - offline: registrations queue for an administrator (PCCSAdminTool `get`), whose upload
 *   (`PUT /platformcollateral`, see platform-collateral.ts) fills the cache.
 *
 * Certificates are kept per platform (pck.ts). A platform's full set (`pckcerts`, from PCS or an upload)
 * answers any raw TCB through PCK certificate selection.
 */
import { createHash } from 'node:crypto';
import { fail, isConclaveError } from '../core/errors.js';
import { splitSignedResponse } from '../evidence/dcap/signed-json.js';
import { parseTcbInfo } from '../evidence/dcap/tcb-info.js';
import { type CollateralItem, type CollateralKind, type PcsVersion, identityScope, tcbScope } from './cache/item.js';
import { type PckCertEntry, type PlatformRef, type SelectionLevel, isRealPpid, parsePckCerts, pckCertScope, pckCertsScope, selectPckCert } from './intel/pck.js';
import type { Registration, RegistrationState, StoredRegistration, UpstreamAnswer } from './ports.js';
import type { CollateralService } from './service.js';

/** PCCS `?update=` of POST /platforms: which TCB info and identities registration prefetches. */
export type UpdateType = 'standard' | 'early' | 'all';

export interface PckCertRequest {
  readonly version: PcsVersion;
  readonly platform: PlatformRef;
  /** 32 upper-case hex characters. */
  readonly cpusvn: string;
  /** Little-endian, 4 upper-case hex characters. */
  readonly pcesvn: string;
}

/** A platform as PCCS lists it (GET /platforms, PCCSAdminTool's platform_list.json). */
export interface PccsPlatform {
  readonly qe_id: string;
  readonly pce_id: string;
  readonly cpu_svn: string;
  readonly pce_svn: string;
  readonly enc_ppid: string;
  readonly platform_manifest: string;
}

export interface PlatformService {
  /** The PCK certificate of a platform at a raw TCB; fetched in lazy mode, else from the cache. */
  pckCert(q: PckCertRequest): Promise<CollateralItem>;
  /** The whole certificate set of a platform (PCS `pckcerts`). */
  pckCerts(version: PcsVersion, platform: PlatformRef): Promise<CollateralItem>;
  /** PCS `POST pckcert(s)` with a platform manifest, passed through to the upstream and verified. */
  byManifest(version: PcsVersion, many: boolean, body: { platformManifest: string; pceid: string; cpusvn?: string; pcesvn?: string }): Promise<CollateralItem>;
  /** PCCS `POST /platforms`. */
  register(reg: Registration, update: UpdateType, version: PcsVersion): Promise<void>;
  /** PCCS `GET /platforms?source=reg|reg_na`: the queue, drained. */
  takeQueued(source: 'reg' | 'reg_na'): Promise<PccsPlatform[]>;
  /** PCCS `GET /platforms?source=[FMSPC,…]`: platforms with cached certificates (all for an empty list). */
  cachedPlatforms(fmspcs: readonly string[]): Promise<PccsPlatform[]>;
  /** PCCS `refresh?type=certs[&fmspc=…]`: fetches the certificates of cached platforms again. */
  refreshCerts(fmspcs: readonly string[]): Promise<{ key: string; ok: boolean; error?: string }[]>;
  /** TCB levels of the cached SGX TCB info of an FMSPC (PCK selection order), empty when none is cached. */
  selectionLevels(fmspc: string): SelectionLevel[];
}

export interface PlatformDeps {
  readonly svc: CollateralService;
  readonly now: () => Date;
  /**
   * Fetches on a miss of an unauthenticated request (GET pckcert(s), POST pckcert(s) by manifest): the
   * lookup's per-client miss budget and negative caching (lookup.ts `miss`). Without it, only coalesced.
   */
  readonly miss?: (key: string, fresh: () => CollateralItem | undefined, fetch: () => Promise<CollateralItem>) => Promise<CollateralItem>;
}

const PCK_ITEM = /^sgx\/pckcert\/([0-9A-F]{4})\/qe:([0-9A-F]+)(?:\/ppid:[0-9A-F]+)?\/([0-9A-F]{32})\/([0-9A-F]{4})$/;

export function createPlatformService(d: PlatformDeps): PlatformService {
  const { svc } = d;
  const upstream = svc.upstream;
  const store = svc.store;
  const miss = d.miss ?? ((key: string, fresh: () => CollateralItem | undefined, fetch: () => Promise<CollateralItem>) => svc.fetchOnce(key, fresh, fetch));

  function selectionLevels(fmspc: string): SelectionLevel[] {
    for (const version of ['v4', 'v3'] as const) {
      const scope = tcbScope('sgx', version, fmspc);
      const item = svc.pick(scope, 'sgx', fmspc, { type: 'early' }) ?? svc.pick(scope, 'sgx', fmspc, { type: 'standard' });
      if (!item) continue;
      try {
        return parseTcbInfo(splitSignedResponse(item.body, 'tcbInfo').signed).tcbLevels.map((l) => ({ components: l.sgxtcbcomponents, pcesvn: l.pcesvn }));
      } catch {
        return [];
      }
    }
    return [];
  }

  /**
   * The certificate of `q` out of a cached set. Not stored: a caller could otherwise grow the store with
   * every raw TCB it cares to ask for; the routes memoise the prepared answer instead.
   */
  function fromSet(set: CollateralItem, q: PckCertRequest, scope: string): CollateralItem | undefined {
    const entries: PckCertEntry[] = parsePckCerts(JSON.parse(Buffer.from(set.body).toString('utf8')));
    const i = selectPckCert({ cpusvn: q.cpusvn, pcesvn: Buffer.from(q.pcesvn, 'hex').readUInt16LE(0) }, entries, set.meta.fmspc ? selectionLevels(set.meta.fmspc) : []);
    if (i === undefined) return undefined;
    const e = entries[i]!;
    return { ...set, key: scope, kind: 'pckcert', scope, meta: { ...set.meta, contentType: 'application/x-pem-file', tcbm: e.tcbm }, body: new Uint8Array(Buffer.from(e.cert!)), issueDate: null, nextUpdate: null };
  }

  async function seen(item: CollateralItem): Promise<void> {
    if (item.meta.fmspc && item.meta.tcbm?.length === 36) {
      const tcbm = Buffer.from(item.meta.tcbm, 'hex');
      await store.recordPlatformSeen({ tee: 'sgx', fmspc: item.meta.fmspc.toUpperCase(), cpusvn: tcbm.subarray(0, 16).toString('hex'), pcesvn: tcbm.readUInt16LE(16) }, 'registration', d.now());
    }
  }

  /**
   * How to ask the upstream for a platform's certificate (`pckcert`, at `tcb`) or certificate set
   * (`pckcerts`), or undefined when nothing identifies the platform to it. The PPID of the request wins;
   * else the platform manifest or PPID the platform registered with; else, where the upstream knows
   * platforms by QE ID (not Intel PCS), the QE ID. A zero PPID is never sent. Decided before a fetch, so
   * that a platform not yet registered is not remembered as a failed fetch.
   */
  function platformRequest(
    what: 'pckcert' | 'pckcerts',
    version: PcsVersion,
    platform: PlatformRef,
    reg: Registration | undefined,
    tcb: { readonly cpusvn: string; readonly pcesvn: string } | undefined,
  ): (() => Promise<UpstreamAnswer>) | undefined {
    const at: Record<string, string> = tcb ? { cpusvn: tcb.cpusvn, pcesvn: tcb.pcesvn } : {};
    const base: Record<string, string> = { ...at, pceid: platform.pceId };
    if (!upstream.intelIsPcs && platform.qeId) base.qeid = platform.qeId;
    const asked = platform.encPpid;
    if (asked) return () => upstream.intel('sgx', version, what, { ...base, encrypted_ppid: asked });
    const manifest = reg?.platformManifest;
    if (manifest) return () => upstream.intelPost('sgx', version, what, { platformManifest: manifest, ...at, pceid: platform.pceId });
    const ppid = reg?.encPpid;
    if (isRealPpid(ppid)) return () => upstream.intel('sgx', version, what, { ...base, encrypted_ppid: ppid });
    if (!upstream.intelIsPcs && platform.qeId) return () => upstream.intel('sgx', version, what, base);
    return undefined;
  }

  function pckCertRequest(q: PckCertRequest, reg: Registration | undefined): (() => Promise<UpstreamAnswer>) | undefined {
    return platformRequest('pckcert', q.version, q.platform, reg, q);
  }

  async function fetchPckCert(q: PckCertRequest, reg: Registration | undefined, scope: string): Promise<CollateralItem> {
    const ask = pckCertRequest(q, reg);
    if (!ask) throw unidentified(q.platform);
    const item = await svc.ingest('pckcert', scope, false, null, await ask());
    await seen(item);
    return item;
  }

  function unidentified(platform: PlatformRef) {
    return fail('collateral.not_found', 'no PPID or platform manifest is known for this platform; register it first (POST /platforms)', { pceid: platform.pceId });
  }

  async function registrationOf(p: PlatformRef): Promise<StoredRegistration | undefined> {
    return p.qeId ? store.registration(p.qeId, p.pceId) : undefined;
  }

  async function pckCert(q: PckCertRequest): Promise<CollateralItem> {
    const { platform } = q;
    const exact = pckCertScope(platform, q.cpusvn, q.pcesvn);
    // What an authenticated registration or an administrator's upload filed under the QE ID answers a
    // request that also carries a PPID (PCCS looks platforms up by QE ID and PCE ID alone).
    const byQe: PlatformRef | undefined = platform.qeId && platform.encPpid ? { pceId: platform.pceId, qeId: platform.qeId } : undefined;
    const refs = byQe ? [platform, byQe] : [platform];
    for (const p of refs) {
      const hit = svc.get(pckCertScope(p, q.cpusvn, q.pcesvn));
      if (hit) return hit;
    }
    for (const p of refs) {
      const set = svc.get(pckCertsScope(p));
      if (!set) continue;
      const picked = fromSet(set, q, pckCertScope(p, q.cpusvn, q.pcesvn));
      if (picked) return picked;
    }
    const reg = await registrationOf(platform);
    if (svc.mayFetch('pckcert')) {
      if (!pckCertRequest(q, reg)) throw unidentified(platform);
      return miss(exact, () => svc.get(exact), () => fetchPckCert(q, reg, exact));
    }
    const known = reg !== undefined || refs.some((p) => svc.get(pckCertsScope(p)) !== undefined);
    if (!known && svc.mode !== 'lazy') throw fail('collateral.platform_unknown', `the platform is not registered (mode ${svc.mode})`, { pceid: platform.pceId });
    throw fail('collateral.not_found', `no PCK certificate is cached for this platform at this TCB${svc.mode !== 'lazy' ? ` (mode ${svc.mode})` : ''}`, { pceid: platform.pceId });
  }

  async function pckCerts(version: PcsVersion, platform: PlatformRef): Promise<CollateralItem> {
    const refs = platform.qeId && platform.encPpid ? [platform, { pceId: platform.pceId, qeId: platform.qeId }] : [platform];
    for (const p of refs) {
      const hit = svc.get(pckCertsScope(p));
      if (hit) return hit;
    }
    const scope = pckCertsScope(platform);
    if (!svc.mayFetch('pckcerts')) throw fail('collateral.not_found', `no PCK certificate set is cached for this platform${svc.mode !== 'lazy' ? ` (mode ${svc.mode})` : ''}`, { pceid: platform.pceId });
    const reg = await registrationOf(platform);
    const ask = platformRequest('pckcerts', version, platform, reg, undefined);
    if (!ask) throw unidentified(platform);
    return miss(scope, () => svc.get(scope), async () => svc.ingest('pckcerts', scope, false, null, await ask()));
  }

  async function byManifest(version: PcsVersion, many: boolean, body: { platformManifest: string; pceid: string; cpusvn?: string; pcesvn?: string }): Promise<CollateralItem> {
    // Keyed by the manifest's hash: the same manifest answers from the cache, a new one goes upstream.
    const id = createHash('sha256').update(body.platformManifest).digest('hex').toUpperCase();
    const scope = many ? `sgx/pckcerts/${body.pceid}/manifest:${id}` : `sgx/pckcert/${body.pceid}/manifest:${id}/${body.cpusvn}/${body.pcesvn}`;
    const hit = svc.get(scope);
    if (hit) return hit;
    if (!svc.mayFetch(many ? 'pckcerts' : 'pckcert')) throw fail('collateral.not_found', `nothing is cached for this platform manifest${svc.mode !== 'lazy' ? ` (mode ${svc.mode})` : ''}`, { pceid: body.pceid });
    return miss(scope, () => svc.get(scope), async () => svc.ingest(many ? 'pckcerts' : 'pckcert', scope, false, null, await upstream.intelPost('sgx', version, many ? 'pckcerts' : 'pckcert', body)));
  }

  /** What PCCS REQ mode caches on registration besides the certificate (qvCollateralLogic). */
  async function prefetchFor(cert: CollateralItem, update: UpdateType, version: PcsVersion): Promise<void> {
    const fmspc = cert.meta.fmspc?.toUpperCase();
    const selectors = update === 'all' ? (['standard', 'early'] as const) : ([update] as const);
    const versions = [...new Set<PcsVersion>(['v4', version])];
    const one = async (kind: CollateralKind, tee: 'sgx' | 'tdx', v: PcsVersion, scope: string, path: string, q: Record<string, string>, optional = false) => {
      try {
        return await svc.ingest(kind, scope, true, q.update ?? 'standard', await upstream.intel(tee, v, path, q));
      } catch (e) {
        // TDX collateral exists only for TDX-capable FMSPCs.
        if (!(optional && isConclaveError(e, 'collateral.not_found'))) throw e;
        return undefined;
      }
    };
    for (const v of versions) {
      for (const sel of selectors) {
        const u: Record<string, string> = v === 'v4' ? { update: sel } : {};
        if (v === 'v3' && sel === 'early') continue;
        if (fmspc) await one('tcb', 'sgx', v, tcbScope('sgx', v, fmspc), 'tcb', { fmspc, ...u });
        if (fmspc && v === 'v4') await one('tcb', 'tdx', v, tcbScope('tdx', v, fmspc), 'tcb', { fmspc, ...u }, true);
        await one('qe_identity', 'sgx', v, identityScope('sgx', v, 'qe'), 'qe/identity', u);
        await one('qve_identity', 'sgx', v, identityScope('sgx', v, 'qve'), 'qve/identity', u);
        if (v === 'v4') await one('qe_identity', 'tdx', v, identityScope('tdx', v, 'qe'), 'qe/identity', u, true);
      }
    }
    const ca = cert.meta.caType?.toLowerCase() === 'platform' ? 'platform' : 'processor';
    await svc.ingest('pckcrl', `sgx/pckcrl/${ca}`, false, null, await upstream.intel('sgx', 'v4', 'pckcrl', { ca, encoding: 'der' }));
    await svc.ingest('rootcacrl', 'sgx/rootcacrl', false, null, await upstream.intelRootCaCrl());
  }

  async function register(reg: Registration, update: UpdateType, version: PcsVersion): Promise<void> {
    const at = d.now();
    if (svc.mode === 'offline') {
      // Queued for the administrator unless the upload already covered this platform at this TCB.
      const cached = reg.cpuSvn && reg.pceSvn && svc.get(pckCertScope({ pceId: reg.pceId, qeId: reg.qeId }, reg.cpuSvn, reg.pceSvn));
      await store.registerPlatform(reg, at, cached ? 'cached' : 'new');
      return;
    }
    if (svc.mode === 'lazy' || !upstream.hasIntel) {
      await store.registerPlatform(reg, at, 'registered');
      return;
    }
    // Request mode: fetch now; runtime requests are answered from the cache only. A registration the
    // cache already answers (the same manifest as the platform's last one) is not fetched again, and
    // concurrent ones share one fetch: a repeated registration costs no upstream request (#14 item 5).
    const previous = await store.registration(reg.qeId, reg.pceId);
    await store.registerPlatform(reg, at, 'registered');
    const platform: PlatformRef = { pceId: reg.pceId, qeId: reg.qeId };
    try {
      let cert: CollateralItem | undefined;
      if (reg.platformManifest) {
        const manifest = reg.platformManifest;
        const scope = pckCertsScope(platform);
        const same = previous !== undefined && previous.state !== 'failed' && previous.platformManifest?.toUpperCase() === manifest.toUpperCase();
        const held = () => (same ? svc.get(scope) : undefined);
        const set = held() ?? (await svc.fetchOnce(scope, held, async () => svc.ingest('pckcerts', scope, false, null, await upstream.intelPost('sgx', version, 'pckcerts', { platformManifest: manifest, pceid: reg.pceId }))));
        const entries = parsePckCerts(JSON.parse(Buffer.from(set.body).toString('utf8')));
        if (entries.some((e) => e.cert === undefined)) await store.registerPlatform(reg, at, 'not_available');
        cert = set;
      } else if (reg.cpuSvn && reg.pceSvn) {
        const q: PckCertRequest = { version, platform, cpusvn: reg.cpuSvn, pcesvn: reg.pceSvn };
        const scope = pckCertScope(platform, reg.cpuSvn, reg.pceSvn);
        cert = svc.get(scope) ?? (await svc.fetchOnce(scope, () => svc.get(scope), () => fetchPckCert(q, reg, scope)));
      }
      if (cert) await prefetchFor(cert, update, version);
      if (cert && (await store.registration(reg.qeId, reg.pceId))?.state !== 'not_available') await store.setRegistrationState(reg.qeId, reg.pceId, 'cached');
    } catch (e) {
      await store.setRegistrationState(reg.qeId, reg.pceId, isConclaveError(e, 'collateral.not_found') ? 'not_available' : 'failed');
      throw e;
    }
  }

  const asPccs = (r: Registration): PccsPlatform => ({ qe_id: r.qeId, pce_id: r.pceId, cpu_svn: r.cpuSvn ?? '', pce_svn: r.pceSvn ?? '', enc_ppid: r.encPpid ?? '', platform_manifest: r.platformManifest ?? '' });

  async function takeQueued(source: 'reg' | 'reg_na'): Promise<PccsPlatform[]> {
    const state: RegistrationState = source === 'reg' ? 'new' : 'not_available';
    return (await store.takeRegistrations(state, 'delivered')).map(asPccs);
  }

  async function cachedPlatforms(fmspcs: readonly string[]): Promise<PccsPlatform[]> {
    const want = new Set(fmspcs.map((f) => f.toUpperCase()));
    const regs = new Map((await store.registrations()).map((r) => [`${r.qeId}/${r.pceId}`, r]));
    const out = new Map<string, PccsPlatform>();
    for (const i of svc.items()) {
      const m = i.kind === 'pckcert' ? PCK_ITEM.exec(i.scope) : null;
      if (!m) continue;
      if (want.size > 0 && !want.has(i.meta.fmspc?.toUpperCase() ?? '')) continue;
      const [, pceId, qeId, cpuSvn, pceSvn] = m as unknown as [string, string, string, string, string];
      const r = regs.get(`${qeId}/${pceId}`);
      out.set(`${qeId}/${pceId}/${cpuSvn}/${pceSvn}`, { qe_id: qeId, pce_id: pceId, cpu_svn: cpuSvn, pce_svn: pceSvn, enc_ppid: r?.encPpid ?? '', platform_manifest: r?.platformManifest ?? '' });
    }
    return [...out.values()];
  }

  async function refreshCerts(fmspcs: readonly string[]): Promise<{ key: string; ok: boolean; error?: string }[]> {
    if (svc.mode === 'offline' || !upstream.hasIntel) throw fail('upstream.unavailable', `certificates cannot be refreshed in mode ${svc.mode}`);
    const want = new Set(fmspcs.map((f) => f.toUpperCase()));
    const out: { key: string; ok: boolean; error?: string }[] = [];
    for (const item of [...svc.items()]) {
      const m = item.kind === 'pckcert' ? PCK_ITEM.exec(item.scope) : null;
      if (!m || !upstream.owns(item.source)) continue;
      if (want.size > 0 && !want.has(item.meta.fmspc?.toUpperCase() ?? '')) continue;
      const [, pceId, qeId, cpusvn, pcesvn] = m as unknown as [string, string, string, string, string];
      const ppid = /\/ppid:([0-9A-F]+)\//.exec(item.scope)?.[1];
      const platform: PlatformRef = { pceId, qeId, encPpid: ppid };
      try {
        await fetchPckCert({ version: 'v4', platform, cpusvn, pcesvn }, await registrationOf(platform), item.scope);
        out.push({ key: item.key, ok: true });
      } catch (e) {
        out.push({ key: item.key, ok: false, error: isConclaveError(e) ? e.message : String(e) });
      }
    }
    return out;
  }

  return { pckCert, pckCerts, byManifest, register, takeQueued, cachedPlatforms, refreshCerts, selectionLevels };
}
