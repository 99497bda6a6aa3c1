/**
 * AMD KDS-compatible routes (VCEK/VLEK chains, CRLs, VCEKs by chip and TCB) and THIM's AMD certification
 * document, so snpguest, go-sev-guest and the Azure CVM tools fetch from the cache unchanged.
 */
import type { FastifyInstance } from 'fastify';
import type { KdsTcb } from '../../collateral/amd/kds.js';
import { hexParameter as hex, tcbFromTcbm } from '../../collateral/lookup.js';
import { fail } from '../../core/errors.js';
import { derToPem } from '../../core/x509.js';
import { AMD_PRODUCTS, type AmdProduct } from '../../evidence/snp/roots.js';
import { prepare } from './responses.js';
import { type CollateralRoutes, PCS, type Query, requireMetadata } from './routes.js';
import { COLLATERAL } from '../../wire/collateral.js';
import type { RouteTypes } from '../../wire/schema.js';

/** The AMD product a route names, spelled as KDS spells it (any case in the URL). */
export function product(p: string): AmdProduct {
  const m = AMD_PRODUCTS.find((x) => x.toLowerCase() === p.toLowerCase());
  if (!m) throw fail('request.not_found', `unknown AMD product ${p}`, { product: p });
  return m;
}

export function registerKdsRoutes(app: FastifyInstance, k: CollateralRoutes): void {
  const { lookup, ops, serve, failing, now } = k;
  // ── AMD KDS-compatible routes ──────────────────────────────────────────────────────────────────
  const spl = (q: Query, name: string): number => {
    const v = q[name];
    if (v === undefined || !/^\d{1,3}$/.test(v) || Number(v) > 255) throw fail('request.invalid', `${name} must be a number from 0 to 255`, { parameter: name });
    return Number(v);
  };

  for (const key of ['vcek', 'vlek'] as const) {
    app.get<RouteTypes<typeof COLLATERAL.amdCertChain>>(`/${key}/v1/:product/cert_chain`, { config: { ...PCS, wire: COLLATERAL.amdCertChain }, schema: { summary: `AMD ${key.toUpperCase()} chain (ASK/ASVK then ARK)`, tags: ['AMD KDS'] } }, (request, reply) =>
      serve(request, reply, async () => {
        const item = await lookup.certChain(product((request.params as { product: string }).product), key);
        return prepare(item, {}, Buffer.from(item.body), 'application/x-pem-file', now(), false);
      }),
    );
  }
  // KDS publishes one CRL per key kind: the ARK revokes ASKs (VCEK) and ASVKs (VLEK).
  for (const key of ['vcek', 'vlek'] as const) {
    app.get<RouteTypes<typeof COLLATERAL.amdCrl>>(`/${key}/v1/:product/crl`, { config: { ...PCS, wire: COLLATERAL.amdCrl }, schema: { summary: `AMD ${key.toUpperCase()} CRL of the product (DER)`, tags: ['AMD KDS'] } }, (request, reply) =>
      serve(request, reply, async () => {
        const item = await lookup.amdCrl(product((request.params as { product: string }).product), key);
        return prepare(item, {}, Buffer.from(item.body), 'application/pkix-crl', now(), failing(item));
      }),
    );
  }
  // A wildcard, not `:hwid`: a Milan/Genoa hwid is 128 characters, above the router's parameter limit.
  app.get<RouteTypes<typeof COLLATERAL.vcek>>('/vcek/v1/:product/*', { config: { ...PCS, wire: COLLATERAL.vcek }, schema: { summary: 'AMD VCEK for a chip and TCB (DER)', tags: ['AMD KDS'] } }, (request, reply) =>
    serve(request, reply, async () => {
      const { product: p, '*': hwid } = request.params as { product: string; '*': string };
      const prod = product(p);
      const q = request.query;
      const tcb: KdsTcb = { bootloader: spl(q, 'blSPL'), tee: spl(q, 'teeSPL'), snp: spl(q, 'snpSPL'), microcode: spl(q, 'ucodeSPL'), ...(prod === 'Turin' ? { fmc: spl(q, 'fmcSPL') } : {}) };
      const item = await lookup.vcek(prod, hwid, tcb);
      return prepare(item, {}, Buffer.from(item.body), 'application/pkix-cert', now(), false);
    }),
  );

  app.get<RouteTypes<typeof COLLATERAL.thimAmd>>('/metadata/THIM/amd/certification', { config: { ...PCS, wire: COLLATERAL.thimAmd }, schema: { summary: 'THIM AMD certification (host identity or ?product&chipId&tcbm)', tags: ['THIM'] } }, (request, reply) => {
    requireMetadata(request);
    return serve(request, reply, async () => {
      const q = request.query;
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

}
