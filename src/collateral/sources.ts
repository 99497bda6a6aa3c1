/**
 * The collateral a verifier needs, read straight from the cache when the attestation service runs in
 * the same process: the same items, selection and fetch-on-miss as the PCS and KDS routes answer with,
 * without an HTTPS call to ourselves. Failures read as they would over HTTP: an item the cache cannot
 * find (a 404 over HTTP) is `collateral.not_found`; any other failure is `upstream.unavailable`.
 */
import { pemToDer } from '../core/x509.js';
import { type ConclaveError, fail, isConclaveError } from '../core/errors.js';
import { collateralFromPcsResponses, type QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { AmdProduct } from '../evidence/snp/roots.js';
import { buildOcspRequest, parseOcspRequest, parseOcspResponse } from '../core/ocsp.js';
import type { Certificate } from '../core/x509.js';
import type { KdsTcb } from './amd/kds.js';
import { checkRimId, fetchOcsp, fetchRim, ocspScope, rimScope } from './nvidia.js';
import type { CollateralItem } from './cache/item.js';
import type { CollateralLookup } from './lookup.js';

const BASELINE = { type: 'baseline' } as const;

async function item(lookup: CollateralLookup, what: string, get: () => Promise<CollateralItem>, at: () => Date): Promise<CollateralItem> {
  let i: CollateralItem;
  try {
    i = await get();
  } catch (e) {
    // A miss refused over the miss budget did not fail: it stays upstream.busy, which no one remembers.
    if (isConclaveError(e, 'collateral.not_found') || isConclaveError(e, 'upstream.busy')) throw e;
    const err = e as Partial<ConclaveError>;
    // A route answers 404 for this (collateral.below_baseline, for one), which a client reads as not found.
    if (isConclaveError(e) && e.status === 404) throw fail('collateral.not_found', err.message ?? what, { what, code: e.code }, e);
    throw fail('upstream.unavailable', `collateral service failed for ${what}: ${err.message ?? String(e)}`, { what, ...(err.code ? { code: err.code } : {}) }, e);
  }
  // As a route would: an answer past its signed nextUpdate is served, and refreshed in the background.
  if (i.nextUpdate !== null && at().getTime() > i.nextUpdate) lookup.service.refreshSoon(i);
  return i;
}

/** TCB info, QE identity, PCK CRL and root CA CRL of one FMSPC, as the PCS API v4 would answer them. */
export async function quoteCollateralFromCache(lookup: CollateralLookup, req: { tee: 'sgx' | 'tdx'; fmspc: string; caType: 'processor' | 'platform' }, at: () => Date): Promise<QuoteCollateral> {
  const fmspc = req.fmspc.toUpperCase();
  const [tcb, qe, pckCrl] = await Promise.all([
    item(lookup, 'tcb', () => lookup.tcbInfo(req.tee, 'v4', fmspc, BASELINE), at),
    item(lookup, 'qe/identity', () => lookup.enclaveIdentity(req.tee, 'v4', 'qe', BASELINE), at),
    item(lookup, 'pckcrl', () => lookup.pckCrl(req.caType), at),
  ]);
  const rootCaCrl = await item(lookup, 'rootcacrl', () => lookup.rootCaCrl(), at);
  return collateralFromPcsResponses({
    tcbInfoResponse: tcb.body,
    tcbInfoIssuerChain: tcb.meta.issuerChain ?? '',
    qeIdentityResponse: qe.body,
    qeIdentityIssuerChain: qe.meta.issuerChain ?? '',
    pckCrl: pckCrl.body,
    pckCrlIssuerChain: pckCrl.meta.issuerChain ?? '',
    rootCaCrl: rootCaCrl.body,
  });
}

/** The VCEK of a chip at a TCB and its product's ASK and ARK (DER), as KDS would answer them. */
export async function vcekFromCache(lookup: CollateralLookup, req: { product: AmdProduct; chipId: Uint8Array; tcb: KdsTcb }, at: () => Date): Promise<{ vcek: Uint8Array; chain: Uint8Array[] }> {
  if (req.chipId.byteLength !== 64) throw fail('request.invalid', 'CHIP_ID must be 64 bytes', { length: req.chipId.byteLength });
  const hwid = Buffer.from(req.product === 'Turin' ? req.chipId.subarray(0, 8) : req.chipId).toString('hex');
  const [vcek, chain] = await Promise.all([
    item(lookup, 'vcek', () => lookup.vcek(req.product, hwid, req.tcb), at),
    item(lookup, 'cert_chain', () => lookup.certChain(req.product, 'vcek'), at),
  ]);
  return { vcek: vcek.body, chain: pemToDer(Buffer.from(chain.body).toString('latin1')) };
}

/**
 * The AMD CRL of a product for VCEKs or VLEKs (DER), as KDS `/{vcek|vlek}/v1/{product}/crl` would answer
 * it: the cache verified it against the product's pinned ARK and keeps it moving forward (cache/guard.ts).
 */
export async function amdCrlFromCache(lookup: CollateralLookup, req: { product: AmdProduct; signingKey: 'vcek' | 'vlek' }, at: () => Date): Promise<Uint8Array> {
  const crl = await item(lookup, `${req.signingKey}/crl`, () => lookup.amdCrl(req.product, req.signingKey), at);
  return crl.body;
}

/**
 * NVIDIA RIMs by id and OCSP answers for GPU certificates, as the `/v1/rim/{id}` and `/ocsp` routes
 * would answer them: an id the cache cannot find is `undefined` (the GPU's measurements are then not
 * compared); an OCSP answer that cannot be had, for whatever reason, is `undefined` too.
 */
export function gpuReferencesFromCache(lookup: CollateralLookup, at: () => Date) {
  const svc = lookup.service;
  return {
    async getRim(id: string): Promise<Uint8Array | undefined> {
      try {
        const i = await item(lookup, `rim ${id.slice(0, 80)}`, () => lookup.cached('nvidia_rim', rimScope(checkRimId(id)), () => fetchRim(svc, id)), at);
        return new Uint8Array(i.body);
      } catch (e) {
        if (isConclaveError(e, 'collateral.not_found')) return undefined;
        throw e;
      }
    },
    async getOcsp(cert: Certificate, issuer: Certificate): Promise<Uint8Array | undefined> {
      try {
        const certId = parseOcspRequest(buildOcspRequest(cert, issuer, { hash: 'sha384' })).certId;
        const i = await lookup.cached('nvidia_ocsp', ocspScope(certId), () => fetchOcsp(svc, certId));
        if (i.nextUpdate !== null && at().getTime() > i.nextUpdate - 24 * 3600_000) svc.refreshSoon(i);
        parseOcspResponse(i.body);
        return new Uint8Array(i.body);
      } catch {
        return undefined;
      }
    },
  };
}
