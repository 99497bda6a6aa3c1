import type { UvmEndorsement } from './uvm.js';
import { equalBytes, isAllZero, toHex } from '../../core/bytes.js';
import { type SignatureCheck, checkSignatureNow } from '../../core/deferred-signatures.js';
import { type ConclaveError, fail } from '../../core/errors.js';
import { type Verified, markVerified } from '../../core/verified.js';
import type { AmdProduct } from './roots.js';
import { type SnpCertificates, type SnpTrustAnchors, type SnpVerifierCache, type VerifiedVekChain, verifyVekChain } from './chain.js';
import {
  SNP_REPORT_LAYOUT,
  type SnpFirmwareVersion,
  type SnpGuestPolicy,
  type SnpPlatformInfo,
  type SnpReport,
  type SnpTcb,
  decodePlatformInfo,
  decodePolicy,
  decodeTcbHex,
  parseSnpReport,
  tcbLayoutOf,
} from './report.js';

export interface SnpVerifyOptions {
  /** Verification time (certificate validity, CRL freshness). */
  readonly at: Date;
  /** Trusted ARKs (and ASK/ASVK) per product; defaults to the pinned AMD roots. */
  readonly trustAnchors?: SnpTrustAnchors | undefined;
  /** Verified-chain cache; pass one per verifier instance for warm verification. */
  readonly cache?: SnpVerifierCache | undefined;
  /** The product the caller expects; must agree with the report and the chain. */
  readonly product?: AmdProduct | undefined;
}

/** Runtime data that the report binds (Azure HCL variable data, or MAA runtime/init-time data). */
export interface SnpRuntimeData {
  readonly format: 'azure-hcl' | 'maa';
  /** The bound bytes, base64url. */
  readonly data: string;
  /** The bytes parsed as JSON, when they are JSON. */
  readonly json?: unknown;
  /** JWKs of the runtime data's `keys` array. */
  readonly keys?: readonly Record<string, unknown>[];
  /** Azure CVM: the vTPM attestation key (kid HCLAkPub). */
  readonly hclAkPub?: Record<string, unknown>;
  /** Azure CVM: the vTPM endorsement key (kid HCLEkPub). */
  readonly hclEkPub?: Record<string, unknown>;
  /** Azure CVM: the 64 bytes of user data the guest wrote to the vTPM NV index, hex. */
  readonly userData?: string;
  readonly vmConfiguration?: Record<string, unknown>;
}

export interface SnpInitTimeData {
  /** The bytes HOST_DATA binds (the confidential-container security policy), base64url. */
  readonly data: string;
  readonly sha256: string;
}

export interface SnpCpuid {
  readonly family: number;
  readonly model: number;
  readonly stepping: number;
}

/** The verified facts of one report; byte fields are lowercase hex. */
export interface SnpVerificationResult {
  readonly verified: true;
  readonly product: AmdProduct;
  readonly signingKey: 'vcek' | 'vlek';
  readonly reportVersion: number;
  readonly guestSvn: number;
  readonly policy: SnpGuestPolicy;
  readonly vmpl: number;
  readonly measurement: string;
  readonly hostData: string;
  readonly reportData: string;
  readonly chipId: string;
  readonly familyId: string;
  readonly imageId: string;
  readonly idKeyDigest: string;
  readonly authorKeyDigest: string;
  readonly reportId: string;
  readonly reportIdMa: string;
  readonly signerInfo: { readonly authorKeyEn: boolean; readonly maskChipKey: boolean; readonly raw: number };
  readonly reportedTcb: SnpTcb;
  readonly committedTcb: SnpTcb;
  readonly launchTcb: SnpTcb;
  readonly currentTcb: SnpTcb;
  readonly platformInfo: SnpPlatformInfo;
  readonly currentFirmware: SnpFirmwareVersion;
  readonly committedFirmware: SnpFirmwareVersion;
  readonly cpuid?: SnpCpuid;
  readonly launchMitVector?: string;
  readonly currentMitVector?: string;
  /** MAA claim conveniences: x-ms-sevsnpvm-is-debuggable, -migration-allowed, -smt-allowed. */
  readonly isDebuggable: boolean;
  readonly migrationAllowed: boolean;
  readonly smtAllowed: boolean;
  /** Whether the AMD CRL of the product was given and checked (signature, dates, revoked ASK/ASVK). */
  readonly crlChecked: boolean;
  /** The endorsement key certificate that signed the report. */
  readonly vek: {
    readonly subject: string | undefined;
    readonly productName: string | undefined;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly cspId?: string;
  };
  readonly runtimeData?: SnpRuntimeData;
  readonly initTimeData?: SnpInitTimeData;
  /** Confidential containers: the verified UVM endorsement of the launch measurement (MAA `Endorsements.Uvm`). */
  readonly uvmEndorsement?: UvmEndorsement;
  readonly warnings: readonly string[];
}

