import { readFileSync } from 'node:fs';
import type { QuoteCollateralSource, SnpCertificateSource } from '../../attestation/ports.js';
import { fetchCertChain, fetchVcek } from '../../upstream/kds.js';
import type { QuoteCollateral } from '../../evidence/dcap/collateral.js';
import { fail, isConclaveError } from '../../core/errors.js';
import { fetchQuoteCollateral } from '../../upstream/pcs-collateral.js';
import type { HttpClient } from '../../upstream/http.js';

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
