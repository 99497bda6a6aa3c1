/**
 * The AMD CRL for SEV-SNP evidence (docs/snp.md, "Revocation"): the attestation service asks its AMD
 * collateral source (the collateral cache, or a KDS) for the CRL of the report's product and signing key,
 * for every SNP form, and hands it to the verifier, which checks it (ARK signature, thisUpdate/nextUpdate,
 * revoked ASK/ASVK). When none can be had the evidence is verified without it and the token says so
 * (`x-conclave-sevsnpvm-crl: "unavailable"`), unless the operator requires a CRL (`--snp-crl required`).
 */
import { ConclaveError, fail } from '../core/errors.js';
import { RecentBytes } from '../evidence/dcap/recent-bytes.js';
import { SNP_MAX_CERTIFICATES, type SnpCertificates, certificateCount, productNamedBy } from '../evidence/snp/chain.js';
import type { SnpReport } from '../evidence/snp/report.js';
import type { AmdProduct } from '../evidence/snp/roots.js';
import type { SnpCertificateSource } from './ports.js';

/** `if-available` (default): attest without a CRL when none can be had, and say so; `required`: refuse (`--snp-crl`). */
export type SnpCrlRequirement = 'if-available' | 'required';

/** The CRL for one report, or why there is none. */
export interface AmdCrlAnswer {
  readonly crl: Uint8Array | undefined;
  /** Why no CRL could be had (the source's error), when `crl` is undefined. */
  readonly missing?: unknown;
  /**
   * The product and signing key the CRL was looked up for (absent for the simulated TEE's own CRL): the
   * chain that verifies must be that product's and kind's ({@link SnpCrls.require}), or a certificate the
   * verifier ignores could choose which CRL (or none) applies.
   */
  readonly for?: { readonly product: AmdProduct | undefined; readonly signingKey: 'vcek' | 'vlek' | 'none' };
}

export interface SnpCrls {
  /**
   * The AMD CRL for `report`: its product (CPUID, or for a version 2 report the one the certificates name)
   * and its signing key (VCEK or VLEK). Never rejects: a CRL that cannot be had is an answer without one.
   */
  crlFor(report: SnpReport, certs: SnpCertificates | undefined): Promise<AmdCrlAnswer>;
  /**
   * After verification: the CRL must have been looked up for the product and signing key the chain verified
   * for (`snp.product_mismatch` otherwise: a certificate in the evidence named another product first); under
   * `required`, evidence that verified without a CRL is refused, with why none could be had
   * (`collateral.missing`, or the upstream's 5xx error as it is).
   */
  require(result: { readonly crlChecked: boolean; readonly product: AmdProduct; readonly signingKey: 'vcek' | 'vlek' }, answer: AmdCrlAnswer): void;
}

export function createSnpCrls(source: Pick<SnpCertificateSource, 'getCrl'>, requirement: SnpCrlRequirement = 'if-available'): SnpCrls {
  // The product each certificate names, for the last few certificates seen (a platform sends the same VCEK
  // with every report): a byte comparison instead of parsing the certificate again.
  const named = new RecentBytes<AmdProduct | null>(16);
  function productOf(certs: SnpCertificates | undefined): AmdProduct | undefined {
    // Evidence with more certificates than a chain has is left unread: the verifier refuses it (snp.malformed).
    if (certificateCount(certs) > SNP_MAX_CERTIFICATES) return undefined;
    for (const der of [certs?.vcek, ...(certs?.chain ?? [])]) {
      if (!der) continue;
      let p = named.get(der);
      if (p === undefined) {
        p = productNamedBy(der) ?? null;
        named.set(der, p);
      }
      if (p) return p;
    }
    return undefined;
  }

  return {
    async crlFor(report, certs) {
      const signingKey = report.signerInfo.signingKey;
      const product = report.cpuidProduct ?? productOf(certs);
      const asked = { product, signingKey };
      if (signingKey === 'none') return { crl: undefined, missing: fail('snp.unsupported', 'the report is unsigned'), for: asked };
      if (!product) return { crl: undefined, missing: fail('collateral.missing', 'neither the report nor its certificates name the AMD product, so its CRL is unknown'), for: asked };
      try {
        return { crl: await source.getCrl({ product, signingKey }), for: asked };
      } catch (e) {
        return { crl: undefined, missing: e, for: asked };
      }
    },

    require(result, answer) {
      const asked = answer.for;
      if (asked && (asked.product !== result.product || asked.signingKey !== result.signingKey)) {
        throw fail(
          'snp.product_mismatch',
          `the AMD CRL was looked up for ${asked.product ?? 'no product'} ${asked.signingKey.toUpperCase()}s, but the chain verified is of ${result.product} ${result.signingKey.toUpperCase()}s: a certificate of the evidence names another product`,
          { expected: result.product, actual: asked.product ?? null, signingKey: result.signingKey, where: 'AMD CRL lookup' },
        );
      }
      if (requirement !== 'required' || result.crlChecked) return;
      const why = answer.missing;
      if (why instanceof ConclaveError && why.status >= 500) throw why;
      const reason = why instanceof ConclaveError ? why.message : why instanceof Error ? why.message : 'no CRL was given';
      throw fail('collateral.missing', `no AMD CRL for ${result.product} ${result.signingKey.toUpperCase()}s could be had, and --snp-crl required refuses evidence without one: ${reason}`, {
        item: `${result.signingKey}/crl`,
        product: result.product,
        ...(why instanceof ConclaveError ? { reason: why.code } : {}),
      }, why);
    },
  };
}