/**
 * Hex of the report's byte fields: sliced out of one hex encoding of the signed bytes when the field is
 * those bytes (a view at its offset, as parseSnpReport makes them), else encoded on its own.
 */
function fieldHex(report: SnpReport): (field: Uint8Array, name: keyof typeof SNP_REPORT_LAYOUT) => string {
  const signed = report.signedBytes;
  let all: string | undefined;
  return (field, name) => {
    const f = SNP_REPORT_LAYOUT[name];
    if (field.buffer === signed.buffer && field.byteOffset === signed.byteOffset + f.offset && field.byteLength === f.size && f.offset + f.size <= signed.byteLength) {
      all ??= toHex(signed);
      return all.slice(2 * f.offset, 2 * (f.offset + f.size));
    }
    return toHex(field);
  };
}

function signatureFails(key: 'vcek' | 'vlek'): () => ConclaveError {
  return () => fail('snp.signature_invalid', `the report signature does not verify with the ${key.toUpperCase()}`);
}

function tcbMatches(ext: VerifiedVekChain['extensions'], tcb: SnpTcb, product: AmdProduct): boolean {
  return (
    ext.blSpl === tcb.bootloader &&
    ext.teeSpl === tcb.tee &&
    ext.snpSpl === tcb.snp &&
    ext.ucodeSpl === tcb.microcode &&
    // Every Turin VEK carries fmcSPL: one without it vouches for no FMC SPL, not for 0.
    (product !== 'Turin' || (ext.fmcSpl !== undefined && ext.fmcSpl === tcb.fmc))
  );
}

/**
 * Verifies an SNP attestation report (evidence-and-collateral §4.2): the VEK chain to the pinned ARK of
 * the product, the VEK's TCB and hwID extensions against the report, and the report's ECDSA P-384
 * signature over bytes 0x000–0x29F. Check order puts the cheap identity checks before the signature so
 * that a wrong certificate fails with its own code.
 */
