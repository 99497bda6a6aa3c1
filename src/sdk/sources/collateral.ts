import { fail } from '../../core/errors.js';
import { derToPem } from '../../core/x509.js';
import { type CaInput, errorMessageOf, httpExchange } from '../http.js';
import { maaReportData, sevSnpVmBody } from './maa-body.js';
import type { EvidenceOptions, EvidenceSource, MaaEvidence, SnpReportWithCerts } from './types.js';
import { decodeTcb, kdsTcbQuery, tcbLayoutOf } from '../../evidence/snp/report.js';

export type AmdProductName = 'Milan' | 'Genoa' | 'Turin';

export interface CollateralSourceOptions {
  /** Base URL of a KDS-compatible service (`https://kdsintf.amd.com`, a Conclave) or of Azure IMDS for THIM. */
  readonly url: string;
  /** `kds`: `/vcek/v1/{product}/{hwid}?…` + `/vcek/v1/{product}/cert_chain`; `thim`: `/metadata/THIM/amd/certification`. */
  readonly kind?: 'kds' | 'thim';
  /** Needed for v2 reports, which do not say which product they come from. */
  readonly product?: AmdProductName;
  readonly ca?: CaInput;
}

/** Product from the report's CPUID fields (v3+; evidence-and-collateral §4.1, snpguest get_processor_model). */
export function productOfReport(report: Uint8Array): AmdProductName | undefined {
  const version = Buffer.from(report).readUInt32LE(0);
  if (version < 3) return undefined;
  const family = report[0x188]!;
  const model = report[0x189]!;
  if (family === 0x19 && model <= 0x0f) return 'Milan';
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) return 'Genoa';
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

/** The KDS VCEK path and query for a report: hwid = CHIP_ID (Turin: its first 8 bytes), SPLs of REPORTED_TCB. */
export function kdsVcekPath(report: Uint8Array, product: AmdProductName): string {
  if (report.byteLength < 0x1e0) throw fail('evidence.truncated', 'SNP report is shorter than its CHIP_ID field', { length: report.byteLength });
  const layout = tcbLayoutOf(product);
  const q = kdsTcbQuery(decodeTcb(report.subarray(0x180, 0x188), layout), layout);
  const chipId = Buffer.from(report.subarray(0x1a0, 0x1e0));
  return `/vcek/v1/${product}/${(product === 'Turin' ? chipId.subarray(0, 8) : chipId).toString('hex')}?${q}`;
}

async function get(url: string, ca: CaInput | undefined, headers: Record<string, string> = {}): Promise<Uint8Array> {
  const res = await httpExchange(url, { ca, headers });
  if (res.status !== 200) {
    const remote = errorMessageOf(res.text);
    throw fail('sdk.http_error', `collateral request failed: HTTP ${res.status}${remote.message ? `: ${remote.message}` : ''}`, { status: res.status, url: new URL(url).pathname });
  }
  return res.bytes;
}

/** PEM VCEK ‖ ASK ‖ ARK for a report from the collateral service. */
export async function fetchVcekChain(report: Uint8Array, opts: CollateralSourceOptions): Promise<string> {
  const base = opts.url.replace(/\/+$/, '');
  if ((opts.kind ?? 'kds') === 'thim') {
    const text = Buffer.from(await get(`${base}/metadata/THIM/amd/certification`, opts.ca, { Metadata: 'true' })).toString('utf8');
    let body: { vcekCert?: unknown; certificateChain?: unknown } | null;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw fail('sdk.http_error', 'the THIM answer is not JSON', { url: '/metadata/THIM/amd/certification' });
    }
    if (typeof body?.vcekCert !== 'string' || typeof body.certificateChain !== 'string') throw fail('sdk.http_error', 'THIM answer lacks vcekCert/certificateChain');
    return body.vcekCert + body.certificateChain;
  }
  const named = productOfReport(report);
  if (opts.product && named && opts.product !== named) {
    throw fail('request.invalid', `the SNP report's CPUID names ${named}, not the configured collateral product ${opts.product}`, { expected: opts.product, actual: named });
  }
  const product = named ?? opts.product;
  if (!product) throw fail('request.invalid', 'the SNP report (v2) does not name its product: set the collateral product (Milan, Genoa or Turin)');
  const vcek = await get(`${base}${kdsVcekPath(report, product)}`, opts.ca);
  const chain = Buffer.from(await get(`${base}/vcek/v1/${product}/cert_chain`, opts.ca)).toString('utf8');
  // KDS answers the VCEK as DER; a cache may answer PEM.
  const vcekPem = vcek[0] === 0x30 ? derToPem(vcek) : Buffer.from(vcek).toString('utf8');
  return vcekPem + chain;
}

/**
 * Wraps a source that yields raw SNP reports (configfs-tsm without auxblob certificates) and attaches
 * the VCEK chain from a THIM/KDS-compatible collateral URL.
 */
export function collateralSource(inner: EvidenceSource, opts: CollateralSourceOptions): EvidenceSource {
  async function withCerts(reportData: Uint8Array): Promise<SnpReportWithCerts> {
    if (!inner.getSnpReport) throw fail('sdk.evidence_source_unavailable', `source ${inner.name} produces no raw SEV-SNP report to attach collateral to`, { source: inner.name });
    const r = await inner.getSnpReport(reportData);
    return { report: r.report, vcekCertChainPem: await fetchVcekChain(r.report, opts) };
  }
  return {
    name: `${inner.name}+collateral`,
    describe: () => `${inner.describe()}, certificates from ${opts.url} (${opts.kind ?? 'kds'})`,
    async getEvidence(runtimeData: Uint8Array, eo: EvidenceOptions = {}): Promise<MaaEvidence> {
      const r = await withCerts(maaReportData(runtimeData));
      return sevSnpVmBody({ report: r.report, vcekCertChainPem: r.vcekCertChainPem, runtimeData, ...(eo.runtimeDataType ? { runtimeDataType: eo.runtimeDataType } : {}) });
    },
    getSnpReport: withCerts,
  };
}
