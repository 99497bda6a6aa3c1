import type { CollateralItem, PcsVersion } from '../../collateral/cache/item.js';
import { derToPem } from '../../core/x509.js';

/** A ready-to-send answer: built once per distinct request, then replayed from memory. */
export interface Prepared {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** The item behind it (refresh / staleness). */
  readonly item: CollateralItem | undefined;
  /** After this time the answer is past its signed nextUpdate and is re-prepared with a Warning. */
  readonly staleAt: number | null;
  readonly stale: boolean;
}

/** RFC 7234 §5.5.1 warning on answers past their signed nextUpdate (or whose refresh failed). */
export const STALE_WARNING = '110 - "Response is Stale"';

/** Issuer chains travel URL-encoded (PCS; dcap-qvl and QCNL URL-decode them). */
export function encodeChain(pem: string): string {
  return encodeURIComponent(pem);
}

function base(item: CollateralItem | undefined, contentType: string, stale: boolean, extra: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { 'content-type': contentType, ...extra };
  if (stale) h.warning = STALE_WARNING;
  if (item?.nextUpdate) h['x-conclave-next-update'] = new Date(item.nextUpdate).toISOString();
  return h;
}

export function prepare(item: CollateralItem, headers: Record<string, string>, body: Buffer, contentType: string, now: number, failing: boolean): Prepared {
  const stale = failing || (item.nextUpdate !== null && now > item.nextUpdate);
  return { status: 200, headers: base(item, contentType, stale, headers), body, item, staleAt: item.nextUpdate, stale };
}

/** TCB info: body as signed; issuer header name by API version (§3.1/§3.2 getTcbInfoIssuerChainName). */
export function tcbHeaders(item: CollateralItem, version: PcsVersion): Record<string, string> {
  const chain = encodeChain(item.meta.issuerChain ?? '');
  return version === 'v3' ? { 'SGX-TCB-Info-Issuer-Chain': chain } : { 'TCB-Info-Issuer-Chain': chain };
}

export function identityHeaders(item: CollateralItem): Record<string, string> {
  return { 'SGX-Enclave-Identity-Issuer-Chain': encodeChain(item.meta.issuerChain ?? '') };
}

/**
 * PCK CRL in the encoding PCCS clients expect (§3.2): `encoding=der` raw DER (application/pkix-crl),
 * `encoding=pem` PEM, none → hex of the DER (PCCS backward compatibility, QCNL api 3.0).
 */
export function crlBody(der: Uint8Array, encoding: string | undefined): { body: Buffer; contentType: string } {
  const e = encoding?.toLowerCase();
  if (e === 'der') return { body: Buffer.from(der), contentType: 'application/pkix-crl' };
  if (e === 'pem') return { body: Buffer.from(derToPem(der, 'X509 CRL')), contentType: 'application/x-pem-file' };
  return { body: Buffer.from(Buffer.from(der).toString('hex')), contentType: 'application/x-pem-file' };
}