export function verifySnpReport(input: SnpReport | Uint8Array, certs: SnpCertificates, opts: SnpVerifyOptions, checkSignature: SignatureCheck = checkSignatureNow): Verified<SnpVerificationResult> {
  const report = input instanceof Uint8Array ? parseSnpReport(input) : input;
  const warnings: string[] = [];
  const signingKey = report.signerInfo.signingKey;
  if (signingKey === 'none') throw fail('snp.unsupported', 'the report is unsigned (SIGNING_KEY = none)');
  if (report.signerInfo.maskChipKey) throw fail('snp.unsupported', 'the report has MASK_CHIP_KEY set, so it carries no signature');
  if (opts.product && report.cpuidProduct && opts.product !== report.cpuidProduct) {
    throw fail('snp.product_mismatch', `the report's CPUID names ${report.cpuidProduct}, not ${opts.product}`, {
      expected: opts.product,
      actual: report.cpuidProduct,
    });
  }
  if (report.version >= 3 && report.cpuid && !report.cpuidProduct) {
    warnings.push(`unknown CPUID family 0x${report.cpuid.family.toString(16)} model 0x${report.cpuid.model.toString(16)}`);
  }

  const chain = verifyVekChain(certs, {
    at: opts.at,
    trustAnchors: opts.trustAnchors,
    cache: opts.cache,
    product: opts.product ?? report.cpuidProduct,
    signingKey,
  });
  const product = chain.product;
  const layout = tcbLayoutOf(product);
  const hex = fieldHex(report);
  const reportedTcb = decodeTcbHex(report.reportedTcb, hex(report.reportedTcb, 'reportedTcb'), layout);

  if (chain.signingKey === 'vcek') {
    const hwId = chain.extensions.hwId;
    if (isAllZero(report.chipId)) {
      // MASK_CHIP_ID (SNP_INIT_EX / SNP_CONFIG) zeroes CHIP_ID; the key still signs, so nothing to compare.
      warnings.push('CHIP_ID is masked (all zero); the VCEK hwID was not compared');
    } else if (!hwId) {
      throw fail('snp.chip_id_mismatch', 'the VCEK has no hwID extension');
    } else {
      const expected = product === 'Turin' ? report.chipId.subarray(0, 8) : report.chipId;
      if (!equalBytes(hwId, expected)) {
        throw fail('snp.chip_id_mismatch', 'the VCEK hwID does not match the report CHIP_ID', { hwId: toHex(hwId), chipId: toHex(report.chipId) });
      }
    }
  }

  if (!tcbMatches(chain.extensions, reportedTcb, product)) {
    const e = chain.extensions;
    throw fail('snp.tcb_mismatch', 'the VCEK/VLEK TCB extensions differ from REPORTED_TCB', {
      reported: reportedTcb,
      certificate: { bootloader: e.blSpl, tee: e.teeSpl, snp: e.snpSpl, microcode: e.ucodeSpl, fmc: e.fmcSpl },
    });
  }

  checkSignature({
    algorithm: 'sha384',
    data: report.signedBytes,
    key: { key: chain.vekKey, dsaEncoding: 'ieee-p1363' },
    signature: Buffer.concat([report.signature.r, report.signature.s]),
    fails: signatureFails(chain.signingKey),
  });

  const policy = decodePolicy(report.policy);
  if (policy.debug) warnings.push('guest policy allows debugging');
  const current = decodeTcbHex(report.currentTcb, hex(report.currentTcb, 'currentTcb'), layout);
  if (current.raw !== reportedTcb.raw) warnings.push('CURRENT_TCB differs from REPORTED_TCB');
  return markVerified({
    verified: true,
    product,
    signingKey: chain.signingKey,
    reportVersion: report.version,
    guestSvn: report.guestSvn,
    policy,
    vmpl: report.vmpl,
    measurement: hex(report.measurement, 'measurement'),
    hostData: hex(report.hostData, 'hostData'),
    reportData: hex(report.reportData, 'reportData'),
    chipId: hex(report.chipId, 'chipId'),
    familyId: hex(report.familyId, 'familyId'),
    imageId: hex(report.imageId, 'imageId'),
    idKeyDigest: hex(report.idKeyDigest, 'idKeyDigest'),
    authorKeyDigest: hex(report.authorKeyDigest, 'authorKeyDigest'),
    reportId: hex(report.reportId, 'reportId'),
    reportIdMa: hex(report.reportIdMa, 'reportIdMa'),
    signerInfo: { authorKeyEn: report.signerInfo.authorKeyEn, maskChipKey: report.signerInfo.maskChipKey, raw: report.signerInfo.raw },
    reportedTcb,
    committedTcb: decodeTcbHex(report.committedTcb, hex(report.committedTcb, 'committedTcb'), layout),
    launchTcb: decodeTcbHex(report.launchTcb, hex(report.launchTcb, 'launchTcb'), layout),
    currentTcb: current,
    platformInfo: decodePlatformInfo(report.platformInfo),
    currentFirmware: report.currentFirmware,
    committedFirmware: report.committedFirmware,
    ...(report.cpuid ? { cpuid: report.cpuid } : {}),
    ...(report.launchMitVector !== undefined ? { launchMitVector: report.launchMitVector.toString(16).padStart(16, '0') } : {}),
    ...(report.currentMitVector !== undefined ? { currentMitVector: report.currentMitVector.toString(16).padStart(16, '0') } : {}),
    isDebuggable: policy.debug,
    migrationAllowed: policy.migrateMa,
    smtAllowed: policy.smt,
    crlChecked: chain.crlChecked,
    vek: {
      subject: chain.vek.subjectCN,
      productName: chain.extensions.productName,
      notBefore: chain.vek.notBefore.toISOString(),
      notAfter: chain.vek.notAfter.toISOString(),
      ...(chain.extensions.cspId !== undefined ? { cspId: chain.extensions.cspId } : {}),
    },
    warnings,
  });
}
