/**
 * The attestation service's short memory of collateral, in front of whichever source provides it (the
 * collateral cache in this process, or a PCS/PCCS/THIM and KDS over HTTPS): the hot path then never
 * leaves the process. Concurrent misses for one key share one fetch; a failed fetch is not remembered.
 */
import { fail, isConclaveError } from '../core/errors.js';
import { quoteCollateralRollback } from '../collateral/cache/guard.js';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { QuoteCollateralSource, SnpCertificateSource } from './ports.js';

/** How long fetched Intel collateral is reused before asking its source again. */
export const QUOTE_COLLATERAL_TTL_MS = 5 * 60_000;

type QuoteCollateralRequest = Parameters<QuoteCollateralSource['getQuoteCollateral']>[0];
type VcekRequest = Parameters<SnpCertificateSource['getVcek']>[0];

/** An in-memory copy that can be told to forget (when the collateral cache behind it changed). */
export interface Forgetful {
  clear(): void;
}

/**
 * Intel collateral per TEE, FMSPC and PCK CA, reused for {@link QUOTE_COLLATERAL_TTL_MS}; `collateral.not_found`
 * reads as `collateral.missing`. The copy only moves forward: a fetched set with an older CRL, TCB info or
 * QE identity than the one in use is not taken (the newer good set stays in use), so a source that rolls
 * back cannot undo revocations for the attestation service either. `clear()` (the collateral cache in this
 * process changed) forgets that floor too: the cache is guarded itself, and may serve an older evaluation
 * number because the operator pinned the TCB baseline to it.
 */
export function cachedQuoteCollateralSource(
  load: (req: QuoteCollateralRequest) => Promise<QuoteCollateral>,
  nowMs: () => number,
  warn?: (msg: string, fields: Record<string, unknown>) => void,
): QuoteCollateralSource & Forgetful {
  const cache = new Map<string, { at: number; value: Promise<QuoteCollateral> }>();
  const newest = new Map<string, QuoteCollateral>();
  return {
    // The cache behind changed: follow it. That cache only moves forward on its own (src/collateral/cache/
    // guard.ts), and an older evaluation number it now serves is an operator's pinned TCB baseline.
    clear: () => {
      cache.clear();
      newest.clear();
    },
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
      value = value.then(
        (c) => {
          const prev = newest.get(key);
          const older = prev ? quoteCollateralRollback(c, prev) : undefined;
          if (prev && older) {
            warn?.('collateral answer older than the one in use; keeping the newer', { key, item: older });
            return prev;
          }
          newest.set(key, c);
          return c;
        },
        (e: unknown) => {
          throw isConclaveError(e, 'collateral.not_found') ? fail('collateral.missing', `no collateral for FMSPC ${fmspc}: ${e.message}`, { fmspc, tee }) : e;
        },
      );
      cache.set(key, { at: nowMs(), value });
      value.catch(() => cache.delete(key));
      return value;
    },
  };
}

/**
 * VCEKs per chip and TCB: a VCEK never changes for those, but `clear()` follows the cache behind (a copy
 * an upstream got wrong is not kept until a restart). Sources check the chip and TCB before answering.
 */
export function cachedVcekSource(load: (req: VcekRequest) => Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>): SnpCertificateSource & Forgetful {
  const cache = new Map<string, Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>>();
  return {
    clear: () => cache.clear(),
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
