/**
 * Intel PCS v3/v4 routes (SGX, TDX) and the THIM host-local mirror of them, with the exact headers the
 * PCS sends (issuer chains URL-encoded, TCBm, FMSPC, CA type), so QCNL, dcap-qvl and the Azure DCAP
 * client read them unchanged.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { selectorOf } from '../../collateral/baseline.js';
import type { PcsVersion, Tee } from '../../collateral/cache/item.js';
import { ENC_PPID_HEX, type PlatformRef, canonicalPcesvn, isRealPpid } from '../../collateral/intel/pck.js';
import { hexParameter as hex } from '../../collateral/lookup.js';
import { fail } from '../../core/errors.js';
import { crlBody, encodeChain, identityHeaders, prepare, tcbHeaders } from './responses.js';
import { type CollateralRoutes, PCS, type Query, requireMetadata } from './routes.js';
import { COLLATERAL } from '../../wire/collateral.js';
import type { RouteTypes } from '../../wire/schema.js';

export interface PcsMount {
  readonly prefix: string;
  readonly tee: Tee;
  readonly version: PcsVersion;
  readonly thim: boolean;
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

/** Registers the PCS and THIM Intel routes; returns where they are mounted (the PCCS routes join them). */
export function registerPcsRoutes(app: FastifyInstance, k: CollateralRoutes): PcsMount[] {
  const { lookup, platforms, serve, failing, now } = k;
  // ── Intel PCS v3/v4 (SGX, TDX) and the THIM host-local mirror of them ──────────────────────────
  const mounts: PcsMount[] = [];
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

    app.get<RouteTypes<typeof COLLATERAL.tcbInfo>>(`${prefix}/tcb`, { config: { ...PCS, wire: COLLATERAL.tcbInfo }, schema: { summary: `${tee.toUpperCase()} TCB info (${version})`, tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query;
        const fmspc = hex(q.fmspc, 12, 'fmspc');
        const sel = selectorOf(q);
        const item = await lookup.tcbInfo(tee, version, fmspc, sel);
        return prepare(item, tcbHeaders(item, version), Buffer.from(item.body), 'application/json', now(), failing(item));
      });
    });

    const enclaves = tee === 'tdx' ? (['qe'] as const) : version === 'v4' ? (['qe', 'qve', 'qae'] as const) : (['qe', 'qve'] as const);
    for (const enclave of enclaves) {
      app.get<RouteTypes<typeof COLLATERAL.enclaveIdentity>>(`${prefix}/${enclave}/identity`, { config: { ...PCS, wire: COLLATERAL.enclaveIdentity }, schema: { summary: `${enclave.toUpperCase()} identity (${tee}, ${version})`, tags } }, (request, reply) => {
        guard(request);
        return serve(request, reply, async () => {
          const sel = selectorOf(request.query);
          const item = await lookup.enclaveIdentity(tee, version, enclave, sel);
          return prepare(item, identityHeaders(item), Buffer.from(item.body), 'application/json', now(), failing(item));
        });
      });
    }

    if (version === 'v4') {
      app.get<RouteTypes<typeof COLLATERAL.tcbEvaluationDataNumbers>>(`${prefix}/tcbevaluationdatanumbers`, { config: { ...PCS, wire: COLLATERAL.tcbEvaluationDataNumbers }, schema: { summary: 'TCB evaluation data numbers', tags } }, (request, reply) => {
        guard(request);
        return serve(request, reply, async () => {
          const item = await lookup.tcbEvaluationNumbers(tee);
          return prepare(item, { 'TCB-Evaluation-Data-Numbers-Issuer-Chain': encodeChain(item.meta.issuerChain ?? '') }, Buffer.from(item.body), 'application/json', now(), failing(item));
        });
      });
    }

    if (tee !== 'sgx') continue;

    app.get<RouteTypes<typeof COLLATERAL.pckCrl>>(`${prefix}/pckcrl`, { config: { ...PCS, wire: COLLATERAL.pckCrl }, schema: { summary: 'PCK CRL (processor|platform)', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query;
        const ca = q.ca?.toLowerCase();
        if (ca !== 'processor' && ca !== 'platform') throw fail('request.invalid', 'ca must be processor or platform', { parameter: 'ca' });
        const item = await lookup.pckCrl(ca);
        const { body, contentType } = crlBody(item.body, q.encoding);
        return prepare(item, { 'SGX-PCK-CRL-Issuer-Chain': encodeChain(item.meta.issuerChain ?? '') }, body, contentType, now(), failing(item));
      });
    });

    app.get<RouteTypes<typeof COLLATERAL.rootCaCrl>>(`${prefix}/rootcacrl`, { config: { ...PCS, wire: COLLATERAL.rootCaCrl }, schema: { summary: 'Intel SGX Root CA CRL (hex of DER, as PCCS)', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query;
        const item = await lookup.rootCaCrl();
        const { body } = crlBody(item.body, q.encoding);
        return prepare(item, {}, body, 'application/pkix-crl', now(), failing(item));
      });
    });

    app.get<RouteTypes<typeof COLLATERAL.pckCert>>(`${prefix}/pckcert`, { config: { ...PCS, wire: COLLATERAL.pckCert }, schema: { summary: 'PCK certificate for a platform TCB', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const q = request.query;
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

    app.get<RouteTypes<typeof COLLATERAL.pckCerts>>(`${prefix}/pckcerts`, { config: { ...PCS, wire: COLLATERAL.pckCerts }, schema: { summary: 'All PCK certificates of a platform', tags } }, (request, reply) => {
      guard(request);
      return serve(request, reply, async () => {
        const item = await platforms.pckCerts(version, platformOf(request.query));
        return prepare(item, { 'SGX-PCK-Certificate-Issuer-Chain': encodeChain(item.meta.issuerChain ?? ''), 'SGX-FMSPC': item.meta.fmspc ?? '', 'SGX-PCK-Certificate-CA-Type': item.meta.caType ?? '' }, Buffer.from(item.body), 'application/json', now(), false);
      });
    });

  }

  return mounts;
}
