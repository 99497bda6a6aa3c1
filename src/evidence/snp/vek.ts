import { TAG, parseDer, readTlv, smallInt, text } from '../../core/der.js';
import { fail } from '../../core/errors.js';
import type { Certificate } from '../../core/x509.js';

/**
 * AMD's X.509 extensions of a versioned chip/loaded endorsement key (VCEK or VLEK), under the arc
 * 1.3.6.1.4.1.3704.1 (evidence-and-collateral §4.2; go-sev-guest `kds/kds.go`, AMD VCEK spec §3.1).
 */
export const VEK_OID = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  spl4: '1.3.6.1.4.1.3704.1.3.4',
  spl5: '1.3.6.1.4.1.3704.1.3.5',
  spl6: '1.3.6.1.4.1.3704.1.3.6',
  spl7: '1.3.6.1.4.1.3704.1.3.7',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
} as const;

/** The decoded VCEK/VLEK extensions. SPLs are the security patch levels the key was derived for. */
export interface VekExtensions {
  /** 0 for Milan/Genoa, 1 for Turin (which adds fmcSPL and shortens hwID). */
  readonly structVersion: number | undefined;
  /** e.g. "Milan-B0", "Genoa", "Turin"; VLEKs carry the bare product name. */
  readonly productName: string | undefined;
  readonly blSpl: number;
  readonly teeSpl: number;
  readonly snpSpl: number;
  readonly ucodeSpl: number;
  readonly fmcSpl: number | undefined;
  /** CHIP_ID (64 bytes) for Milan/Genoa, its first 8 bytes for Turin; absent in VLEKs. */
  readonly hwId: Uint8Array | undefined;
  /** The cloud provider a VLEK was issued to, e.g. "CN=cc-us-east-2.amazonaws.com". */
  readonly cspId: string | undefined;
}

function extValue(cert: Certificate, oid: string): Uint8Array | undefined {
  return cert.extensions.get(oid)?.value;
}

function splOf(cert: Certificate, oid: string, name: string, required: boolean): number | undefined {
  const v = extValue(cert, oid);
  if (v === undefined) {
    if (required) throw fail('snp.chain_invalid', `VCEK/VLEK lacks the ${name} extension`, { oid });
    return undefined;
  }
  const t = parseDer(v, name);
  if (t.tag !== TAG.INTEGER) throw fail('der.malformed', `${name} is not an INTEGER`, { oid });
  const n = smallInt(t);
  if (n > 255) throw fail('snp.chain_invalid', `${name} ${n} does not fit a TCB byte`, { oid });
  return n;
}

function stringOf(cert: Certificate, oid: string, name: string): string | undefined {
  const v = extValue(cert, oid);
  if (v === undefined) return undefined;
  const t = readTlv(v, 0);
  if (t.tag !== TAG.IA5_STRING && t.tag !== TAG.UTF8_STRING && t.tag !== TAG.PRINTABLE_STRING) {
    throw fail('der.malformed', `${name} is not a string`, { oid });
  }
  return text(t);
}

/** Reads the AMD extensions of a VCEK or VLEK certificate. */
export function parseVekExtensions(cert: Certificate): VekExtensions {
  const sv = extValue(cert, VEK_OID.structVersion);
  // hwID is the raw extnValue content (not a nested OCTET STRING): 64 bytes, or 8 on Turin.
  const hw = extValue(cert, VEK_OID.hwId);
  return {
    structVersion: sv === undefined ? undefined : smallInt(parseDer(sv, 'structVersion')),
    productName: stringOf(cert, VEK_OID.productName, 'productName'),
    blSpl: splOf(cert, VEK_OID.blSpl, 'blSPL', true)!,
    teeSpl: splOf(cert, VEK_OID.teeSpl, 'teeSPL', true)!,
    snpSpl: splOf(cert, VEK_OID.snpSpl, 'snpSPL', true)!,
    ucodeSpl: splOf(cert, VEK_OID.ucodeSpl, 'ucodeSPL', true)!,
    fmcSpl: splOf(cert, VEK_OID.fmcSpl, 'fmcSPL', false),
    hwId: hw === undefined ? undefined : new Uint8Array(hw),
    cspId: stringOf(cert, VEK_OID.cspId, 'csp_id'),
  };
}

/** The product family of a VEK product-name extension ("Milan-B0" → "Milan"). */
export function productFamilyOf(productName: string): string {
  return productName.split('-')[0]!;
}

