import { readFileSync } from 'node:fs';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { AmdProduct } from '../evidence/snp/roots.js';
import type { KdsTcb } from '../collateral/amd/kds.js';
import { BoundedMap } from '../core/bounded-map.js';
import { fail } from '../core/errors.js';
import type { HttpClient } from './http.js';
import { fetchCertChain, fetchCrl, fetchVcek } from './kds.js';
import { fetchQuoteCollateral } from './pcs-collateral.js';
import type { GpuReferenceSource } from '../attestation/gpu.js';
import { rimFromServiceAnswer } from '../collateral/nvidia.js';
import { buildOcspRequest, parseOcspResponse } from '../core/ocsp.js';
import { checkVcekTarget } from '../collateral/cache/guard.js';
import { AMD_ROOTS } from '../evidence/snp/roots.js';
import { crlBytes, parseCrl, verifyCrlSignature } from '../core/x509.js';

/**
 * Intel collateral for the attestation service from a PCS-compatible base URL (a collateral service in
 * another process, or any PCCS/THIM/PCS). Throws synchronously when none is configured.
 */
export function pcsQuoteCollateralFetcher(baseUrl: () => string | undefined, http: HttpClient) {
  return ({ tee, fmspc, caType }: { tee: 'sgx' | 'tdx'; fmspc: string; caType: 'processor' | 'platform' }): Promise<QuoteCollateral> => {
    const base = baseUrl();
    if (!base) throw fail('collateral.missing', 'no collateral service is configured (run the collateral service or set --upstream-intel)');
    return fetchQuoteCollateral({ baseUrl: base, fmspc, tee, pckCa: caType, http });
  };
}

/**
 * VCEKs for SNP evidence that carries none (the Azure CVM HCL form), from an AMD KDS-compatible base URL.
 * Throws synchronously when none is configured.
 */
export function kdsVcekFetcher(baseUrl: () => string | undefined, caFile: string) {
  return ({ product, chipId, tcb }: { product: AmdProduct; chipId: Uint8Array; tcb: KdsTcb }): Promise<{ vcek: Uint8Array; chain: Uint8Array[] }> => {
    const base = baseUrl();
    if (!base) throw fail('snp.certificate_missing', 'no collateral service is configured to fetch the VCEK from');
    const opts = { baseUrl: base, ca: readFileSync(caFile) };
    // A KDS that answers another chip's or TCB's VCEK is refused here, before anything keeps it.
    return Promise.all([fetchVcek(opts, product, chipId, tcb), fetchCertChain(opts, product)]).then(([vcek, chain]) => {
      checkVcekTarget(vcek, product, chipId, tcb);
      return { vcek, chain };
    });
  };
}

/**
 * AMD CRLs for the attestation service from an AMD KDS-compatible base URL. The answer must be a CRL signed
 * by the product's pinned ARK (`crl.invalid` otherwise), checked here before anything keeps it, as the
 * collateral cache checks it on ingest: a bad answer is a failed fetch, never the CRL in use. Throws
 * `collateral.not_found` synchronously when no upstream is configured.
 */
export function kdsCrlFetcher(baseUrl: () => string | undefined, caFile: string) {
  return ({ product, signingKey }: { product: AmdProduct; signingKey: 'vcek' | 'vlek' }): Promise<Uint8Array> => {
    const base = baseUrl();
    if (!base) throw fail('collateral.not_found', 'no collateral service is configured to fetch the AMD CRL from');
    return fetchCrl({ baseUrl: base, ca: readFileSync(caFile) }, product, signingKey).then((body) => {
      const der = crlBytes(body);
      verifyCrlSignature(parseCrl(der), AMD_ROOTS[product].ark);
      return der;
    });
  };
}

/** How long fetched NVIDIA collateral is reused before asking again. */
const TTL_MS = 5 * 60_000;

/**
 * At most this many RIM ids and OCSP requests are remembered (the oldest goes first): both are asked for
 * GPU evidence before it is verified, so any caller can name any number of distinct ones.
 */
export const NVIDIA_SOURCE_MEMO_MAX = 4096;

/**
 * NVIDIA RIMs for GPU evidence, fetched by RIM id with the NVIDIA RIM service API (`GET /v1/rim/{id}`)
 * from the collateral base URL (our collateral cache, or NVIDIA's service) and kept in memory for a few
 * minutes. An unknown id is `undefined` (the GPU's measurements are then not compared), not an error.
 */
export function createNvidiaRimSource(
  baseUrl: () => string | undefined,
  http: HttpClient,
  nowMs: () => number = Date.now,
  ocspUrl: () => string | undefined = () => {
    const b = baseUrl();
    return b ? `${b.replace(/\/+$/, '')}/ocsp` : undefined;
  },
): GpuReferenceSource {
  const cache = new BoundedMap<string, { at: number; value: Promise<Uint8Array | undefined> }>(NVIDIA_SOURCE_MEMO_MAX);
  return {
    getOcsp(cert, issuer) {
      const url = ocspUrl();
      if (!url) return Promise.resolve(undefined);
      const request = buildOcspRequest(cert, issuer, { hash: 'sha384' });
      const key = `ocsp:${Buffer.from(request).toString('base64')}`;
      const hit = cache.get(key);
      if (hit && nowMs() - hit.at < TTL_MS) return hit.value;
      const value = http.request('POST', url, { headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from(request) }).then((r) => {
        // Anything but a successful OCSP response (RFC 6960 responseStatus 0) means "no answer to give".
        if (r.status !== 200) return undefined;
        try {
          parseOcspResponse(new Uint8Array(r.body));
        } catch {
          return undefined;
        }
        return new Uint8Array(r.body);
      });
      cache.set(key, { at: nowMs(), value });
      value.catch(() => cache.delete(key));
      return value;
    },
    getRim(id) {
      const hit = cache.get(id);
      if (hit && nowMs() - hit.at < TTL_MS) return hit.value;
      const base = baseUrl();
      if (!base) return Promise.resolve(undefined);
      const value = http.get(`${base.replace(/\/+$/, '')}/v1/rim/${encodeURIComponent(id)}`).then((r) => {
        if (r.status === 404) return undefined;
        if (r.status !== 200) throw fail('upstream.unavailable', `the RIM service answered ${r.status} for ${id}`, { id, status: r.status });
        return rimFromServiceAnswer(id, r.body);
      });
      cache.set(id, { at: nowMs(), value });
      value.catch(() => cache.delete(id));
      return value;
    },
  };
}
