import { toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import type { AmdProduct } from '../../evidence/snp/roots.js';
import { kdsTcbQuery, tcbLayoutOf } from '../../evidence/snp/report.js';

/** AMD Key Distribution Service, the public default base URL (evidence-and-collateral §3.5). */
export const AMD_KDS_BASE_URL = 'https://kdsintf.amd.com';

/** The TCB components a VCEK is derived for (Turin adds the FMC SPL). */
export interface KdsTcb {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly fmc?: number | undefined;
}

function base(baseUrl: string): string {
  const b = baseUrl.replace(/\/+$/, '');
  if (!/^https?:\/\//.test(b)) throw fail('request.invalid', 'KDS base URL must be http(s)', { baseUrl });
  return b;
}

/**
 * GET /vcek/v1/{product}/{hwid}?[fmcSPL=&]blSPL=&teeSPL=&snpSPL=&ucodeSPL= (AMD KDS spec; go-sev-guest
 * `kds.VCEKCertURL`, snpguest `src/fetch.rs`). hwid is the CHIP_ID hex, only its first 8 bytes on Turin.
 */
export function kdsVcekUrl(baseUrl: string, product: AmdProduct, chipId: Uint8Array, tcb: KdsTcb): string {
  if (chipId.byteLength !== 64) throw fail('request.invalid', 'CHIP_ID must be 64 bytes', { length: chipId.byteLength });
  const hwid = toHex(product === 'Turin' ? chipId.subarray(0, 8) : chipId);
  return `${base(baseUrl)}/vcek/v1/${product}/${hwid}?${kdsTcbQuery(tcb, tcbLayoutOf(product))}`;
}

/** GET /{vcek|vlek}/v1/{product}/cert_chain → PEM ASK (or ASVK) then ARK. */
export function kdsCertChainUrl(baseUrl: string, product: AmdProduct, signingKey: 'vcek' | 'vlek' = 'vcek'): string {
  return `${base(baseUrl)}/${signingKey}/v1/${product}/cert_chain`;
}

/** GET /{vcek|vlek}/v1/{product}/crl → DER CRL signed by the ARK. */
export function kdsCrlUrl(baseUrl: string, product: AmdProduct, signingKey: 'vcek' | 'vlek' = 'vcek'): string {
  return `${base(baseUrl)}/${signingKey}/v1/${product}/crl`;
}
