/**
 * The Intel-shaped doors to the collateral cache that PCCS has and PCS-only services lack, so that
 * Intel's own clients work unchanged (DCAP QuoteGeneration/pccs routes/index.js and pccs_server.js):
 * registration and the administrator's workflow (PCKIDRetrievalTool, PCCSAdminTool), the CRL-by-URI
 * route of QCNL's `pccs_api_version` 3.1, appraisal policies, and the PCS routes PCCSAdminTool's `fetch`
 * calls (`fmspcs`, `POST pckcert(s)` with a platform manifest). Each handler translates HTTP to a call
 * of the collateral domain (platforms.ts, platform-collateral.ts, appraisal-policy.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { appraisalPolicyId, parseAppraisalPolicy } from '../../collateral/appraisal-policy.js';
import type { CollateralItem, CollateralKind, PcsVersion, Tee } from '../../collateral/cache/item.js';
import { canonicalPcesvn } from '../../collateral/intel/pck.js';
import { readPlatformCollateral } from '../../collateral/platform-collateral.js';
import type { PlatformService, UpdateType } from '../../collateral/platforms.js';
import type { CollateralService } from '../../collateral/service.js';
import { fail, isConclaveError } from '../../core/errors.js';
import { derToPem } from '../../core/x509.js';
import type { AppContext } from '../context.js';
import { createPccsAuth } from './pccs-auth.js';
import { createRateLimiter } from '../rate-limit.js';
import { type Prepared, encodeChain, prepare } from './responses.js';
import { COLLATERAL } from '../../wire/collateral.js';
import type { RouteTypes } from '../../wire/schema.js';

const PCS = { family: 'pcs' as const };
const OK = 'Operation successful.';

export interface PccsRouteDeps {
  readonly svc: CollateralService;
  readonly platforms: PlatformService;
  serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<Prepared>): Promise<FastifyReply>;
  cached(kind: CollateralKind, key: string, fetch: () => Promise<CollateralItem>): Promise<CollateralItem>;
  clearMemo(): void;
  /** Runs `fn` on behalf of the caller: its fetches on a miss count against that client's budget (lookup.ts). */
  asClient<T>(client: string, fn: () => Promise<T>): Promise<T>;
  readonly mounts: readonly { prefix: string; tee: Tee; version: PcsVersion; thim: boolean }[];
}

function hexParam(v: unknown, pattern: RegExp, name: string): string {
  if (typeof v !== 'string' || !pattern.test(v)) throw fail('request.invalid', `${name} is missing or malformed`, { parameter: name });
  return v.toUpperCase();
}

/**
 * The CRL distribution points QCNL may name in `crl?uri=` (the Intel root CA's CDP and the PCK CRL URLs
 * of PCK certificates; Azure's mirrors of both), as PCCS accepts them (controllers/crlController.js).
 */
const ROOT_CRL_URI = /^https:\/\/([A-Za-z0-9-]*certificates\.trustedservices\.intel\.com|certprx\.adsdcsp\.com)\/IntelSGXRootCA\.[A-Za-z]{3}$/;
const PCK_CRL_URI = /^https:\/\/([A-Za-z0-9-]*\.?api\.trustedservices\.intel\.com|[A-Za-z0-9-]+\.az\.sgx(?:prod|np)\.adsdcsp\.com)\/sgx\/certification\/v[1-9][0-9]*\/pckcrl\?(.*)$/;

/** `?fmspc=` lists of PCCS: `[A,B]`, `A,B`, or empty for all. */
function fmspcList(v: string | undefined): string[] {
  const inner = (v ?? '').trim().replace(/^\[/, '').replace(/\]$/, '').trim();
  if (inner === '') return [];
  return inner.split(',').map((f) => hexParam(f.trim(), /^[0-9a-fA-F]{12}$/, 'fmspc'));
}

