/**
 * The attestation service's short memory of collateral, in front of whichever source provides it (the
 * collateral cache in this process, or a PCS/PCCS/THIM and KDS over HTTPS): the hot path then never
 * leaves the process. Concurrent misses for one key share one fetch; a failed fetch is remembered briefly
 * and fetches in flight are bounded (an anonymous caller names the chip or FMSPC).
 */
import { BoundedMap } from '../core/bounded-map.js';
import { fail, isConclaveError } from '../core/errors.js';
import { quoteCollateralRollback } from '../collateral/cache/guard.js';
import { crlGoesBack, parseCrl } from '../core/x509.js';
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { QuoteCollateralSource, SnpCertificateSource } from './ports.js';

/** How long fetched Intel collateral is reused before asking its source again. */
export const QUOTE_COLLATERAL_TTL_MS = 5 * 60_000;

type QuoteCollateralRequest = Parameters<QuoteCollateralSource['getQuoteCollateral']>[0];
type VcekRequest = Parameters<SnpCertificateSource['getVcek']>[0];
type AmdCrlRequest = Parameters<SnpCertificateSource['getCrl']>[0];

/** How long a failed load is answered from memory instead of asking the source again. */
export const FAILED_LOAD_TTL_MS = 30_000;
/**
 * At most this many collateral sets (per FMSPC) and VCEKs (per chip and TCB) are kept in memory, the
 * oldest dropped first: a report names any chip id and TCB, and the KDS answers for every TCB of a chip.
 */
export const COLLATERAL_MEMO_MAX = 4096;

/** Loads in flight at once, all keys together; more are refused (`upstream.busy`) rather than queued. */
export const MAX_LOADS_IN_FLIGHT = 8;

/**
 * Loads of collateral an anonymous attestation asks for (a VCEK for any chip id a report names, Intel
 * collateral for an FMSPC): a failed load is remembered for {@link FAILED_LOAD_TTL_MS} (negative caching),
 * and at most {@link MAX_LOADS_IN_FLIGHT} run at once, so such requests cannot multiply upstream calls or
 * hold every upstream connection. `upstream.busy` is never remembered.
 */
