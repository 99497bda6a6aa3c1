import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fail } from '../core/errors.js';
import { pemToDer } from '../core/x509.js';
import { type KdsTcb, kdsCertChainUrl, kdsCrlUrl, kdsVcekUrl } from '../collateral/amd/kds.js';
import type { AmdProduct } from '../collateral/roots/amd.js';

/** How to reach an AMD KDS-compatible service (AMD's, or another Conclave, or a test server). */
export interface KdsClientOptions {
  readonly baseUrl: string;
  /** Extra trusted CA certificates (PEM) for https. */
  readonly ca?: string | Buffer | undefined;
  readonly timeoutMs?: number | undefined;
  /** Response size limit; KDS answers are a few KiB. */
  readonly maxBytes?: number | undefined;
}

function get(url: string, opts: KdsClientOptions): Promise<Uint8Array> {
  const maxBytes = opts.maxBytes ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      u,
      { method: 'GET', timeout: opts.timeoutMs ?? 15_000, ...(u.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            req.destroy();
            reject(fail('upstream.unavailable', 'KDS response exceeds the size limit', { url, maxBytes }));
          } else chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status === 404) reject(fail('collateral.not_found', `KDS has no such resource (${status})`, { url, status }));
          else if (status < 200 || status >= 300) reject(fail('upstream.unavailable', `KDS answered ${status}`, { url, status }));
          else resolve(new Uint8Array(Buffer.concat(chunks)));
        });
        res.on('error', (e) => reject(fail('upstream.unavailable', 'KDS response failed', { url }, e)));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => reject(fail('upstream.unavailable', `KDS request failed: ${e.message}`, { url }, e)));
    req.end();
  });
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
