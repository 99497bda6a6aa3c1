import { createHash, verify as cryptoVerify } from 'node:crypto';
import { BoundedMap } from '../../core/bounded-map.js';
import { equalBytes, toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { type OcspResult, verifyOcspResponse } from '../../core/ocsp.js';
import { verificationTime } from '../../core/time.js';
import { type Verified, markVerified } from '../../core/verified.js';
import type { Certificate } from '../../core/x509.js';
import { DeviceChainCache, type GpuArchitecture, type VerifiedDeviceChain, verifyDeviceChain } from './chain.js';
import { type MeasurementComparison, type RimSource, compareMeasurements } from './measurements.js';
import type { GpuFeatureFlag } from './opaque.js';
import { type GpuReport, parseGpuReport } from './report.js';
import { type Rim, RimCache, verifyRim } from './rim.js';
import { NVIDIA_DEVICE_IDENTITY_CA, NVIDIA_RIM_ROOT_CA } from './roots.js';

/** One GPU's evidence as the driver hands it out (nvmlDeviceGetConfComputeGpuAttestationReport / …Certificate). */
export interface GpuEvidence {
  readonly report: Uint8Array;
  /** PEM text of `attestationCertChain`, leaf first. */
  readonly certificateChain: string;
  /** Architecture the collector declared; must agree with the chain when given. */
  readonly arch?: GpuArchitecture | undefined;
}

/** OCSP responses for the chains, already fetched (the collateral cache does the fetching). */
export interface GpuOcspInput {
  /** The DER OCSP response covering `cert` (issued by `issuer`), if one is at hand. */
  readonly lookup: (cert: Certificate, issuer: Certificate) => Uint8Array | undefined;
  /** `require`: every checked certificate needs a response; `if-present`: check those that have one. */
  readonly mode: 'require' | 'if-present';
  /** Tolerate `certificateHold` (reported as a warning), as NVIDIA's verifier can be told to. */
  readonly allowHold?: boolean;
}

export interface GpuVerifyOptions {
  readonly at: Date;
  /** The nonce the report must answer (the SPDM request nonce). */
  readonly nonce: Uint8Array;
  /** RIM documents for the report's driver and VBIOS (see {@link gpuRimIds}); absent ones are not compared. */
  readonly rims?: { readonly driver?: string | Uint8Array | undefined; readonly vbios?: string | Uint8Array | undefined } | undefined;
  readonly ocsp?: GpuOcspInput | undefined;
  /** Trust anchors; default to the pinned NVIDIA roots. Tests and the simulated TEE pass their own. */
  readonly trust?: { readonly deviceRoot?: Certificate | undefined; readonly rimRoot?: Certificate | undefined } | undefined;
  readonly cache?: GpuVerifierCache | undefined;
}

/** Verified chains, RIMs and OCSP responses by content hash; one per verifier instance; every one bounded. */
export class GpuVerifierCache {
  readonly chains: DeviceChainCache;
  readonly rims: RimCache;
  /** Verified OCSP answers by response hash and certificate: each refresh (or each caller's response) is a new key. */
  readonly ocsp: BoundedMap<string, OcspResult>;

  /** `maxEntries` bounds each memo (default: 1024 chains, 512 RIMs, 4096 OCSP answers). */
  constructor(opts: { readonly maxEntries?: number } = {}) {
    this.chains = new DeviceChainCache(opts.maxEntries ?? 1024);
    this.rims = new RimCache(opts.maxEntries ?? 512);
    this.ocsp = new BoundedMap(opts.maxEntries ?? 4096);
  }
}

/** SHA-256 of a certificate's DER, hex, once per parsed certificate object (cached chains reuse theirs). */
const certIds = new WeakMap<Certificate, string>();
function certIdOf(cert: Certificate): string {
  let id = certIds.get(cert);
  if (id === undefined) {
    id = createHash('sha256').update(cert.der).digest('hex');
    certIds.set(cert, id);
  }
  return id;
}

export type OcspStatusClaim = 'good' | 'revoked' | 'unknown' | 'not-checked';

export interface ChainStatus {
  readonly status: 'valid';
  readonly expirationDate: string;
  readonly ocspStatus: OcspStatusClaim;
  readonly revocationReason?: string;
}

export interface GpuRimResult extends ChainStatus {
  readonly id: string;
  readonly sha256: string;
  readonly version: string;
}

/** The verified facts of one GPU report; byte fields are lowercase hex. */
export interface GpuVerificationResult {
  readonly verified: true;
  readonly architecture: GpuArchitecture;
  readonly ueid: string;
  readonly hwmodel: string;
  /** SHA-256 (hex) of the device identity (BROM) certificate's key: the same GPU under any firmware. */
  readonly deviceId: string;
  readonly oemid: string | undefined;
  readonly nonce: string;
  readonly driverVersion: string;
  readonly vbiosVersion: string;
  readonly driverRimId: string;
  readonly vbiosRimId: string;
  readonly fwid: string | undefined;
  /** null when the report carries no FWID (drivers before 550). */
  readonly fwidMatch: boolean | null;
  readonly featureFlag: GpuFeatureFlag | undefined;
  /** PROTECTED_PCIE_STATUS (0x55 SPT, 0xAA PPCIe), when the report has it. */
  readonly protectedPcieStatus: number | undefined;
  /** NVSwitch PDIs (PPCIe), hex. */
  readonly switchPdis: readonly string[];
  readonly opaqueDataVersion: number | undefined;
  readonly nvdec0Status: number | undefined;
  /** SPDM measurement values, by 1-based index. */
  readonly measurements: Readonly<Record<number, string>>;
  readonly deviceChain: ChainStatus;
  readonly driverRim: GpuRimResult | undefined;
  readonly vbiosRim: GpuRimResult | undefined;
  readonly measurementComparison: MeasurementComparison | undefined;
  /** `success` when every active golden value of both RIMs matched; `not-compared` without RIMs. */
  readonly measres: 'success' | 'fail' | 'not-compared';
  readonly trailingBytes: number;
  readonly warnings: readonly string[];
}

/** The RIM ids of a report (gpu-attestation §6): driver RIM by architecture and version, VBIOS RIM by project/SKU/version. */
export function rimIdsOf(report: GpuReport, arch: GpuArchitecture): { driver: string; vbios: string } {
  const o = report.opaque;
  if (!o.driverVersion || !o.vbiosVersion) throw fail('gpu.malformed', 'the report names no driver or VBIOS version', { field: 'DRIVER_VERSION/VBIOS_VERSION' });
  if (!o.project || !o.projectSku || !o.chipSku) throw fail('gpu.malformed', 'the report names no project, project SKU or chip SKU', { field: 'PROJECT/PROJECT_SKU/CHIP_SKU' });
  const driver = arch === 'HOPPER' ? `NV_GPU_DRIVER_GH100_${o.driverVersion}` : `NV_GPU_CC_DRIVER_${o.chipInfo ?? 'GB100'}_${o.driverVersion}`;
  const vbios = `NV_GPU_VBIOS_${o.project}_${o.projectSku}_${o.chipSku}_${o.vbiosVersion.replace(/\./g, '')}`;
  return { driver, vbios };
}

function ocspFor(
  chain: readonly Certificate[],
  root: Certificate,
  from: number,
  opts: Omit<GpuVerifyOptions, 'nonce'>,
  what: string,
  warnings: string[],
): { ocspStatus: OcspStatusClaim; revocationReason?: string } {
  const ocsp = opts.ocsp;
  if (!ocsp) return { ocspStatus: 'not-checked' };
  // Issuer of chain[i] is chain[i+1]; the chain may or may not end in the root itself.
  const path = equalBytes(chain[chain.length - 1]!.der, root.der) ? chain : [...chain, root];
  let checked = 0;
  let unanswered = 0;
  for (let i = path.length - 2; i >= from; i--) {
    const cert = path[i]!;
    const issuer = path[i + 1]!;
    const der = ocsp.lookup(cert, issuer);
    if (!der) {
      if (ocsp.mode === 'require') throw fail('ocsp.not_covered', `no OCSP response for "${cert.subjectCN ?? '?'}" of the ${what} chain`, { chain: what, subject: cert.subjectCN });
      unanswered++;
      continue;
    }
    // The response is hashed every time (it changes as it is refreshed); the certificate once per object.
    const key = `${createHash('sha256').update(der).digest('hex')}:${certIdOf(cert)}`;
    let r = opts.cache?.ocsp.get(key);
    const at = opts.at.getTime();
    // A cached result is reused only inside its own validity window; otherwise (NaN included) verify (and fail) afresh.
    if (!(r?.nextUpdate && at >= Date.parse(r.thisUpdate) - 300_000 && at <= Date.parse(r.nextUpdate) + 300_000)) {
      r = verifyOcspResponse(der, { target: { cert, issuer }, root, at: opts.at });
      if (opts.cache && r.nextUpdate !== undefined) opts.cache.ocsp.set(key, r);
    }
    checked++;
    if (r.status === 'revoked') {
      if (r.revocationReason === 'certificateHold' && ocsp.allowHold) {
        warnings.push(`${what} certificate "${cert.subjectCN ?? '?'}" is on hold (tolerated)`);
        continue;
      }
      throw fail('ocsp.revoked', `certificate "${cert.subjectCN ?? '?'}" of the ${what} chain is revoked (${r.revocationReason ?? 'unspecified'})`, {
        chain: what,
        subject: cert.subjectCN,
        reason: r.revocationReason,
        revocationTime: r.revocationTime,
      });
    }
    if (r.status === 'unknown') throw fail('ocsp.unknown', `OCSP does not know certificate "${cert.subjectCN ?? '?'}" of the ${what} chain`, { chain: what, subject: cert.subjectCN });
  }
  // "good" only when every certificate was answered: one left unchecked may be the revoked one.
  return { ocspStatus: checked > 0 && unanswered === 0 ? 'good' : 'not-checked' };
}

function verifyRimFor(
  source: RimSource,
  doc: string | Uint8Array,
  id: string,
  expectedVersion: string,
  opts: Omit<GpuVerifyOptions, 'nonce'>,
  rimRoot: Certificate,
  warnings: string[],
): { rim: Verified<Rim>; result: GpuRimResult } {
  const rim = verifyRim(doc, { at: opts.at, root: rimRoot, cache: opts.cache?.rims });
  if (rim.colloquialVersion.toLowerCase() !== expectedVersion.toLowerCase()) {
    throw fail('rim.version_mismatch', `the ${source} RIM is for version ${rim.colloquialVersion}, the report for ${expectedVersion}`, {
      rim: source,
      expected: expectedVersion,
      actual: rim.colloquialVersion,
    });
  }
  const ocsp = ocspFor(rim.signer, rimRoot, 0, opts, `${source} RIM`, warnings);
  return { rim, result: { id, sha256: rim.sha256, version: rim.colloquialVersion, status: 'valid', expirationDate: rim.notAfterIso, ...ocsp } };
}

/**
 * One GPU's report, authenticated: it answers the expected nonce and is signed by the attestation key of a
 * chain to the trusted device root (FWID bound where the report has one). Only such a report's versions may
 * choose RIMs to fetch, and only its chain's certificates OCSP answers (before that, both are the caller's
 * inventions). Finish with {@link completeGpuVerification}.
 */
export interface AuthenticGpuEvidence {
  readonly report: GpuReport;
  readonly chain: VerifiedDeviceChain;
  readonly deviceRoot: Certificate;
  readonly fwidMatch: boolean | null;
  readonly warnings: readonly string[];
}

/**
 * The first half of {@link verifyGpuEvidence} (gpu-attestation §3–§5): parse; the request nonce; the device
 * chain to the pinned NVIDIA Device Identity CA; the report signature (ECDSA P-384 over request ‖ response
 * without the signature) with the attestation certificate; the FWID binding. Throws on any failure.
 */
export function authenticateGpuEvidence(evidence: GpuEvidence, opts: Pick<GpuVerifyOptions, 'at' | 'nonce' | 'trust' | 'cache'>): Verified<AuthenticGpuEvidence> {
  verificationTime(opts.at);
  const warnings: string[] = [];
  const report = parseGpuReport(evidence.report);
  if (!equalBytes(report.request.nonce, opts.nonce)) {
    throw fail('gpu.nonce_mismatch', 'the GPU report answers another nonce', { expected: toHex(opts.nonce), actual: toHex(report.request.nonce) });
  }
  const deviceRoot = opts.trust?.deviceRoot ?? NVIDIA_DEVICE_IDENTITY_CA;
  const chain: VerifiedDeviceChain = verifyDeviceChain(evidence.certificateChain, { at: opts.at, root: deviceRoot, cache: opts.cache?.chains });
  if (evidence.arch && evidence.arch !== chain.architecture) {
    throw fail('gpu.unsupported', `the evidence says ${evidence.arch} but the chain is of a ${chain.architecture} GPU`, { expected: evidence.arch, actual: chain.architecture });
  }
  // The one public-key operation of a warm verification: the key was decoded when the chain was verified.
  if (!cryptoVerify('sha384', report.signedBytes, { key: chain.leafKey, dsaEncoding: 'ieee-p1363' }, report.signature)) {
    throw fail('gpu.signature_invalid', 'the GPU report signature does not verify with the attestation certificate', { subject: chain.leaf.subjectCN });
  }
  let fwidMatch: boolean | null = null;
  if (report.opaque.fwid) {
    if (!equalBytes(report.opaque.fwid, chain.fwid)) {
      throw fail('gpu.fwid_mismatch', 'the FWID of the report differs from the FWID of its attestation certificate', {
        expected: toHex(chain.fwid),
        actual: toHex(report.opaque.fwid),
      });
    }
    fwidMatch = true;
  } else warnings.push('the report carries no FWID (driver before 550), so it is not bound to the firmware of its certificate');
  if (report.trailingBytes > 0) warnings.push(`${report.trailingBytes} zero bytes follow the report signature`);
  return markVerified({ report, chain, deviceRoot, fwidMatch, warnings });
}

/**
 * Verifies one GPU's evidence (gpu-attestation §3–§7): {@link authenticateGpuEvidence}, then
 * {@link completeGpuVerification}: OCSP of the chain when responses are given, the driver and VBIOS RIMs
 * (XML-DSig to the pinned RIM root, version match, OCSP) and the measurement comparison. Authenticity
 * failures throw; a measurement mismatch is a verified fact (`measres: fail` with every mismatching index)
 * for {@link validateGpuMeasurements} or a policy to judge.
 */
export function verifyGpuEvidence(evidence: GpuEvidence, opts: GpuVerifyOptions): Verified<GpuVerificationResult> {
  return completeGpuVerification(authenticateGpuEvidence(evidence, opts), opts);
}

/** The second half of {@link verifyGpuEvidence}, on an authenticated report: OCSP, RIMs, measurements. */
export function completeGpuVerification(authentic: Verified<AuthenticGpuEvidence>, opts: Omit<GpuVerifyOptions, 'nonce'>): Verified<GpuVerificationResult> {
  verificationTime(opts.at);
  const { report, chain, deviceRoot, fwidMatch } = authentic;
  const warnings = [...authentic.warnings];
  const rimRoot = opts.trust?.rimRoot ?? NVIDIA_RIM_ROOT_CA;
  const device = ocspFor(chain.certificates, deviceRoot, 1, opts, 'device', warnings);

  const ids = rimIdsOf(report, chain.architecture);
  const driverVersion = report.opaque.driverVersion!;
  const vbiosVersion = report.opaque.vbiosVersion!;
  const rims: Partial<Record<RimSource, Rim>> = {};
  let driverRim: GpuRimResult | undefined;
  let vbiosRim: GpuRimResult | undefined;
  if (opts.rims?.driver !== undefined) {
    const v = verifyRimFor('driver', opts.rims.driver, ids.driver, driverVersion, opts, rimRoot, warnings);
    rims.driver = v.rim;
    driverRim = v.result;
  }
  if (opts.rims?.vbios !== undefined) {
    const v = verifyRimFor('vbios', opts.rims.vbios, ids.vbios, vbiosVersion, opts, rimRoot, warnings);
    rims.vbios = v.rim;
    vbiosRim = v.result;
  }
  const comparison = rims.driver || rims.vbios ? compareMeasurements(report, rims) : undefined;
  let measres: GpuVerificationResult['measres'] = 'not-compared';
  if (comparison) measres = comparison.result === 'fail' ? 'fail' : rims.driver && rims.vbios ? 'success' : 'not-compared';
  if (comparison && measres === 'not-compared') warnings.push(`only the ${rims.driver ? 'driver' : 'VBIOS'} RIM was compared`);
  // Hex of all 64 values is for output (CLI, claims of a caller that wants them); built on first read.
  let hex: Record<number, string> | undefined;
  return markVerified<GpuVerificationResult>({
    verified: true,
    architecture: chain.architecture,
    ueid: chain.ueid,
    hwmodel: chain.hwmodel,
    deviceId: chain.deviceId,
    oemid: rims.driver?.firmwareManufacturerId ?? rims.vbios?.firmwareManufacturerId,
    nonce: toHex(report.request.nonce),
    driverVersion,
    vbiosVersion,
    driverRimId: ids.driver,
    vbiosRimId: ids.vbios,
    fwid: report.opaque.fwid ? toHex(report.opaque.fwid) : undefined,
    fwidMatch,
    featureFlag: report.opaque.featureFlag,
    protectedPcieStatus: report.opaque.protectedPcieStatus,
    switchPdis: report.opaque.switchPdis,
    opaqueDataVersion: report.opaque.opaqueDataVersion,
    nvdec0Status: report.opaque.nvdec0Status,
    get measurements(): Readonly<Record<number, string>> {
      if (!hex) {
        hex = {};
        for (const m of report.measurements) hex[m.index] = toHex(m.value);
      }
      return hex;
    },
    deviceChain: { status: 'valid', expirationDate: chain.notAfterIso, ...device },
    driverRim,
    vbiosRim,
    measurementComparison: comparison,
    measres,
    trailingBytes: report.trailingBytes,
    warnings,
  });
}

/**
 * Policy on verified facts: every active golden value of both RIMs must have matched. Throws
 * `gpu.measurement_mismatch` naming the first mismatching index with its expected and actual values
 * (all of them in `detail.mismatches`), or `rim.not_found` when a RIM was not compared.
 */
export function validateGpuMeasurements(result: Verified<GpuVerificationResult>): void {
  if (!result.driverRim || !result.vbiosRim) {
    throw fail('rim.not_found', `the ${result.driverRim ? 'VBIOS' : 'driver'} RIM was not available, so the measurements were not compared`, {
      driverRimId: result.driverRimId,
      vbiosRimId: result.vbiosRimId,
    });
  }
  const m = result.measurementComparison?.mismatches ?? [];
  if (m.length > 0) {
    const first = m[0]!;
    throw fail('gpu.measurement_mismatch', `GPU measurement ${first.index} (${first.measurementSource} RIM) matches no golden value`, {
      index: first.index,
      expected: first.goldenValues,
      actual: first.runtimeValue,
      mismatches: m,
    });
  }
}

