import { fail } from '../core/errors.js';
import { createHttpClient } from './http.js';
import { pemToDer } from '../core/x509.js';
import { type KdsTcb, kdsCertChainUrl, kdsCrlUrl, kdsVcekUrl } from '../collateral/amd/kds.js';
import type { AmdProduct } from '../evidence/snp/roots.js';

/** How to reach an AMD KDS-compatible service (AMD's, or another Conclave, or a test server). */
export interface KdsClientOptions {
  readonly baseUrl: string;
  /** Extra trusted CA certificates (PEM) for https. */
  readonly ca?: string | Buffer | undefined;
  readonly timeoutMs?: number | undefined;
  /** Response size limit; KDS answers are a few KiB. */
  readonly maxBytes?: number | undefined;
}

async function get(url: string, opts: KdsClientOptions): Promise<Uint8Array> {
  const client = createHttpClient({ ca: opts.ca, timeoutMs: opts.timeoutMs ?? 15_000, maxBytes: opts.maxBytes ?? 1 << 20, retries: 1 });
  try {
    const r = await client.get(url);
    if (r.status === 404) throw fail('collateral.not_found', `KDS has no such resource (${r.status})`, { url, status: r.status });
    if (r.status < 200 || r.status >= 300) throw fail('upstream.unavailable', `KDS answered ${r.status}`, { url, status: r.status });
    return new Uint8Array(r.body);
  } finally {
    client.close();
  }
}

/** KDS serves certificates as DER (VCEK) or PEM (cert_chain); accept either. */
function certificates(body: Uint8Array): Uint8Array[] {
  const text = Buffer.from(body).toString('latin1');
  if (text.includes('-----BEGIN CERTIFICATE-----')) return pemToDer(text);
  return [body];
}

/** Fetches the VCEK for a chip and REPORTED_TCB (DER). */
export async function fetchVcek(opts: KdsClientOptions, product: AmdProduct, chipId: Uint8Array, tcb: KdsTcb): Promise<Uint8Array> {
  const [vcek] = certificates(await get(kdsVcekUrl(opts.baseUrl, product, chipId, tcb), opts));
  if (!vcek) throw fail('upstream.unavailable', 'KDS returned no VCEK');
  return vcek;
}

/** Fetches the ASK (or ASVK) and ARK of a product, as DER, in KDS order. */
export async function fetchCertChain(opts: KdsClientOptions, product: AmdProduct, signingKey: 'vcek' | 'vlek' = 'vcek'): Promise<Uint8Array[]> {
  return certificates(await get(kdsCertChainUrl(opts.baseUrl, product, signingKey), opts));
}

/** Fetches the product's CRL (DER). */
export async function fetchCrl(opts: KdsClientOptions, product: AmdProduct, signingKey: 'vcek' | 'vlek' = 'vcek'): Promise<Uint8Array> {
  return get(kdsCrlUrl(opts.baseUrl, product, signingKey), opts);
}
