/**
 * NVIDIA GPU evidence (Hopper, Blackwell in CC mode): the SPDM 1.1 attestation report, its device
 * certificate chain to the pinned NVIDIA Device Identity CA, OCSP, and the driver/VBIOS reference
 * integrity manifests. Parse with {@link parseGpuReport}, verify with {@link verifyGpuEvidence}, judge
 * measurements with {@link validateGpuMeasurements}.
 */
export { DeviceChainCache, type GpuArchitecture, type VerifiedDeviceChain, fwidOf, parseDeviceChain, verifyDeviceChain } from './chain.js';
export { type MeasurementComparison, type MeasurementMismatch, type RimSource, compareMeasurements } from './measurements.js';
export { type GpuFeatureFlag, type OpaqueData, OPAQUE_TYPE, parseOpaqueData } from './opaque.js';
export { type GpuReport, type GpuReportFields, type MeasurementBlock, SPDM_REQUEST_LAYOUT, encodeGpuReport, parseGpuReport } from './report.js';
export { type Rim, type RimMeasurement, RimCache, verifyRim } from './rim.js';
export { NVIDIA_DEVICE_IDENTITY_CA, NVIDIA_DEVICE_IDENTITY_CA_SHA256, NVIDIA_RIM_ROOT_CA, NVIDIA_RIM_ROOT_CA_SHA256 } from './roots.js';
export {
  type AuthenticGpuEvidence,
  type GpuEvidence,
  type GpuOcspInput,
  type GpuVerificationResult,
  type GpuVerifyOptions,
  GpuVerifierCache,
  authenticateGpuEvidence,
  completeGpuVerification,
  rimIdsOf,
  validateGpuMeasurements,
  verifyGpuEvidence,
} from './verify.js';
