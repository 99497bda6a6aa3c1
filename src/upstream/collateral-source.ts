import { readFileSync } from 'node:fs';
import type { QuoteCollateralSource, SnpCertificateSource } from '../attestation/ports.js';
import { fetchCertChain, fetchVcek } from './kds.js';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import { fail, isConclaveError } from '../core/errors.js';
import { fetchQuoteCollateral } from './pcs-collateral.js';
import type { HttpClient } from './http.js';
import type { GpuReferenceSource } from '../attestation/gpu.js';
import { rimFromServiceAnswer } from '../collateral/nvidia.js';
import { buildOcspRequest, parseOcspResponse } from '../core/ocsp.js';

/** How long fetched collateral is reused before asking the collateral service again. */
const TTL_MS = 5 * 60_000;

/**
 * Intel collateral for the attestation service, fetched with the PCS API from a collateral base URL
 * (our own collateral service by default, any PCCS/THIM otherwise) and kept in memory for a few minutes,
 * so the hot path never leaves the process. Concurrent misses for one key share one fetch.
 */
export function createPcsCollateralSource(baseUrl: () => string | undefined, http: HttpClient, nowMs: () => number = Date.now): QuoteCollateralSource {
  const cache = new Map<string, { at: number; value: Promise<QuoteCollateral> }>();
  return {
    getQuoteCollateral({ tee, fmspc, caType }) {
      const key = `${tee}:${fmspc.toLowerCase()}:${caType}`;
      const hit = cache.get(key);
      if (hit && nowMs() - hit.at < TTL_MS) return hit.value;
      const base = baseUrl();
      if (!base) return Promise.reject(fail('collateral.missing', 'no collateral service is configured (run the collateral service or set --upstream-intel)'));
      const value = fetchQuoteCollateral({ baseUrl: base, fmspc, tee, pckCa: caType, http }).catch((e: unknown) => {
        throw isConclaveError(e, 'collateral.not_found') ? fail('collateral.missing', `no collateral for FMSPC ${fmspc}: ${e.message}`, { fmspc, tee }) : e;
      });
      cache.set(key, { at: nowMs(), value });
      value.catch(() => cache.delete(key));
      return value;
    },
  };
}

/**
 * VCEKs for SNP evidence that carries none (the Azure CVM HCL form), fetched with the AMD KDS API from
 * the collateral base URL and kept in memory per chip and TCB: a VCEK never changes for those.
 */
export function createKdsCertificateSource(baseUrl: () => string | undefined, caFile: string): SnpCertificateSource {
  const cache = new Map<string, Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>>();
  return {
    getVcek({ product, chipId, tcb }) {
      const key = `${product}:${Buffer.from(chipId).toString('hex')}:${tcb.bootloader}.${tcb.tee}.${tcb.snp}.${tcb.microcode}.${tcb.fmc ?? ''}`;
      let hit = cache.get(key);
      if (!hit) {
        const base = baseUrl();
        if (!base) return Promise.reject(fail('snp.certificate_missing', 'no collateral service is configured to fetch the VCEK from'));
        const opts = { baseUrl: base, ca: readFileSync(caFile) };
        hit = Promise.all([fetchVcek(opts, product, chipId, tcb), fetchCertChain(opts, product)]).then(([vcek, chain]) => ({ vcek, chain }));
        cache.set(key, hit);
        hit.catch(() => cache.delete(key));
      }
      return hit;
    },
  };
}

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
  const cache = new Map<string, { at: number; value: Promise<Uint8Array | undefined> }>();
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
