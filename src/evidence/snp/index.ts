/**
 * AMD SEV-SNP evidence: bare attestation reports, Azure confidential VM HCL reports, and MAA
 * `SevSnpVm` evidence of confidential containers. Parse with {@link parseSnpReport}, verify with
 * {@link verifySnpReport} / {@link verifyAzureHclReport} / {@link verifyMaaSevSnpEvidence}.
 */
import { fail } from '../../core/errors.js';
import { isHclReport } from '../azure-vtpm/hcl.js';
import { parseTrusteeAzSnpVtpmEvidence } from './azure.js';
import { SNP_REPORT_SIZE, SNP_SUPPORTED_VERSIONS } from './report.js';

export { type AzureHclVerifyOptions, type TrusteeAzSnpVtpmEvidence, checkReportDataBinding, parseTrusteeAzSnpVtpmEvidence, verifyAzureHclReport } from './azure.js';
export {
  type SnpCertificates,
  type SnpTrustAnchor,
  type SnpTrustAnchors,
  type VekChainOptions,
  type VerifiedVekChain,
  SnpVerifierCache,
  productNamedBy,
  verifyVekChain,
} from './chain.js';
export {
  type MaaSevSnpEvidence,
  type MaaSevSnpVerifyOptions,
  parseMaaSevSnpEvidence,
  verifyMaaSevSnpEvidence,
  verifyMaaSevSnpEvidenceAsync,
  verifyParsedMaaSevSnpEvidence,
  verifyParsedMaaSevSnpEvidenceAsync,
} from './maa.js';
export {
  SNP_REPORT_LAYOUT,
  SNP_REPORT_SIZE,
  SNP_SIGNED_SIZE,
  type SnpFirmwareVersion,
  type SnpGuestPolicy,
  type SnpPlatformInfo,
  type SnpReport,
  type SnpReportFields,
  type SnpSignerInfo,
  type SnpTcb,
  type SnpTcbLayout,
  type SnpTcbParts,
  decodePlatformInfo,
  decodePolicy,
  decodeTcb,
  encodeSnpReport,
  encodeTcb,
  parseSnpReport,
  productFromCpuid,
  setSnpReportSignature,
  tcbLayoutOf,
} from './report.js';
export { signSnpReport } from './sign.js';
export {
  type SnpCpuid,
  type SnpInitTimeData,
  type SnpRuntimeData,
  type SnpVerificationResult,
  type SnpVerifyOptions,
  verifySnpReport,
} from './verify.js';

export type SnpEvidenceFormat = 'raw' | 'azure-hcl' | 'maa-json';

/**
 * Detects the form of SNP evidence: a bare 1184-byte report, an Azure HCL report (binary "HCLA", or
 * trustee's az-snp-vtpm evidence JSON that wraps one), or MAA SevSnpVm JSON (the inner evidence or
 * the whole request body). Throws `snp.malformed` when it is none of them.
 */
export function detectSnpEvidenceFormat(bytes: Uint8Array): SnpEvidenceFormat {
  if (isHclReport(bytes)) return 'azure-hcl';
  let i = 0;
  while (i < bytes.byteLength && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x7b) {
    if (parseTrusteeAzSnpVtpmEvidence(bytes.subarray(i))) return 'azure-hcl';
    const text = Buffer.from(bytes).toString('utf8');
    if (text.includes('"SnpReport"') || text.includes('"report"')) return 'maa-json';
    throw fail('snp.malformed', 'JSON evidence is neither MAA SevSnpVm evidence nor trustee az-snp-vtpm evidence');
  }
  if (bytes.byteLength >= SNP_REPORT_SIZE) {
    const version = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    if (SNP_SUPPORTED_VERSIONS.includes(version)) return 'raw';
  }
  if (bytes.byteLength < SNP_REPORT_SIZE) throw fail('snp.truncated', 'evidence is shorter than an SNP report', { length: bytes.byteLength });
  throw fail('snp.malformed', 'evidence is not a recognised SNP form', { length: bytes.byteLength });
}
