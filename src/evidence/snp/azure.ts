import { createHash } from 'node:crypto';
import { b64url, equalBytes, isAllZero, toHex } from '../../core/bytes.js';
import { fail, isConclaveError } from '../../core/errors.js';
import { type Verified, markVerified } from '../../core/verified.js';
import { pemToDer } from '../../core/x509.js';
import { isHclReport, parseHclReport, parseHclRuntimeClaims } from '../azure-vtpm/hcl.js';
import type { SnpCertificates } from './chain.js';
import { type SnpRuntimeData, type SnpVerificationResult, type SnpVerifyOptions, verifySnpReport } from './verify.js';

export interface AzureHclVerifyOptions extends SnpVerifyOptions {
  /** Runtime data to bind instead of the variable data the HCL report carries. */
  readonly runtimeData?: Uint8Array | undefined;
}

/**
 * The Azure CVM evidence JSON of confidential-containers/trustee (`az-snp-vtpm` verifier,
 * `deps/verifier/test_data/az-snp-vtpm/evidence-*.json`): `{quote: {signature, message, pcrs},
 * report: [HCL report bytes], vcek: PEM}`. The vTPM quote is exposed but not verified here.
 */
export interface TrusteeAzSnpVtpmEvidence {
  readonly hclReport: Uint8Array;
  readonly vcekPem: string | undefined;
  readonly quote: unknown;
}

function byteArray(v: unknown): Uint8Array | undefined {
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) return Uint8Array.from(v as number[]);
  if (typeof v === 'string' && /^[A-Za-z0-9+/_-]+=*$/.test(v)) return new Uint8Array(Buffer.from(v, 'base64'));
  return undefined;
}

/** Reads the trustee az-snp-vtpm evidence JSON; undefined when the bytes are not that form. */
export function parseTrusteeAzSnpVtpmEvidence(input: Uint8Array): TrusteeAzSnpVtpmEvidence | undefined {
  if (input.byteLength === 0 || (input[0] !== 0x7b && input[0] !== 0x20 && input[0] !== 0x0a)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(input).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const d = doc as Record<string, unknown>;
  const hcl = byteArray(d.report);
  if (!hcl || !isHclReport(hcl)) return undefined;
  return { hclReport: hcl, vcekPem: typeof d.vcek === 'string' ? d.vcek : undefined, quote: d.quote };
}

/** REPORT_DATA must be H(data) followed by zeros to 64 bytes (evidence-and-collateral §4.3). */
export function checkReportDataBinding(reportData: Uint8Array, data: Uint8Array, hash: 'sha256' | 'sha384' | 'sha512', fullWidth: boolean): string[] {
  const digest = new Uint8Array(createHash(hash).update(data).digest());
  if (!equalBytes(reportData.subarray(0, digest.byteLength), digest)) {
    throw fail('snp.runtime_data_mismatch', `REPORT_DATA does not start with ${hash.toUpperCase()} of the runtime data`, {
      expected: toHex(digest),
      reportData: toHex(reportData),
    });
  }
  if (!isAllZero(reportData.subarray(digest.byteLength))) {
    if (fullWidth) throw fail('snp.runtime_data_mismatch', 'REPORT_DATA is not zero after the runtime-data hash', { reportData: toHex(reportData) });
    return ['REPORT_DATA is not zero after the runtime-data hash'];
  }
  return [];
}

/**
 * Verifies an Azure confidential VM HCL report (binary, or trustee's az-snp-vtpm evidence JSON): the SNP
 * report inside it, then REPORT_DATA = H(runtime data) ‖ zeros, and exposes the runtime keys
 * (HCLAkPub, HCLEkPub), user data and VM configuration.
 */
export function verifyAzureHclReport(input: Uint8Array, certs: SnpCertificates, opts: AzureHclVerifyOptions): Verified<SnpVerificationResult> {
  let hclBytes = input;
  let evidenceCerts = certs;
  const trustee = parseTrusteeAzSnpVtpmEvidence(input);
  if (trustee) {
    hclBytes = trustee.hclReport;
    if (!certs.vcek && trustee.vcekPem) {
      const [vcek, ...rest] = pemToDer(trustee.vcekPem);
      evidenceCerts = { ...certs, vcek, chain: [...(certs.chain ?? []), ...rest] };
    }
  }
  let hcl: ReturnType<typeof parseHclReport>;
  try {
    hcl = parseHclReport(hclBytes);
  } catch (e) {
    // The HCL wrapper is part of SNP evidence here, so report its faults in the snp.* family.
    if (isConclaveError(e, 'evidence.truncated')) throw fail('snp.truncated', e.message, e.detail, e);
    if (isConclaveError(e, 'evidence.malformed')) throw fail('snp.malformed', e.message, e.detail, e);
    if (isConclaveError(e, 'evidence.unsupported')) throw fail('snp.unsupported', e.message, e.detail, e);
    throw e;
  }
  if (hcl.reportType !== 'snp') throw fail('snp.unsupported', 'the HCL report holds a TDX report, not an SNP report', { reportType: hcl.reportType });
  const result = verifySnpReport(hcl.hwReport, evidenceCerts, opts);
  const bound = opts.runtimeData ?? hcl.runtimeData;
  const warnings = [...result.warnings, ...checkReportDataBinding(hexBytes(result.reportData), bound, hcl.hashType, true)];
  let claims: ReturnType<typeof parseHclRuntimeClaims> | undefined;
  try {
    claims = parseHclRuntimeClaims(bound);
  } catch {
    warnings.push('HCL runtime data is not a JSON object');
  }
  const runtimeData: SnpRuntimeData = {
    format: 'azure-hcl',
    data: b64url(bound),
    ...(claims
      ? {
          json: claims.json,
          keys: claims.keys,
          ...(claims.hclAkPub ? { hclAkPub: claims.hclAkPub } : {}),
          ...(claims.hclEkPub ? { hclEkPub: claims.hclEkPub } : {}),
          ...(claims.userData !== undefined ? { userData: claims.userData } : {}),
          ...(claims.vmConfiguration ? { vmConfiguration: claims.vmConfiguration } : {}),
        }
      : {}),
  };
  return markVerified({ ...result, runtimeData, warnings });
}

function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
