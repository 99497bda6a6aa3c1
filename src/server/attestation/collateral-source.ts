import { readFileSync } from 'node:fs';
import type { QuoteCollateralSource, SnpCertificateSource } from '../../attestation/ports.js';
import { fetchCertChain, fetchVcek } from '../../upstream/kds.js';
import { type QuoteCollateral, collateralFromPcsResponses } from '../../collateral/intel/collateral.js';
import { fail } from '../../core/errors.js';
import type { HttpGetter } from '../../upstream/https-get.js';

/** How long fetched collateral is reused before asking the collateral service again. */
const TTL_MS = 5 * 60_000;

/**
 * Intel collateral for the attestation service, fetched with the PCS v4 API from a collateral base URL
 * (our own collateral service by default, any PCCS/THIM otherwise) and kept in memory for a few minutes,
 * so the hot path never leaves the process. Concurrent misses for one key share one fetch.
 */
export function createPcsCollateralSource(baseUrl: () => string | undefined, http: HttpGetter, nowMs: () => number = Date.now): QuoteCollateralSource {
  const cache = new Map<string, { at: number; value: Promise<QuoteCollateral> }>();
  async function fetchOne(path: string, header: string | undefined): Promise<{ body: Buffer; chain: string }> {
    const base = baseUrl();
    if (!base) throw fail('collateral.missing', 'no collateral service is configured (run the collateral service or set --upstream-intel)');
    const r = await http.get(`${base}${path}`);
    if (r.status !== 200) {
      throw fail(r.status === 404 ? 'collateral.missing' : 'upstream.unavailable', `collateral service answered ${r.status} for ${path}`, {
        status: r.status,
        errorCode: r.headers['error-code'],
      });
    }
    const raw = header ? r.headers[header.toLowerCase()] : undefined;
    return { body: r.body, chain: raw === undefined ? '' : decodeURIComponent(Array.isArray(raw) ? raw[0]! : raw) };
  }
  async function load(tee: 'sgx' | 'tdx', fmspc: string, caType: string): Promise<QuoteCollateral> {
    const [tcb, qe, pckCrl, rootCrl] = await Promise.all([
      fetchOne(`/${tee}/certification/v4/tcb?fmspc=${fmspc}`, 'TCB-Info-Issuer-Chain'),
      fetchOne(`/${tee}/certification/v4/qe/identity`, 'SGX-Enclave-Identity-Issuer-Chain'),
      fetchOne(`/sgx/certification/v4/pckcrl?ca=${caType}&encoding=der`, 'SGX-PCK-CRL-Issuer-Chain'),
      fetchOne('/sgx/certification/v4/rootcacrl', undefined),
    ]);
    return collateralFromPcsResponses({
      tcbInfoResponse: new Uint8Array(tcb.body),
      tcbInfoIssuerChain: tcb.chain,
      qeIdentityResponse: new Uint8Array(qe.body),
      qeIdentityIssuerChain: qe.chain,
      pckCrl: new Uint8Array(pckCrl.body),
      pckCrlIssuerChain: pckCrl.chain,
      rootCaCrl: new Uint8Array(rootCrl.body),
    });
  }
  return {
    getQuoteCollateral({ tee, fmspc, caType }) {
      const key = `${tee}:${fmspc.toLowerCase()}:${caType}`;
      const hit = cache.get(key);
      if (hit && nowMs() - hit.at < TTL_MS) return hit.value;
      const value = load(tee, fmspc.toLowerCase(), caType);
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