export function pccsRoutes(app: FastifyInstance, ctx: AppContext, d: PccsRouteDeps): void {
  const { svc, platforms } = d;
  const now = () => ctx.now().getTime();
  const authorize = createPccsAuth(ctx);
  // What the PCCS routes with a token check before their input (server/wire-input.ts).
  const asUser = { auth: (request: FastifyRequest) => authorize(request, 'user') };
  const asAdmin = { auth: (request: FastifyRequest) => authorize(request, 'admin') };
  // Registrations store a row and, in request mode, go upstream: a fleet's PCKIDRetrievalTool runs
  // register at a steady pace, a client flooding it gets 429 with Retry-After (#14 item 5).
  const registrations = createRateLimiter({ perSecond: 5, burst: 100 });
  const text = (reply: FastifyReply, body: string) => reply.code(200).type('text/plain; charset=utf-8').send(body);
  const failing = (item: CollateralItem) => svc.lastError(item.key) !== undefined;

  for (const { prefix, tee, version, thim } of d.mounts) {
    if (tee !== 'sgx') continue;
    const tags = [thim ? 'THIM' : 'Intel PCCS'];
    const guard = (request: FastifyRequest) => {
      if (thim && String(request.headers.metadata ?? '').toLowerCase() !== 'true') throw fail('request.invalid', 'THIM requires the header Metadata: true');
    };

    // QCNL `pccs_api_version` 3.1: the root CA CRL (and PCK CRLs) by distribution point, raw DER.
    app.get<RouteTypes<typeof COLLATERAL.crlByUri>>(`${prefix}/crl`, { config: { ...PCS, wire: COLLATERAL.crlByUri }, schema: { summary: 'CRL named by its distribution point (?uri=)', tags } }, (request, reply) => {
      guard(request);
      return d.serve(request, reply, async () => {
        const uri = request.query.uri;
        if (uri === undefined || uri.length > 2048) throw fail('request.invalid', 'uri is missing or too long', { parameter: 'uri' });
        if (ROOT_CRL_URI.test(uri)) {
          const item = await d.cached('rootcacrl', 'sgx/rootcacrl', async () => svc.ingest('rootcacrl', 'sgx/rootcacrl', false, null, await svc.upstream.intelRootCaCrl()));
          return prepare(item, {}, Buffer.from(item.body), 'application/pkix-crl', now(), failing(item));
        }
        const m = PCK_CRL_URI.exec(uri);
        const q = new URLSearchParams(m?.[2] ?? '');
        const ca = q.get('ca')?.toLowerCase();
        if (!m || (ca !== 'processor' && ca !== 'platform')) throw fail('request.invalid', 'uri is not an Intel SGX CRL distribution point', { parameter: 'uri' });
        const scope = `sgx/pckcrl/${ca}`;
        const item = await d.cached('pckcrl', scope, async () => svc.ingest('pckcrl', scope, false, null, await svc.upstream.intel('sgx', 'v4', 'pckcrl', { ca, encoding: 'der' })));
        // The distribution point's own encoding: DER when it asks for it, else PCS's default PEM.
        const der = q.get('encoding')?.toLowerCase() === 'der';
        return prepare(item, {}, der ? Buffer.from(item.body) : Buffer.from(derToPem(item.body, 'X509 CRL')), der ? 'application/pkix-crl' : 'application/x-pem-file', now(), failing(item));
      });
    });

    if (version === 'v4') {
      // PCS `fmspcs` (PCCSAdminTool fetch); answered from the upstream, else from the cached TCB infos.
      app.get<RouteTypes<typeof COLLATERAL.fmspcs>>(`${prefix}/fmspcs`, { config: { ...PCS, wire: COLLATERAL.fmspcs }, schema: { summary: 'FMSPCs known to PCS (?platform=all|client|E3|E5)', tags } }, (request, reply) => {
        guard(request);
        return d.serve(request, reply, async () => {
          const platform = request.query.platform;
          if (platform !== undefined && !/^(all|client|E3|E5)$/i.test(platform)) throw fail('request.invalid', 'platform must be all, client, E3 or E5', { parameter: 'platform' });
          const scope = `sgx/v4/fmspcs/${platform?.toLowerCase() ?? 'none'}`;
          let item: CollateralItem | undefined;
          try {
            // A miss goes through the lookup (per-client budget, negative caching); not cached and not fetchable is not_found.
            item = await d.cached('fmspcs', scope, async () => svc.ingest('fmspcs', scope, false, null, await svc.upstream.intel('sgx', 'v4', 'fmspcs', platform ? { platform } : {})));
          } catch (e) {
            if (!isConclaveError(e, 'collateral.not_found')) throw e;
          }
          if (item) return prepare(item, {}, Buffer.from(item.body), 'application/json', now(), false);
          const known = new Map<string, string | undefined>();
          for (const i of svc.items()) if (i.kind === 'fmspcs') for (const e of JSON.parse(Buffer.from(i.body).toString('utf8')) as { fmspc: string; platform?: string }[]) known.set(e.fmspc.toUpperCase(), e.platform);
          const list = [...new Set([...svc.items()].filter((i) => i.kind === 'tcb').map((i) => i.scope.split('/')[3]!))].sort();
          const body = list.map((fmspc) => (known.get(fmspc) ? { fmspc, platform: known.get(fmspc) } : { fmspc }));
          return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)), item: undefined, staleAt: null, stale: false };
        });
      });
    }

    if (thim) continue;

    // PCS `POST pckcert(s)`: a multi-package platform's manifest, passed through to the upstream.
    for (const many of [false, true]) {
      app.post(`${prefix}/${many ? 'pckcerts' : 'pckcert'}`, { config: { ...PCS, wire: (many ? COLLATERAL.pckCertsByManifest : COLLATERAL.pckCertByManifest) }, bodyLimit: 1 << 20, schema: { summary: `PCK certificate${many ? 's' : ''} by platform manifest`, tags } }, async (request, reply) => {
        const b = request.body as Record<string, unknown> | undefined;
        if (typeof b !== 'object' || b === null) throw fail('request.invalid', 'the body must be JSON {platformManifest, pceid[, cpusvn, pcesvn]}');
        const body = {
          platformManifest: hexParam(b.platformManifest, /^[0-9a-fA-F]{2,262144}$/, 'platformManifest'),
          pceid: hexParam(b.pceid, /^[0-9a-fA-F]{4}$/, 'pceid'),
          ...(many ? {} : { cpusvn: hexParam(b.cpusvn, /^[0-9a-fA-F]{32}$/, 'cpusvn'), pcesvn: canonicalPcesvn(String(b.pcesvn ?? '')) }),
        };
        const item = await d.asClient(request.ip, () => platforms.byManifest(version, many, body));
        const h: Record<string, string> = { 'SGX-PCK-Certificate-Issuer-Chain': encodeChain(item.meta.issuerChain ?? ''), 'SGX-FMSPC': item.meta.fmspc ?? '', 'SGX-PCK-Certificate-CA-Type': item.meta.caType ?? '' };
        if (!many) h['SGX-TCBm'] = item.meta.tcbm ?? '';
        return reply
          .code(200)
          .headers(h)
          .type(many ? 'application/json' : 'application/x-pem-file')
          .send(Buffer.from(item.body));
      });
    }

    // PCKIDRetrievalTool registration: 200 as PCCS answers (the tool treats anything else as failure).
    app.post<RouteTypes<typeof COLLATERAL.registerPlatform>>(`${prefix}/platforms`, { config: { ...PCS, ...asUser, wire: COLLATERAL.registerPlatform }, bodyLimit: 1 << 20, schema: { summary: 'PCCS platform registration (PCKIDRetrievalTool; user-token)', tags } }, async (request, reply) => {
      await authorize(request, 'user');
      registrations.take(request.ip, 'platform registrations');
      const update = (request.query.update ?? 'standard').toLowerCase();
      if (update !== 'standard' && update !== 'early' && update !== 'all') throw fail('request.invalid', 'update must be standard, early or all', { parameter: 'update' });
      const b = request.body as Record<string, unknown> | undefined;
      if (typeof b !== 'object' || b === null) throw fail('request.invalid', 'the body must be the PCCS registration JSON');
      const opt = (v: unknown, pattern: RegExp, name: string) => (v === undefined || v === null || v === '' ? undefined : hexParam(v, pattern, name));
      const manifest = opt(b.platform_manifest, /^[0-9a-fA-F]{2,262144}$/, 'platform_manifest');
      const reg = {
        qeId: hexParam(b.qe_id, /^[0-9a-fA-F]{1,260}$/, 'qe_id'),
        pceId: hexParam(b.pce_id, /^[0-9a-fA-F]{4}$/, 'pce_id'),
        cpuSvn: opt(b.cpu_svn, /^[0-9a-fA-F]{32}$/, 'cpu_svn'),
        pceSvn: b.pce_svn === undefined || b.pce_svn === '' ? undefined : canonicalPcesvn(String(b.pce_svn), 'pce_svn'),
        encPpid: opt(b.enc_ppid, /^[0-9a-fA-F]{768}$/, 'enc_ppid'),
        platformManifest: manifest,
      };
      // PCCS normalizeRegData: without a manifest, the raw TCB and the encrypted PPID are required.
      if (!manifest && (!reg.cpuSvn || !reg.pceSvn || !reg.encPpid)) throw fail('request.invalid', 'cpu_svn, pce_svn and enc_ppid are required without a platform_manifest', { parameter: 'enc_ppid' });
      await platforms.register(reg, update as UpdateType, version);
      d.clearMemo();
      return text(reply, OK);
    });

    // PCCSAdminTool `get`: the registration queue (drained, so a GET that changes state), or cached platforms by FMSPC.
    app.get<RouteTypes<typeof COLLATERAL.listPlatforms>>(`${prefix}/platforms`, { config: { ...PCS, ...asAdmin, changesState: true, wire: COLLATERAL.listPlatforms }, schema: { summary: 'PCCS registered or cached platforms (?source=reg|reg_na|[FMSPC,…]; admin-token)', tags } }, async (request, reply) => {
      await authorize(request, 'admin');
      const source = request.query.source ?? 'reg';
      let list: unknown[];
      if (source === 'reg' || source === 'reg_na') list = await platforms.takeQueued(source);
      else if (/^\[.*\]$/.test(source.trim())) list = await platforms.cachedPlatforms(fmspcList(source));
      else throw fail('request.invalid', 'source must be reg, reg_na or [FMSPC,…]', { parameter: 'source' });
      return reply.code(200).header('platform-count', String(list.length)).type('application/json').send(JSON.stringify(list));
    });

    // PCCSAdminTool `put`: the collateral of an air-gapped cache, verified item by item, stored at once.
    app.put<RouteTypes<typeof COLLATERAL.platformCollateral>>(`${prefix}/platformcollateral`, { config: { ...PCS, ...asAdmin, wire: COLLATERAL.platformCollateral }, bodyLimit: 64 << 20, schema: { summary: 'PCCS collateral upload (PCCSAdminTool put; admin-token)', tags } }, async (request, reply) => {
      await authorize(request, 'admin');
      const { items, platforms: regs } = readPlatformCollateral(request.body, version, ctx.now(), (f) => platforms.selectionLevels(f));
      // The same guard as upstream answers and bundles: each item is what it is filed as, none older than the cache.
      await svc.importItems(items);
      for (const r of regs) await svc.store.registerPlatform(r, ctx.now(), 'cached');
      await svc.sync();
      d.clearMemo();
      return text(reply, OK);
    });

    // PCCSAdminTool `refresh`: verification collateral, or (type=certs) the PCK certificates of platforms.
    const refresh = async (request: FastifyRequest<RouteTypes<typeof COLLATERAL.refresh>>, reply: FastifyReply) => {
      await authorize(request, 'admin');
      const q = request.query;
      if (q.type !== undefined && q.type !== 'certs') throw fail('request.invalid', 'type must be certs or absent', { parameter: 'type' });
      if (svc.mode === 'offline') throw fail('upstream.unavailable', 'an offline cache is refreshed by uploads (PUT platformcollateral), not from an upstream');
      const results = q.type === 'certs' ? await platforms.refreshCerts(fmspcList(q.fmspc)) : await svc.refreshDue(true);
      d.clearMemo();
      const failed = results.filter((r) => !r.ok);
      if (failed.length > 0) throw fail('upstream.unavailable', `refresh failed for ${failed.length} item(s): ${failed.map((f) => f.key).join(', ')}`, { failed: failed.map((f) => f.key) });
      return text(reply, OK);
    };
    app.get<RouteTypes<typeof COLLATERAL.refresh>>(`${prefix}/refresh`, { config: { ...PCS, ...asAdmin, changesState: true, wire: COLLATERAL.refresh }, schema: { summary: 'PCCS cache refresh (?type=certs&fmspc=…; admin-token)', tags } }, refresh);
    app.post<RouteTypes<typeof COLLATERAL.refresh>>(`${prefix}/refresh`, { config: { ...PCS, ...asAdmin, wire: COLLATERAL.refresh }, schema: { summary: 'PCCS cache refresh (?type=certs&fmspc=…; admin-token)', tags } }, refresh);

    // Appraisal policies (the appraisal flow of DCAP 1.21+): GET is QCNL's, PUT PCCSAdminTool's.
    app.get<RouteTypes<typeof COLLATERAL.getAppraisalPolicy>>(`${prefix}/appraisalpolicy`, { config: { ...PCS, wire: COLLATERAL.getAppraisalPolicy }, schema: { summary: 'Default appraisal policy of an FMSPC', tags } }, async (request, reply) => {
      const fmspc = hexParam(request.query.fmspc, /^[0-9a-fA-F]{12}$/, 'fmspc');
      const policies = (await svc.store.getSetting<{ id: string; policy: string; isDefault: boolean }[]>(`appraisalpolicy:${fmspc}`)) ?? [];
      const defaults = policies.filter((p) => p.isDefault);
      if (defaults.length === 0) throw fail('collateral.not_found', `no default appraisal policy for FMSPC ${fmspc}`, { fmspc });
      return reply.code(200).type('text/plain; charset=utf-8').send(defaults.map((p) => p.policy).join(','));
    });
    app.put<RouteTypes<typeof COLLATERAL.putAppraisalPolicy>>(`${prefix}/appraisalpolicy`, { config: { ...PCS, ...asAdmin, wire: COLLATERAL.putAppraisalPolicy }, schema: { summary: 'Store an appraisal policy for an FMSPC (admin-token)', tags } }, async (request, reply) => {
      await authorize(request, 'admin');
      const p = parseAppraisalPolicy(request.body);
      const id = appraisalPolicyId(p.policy);
      const name = `appraisalpolicy:${p.fmspc}`;
      const prior = (await svc.store.getSetting<{ id: string; type: number; policy: string; isDefault: boolean }[]>(name)) ?? [];
      // A new default replaces the FMSPC's previous default (PCCS appraisalPolicyDao). At most 64 are kept:
      // the oldest non-default ones go first.
      const next = [...prior.filter((x) => x.id !== id).map((x) => (p.isDefault ? { ...x, isDefault: false } : x)), { id, type: p.type, policy: p.policy, isDefault: p.isDefault }];
      while (next.length > 64) next.splice(next.findIndex((x) => !x.isDefault), 1);
      await svc.store.putSetting(name, next, ctx.now());
      return text(reply, id);
    });
  }
}
