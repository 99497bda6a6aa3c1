/**
 * Conclave SDK: the TEE side of Secure Key Release. Imports only src/core, the pure RFC 9162 code of
 * src/log and its own files, so it can ship as its own package. See docs/sdk.md.
 */
export { type AttestOptions, MAA_API_VERSION, attest } from './attest.js';
export { type AttestAndReleaseOptions, type AttestAndReleaseResult, attestAndRelease, wrappingJwks } from './attest-and-release.js';
export { type ClientCredential, type Credential, getAccessToken } from './credential.js';
export { type CaInput, endpointUrl } from './http.js';
export { type InclusionOptions, type LogInclusion, type LogReceipt, checkReleaseEntry, verifyLogInclusion } from './log.js';
export {
  RELEASE_ENC_HASH,
  type ReleaseEnc,
  type ReleaseKeyOptions,
  type ReleasePayload,
  type ReleaseTrustOptions,
  type ReleasedKey,
  releaseKey,
  releasedKeyOf,
  unwrapKeyHsm,
  verifyReleaseJws,
  checkReleaseAnswersRequest,
} from './release.js';
export { type AzureVtpmSourceOptions, HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, azureVtpmSource } from './sources/azure-vtpm.js';
export { type AmdProductName, type CollateralSourceOptions, collateralSource, fetchVcekChain, kdsVcekPath, productOfReport } from './sources/collateral.js';
export { type DetectOptions, type DetectedSource, type SourcePreference, detectEvidenceSource } from './sources/detect.js';
export { b64urlPadded, maaReportData, sevSnpVmBody, snpPartsOfBody, tdxVmBody } from './sources/maa-body.js';
export { type GpuEvidenceCollector, type NvattestOptions, checkCollected, nvattestCollector, simulatedGpuCollector } from './sources/nvidia-gpu.js';
export { type SimSourceOptions, simSource } from './sources/sim.js';
export { SNP_CERT_GUIDS, certChainPemOf, encodeSnpCertTable, parseSnpCertTable } from './sources/snp-certs.js';
export { TSM_REPORT_ROOT, type TsmFs, type TsmReport, type TsmSourceOptions, requestTsmReport, tsmSource } from './sources/tsm.js';
export type { EvidenceOptions, EvidenceSource, MaaAttestPath, MaaEvidence, SnpReportWithCerts, Tee } from './sources/types.js';
export { type DecodedToken, type VerifyTokenOptions, decodeToken, verifyAttestationToken } from './token.js';
