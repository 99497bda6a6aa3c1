/**
 * The attestation service's short memory of collateral, in front of whichever source provides it (the
 * collateral cache in this process, or a PCS/PCCS/THIM and KDS over HTTPS): the hot path then never
 * leaves the process. Concurrent misses for one key share one fetch; a failed fetch is not remembered.
 */
import { fail, isConclaveError } from '../core/errors.js';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { QuoteCollateralSource, SnpCertificateSource } from './ports.js';

/** How long fetched Intel collateral is reused before asking its source again. */
export const QUOTE_COLLATERAL_TTL_MS = 5 * 60_000;

type QuoteCollateralRequest = Parameters<QuoteCollateralSource['getQuoteCollateral']>[0];
type VcekRequest = Parameters<SnpCertificateSource['getVcek']>[0];

/** Intel collateral per TEE, FMSPC and PCK CA, reused for {@link QUOTE_COLLATERAL_TTL_MS}; `collateral.not_found` reads as `collateral.missing`. */
export function cachedQuoteCollateralSource(load: (req: QuoteCollateralRequest) => Promise<QuoteCollateral>, nowMs: () => number): QuoteCollateralSource {
  const cache = new Map<string, { at: number; value: Promise<QuoteCollateral> }>();
  return {
    getQuoteCollateral(req) {
      const { tee, fmspc, caType } = req;
      const key = `${tee}:${fmspc.toLowerCase()}:${caType}`;
      const hit = cache.get(key);
      if (hit && nowMs() - hit.at < QUOTE_COLLATERAL_TTL_MS) return hit.value;
      let value: Promise<QuoteCollateral>;
      try {
        value = load(req);
      } catch (e) {
        return Promise.reject(e);
      }
      value = value.catch((e: unknown) => {
        throw isConclaveError(e, 'collateral.not_found') ? fail('collateral.missing', `no collateral for FMSPC ${fmspc}: ${e.message}`, { fmspc, tee }) : e;
      });
      cache.set(key, { at: nowMs(), value });
      value.catch(() => cache.delete(key));
      return value;
    },
  };
}

/** VCEKs per chip and TCB, kept for good: a VCEK never changes for those. */
export function cachedVcekSource(load: (req: VcekRequest) => Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>): SnpCertificateSource {
  const cache = new Map<string, Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>>();
  return {
    getVcek(req) {
      const { product, chipId, tcb } = req;
      const key = `${product}:${Buffer.from(chipId).toString('hex')}:${tcb.bootloader}.${tcb.tee}.${tcb.snp}.${tcb.microcode}.${tcb.fmc ?? ''}`;
      let hit = cache.get(key);
      if (!hit) {
        try {
          hit = load(req);
        } catch (e) {
          return Promise.reject(e);
        }
        cache.set(key, hit);
        hit.catch(() => cache.delete(key));
      }
      return hit;
    },
  };
}
