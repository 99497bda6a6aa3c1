import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Gauge } from 'prom-client';
import { type BaselinePolicy, type EvaluationSelector, dryRunBaseline, meetsAmdMinimum, parseBaselinePolicy, selectorOf } from '../../collateral/baseline.js';
import { decodeBundle, encodeBundle } from '../../collateral/cache/bundle.js';
import { type CollateralItem, type CollateralKind, type PcsVersion, type Tee, identityScope, tcbScope } from '../../collateral/cache/item.js';
import { verifyCollateralItem } from '../../collateral/cache/verify.js';
import type { KdsTcb } from '../../collateral/amd/kds.js';
import { splitSignedResponse } from '../../evidence/dcap/signed-json.js';
import { type TcbInfo, parseTcbInfo } from '../../evidence/dcap/tcb-info.js';
import { AMD_PRODUCTS, type AmdProduct } from '../../evidence/snp/roots.js';
import { fail } from '../../core/errors.js';
import { derToPem } from '../../core/x509.js';
import { createCollateralStore } from '../../storage/collateral-store.js';
import { createCollateralUpstream } from '../../upstream/collateral-upstream.js';
import { createHttpClient } from '../../upstream/http.js';
import type { AppContext } from '../context.js';
import { type Prepared, crlBody, encodeChain, identityHeaders, prepare, tcbHeaders } from './responses.js';
import { type CollateralService, createCollateralService } from '../../collateral/service.js';
import { registerNvidiaCollateralRoutes } from './nvidia.js';
import { ENC_PPID_HEX, type PlatformRef, canonicalPcesvn, isRealPpid } from '../../collateral/intel/pck.js';
import { createPlatformService } from '../../collateral/platforms.js';
import { pcsRequestId } from '../wire-errors.js';
import { pccsRoutes } from './pccs.js';

/** Tunables tests and the benchmark may shrink; production uses the defaults. */
export interface CollateralPluginOptions {
  /** How often the store version is polled (replica invalidation). */
  readonly syncIntervalMs?: number;
  /** How often the refresh schedule runs. */
  readonly refreshIntervalMs?: number;
  readonly upstreamRetries?: number;
  readonly upstreamTimeoutMs?: number;
}

type Query = Record<string, string | undefined>;
const PCS = { family: 'pcs' as const };
const ADMIN = { family: 'conclave' as const };
const MEMO_LIMIT = 20_000;

const hex = (v: string | undefined, len: number | [number, number], name: string): string => {
  const [lo, hi] = typeof len === 'number' ? [len, len] : len;
  if (v === undefined || !/^[0-9a-fA-F]*$/.test(v) || v.length < lo || v.length > hi) throw fail('request.invalid', `${name} must be ${lo === hi ? lo : `${lo}–${hi}`} hex characters`, { parameter: name });
  return v.toUpperCase();
};

export { canonicalPcesvn };

/** THIM AMD `tcbm`: REPORTED_TCB as a u64 in hex (§3.5), byte 0 least significant. */
export function tcbFromTcbm(product: AmdProduct, tcbm: string): KdsTcb {
  const b = Buffer.from(hex(tcbm, 16, 'tcbm'), 'hex').reverse();
  return product === 'Turin'
    ? { fmc: b[0]!, bootloader: b[1]!, tee: b[2]!, snp: b[3]!, microcode: b[7]! }
    : { bootloader: b[0]!, tee: b[1]!, snp: b[6]!, microcode: b[7]! };
}

/**
 * The platform a PCK request names: QE ID (PCCS, QCNL) and/or encrypted PPID (PCS), with PCE ID. An
 * all-zero PPID, as QCNL sends at quote time, names nothing (pck.ts).
 */
function platformOf(q: Query): PlatformRef {
  const pceId = hex(q.pceid, 4, 'pceid');
  const qeId = q.qeid !== undefined ? hex(q.qeid, [1, 260], 'qeid') : undefined;
  const ppid = q.encrypted_ppid !== undefined && q.encrypted_ppid !== '' ? hex(q.encrypted_ppid, ENC_PPID_HEX, 'encrypted_ppid') : undefined;
  return { pceId, qeId, encPpid: isRealPpid(ppid) ? ppid : undefined };
}

