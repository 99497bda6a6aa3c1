/**
 * Fetches the verification collateral of one quote from any Intel PCS-compatible service: Intel PCS
 * (api.trustedservices.intel.com), a PCCS, Azure THIM/acccache, or another Conclave, API v3 or v4
 * (evidence-and-collateral §3.1–§3.4). Bodies are kept as received so signatures verify over them.
 */
import { type QuoteCollateral, collateralFromPcsResponses } from '../evidence/dcap/collateral.js';
import { fail } from '../core/errors.js';
import { type HttpClient, type HttpResult, createHttpClient } from './http.js';

/** Intel's published root CA CRL, used when the service has no `rootcacrl` route (Intel PCS). */
const DEFAULT_TIMEOUT_MS = 30_000;

export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

export interface FetchCollateralOptions {
  /** e.g. `https://api.trustedservices.intel.com/sgx/certification/v4/`, `https://pccs:8081`. */
  readonly baseUrl: string;
  readonly fmspc: string;
  readonly tee: 'sgx' | 'tdx';
  /** The CA that issued the PCK certificate, from its issuer CN. */
  readonly pckCa: 'processor' | 'platform';
  /** PEM CA bundle to trust for TLS (a PCCS with its own certificate). */
  readonly ca?: string | Uint8Array;
  /**
   * One total deadline for the whole fetch, connect to the last byte of the last answer (default 30 s),
   * when no long-lived `http` client is given (that one has its own deadlines).
   */
  readonly timeoutMs?: number;
  readonly rootCaCrlUrl?: string;
  /** A long-lived client to reuse (keep-alive, coalescing); by default one is made per call. */
  readonly http?: HttpClient;
}

type Response = HttpResult;

/** A fetch's options with the time its total deadline ends (ms since the epoch). */
type Fetching = FetchCollateralOptions & { readonly endsAt: number };

async function get(url: string, opts: Fetching): Promise<Response> {
  if (opts.http) return opts.http.get(url);
  const left = opts.endsAt - Date.now();
  if (left <= 0) throw fail('upstream.unavailable', `no complete collateral within ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`, { url });
  const client = createHttpClient({ ca: opts.ca === undefined ? undefined : Buffer.from(opts.ca), timeoutMs: left, overallTimeoutMs: left, retries: 1 });
  try {
    return await client.get(url);
  } finally {
    client.close();
  }
}

async function getOk(url: string, opts: Fetching): Promise<Response> {
  const res = await get(url, opts);
  if (res.status === 404) throw fail('collateral.not_found', `collateral service has no ${new URL(url).pathname}`, { url, status: 404 });
  if (res.status !== 200) throw fail('upstream.unavailable', `collateral service answered ${res.status} for ${new URL(url).pathname}`, { url, status: res.status });
  return res;
}

/** An issuer-chain header, URL-decoded (PCS sends it percent-encoded). */
function chainHeader(res: Response, names: readonly string[], url: string): string {
  for (const n of names) {
    const s = res.headers[n.toLowerCase()];
    if (!s) continue;
    if (!s.includes('%')) return s;
    try {
      return decodeURIComponent(s);
    } catch {
      throw fail('collateral.malformed', `the ${n} header is not URL-encoded PEM`, { url, header: n });
    }
  }
  throw fail('collateral.malformed', `response lacks the ${names[0]} header`, { url, header: names[0] });
}

/** `{origin}/{sgx|tdx}/certification/{v3|v4}` roots for the SGX and TDX routes of a base URL. */
export function certificationRoots(baseUrl: string): { sgx: string; tdx: string; version: 'v3' | 'v4' } {
  const u = new URL(baseUrl);
  const m = /^(.*?)\/(sgx|tdx)\/certification\/(v[34])\/?$/.exec(u.pathname);
  const prefix = m ? m[1]! : u.pathname.replace(/\/$/, '');
  const version = (m?.[3] ?? 'v4') as 'v3' | 'v4';
  const base = `${u.origin}${prefix}`;
  return { sgx: `${base}/sgx/certification/${version}`, tdx: `${base}/tdx/certification/v4`, version };
}

/** Fetches TCB info, QE identity, PCK CRL (+ chains) and the root CA CRL for one FMSPC. */
export async function fetchQuoteCollateral(options: FetchCollateralOptions): Promise<QuoteCollateral> {
  if (!/^[0-9a-fA-F]{12}$/.test(options.fmspc)) throw fail('request.invalid', 'FMSPC must be 12 hex digits');
  const opts: Fetching = { ...options, endsAt: Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS) };
  const roots = certificationRoots(opts.baseUrl);
  const teeRoot = opts.tee === 'tdx' ? roots.tdx : roots.sgx;
  const [tcb, qe, pckCrl] = await Promise.all([
    getOk(`${teeRoot}/tcb?fmspc=${opts.fmspc.toUpperCase()}`, opts),
    getOk(`${teeRoot}/qe/identity`, opts),
    getOk(`${roots.sgx}/pckcrl?ca=${opts.pckCa}&encoding=der`, opts),
  ]);
  let rootCrl: Response;
  try {
    rootCrl = await getOk(`${roots.sgx}/rootcacrl`, opts);
  } catch {
    rootCrl = await getOk(opts.rootCaCrlUrl ?? INTEL_ROOT_CA_CRL_URL, opts);
  }
  const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
  const crl = (b: Uint8Array): string | Uint8Array => (/^[0-9a-fA-F\s]+$/.test(text(b)) || text(b).startsWith('-----BEGIN') ? text(b) : b);
  return collateralFromPcsResponses({
    tcbInfoResponse: tcb.body,
    tcbInfoIssuerChain: chainHeader(tcb, ['TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'], 'tcb'),
    qeIdentityResponse: qe.body,
    qeIdentityIssuerChain: chainHeader(qe, ['SGX-Enclave-Identity-Issuer-Chain', 'SGX-QE-Identity-Issuer-Chain', 'Enclave-Identity-Issuer-Chain'], 'qe/identity'),
    pckCrl: crl(pckCrl.body),
    pckCrlIssuerChain: chainHeader(pckCrl, ['SGX-PCK-CRL-Issuer-Chain'], 'pckcrl'),
    rootCaCrl: crl(rootCrl.body),
  });
}
