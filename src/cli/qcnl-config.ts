/**
 * `conclave collateral qcnl-config`: a ready `/etc/sgx_default_qcnl.conf` for Intel's QCNL/QPL on a TEE
 * host, pointing at this server. QCNL reads the keys below (DCAP QuoteGeneration/qcnl/qcnl_config.cpp);
 * the values follow the files Intel ships (qcnl/linux/sgx_default_qcnl.conf for a PCCS,
 * sgx_default_qcnl_azure.conf for Azure's THIM layout), with Conclave in every URL.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CliError } from './output.js';

export interface QcnlConfigOptions {
  /** Conclave's base URL as the TEE host reaches it. */
  readonly url: string;
  /** Azure THIM style: PCK certificates from the THIM prefix first (local_pck_url + Metadata header). */
  readonly thim: boolean;
  /** QCNL `pccs_api_version`: "3.1" (DER CRLs, crl?uri=) or "3.0" (hex CRLs, rootcacrl). */
  readonly apiVersion?: '3.0' | '3.1';
  /** QCNL `tcb_update_type`. */
  readonly tcbUpdate?: 'standard' | 'early';
}

/** The configuration object; key order is the order of Intel's shipped files. */
export function qcnlConfig(o: QcnlConfigOptions): Record<string, unknown> {
  let base: URL;
  try {
    base = new URL(o.url);
  } catch {
    throw new CliError(`--url ${o.url} is not a URL`, 'e.g. --url https://conclave.example:8443', 2);
  }
  if (base.protocol !== 'https:') throw new CliError('QCNL must reach Conclave over https', 'pass the https URL conclave serve listens on', 2);
  const root = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
  const pccs = `${root}/sgx/certification/v4/`;
  const common = {
    pccs_url: pccs,
    // Never false: QCNL would then accept any certificate (curl VERIFYPEER off). Trust Conclave's CA instead.
    use_secure_cert: true,
    collateral_service: pccs,
    tcb_update_type: o.tcbUpdate ?? 'standard',
    pccs_api_version: o.apiVersion ?? '3.1',
  };
  if (!o.thim) {
    return { ...common, retry_times: 6, retry_delay: 10, pck_cache_expire_hours: 168, verify_collateral_cache_expire_hours: 168, local_cache_only: false };
  }
  return {
    ...common,
    retry_times: 6,
    retry_delay: 5,
    local_pck_url: `${root}/metadata/THIM/sgx/certification/v4/`,
    pck_cache_expire_hours: 48,
    verify_collateral_cache_expire_hours: 48,
    local_cache_only: false,
    custom_request_options: { get_cert: { headers: { metadata: 'true' }, params: { 'api-version': '2021-07-22-preview' } } },
  };
}

/**
 * What to run on a TEE host so that QCNL (libcurl with the system trust store) trusts Conclave's CA:
 * printed to stderr next to the configuration, with the CA's fingerprint to compare.
 */
export function trustInstructions(caFile: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(caFile));
  } catch {
    throw new CliError(`--ca ${caFile} is not a PEM or DER certificate`, 'pass the CA that issued Conclave’s TLS certificate (<data-dir>/tls/ca.pem)', 2);
  }
  if (!cert.ca) throw new CliError(`--ca ${caFile} is not a CA certificate`, 'pass the issuing CA (<data-dir>/tls/ca.pem), not the server certificate', 2);
  return [
    `# QCNL verifies Conclave's TLS certificate with the host's trust store. CA: ${cert.subject.replace(/\n/g, ', ')}`,
    `#   SHA-256 fingerprint ${cert.fingerprint256}`,
    '# Debian/Ubuntu:',
    `#   sudo install -m 0644 ${caFile} /usr/local/share/ca-certificates/conclave-ca.crt && sudo update-ca-certificates`,
    '# RHEL/CentOS/Fedora/Azure Linux:',
    `#   sudo install -m 0644 ${caFile} /etc/pki/ca-trust/source/anchors/conclave-ca.crt && sudo update-ca-trust`,
    '# then write the configuration above to /etc/sgx_default_qcnl.conf and restart the quoting service (e.g. qgsd, aesmd).',
    '',
  ].join('\n');
}
