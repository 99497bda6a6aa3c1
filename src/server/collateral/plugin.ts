import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Gauge } from 'prom-client';
import { parseBaselinePolicy, selectorOf } from '../../collateral/baseline.js';
import type { CollateralItem, PcsVersion, Tee } from '../../collateral/cache/item.js';
import type { KdsTcb } from '../../collateral/amd/kds.js';
import { ENC_PPID_HEX, type PlatformRef, canonicalPcesvn, isRealPpid } from '../../collateral/intel/pck.js';
import { hexParameter, tcbFromTcbm } from '../../collateral/lookup.js';
import { AMD_PRODUCTS, type AmdProduct } from '../../evidence/snp/roots.js';
import { fail } from '../../core/errors.js';
import { derToPem } from '../../core/x509.js';
import type { AppContext } from '../context.js';
import { pcsRequestId } from '../wire-errors.js';
import { registerNvidiaCollateralRoutes } from './nvidia.js';
import { pccsRoutes } from './pccs.js';
import { type Prepared, crlBody, encodeChain, identityHeaders, prepare, tcbHeaders } from './responses.js';

export { canonicalPcesvn, tcbFromTcbm };

type Query = Record<string, string | undefined>;
const PCS = { family: 'pcs' as const };
const ADMIN = { family: 'conclave' as const };
const MEMO_LIMIT = 20_000;
/** The baseline's default depends on the date: a prepared answer is rebuilt after this long. */
const MEMO_MAX_AGE_MS = 60_000;

const hex = hexParameter;

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

