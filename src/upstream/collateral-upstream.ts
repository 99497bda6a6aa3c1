import { fail } from '../core/errors.js';
import type { CollateralUpstream } from '../collateral/ports.js';
import type { HttpClient, HttpResult } from './http.js';

export type { CollateralUpstream } from '../collateral/ports.js';

/**
 * The upstreams of the collateral service: Intel PCS (or any PCCS / THIM / another Conclave, which speak
 * the same paths) and AMD KDS. A configured URL is the service base; the PCS paths
 * `/{sgx|tdx}/certification/{v3|v4}/…` and KDS paths `/{vcek|vlek}/v1/…` are appended here.
 */
export interface CollateralUpstreamOptions {
  readonly intel?: string | undefined;
  readonly intelApiKey?: string | undefined;
  readonly amd?: string | undefined;
  /** NVIDIA RIM service base (`https://rim.attestation.nvidia.com`) or a compatible mirror (another Conclave). */
  readonly nvidiaRim?: string | undefined;
  /** NVIDIA OCSP responder URL (`https://ocsp.ndis.nvidia.com/`). */
  readonly nvidiaOcsp?: string | undefined;
  readonly http: HttpClient;
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
  const rimBase = o.nvidiaRim?.replace(/\/+$/, '').replace(/\/v1\/rim$/, '');
  const ocspUrl = o.nvidiaOcsp;
  const keyHeader = o.intelApiKey ? { 'Ocp-Apim-Subscription-Key': o.intelApiKey } : undefined;
  const needIntel = () => {
    if (!intelBase) throw fail('collateral.not_found', 'collateral is not cached and no Intel upstream is configured');
    return intelBase;
  };
  return {
    hasIntel: intelBase !== undefined,
    hasAmd: amdBase !== undefined,
    hasNvidiaRim: rimBase !== undefined,
    hasNvidiaOcsp: ocspUrl !== undefined,
    async nvidiaRim(id) {
      if (!rimBase) throw fail('collateral.not_found', 'the RIM is not cached and no NVIDIA RIM upstream is configured');
      return checked(await o.http.get(`${rimBase}/v1/rim/${encodeURIComponent(id)}`));
    },
    async nvidiaOcsp(request) {
      if (!ocspUrl) throw fail('collateral.not_found', 'the OCSP response is not cached and no NVIDIA OCSP upstream is configured');
      return checked(await o.http.request('POST', ocspUrl, { headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from(request) }));
    },
    intelIsPcs: intelBase !== undefined && new URL(intelBase).hostname.endsWith('trustedservices.intel.com'),
    async intel(tee, version, path, query) {
      const qs = new URLSearchParams(query).toString();
      const url = `${needIntel()}/${tee}/certification/${version}/${path}${qs ? `?${qs}` : ''}`;
      return checked(await o.http.get(url, keyHeader));
    },
    async intelPost(tee, version, path, body) {
      const url = `${needIntel()}/${tee}/certification/${version}/${path}`;
      return checked(await o.http.request('POST', url, { headers: { 'content-type': 'application/json', ...keyHeader }, body: JSON.stringify(body) }));
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
      return (
        (intelBase !== undefined && url.startsWith(intelBase)) ||
        (amdBase !== undefined && url.startsWith(amdBase)) ||
        (rimBase !== undefined && url.startsWith(rimBase)) ||
        (ocspUrl !== undefined && url.split('#')[0] === ocspUrl) ||
        url === INTEL_ROOT_CA_CRL
      );
    },
  };
}
