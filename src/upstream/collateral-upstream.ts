import { fail } from '../core/errors.js';
import type { CollateralKind, CollateralMeta } from '../collateral/cache/item.js';
import type { HttpClient, HttpResult } from './http.js';

/**
 * The upstreams of the collateral service: Intel PCS (or any PCCS / THIM / another Conclave, which speak
 * the same paths) and AMD KDS. A configured URL is the service base; the PCS paths
 * `/{sgx|tdx}/certification/{v3|v4}/…` and KDS paths `/{vcek|vlek}/v1/…` are appended here.
 */
export interface CollateralUpstreamOptions {
  readonly intel?: string | undefined;
  readonly intelApiKey?: string | undefined;
  readonly amd?: string | undefined;
  readonly http: HttpClient;
}

export interface CollateralUpstream {
  readonly hasIntel: boolean;
  readonly hasAmd: boolean;
  /** GET `{intel}/{tee}/certification/{version}/{path}?{query}`; 404 → collateral.not_found. */
  intel(tee: 'sgx' | 'tdx', version: 'v3' | 'v4', path: string, query: Record<string, string>): Promise<HttpResult>;
  /** The Intel SGX Root CA CRL: from a PCCS-like upstream's `rootcacrl`, or Intel's certificate site. */
  intelRootCaCrl(): Promise<HttpResult>;
  /** GET `{amd}{path}` (path begins with /vcek/ or /vlek/). */
  amd(path: string): Promise<HttpResult>;
  /** Whether a URL belongs to a configured upstream (refresh replays stored sources only there). */
  owns(url: string): boolean;
}

const INTEL_PCS_HOST = 'api.trustedservices.intel.com';
const INTEL_ROOT_CA_CRL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

function checked(r: HttpResult): HttpResult {
  if (r.status >= 200 && r.status < 300) return r;
  if (r.status === 404 || r.status === 410) throw fail('collateral.not_found', `upstream has no such collateral (${r.status})`, { url: r.url, status: r.status });
  throw fail('upstream.unavailable', `upstream answered ${r.status}`, { url: r.url, status: r.status });
}

export function createCollateralUpstream(o: CollateralUpstreamOptions): CollateralUpstream {
  const intelBase = o.intel?.replace(/\/+$/, '').replace(/\/(sgx|tdx)\/certification\/v[34]$/, '');
  const amdBase = o.amd?.replace(/\/+$/, '');
  const keyHeader = o.intelApiKey ? { 'Ocp-Apim-Subscription-Key': o.intelApiKey } : undefined;
  const needIntel = () => {
    if (!intelBase) throw fail('collateral.not_found', 'collateral is not cached and no Intel upstream is configured');
    return intelBase;
  };
  return {
    hasIntel: intelBase !== undefined,
    hasAmd: amdBase !== undefined,
    async intel(tee, version, path, query) {
      const qs = new URLSearchParams(query).toString();
      const url = `${needIntel()}/${tee}/certification/${version}/${path}${qs ? `?${qs}` : ''}`;
      return checked(await o.http.get(url, keyHeader));
    },
    async intelRootCaCrl() {
      const base = needIntel();
      const url = new URL(base).host === INTEL_PCS_HOST ? INTEL_ROOT_CA_CRL : `${base}/sgx/certification/v4/rootcacrl`;
      return checked(await o.http.get(url, keyHeader));
    },
    async amd(path) {
      if (!amdBase) throw fail('collateral.not_found', 'collateral is not cached and no AMD upstream is configured');
      return checked(await o.http.get(`${amdBase}${path}`));
    },
    owns(url) {
      return (intelBase !== undefined && url.startsWith(intelBase)) || (amdBase !== undefined && url.startsWith(amdBase)) || url === INTEL_ROOT_CA_CRL;
    },
  };
}

function decoded(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** The header-borne facts of an Intel answer (header names per API version, §3.1). */
export function intelMeta(kind: CollateralKind, h: Readonly<Record<string, string>>): CollateralMeta {
  const chain =
    kind === 'tcb'
      ? (h['tcb-info-issuer-chain'] ?? h['sgx-tcb-info-issuer-chain'])
      : kind === 'pckcrl'
        ? h['sgx-pck-crl-issuer-chain']
        : kind === 'pckcert' || kind === 'pckcerts'
          ? h['sgx-pck-certificate-issuer-chain']
          : kind === 'tcb_eval_numbers'
            ? h['tcb-evaluation-data-numbers-issuer-chain']
            : (h['sgx-enclave-identity-issuer-chain'] ?? h['sgx-qe-identity-issuer-chain']);
  return {
    contentType: h['content-type'] ?? 'application/octet-stream',
    issuerChain: decoded(chain),
    tcbm: h['sgx-tcbm'],
    fmspc: h['sgx-fmspc'],
    caType: h['sgx-pck-certificate-ca-type'],
  };
}