export async function collateralPlugin(app: FastifyInstance, ctx: AppContext): Promise<void> {
  if (!ctx.services.collateral) throw new Error('collateral plugin registered without a collateral service');
  const { service: svc, lookup, admin: ops, platforms } = ctx.services.collateral;
  const memo = new Map<string, Prepared & { builtAt: number }>();
  svc.onChange(() => memo.clear());
  const now = () => ctx.now().getTime();

  // PCS and PCCS put a Request-ID on every answer, errors included (PCCS middleware/addRequestId.js).
  app.addHook('onRequest', async (request, reply) => {
    if (/^\/(sgx|tdx|vcek|vlek|metadata\/THIM)\//i.test(request.url)) reply.header('Request-ID', pcsRequestId(request));
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
    if (!p || (p.staleAt !== null && !p.stale && t > p.staleAt) || t - p.builtAt > MEMO_MAX_AGE_MS) {
      p = { ...(await lookup.asClient(request.ip, build)), builtAt: t };
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(request.url, p);
    }
    if (p.item && p.staleAt !== null && t > p.staleAt) svc.refreshSoon(p.item);
    reply.code(p.status).headers(p.headers);
    return reply.send(p.body);
  }

  const cached = lookup.cached;
  const failing = (item: CollateralItem) => lookup.failing(item);

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
        const item = await lookup.tcbInfo(tee, version, fmspc, sel);
        return prepare(item, tcbHeaders(item, version), Buffer.from(item.body), 'application/json', now(), failing(item));
      });
    });

    const enclaves = tee === 'tdx' ? (['qe'] as const) : version === 'v4' ? (['qe', 'qve', 'qae'] as const) : (['qe', 'qve'] as const);
    for (const enclave of enclaves) {
      app.get(`${prefix}/${enclave}/identity`, { config: PCS, schema: { summary: `${enclave.toUpperCase()} identity (${tee}, ${version})`, tags } }, (request, reply) => {
        guard(request);
        return serve(request, reply, async () => {
          const sel = selectorOf(request.query as Query);
          const item = await lookup.enclaveIdentity(tee, version, enclave, sel);
          return prepare(item, identityHeaders(item), Buffer.from(item.body), 'application/json', now(), failing(item));
        });
      });
    }

    if (version === 'v4') {
      app.get(`${prefix}/tcbevaluationdatanumbers`, { config: PCS, schema: { summary: 'TCB evaluation data numbers', tags } }, (request, reply) => {
        guard(request);
        return serve(request, reply, async () => {
          const item = await lookup.tcbEvaluationNumbers(tee);
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
        const item = await lookup.pckCrl(ca);
        const { body, contentType } = crlBody(item.body, q.encoding);
        return prepare(item, { 'SGX-PCK-CRL-Issuer-Chain': encodeChain(item.meta.issuerChain ?? '') }, body, contentType, now(), failing(item));
      });
    });

    app.get(`${prefix}/rootcacrl`, { config: PCS, schema: { summary: 'Intel SGX Root CA CRL (hex of DER, as PCCS)', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query as Query;
        const item = await lookup.rootCaCrl();
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

  for (const key of ['vcek', 'vlek'] as const) {
    app.get(`/${key}/v1/:product/cert_chain`, { config: PCS, schema: { summary: `AMD ${key.toUpperCase()} chain (ASK/ASVK then ARK)`, tags: ['AMD KDS'] } }, (request, reply) =>
      serve(request, reply, async () => {
        const item = await lookup.certChain(product((request.params as { product: string }).product), key);
        return prepare(item, {}, Buffer.from(item.body), 'application/x-pem-file', now(), false);
      }),
    );
  }
  // KDS publishes one CRL per key kind: the ARK revokes ASKs (VCEK) and ASVKs (VLEK).
  for (const key of ['vcek', 'vlek'] as const) {
    app.get(`/${key}/v1/:product/crl`, { config: PCS, schema: { summary: `AMD ${key.toUpperCase()} CRL of the product (DER)`, tags: ['AMD KDS'] } }, (request, reply) =>
      serve(request, reply, async () => {
        const item = await lookup.amdCrl(product((request.params as { product: string }).product), key);
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
      const item = await lookup.vcek(prod, hwid, tcb);
      return prepare(item, {}, Buffer.from(item.body), 'application/pkix-cert', now(), false);
    }),
  );

  app.get('/metadata/THIM/amd/certification', { config: PCS, schema: { summary: 'THIM AMD certification (host identity or ?product&chipId&tcbm)', tags: ['THIM'] } }, (request, reply) => {
    requireMetadata(request);
    return serve(request, reply, async () => {
      const q = request.query as Query;
      const host = (await ops.amdHost()) ?? undefined;
      const id = q.chipId !== undefined ? { product: q.product ?? 'Milan', chipId: q.chipId, tcbm: q.tcbm ?? '' } : host;
      if (!id) throw fail('collateral.not_found', 'no AMD host identity is configured; pass product, chipId and tcbm');
      const prod = product(id.product);
      const tcbm = hex(id.tcbm, 16, 'tcbm');
      const chipId = hex(id.chipId, 128, 'chipId');
      const vcek = await lookup.vcek(prod, prod === 'Turin' ? chipId.slice(0, 16) : chipId, tcbFromTcbm(prod, tcbm));
      const chain = await lookup.certChain(prod, 'vcek');
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

  app.get('/admin/collateral/status', { config: ADMIN, schema: { summary: 'Cached collateral: source, age, next refresh', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    return { mode: ctx.config.collateralMode, upstreams: { intel: ctx.config.upstreamIntel ?? null, amd: ctx.config.upstreamAmd ?? null, nvidiaRim: ctx.config.upstreamNvidiaRim ?? null, nvidiaOcsp: ctx.config.upstreamNvidiaOcsp ?? null }, items: await ops.status() };
  });

  app.post('/admin/collateral/refresh', { config: ADMIN, schema: { summary: 'Refresh cached collateral now', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const refreshed = await ops.refresh((request.query as Query).key);
    memo.clear();
    return { refreshed };
  });

  app.get('/admin/collateral/baseline', { config: ADMIN, schema: { summary: 'Current baseline policy and what it serves', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    return ops.baseline();
  });

  app.put('/admin/collateral/baseline', { config: ADMIN, schema: { summary: 'Set the baseline policy', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const result = await ops.setBaseline(parseBaselinePolicy(request.body));
    memo.clear();
    return result;
  });

  app.post('/admin/collateral/baseline/dry-run', { config: ADMIN, schema: { summary: 'Which recently seen platforms change status under a candidate baseline', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const candidate = parseBaselinePolicy(request.body);
    return ops.dryRun(candidate, Number((request.query as Query).days ?? 90));
  });

  app.put('/admin/collateral/amd/host', { config: ADMIN, schema: { summary: 'Set the AMD host identity THIM answers for', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const b = (request.body ?? {}) as Record<string, string | undefined>;
    const id = { product: product(b.product ?? '').toString(), chipId: hex(b.chipId, 128, 'chipId'), tcbm: hex(b.tcbm, 16, 'tcbm') };
    await ops.setAmdHost(id);
    memo.clear();
    return id;
  });

  app.get('/admin/collateral/bundle', { config: ADMIN, schema: { summary: 'Export every cached item as an offline bundle', tags: ['Collateral admin'] } }, async (request, reply) => {
    await admin(request);
    const bundle = await ops.exportBundle();
    reply.header('content-type', 'application/json');
    return reply.send(bundle);
  });

  app.post('/admin/collateral/bundle', { config: ADMIN, bodyLimit: 256 << 20, schema: { summary: 'Import an offline bundle (all items verified, one transaction)', tags: ['Collateral admin'] } }, async (request) => {
    await admin(request);
    const body = request.body;
    const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : JSON.stringify(body);
    const imported = await ops.importBundle(text);
    memo.clear();
    return { imported };
  });
}
