import { sha256 } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import type { MaaEvidence } from './types.js';

/**
 * Go's `base64.URLEncoding` (URL alphabet WITH '=' padding), which the SKR sidecar uses for every field
 * of the SevSnpVm body (evidence-and-collateral §4.4); MAA accepts it, so the SDK sends the same bytes.
 */
export function b64urlPadded(b: Uint8Array | string): string {
  return (typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** REPORT_DATA that MAA binds runtime data with: SHA-256(runtime data) ‖ 32 zero bytes (SNP, TDX, SGX). */
export function maaReportData(runtimeData: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  out.set(sha256(runtimeData), 0);
  return out;
}

export function runtimeDataField(runtimeData: Uint8Array, dataType: 'JSON' | 'Binary' = 'JSON'): { data: string; dataType: 'JSON' | 'Binary' } {
  return { data: b64urlPadded(runtimeData), dataType };
}

/**
 * `/attest/SevSnpVm` body (sidecar `pkg/common/maa.go`): `report` = b64url(JSON{SnpReport, VcekCertChain?,
 * Endorsements?}). VcekCertChain is omitted when unknown: the service then uses its collateral cache.
 */
export function sevSnpVmBody(input: {
  report: Uint8Array;
  vcekCertChainPem?: string | undefined;
  runtimeData: Uint8Array;
  runtimeDataType?: 'JSON' | 'Binary';
  endorsements?: unknown;
}): MaaEvidence {
  const inner: Record<string, string> = { SnpReport: b64urlPadded(input.report) };
  if (input.vcekCertChainPem) inner.VcekCertChain = b64urlPadded(input.vcekCertChainPem);
  if (input.endorsements !== undefined) inner.Endorsements = b64urlPadded(JSON.stringify(input.endorsements));
  return {
    path: '/attest/SevSnpVm',
    body: { report: b64urlPadded(JSON.stringify(inner)), runtimeData: runtimeDataField(input.runtimeData, input.runtimeDataType) },
  };
}

/** `/attest/TdxVm` body: `{quote, runtimeData}` (skr-maa-protocol.md §4.1). */
export function tdxVmBody(quote: Uint8Array, runtimeData: Uint8Array, runtimeDataType: 'JSON' | 'Binary' = 'JSON'): MaaEvidence {
  return { path: '/attest/TdxVm', body: { quote: b64urlPadded(quote), runtimeData: runtimeDataField(runtimeData, runtimeDataType) } };
}

/** The raw SNP report, PEM chain and UVM endorsement inside a `/attest/SevSnpVm` body (the agent's `/attest/raw` and `/attest/combined`). */
export function snpPartsOfBody(body: Record<string, unknown>): { report: Uint8Array; vcekCertChainPem?: string; uvmReferenceInfo?: Uint8Array } {
  try {
    const inner = JSON.parse(Buffer.from(String(body.report), 'base64').toString('utf8')) as Record<string, unknown>;
    const report = new Uint8Array(Buffer.from(String(inner.SnpReport), 'base64'));
    if (report.byteLength === 0) throw new Error('empty');
    const chain = typeof inner.VcekCertChain === 'string' ? Buffer.from(inner.VcekCertChain, 'base64').toString('utf8') : undefined;
    let uvm: Uint8Array | undefined;
    if (typeof inner.Endorsements === 'string') {
      const e = JSON.parse(Buffer.from(inner.Endorsements, 'base64').toString('utf8')) as { Uvm?: unknown };
      if (Array.isArray(e.Uvm) && typeof e.Uvm[0] === 'string') uvm = new Uint8Array(Buffer.from(e.Uvm[0], 'base64'));
    }
    return { report, ...(chain ? { vcekCertChainPem: chain } : {}), ...(uvm ? { uvmReferenceInfo: uvm } : {}) };
  } catch {
    throw fail('sdk.evidence_failed', 'the evidence is not a SevSnpVm body with an SnpReport');
  }
}