function guardedLoads(nowMs: () => number) {
  const failed = new Map<string, { at: number; error: unknown }>();
  let inFlight = 0;
  return {
    clear: () => failed.clear(),
    run<T>(key: string, load: () => Promise<T>): Promise<T> {
      const f = failed.get(key);
      if (f && nowMs() - f.at < FAILED_LOAD_TTL_MS) return Promise.reject(f.error);
      if (inFlight >= MAX_LOADS_IN_FLIGHT) return Promise.reject(fail('upstream.busy', 'too many collateral fetches in flight; retry shortly', { inFlight }));
      let p: Promise<T>;
      try {
        p = load();
      } catch (e) {
        return Promise.reject(e);
      }
      inFlight++;
      return p.then(
        (v) => {
          inFlight--;
          failed.delete(key);
          return v;
        },
        (e: unknown) => {
          inFlight--;
          if (!isConclaveError(e, 'upstream.busy')) {
            if (failed.size >= 10_000) failed.clear();
            failed.set(key, { at: nowMs(), error: e });
          }
          throw e;
        },
      );
    },
  };
}

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
  /** The clock that ages remembered failures (the server's clock); `nowMs` by default. */
  failuresNowMs: () => number = nowMs,
): QuoteCollateralSource & Forgetful {
  const cache = new BoundedMap<string, { at: number; value: Promise<QuoteCollateral> }>(COLLATERAL_MEMO_MAX);
  const newest = new BoundedMap<string, QuoteCollateral>(COLLATERAL_MEMO_MAX);
  const loads = guardedLoads(failuresNowMs);
  return {
    // The cache behind changed: follow it. That cache only moves forward on its own (src/collateral/cache/
    // guard.ts), and an older evaluation number it now serves is an operator's pinned TCB baseline.
    clear: () => {
      cache.clear();
      newest.clear();
      loads.clear();
    },
    getQuoteCollateral(req) {
      const { tee, fmspc, caType } = req;
      const key = `${tee}:${fmspc.toLowerCase()}:${caType}`;
      const hit = cache.get(key);
      if (hit && nowMs() - hit.at < QUOTE_COLLATERAL_TTL_MS) return hit.value;
      let value = loads.run(key, () => load(req));
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
export function cachedVcekSource(load: (req: VcekRequest) => Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>, nowMs: () => number = Date.now): Pick<SnpCertificateSource, 'getVcek'> & Forgetful {
  const cache = new BoundedMap<string, Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>>(COLLATERAL_MEMO_MAX);
  const loads = guardedLoads(nowMs);
  return {
    clear: () => {
      cache.clear();
      loads.clear();
    },
    getVcek(req) {
      const { product, chipId, tcb } = req;
      const key = `${product}:${Buffer.from(chipId).toString('hex')}:${tcb.bootloader}.${tcb.tee}.${tcb.snp}.${tcb.microcode}.${tcb.fmc ?? ''}`;
      let hit = cache.get(key);
      if (!hit) {
        hit = loads.run(key, () => load(req));
        cache.set(key, hit);
        hit.catch(() => cache.delete(key));
      }
      return hit;
    },
  };
}

/** How long a fetched AMD CRL is reused before asking its source again (KDS reissues them about daily). */
export const AMD_CRL_TTL_MS = 5 * 60_000;

/** Whether CRL `next` is older than `prev`, as the collateral cache's guard judges (crlGoesBack). */
function crlOlder(next: Uint8Array, prev: Uint8Array): boolean {
  return crlGoesBack(parseCrl(prev), parseCrl(next)) !== undefined;
}

/**
 * AMD CRLs per product and key kind (six at most), reused for {@link AMD_CRL_TTL_MS}. The copy only moves
 * forward: an answer older than the CRL in use is not taken (a source that rolls back cannot undo a
 * revocation). Once a CRL has been had, a failed fetch answers it again instead of failing: a CRL past its
 * nextUpdate is then refused by the verifier (`crl.expired`), never treated as "no CRL". Without one, the
 * failure is the answer (the attestation service decides what "no CRL" means, docs/snp.md "Revocation").
 * `clear()` follows the cache behind (which is guarded on its own), forgetting that floor too.
 */
export function cachedAmdCrlSource(
  load: (req: AmdCrlRequest) => Promise<Uint8Array>,
  nowMs: () => number,
  warn?: (msg: string, fields: Record<string, unknown>) => void,
): Pick<SnpCertificateSource, 'getCrl'> & Forgetful {
  const memo = new Map<string, { at: number; value: Promise<Uint8Array> }>();
  const newest = new Map<string, Uint8Array>();
  const loads = guardedLoads(nowMs);
  return {
    clear: () => {
      memo.clear();
      newest.clear();
      loads.clear();
    },
    getCrl(req) {
      const key = `${req.product}:${req.signingKey}`;
      const hit = memo.get(key);
      if (hit && nowMs() - hit.at < AMD_CRL_TTL_MS) return hit.value;
      const value = loads.run(key, () => load(req)).then(
        (crl) => {
          const prev = newest.get(key);
          let older = false;
          try {
            older = prev !== undefined && crlOlder(crl, prev);
          } catch {
            older = true; // not a CRL: the one in use stays (sources check their answers; this is a backstop)
          }
          if (prev && older) {
            warn?.('AMD CRL answer older than the one in use (or unreadable); keeping the one in use', { key });
            return prev;
          }
          newest.set(key, crl);
          return crl;
        },
        (e: unknown) => {
          const prev = newest.get(key);
          if (prev) return prev;
          throw e;
        },
      );
      memo.set(key, { at: nowMs(), value });
      value.catch(() => memo.delete(key));
      return value;
    },
  };
}