function product(p: string): AmdProduct {
  const m = AMD_PRODUCTS.find((x) => x.toLowerCase() === p.toLowerCase());
  if (!m) throw fail('request.not_found', `unknown AMD product ${p}`, { product: p });
  return m;
}

export async function collateralPlugin(app: FastifyInstance, ctx: AppContext, opts: CollateralPluginOptions = {}): Promise<void> {
  const http = createHttpClient({ retries: opts.upstreamRetries ?? 3, timeoutMs: opts.upstreamTimeoutMs ?? 15_000 });
  const upstream = createCollateralUpstream({
    intel: ctx.config.upstreamIntel,
    intelApiKey: ctx.config.intelApiKey,
    amd: ctx.config.upstreamAmd,
    nvidiaRim: ctx.config.upstreamNvidiaRim,
    nvidiaOcsp: ctx.config.upstreamNvidiaOcsp,
    http,
  });
  const store = createCollateralStore(ctx.db);
  const svc: CollateralService = createCollateralService({ mode: ctx.config.collateralMode, store, upstream, now: ctx.now, logger: ctx.logger.child({ service: 'collateral' }) });
  const platforms = createPlatformService({ svc, now: ctx.now });
  await svc.sync();
  const memo = new Map<string, Prepared>();
  const now = () => ctx.now().getTime();

  const syncTimer = setInterval(() => {
    svc.sync().then(
      (changed) => changed && memo.clear(),
      () => undefined,
    );
  }, opts.syncIntervalMs ?? 1000);
  // The baseline's default depends on the date: forget prepared answers periodically.
  const clearTimer = setInterval(() => memo.clear(), 60_000);
  const refreshTimer = setInterval(() => {
    svc.refreshDue(false).then(
      (r) => r.length && memo.clear(),
      (e) => ctx.logger.warn({ err: e }, 'collateral refresh schedule failed'),
    );
  }, opts.refreshIntervalMs ?? 10 * 60_000);
  for (const t of [syncTimer, clearTimer, refreshTimer]) t.unref();
  app.addHook('onClose', async () => {
    clearInterval(syncTimer);
    clearInterval(clearTimer);
    clearInterval(refreshTimer);
    http.close();
  });
  // PCS and PCCS put a Request-ID on every answer, errors included (PCCS middleware/addRequestId.js).
  app.addHook('onRequest', async (request, reply) => {
    if (/^\/(sgx|tdx|vcek|vlek|metadata\/THIM)\//i.test(request.url)) reply.header('Request-ID', pcsRequestId(request));
  });
  ctx.readiness.set('collateral', async () => {
    await store.currentVersion();
  });

  new Gauge({
    name: 'conclave_collateral_age_seconds',
    help: 'Seconds since each cached collateral item was fetched',
    labelNames: ['key', 'kind'] as const,
    registers: [ctx.metrics],
    collect() {
      this.reset();
      for (const i of svc.items()) this.set({ key: i.key, kind: i.kind }, (now() - i.fetchedAt) / 1000);
    },
  });
  new Gauge({
    name: 'conclave_collateral_expiry_seconds',
    help: 'Seconds until each cached item passes its signed nextUpdate (negative: past it)',
    labelNames: ['key', 'kind'] as const,
    registers: [ctx.metrics],
    collect() {
      this.reset();
      for (const i of svc.items()) if (i.nextUpdate !== null) this.set({ key: i.key, kind: i.kind }, (i.nextUpdate - now()) / 1000);
    },
  });

  /** The hot path: one map lookup per cached GET; the DB and JSON are touched only on a miss. */
  async function serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<Prepared>): Promise<FastifyReply> {
    let p = memo.get(request.url);
    const t = now();
    if (!p || (p.staleAt !== null && !p.stale && t > p.staleAt)) {
      p = await build();
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(request.url, p);
    }
    if (p.item && p.staleAt !== null && t > p.staleAt) svc.refreshSoon(p.item);
    reply.code(p.status).headers(p.headers);
    return reply.send(p.body);
  }

  async function cached(kind: CollateralKind, key: string, fetch: () => Promise<CollateralItem>): Promise<CollateralItem> {
    const hit = svc.get(key);
    if (hit) return hit;
    if (!svc.mayFetch(kind)) throw fail('collateral.not_found', `${key} is not cached${ctx.config.collateralMode !== 'lazy' ? ` (mode ${ctx.config.collateralMode})` : ''}`, { key });
    return svc.fetchOnce(key, () => svc.get(key), fetch);
  }

  const failing = (item: CollateralItem) => svc.lastError(item.key) !== undefined;

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
        await svc.fetchOnce(`${scope}?${new URLSearchParams(q).toString()}`, () => svc.pick(scope, tee, fmspc, sel), async () =>
          svc.ingest(kind, scope, true, selector, await upstream.intel(tee, version, path, q)),
        );
      } catch (e) {
        error = e;
      }
    }
    // Without an upstream answer, the newest cached version stands in for `early`, and Intel's standard
    // one for a baseline number the upstream no longer has; an explicit number has no stand-in.
    item = svc.pick(scope, tee, fmspc, sel) ?? (sel.type === 'number' ? undefined : (svc.pick(scope, tee, fmspc, { type: 'standard' }) ?? undefined));
    if (sel.type === 'early') item = svc.pick(scope, tee, fmspc, sel) ?? newestOf(scope);
    if (!item) throw error ?? fail('collateral.not_found', `no ${kind} cached for ${scope}${sel.type === 'number' ? ` at evaluation number ${sel.number}` : ''}`, { scope });
    return item;
  }

  function newestOf(scope: string): CollateralItem | undefined {
    return svc.scopeItems(scope).reduce<CollateralItem | undefined>((a, b) => (b.evalNumber !== null && (!a || b.evalNumber > a.evalNumber!) ? b : a), undefined);
  }

  function requireMetadata(request: FastifyRequest): void {
    if (String(request.headers.metadata ?? '').toLowerCase() !== 'true') throw fail('request.invalid', 'THIM requires the header Metadata: true');
  }

  // ── Intel PCS v3/v4 (SGX, TDX) and the THIM host-local mirror of them ──────────────────────────
  const mounts: { prefix: string; tee: Tee; version: PcsVersion; thim: boolean }[] = [];
  for (const thim of [false, true]) {
    const p = thim ? '/metadata/THIM' : '';
    mounts.push({ prefix: `${p}/sgx/certification/v3`, tee: 'sgx', version: 'v3', thim }, { prefix: `${p}/sgx/certification/v4`, tee: 'sgx', version: 'v4', thim }, { prefix: `${p}/tdx/certification/v4`, tee: 'tdx', version: 'v4', thim });
  }
  for (const m of mounts) {
    const { prefix, tee, version, thim } = m;
    const tags = [thim ? 'THIM' : 'Intel PCS'];
    const guard = (request: FastifyRequest) => {
      if (thim) requireMetadata(request);
    };

    app.get(`${prefix}/tcb`, { config: PCS, schema: { summary: `${tee.toUpperCase()} TCB info (${version})`, tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query as Query;
        const fmspc = hex(q.fmspc, 12, 'fmspc');
        const sel = selectorOf(q);
        const item = await versioned('tcb', tee, version, tcbScope(tee, version, fmspc), fmspc, sel, 'tcb', { fmspc });
        return prepare(item, tcbHeaders(item, version), Buffer.from(item.body), 'application/json', now(), failing(item));
      });
    });

    const enclaves = tee === 'tdx' ? (['qe'] as const) : version === 'v4' ? (['qe', 'qve', 'qae'] as const) : (['qe', 'qve'] as const);
    for (const enclave of enclaves) {
      app.get(`${prefix}/${enclave}/identity`, { config: PCS, schema: { summary: `${enclave.toUpperCase()} identity (${tee}, ${version})`, tags } }, (request, reply) => {
        guard(request);
        return serve(request, reply, async () => {
          const sel = selectorOf(request.query as Query);
          const kind = `${enclave}_identity` as CollateralKind;
          const item = await versioned(kind, tee, version, identityScope(tee, version, enclave), undefined, sel, `${enclave}/identity`, {});
          return prepare(item, identityHeaders(item), Buffer.from(item.body), 'application/json', now(), failing(item));
        });
      });
    }

    if (version === 'v4') {
      app.get(`${prefix}/tcbevaluationdatanumbers`, { config: PCS, schema: { summary: 'TCB evaluation data numbers', tags } }, (request, reply) => {
        guard(request);
        return serve(request, reply, async () => {
          const scope = `${tee}/v4/tcbevaluationdatanumbers`;
          const item = await cached('tcb_eval_numbers', scope, async () => svc.ingest('tcb_eval_numbers', scope, false, null, await upstream.intel(tee, 'v4', 'tcbevaluationdatanumbers', {})));
          return prepare(item, { 'TCB-Evaluation-Data-Numbers-Issuer-Chain': encodeChain(item.meta.issuerChain ?? '') }, Buffer.from(item.body), 'application/json', now(), failing(item));
        });
      });
    }

    if (tee !== 'sgx') continue;

    app.get(`${prefix}/pckcrl`, { config: PCS, schema: { summary: 'PCK CRL (processor|platform)', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query as Query;
        const ca = q.ca?.toLowerCase();
        if (ca !== 'processor' && ca !== 'platform') throw fail('request.invalid', 'ca must be processor or platform', { parameter: 'ca' });
        const scope = `sgx/pckcrl/${ca}`;
        const item = await cached('pckcrl', scope, async () => svc.ingest('pckcrl', scope, false, null, await upstream.intel('sgx', 'v4', 'pckcrl', { ca, encoding: 'der' })));
        const { body, contentType } = crlBody(item.body, q.encoding);
        return prepare(item, { 'SGX-PCK-CRL-Issuer-Chain': encodeChain(item.meta.issuerChain ?? '') }, body, contentType, now(), failing(item));
      });
    });

    app.get(`${prefix}/rootcacrl`, { config: PCS, schema: { summary: 'Intel SGX Root CA CRL (hex of DER, as PCCS)', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query as Query;
        const scope = 'sgx/rootcacrl';
        const item = await cached('rootcacrl', scope, async () => svc.ingest('rootcacrl', scope, false, null, await upstream.intelRootCaCrl()));
        const { body } = crlBody(item.body, q.encoding);
        return prepare(item, {}, body, 'application/pkix-crl', now(), failing(item));
      });
    });

    app.get(`${prefix}/pckcert`, { config: PCS, schema: { summary: 'PCK certificate for a platform TCB', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query as Query;
        const item = await platforms.pckCert({ version, platform: platformOf(q), cpusvn: hex(q.cpusvn, 32, 'cpusvn'), pcesvn: canonicalPcesvn(q.pcesvn ?? '') });
        const chain = encodeChain(item.meta.issuerChain ?? '');
        const fields = { 'SGX-TCBm': item.meta.tcbm ?? '', 'SGX-FMSPC': item.meta.fmspc ?? '', 'SGX-PCK-Certificate-CA-Type': item.meta.caType ?? '' };
        if (thim) {
          // THIM answers the PCK certificate as JSON (azdcap build_cert_chain / parse_svn_values).
          const json = { pckCert: Buffer.from(item.body).toString('utf8'), 'sgx-Pck-Certificate-Issuer-Chain': chain, 'sgx-Tcbm': fields['SGX-TCBm'], 'sgx-Fmspc': fields['SGX-FMSPC'], 'sgx-Pck-Certificate-Ca-Type': fields['SGX-PCK-Certificate-CA-Type'], cacheMaxAge: '86400' };
          return prepare(item, {}, Buffer.from(JSON.stringify(json)), 'application/json', now(), false);
        }
        return prepare(item, { 'SGX-PCK-Certificate-Issuer-Chain': chain, ...fields }, Buffer.from(item.body), 'application/x-pem-file', now(), false);
      });
    });

    app.get(`${prefix}/pckcerts`, { config: PCS, schema: { summary: 'All PCK certificates of a platform', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const item = await platforms.pckCerts(version, platformOf(request.query as Query));
        return prepare(item, { 'SGX-PCK-Certificate-Issuer-Chain': encodeChain(item.meta.issuerChain ?? ''), 'SGX-FMSPC': item.meta.fmspc ?? '', 'SGX-PCK-Certificate-CA-Type': item.meta.caType ?? '' }, Buffer.from(item.body), 'application/json', now(), false);
      });
    });

  }

  pccsRoutes(app, ctx, { svc, platforms, serve, cached, clearMemo: () => memo.clear(), mounts });

  // ── AMD KDS-compatible routes ──────────────────────────────────────────────────────────────────
  const spl = (q: Query, name: string): number => {
    const v = q[name];
    if (v === undefined || !/^\d{1,3}$/.test(v) || Number(v) > 255) throw fail('request.invalid', `${name} must be a number from 0 to 255`, { parameter: name });
    return Number(v);
  };

  async function vcekItem(prod: AmdProduct, hwid: string, tcb: KdsTcb): Promise<CollateralItem> {
    if (!meetsAmdMinimum(svc.policy(), prod, tcb)) throw fail('collateral.below_baseline', `the requested TCB is below the minimum TCB configured for ${prod}`, { product: prod });
    const id = hex(hwid, prod === 'Turin' ? 16 : 128, 'hwid').toLowerCase();
    const spec = `${prod === 'Turin' ? `${tcb.fmc ?? 0}-` : ''}${tcb.bootloader}-${tcb.tee}-${tcb.snp}-${tcb.microcode}`;
    const scope = `amd/vcek/${prod}/${id}/${spec}`;
    const p2 = (n: number) => String(n).padStart(2, '0');
    const query = `${prod === 'Turin' ? `fmcSPL=${p2(tcb.fmc ?? 0)}&` : ''}blSPL=${p2(tcb.bootloader)}&teeSPL=${p2(tcb.tee)}&snpSPL=${p2(tcb.snp)}&ucodeSPL=${p2(tcb.microcode)}`;
    return cached('vcek', scope, async () => svc.ingest('vcek', scope, false, null, await upstream.amd(`/vcek/v1/${prod}/${id}?${query}`)));
  }

  async function chainItem(prod: AmdProduct, key: 'vcek' | 'vlek'): Promise<CollateralItem> {
    const kind: CollateralKind = key === 'vcek' ? 'vcek_chain' : 'vlek_chain';
    const scope = `amd/${kind}/${prod}`;
    return cached(kind, scope, async () => svc.ingest(kind, scope, false, null, await upstream.amd(`/${key}/v1/${prod}/cert_chain`)));
  }

  for (const key of ['vcek', 'vlek'] as const) {
    app.get(`/${key}/v1/:product/cert_chain`, { config: PCS, schema: { summary: `AMD ${key.toUpperCase()} chain (ASK/ASVK then ARK)`, tags: ['AMD KDS'] } }, (request, reply) =>
      serve(request, reply, async () => {
        const item = await chainItem(product((request.params as { product: string }).product), key);
        return prepare(item, {}, Buffer.from(item.body), 'application/x-pem-file', now(), false);
      }),
    );
  }
  // KDS publishes one CRL per key kind: the ARK revokes ASKs (VCEK) and ASVKs (VLEK).
  for (const key of ['vcek', 'vlek'] as const) {
    const kind: CollateralKind = key === 'vcek' ? 'vcek_crl' : 'vlek_crl';
    app.get(`/${key}/v1/:product/crl`, { config: PCS, schema: { summary: `AMD ${key.toUpperCase()} CRL of the product (DER)`, tags: ['AMD KDS'] } }, (request, reply) =>
      serve(request, reply, async () => {
        const prod = product((request.params as { product: string }).product);
        const scope = `amd/${kind}/${prod}`;
        const item = await cached(kind, scope, async () => svc.ingest(kind, scope, false, null, await upstream.amd(`/${key}/v1/${prod}/crl`)));
        return prepare(item, {}, Buffer.from(item.body), 'application/pkix-crl', now(), failing(item));
      }),
    );
  }
  // A wildcard, not `:hwid`: a Milan/Genoa hwid is 128 characters, above the router's parameter limit.
  app.get('/vcek/v1/:product/*', { config: PCS, schema: { summary: 'AMD VCEK for a chip and TCB (DER)', tags: ['AMD KDS'] } }, (request, reply) =>
    serve(request, reply, async () => {
      const { product: p, '*': hwid } = request.params as { product: string; '*': string };
      const prod = product(p);
      const q = request.query as Query;
      const tcb: KdsTcb = { bootloader: spl(q, 'blSPL'), tee: spl(q, 'teeSPL'), snp: spl(q, 'snpSPL'), microcode: spl(q, 'ucodeSPL'), ...(prod === 'Turin' ? { fmc: spl(q, 'fmcSPL') } : {}) };
      const item = await vcekItem(prod, hwid, tcb);
      return prepare(item, {}, Buffer.from(item.body), 'application/pkix-cert', now(), false);
    }),
  );

  app.get('/metadata/THIM/amd/certification', { config: PCS, schema: { summary: 'THIM AMD certification (host identity or ?product&chipId&tcbm)', tags: ['THIM'] } }, (request, reply) => {
    requireMetadata(request);
    return serve(request, reply, async () => {
      const q = request.query as Query;
      const host = (await store.getSetting<{ product: string; chipId: string; tcbm: string }>('amd_host')) ?? undefined;
      const id = q.chipId !== undefined ? { product: q.product ?? 'Milan', chipId: q.chipId, tcbm: q.tcbm ?? '' } : host;
      if (!id) throw fail('collateral.not_found', 'no AMD host identity is configured; pass product, chipId and tcbm');
      const prod = product(id.product);
      const tcbm = hex(id.tcbm, 16, 'tcbm');
      const chipId = hex(id.chipId, 128, 'chipId');
      const vcek = await vcekItem(prod, prod === 'Turin' ? chipId.slice(0, 16) : chipId, tcbFromTcbm(prod, tcbm));
      const chain = await chainItem(prod, 'vcek');
      const doc = { vcekCert: derToPem(vcek.body), tcbm, certificateChain: Buffer.from(chain.body).toString('utf8'), cacheControl: '86400' };
      return prepare(vcek, {}, Buffer.from(JSON.stringify(doc)), 'application/json', now(), false);
    });
  });

  registerNvidiaCollateralRoutes(app, { svc, serve, cached, failing, now });

  // ── Admin API (bearer token of the administrator) ──────────────────────────────────────────────
  async function admin(request: FastifyRequest): Promise<void> {
    const p = await ctx.auth.authenticate(request.headers.authorization, Math.floor(now() / 1000));
    if (!p.isAdmin) throw fail('auth.forbidden', 'the collateral admin API is for the administrator');
  }

  function describe(i: CollateralItem) {
    const t = now();
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
      nextRefresh: refreshAt !== null && upstream.owns(i.source) && ctx.config.collateralMode !== 'offline' ? new Date(Math.max(refreshAt, t)).toISOString() : null,
      stale: (i.nextUpdate !== null && t > i.nextUpdate) || err !== undefined,
      lastError: err ? { at: new Date(err.at).toISOString(), message: err.message } : undefined,
    };
  }

  app.get('/admin/collateral/status', { config: ADMIN, schema: { summary: 'Cached collateral: source, age, next refresh', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    await svc.sync();
    return { mode: ctx.config.collateralMode, upstreams: { intel: ctx.config.upstreamIntel ?? null, amd: ctx.config.upstreamAmd ?? null, nvidiaRim: ctx.config.upstreamNvidiaRim ?? null, nvidiaOcsp: ctx.config.upstreamNvidiaOcsp ?? null }, items: [...svc.items()].map(describe) };
  });

  app.post('/admin/collateral/refresh', { config: ADMIN, schema: { summary: 'Refresh cached collateral now', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const key = (request.query as Query).key;
    if (key !== undefined) {
      const item = svc.get(key);
      if (!item) throw fail('collateral.not_found', `${key} is not cached`, { key });
      await svc.refresh(item, { force: true });
      memo.clear();
      return { refreshed: [{ key, ok: true }] };
    }
    const r = await svc.refreshDue(true);
    memo.clear();
    return { refreshed: r };
  });

  /** The TCB info each platform sees under a policy (cached items only; a dry run never fetches). */
  function tcbInfoUnder(policy: BaselinePolicy) {
    return (p: { tee: 'sgx' | 'tdx'; fmspc: string }): TcbInfo | undefined => {
      const item = svc.pick(tcbScope(p.tee, 'v4', p.fmspc), p.tee, p.fmspc, { type: 'baseline' }, policy);
      return item ? parseTcbInfo(splitSignedResponse(item.body, 'tcbInfo').signed) : undefined;
    };
  }

  function baselineView(policy: BaselinePolicy) {
    const scopes = new Map<string, CollateralItem[]>();
    for (const i of svc.items()) if (i.evalNumber !== null) scopes.set(i.scope, [...(scopes.get(i.scope) ?? []), i]);
    return [...scopes.entries()].map(([scope, list]) => {
      const [tee, , what, fmspc] = scope.split('/');
      const served = svc.pick(scope, tee!, what === 'tcb' ? fmspc : undefined, { type: 'baseline' }, policy);
      return { scope, available: list.map((i) => i.evalNumber).sort((a, b) => a! - b!), served: served?.evalNumber ?? null };
    });
  }

  app.get('/admin/collateral/baseline', { config: ADMIN, schema: { summary: 'Current baseline policy and what it serves', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    await svc.sync();
    return { policy: svc.policy(), scopes: baselineView(svc.policy()) };
  });

  app.put('/admin/collateral/baseline', { config: ADMIN, schema: { summary: 'Set the baseline policy', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const policy = parseBaselinePolicy(request.body);
    await svc.setPolicy(policy);
    memo.clear();
    return { policy, scopes: baselineView(policy) };
  });

  app.post('/admin/collateral/baseline/dry-run', { config: ADMIN, schema: { summary: 'Which recently seen platforms change status under a candidate baseline', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const candidate = parseBaselinePolicy(request.body);
    const days = Number((request.query as Query).days ?? 90);
    const platforms = await store.platforms(new Date(now() - days * 86_400_000));
    const rows = dryRunBaseline(platforms, tcbInfoUnder(svc.policy()), tcbInfoUnder(candidate));
    return {
      current: { policy: svc.policy(), scopes: baselineView(svc.policy()) },
      candidate: { policy: candidate, scopes: baselineView(candidate) },
      platforms: rows.map((r) => ({ ...r.platform, lastSeen: r.platform.lastSeen?.toISOString() })).map((p, n) => ({ ...p, current: rows[n]!.current, candidate: rows[n]!.candidate, changed: rows[n]!.changed })),
      changed: rows.filter((r) => r.changed).length,
    };
  });

  app.put('/admin/collateral/amd/host', { config: ADMIN, schema: { summary: 'Set the AMD host identity THIM answers for', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const b = (request.body ?? {}) as Record<string, string | undefined>;
    const id = { product: product(b.product ?? '').toString(), chipId: hex(b.chipId, 128, 'chipId'), tcbm: hex(b.tcbm, 16, 'tcbm') };
    await store.putSetting('amd_host', id, ctx.now());
    await svc.sync();
    memo.clear();
    return id;
  });

  app.get('/admin/collateral/bundle', { config: ADMIN, schema: { summary: 'Export every cached item as an offline bundle', tags: ['Collateral admin'] } }, async (request, reply) => {
    await admin(request);
    await svc.sync();
    reply.header('content-type', 'application/json');
    return reply.send(encodeBundle([...svc.items()], ctx.now()));
  });

  app.post('/admin/collateral/bundle', { config: ADMIN, bodyLimit: 256 << 20, schema: { summary: 'Import an offline bundle (all items verified, one transaction)', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const body = request.body;
    const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body);
    const items = decodeBundle(text);
    for (const i of items) verifyCollateralItem({ ...i, version: 0 });
    await store.put(items);
    await svc.sync();
    memo.clear();
    return { imported: items.length };
  });
}
