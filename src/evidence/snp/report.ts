import { ByteReader, isAllZero } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { type Layout, indexLayout, reservedRanges as reservedRangesOf } from '../../core/layout.js';
import type { AmdProduct } from './roots.js';

/**
 * The SEV-SNP ATTESTATION_REPORT structure (SEV-SNP Firmware ABI spec, Table "ATTESTATION_REPORT
 * Structure"; evidence-and-collateral §4.1; go-sev-guest `abi/abi.go ReportToProto`). 1184 bytes,
 * little-endian. The signature covers bytes 0x000–0x29F of the report exactly as received.
 */
export const SNP_REPORT_SIZE = 0x4a0;
export const SNP_SIGNED_SIZE = 0x2a0;
export const SNP_SUPPORTED_VERSIONS: readonly number[] = [2, 3, 4, 5];

/**
 * Named fields at the spec's offsets, with the ranges it reserves (must be zero) and the report version
 * that took bytes out of a reserved range. The encoder and the parser both use this one table, in the
 * layout-table mechanism of every binary format here (core/layout.ts).
 */
export const SNP_REPORT_TABLE = [
  { name: 'version', offset: 0x000, type: 'u32' },
  { name: 'guestSvn', offset: 0x004, type: 'u32' },
  { name: 'policy', offset: 0x008, type: 'u64' },
  { name: 'familyId', offset: 0x010, type: 16 },
  { name: 'imageId', offset: 0x020, type: 16 },
  { name: 'vmpl', offset: 0x030, type: 'u32' },
  { name: 'signatureAlgo', offset: 0x034, type: 'u32' },
  { name: 'currentTcb', offset: 0x038, type: 8 },
  { name: 'platformInfo', offset: 0x040, type: 'u64' },
  { name: 'signerInfo', offset: 0x048, type: 'u32' },
  { name: 'reserved 0x04C', offset: 0x04c, type: 4, reserved: true },
  { name: 'reportData', offset: 0x050, type: 64 },
  { name: 'measurement', offset: 0x090, type: 48 },
  { name: 'hostData', offset: 0x0c0, type: 32 },
  { name: 'idKeyDigest', offset: 0x0e0, type: 48 },
  { name: 'authorKeyDigest', offset: 0x110, type: 48 },
  { name: 'reportId', offset: 0x140, type: 32 },
  { name: 'reportIdMa', offset: 0x160, type: 32 },
  { name: 'reportedTcb', offset: 0x180, type: 8 },
  { name: 'reserved 0x188', offset: 0x188, type: 0x18, reserved: true },
  { name: 'cpuidFamId', offset: 0x188, type: 'u8', since: 3 },
  { name: 'cpuidModId', offset: 0x189, type: 'u8', since: 3 },
  { name: 'cpuidStep', offset: 0x18a, type: 'u8', since: 3 },
  { name: 'chipId', offset: 0x1a0, type: 64 },
  { name: 'committedTcb', offset: 0x1e0, type: 8 },
  { name: 'currentBuild', offset: 0x1e8, type: 'u8' },
  { name: 'currentMinor', offset: 0x1e9, type: 'u8' },
  { name: 'currentMajor', offset: 0x1ea, type: 'u8' },
  { name: 'reserved 0x1EB', offset: 0x1eb, type: 1, reserved: true },
  { name: 'committedBuild', offset: 0x1ec, type: 'u8' },
  { name: 'committedMinor', offset: 0x1ed, type: 'u8' },
  { name: 'committedMajor', offset: 0x1ee, type: 'u8' },
  { name: 'reserved 0x1EF', offset: 0x1ef, type: 1, reserved: true },
  { name: 'launchTcb', offset: 0x1f0, type: 8 },
  { name: 'reserved 0x1F8', offset: 0x1f8, type: SNP_SIGNED_SIZE - 0x1f8, reserved: true },
  { name: 'launchMitVector', offset: 0x1f8, type: 'u64', since: 5 },
  { name: 'currentMitVector', offset: 0x200, type: 'u64', since: 5 },
  { name: 'signatureR', offset: 0x2a0, type: 72 },
  { name: 'signatureS', offset: 0x2e8, type: 72 },
  { name: 'signature reserved 0x330', offset: 0x330, type: SNP_REPORT_SIZE - 0x330, reserved: true },
] as const satisfies Layout;

/** Each field's offset and size, by name. */
export const SNP_REPORT_LAYOUT = indexLayout(SNP_REPORT_TABLE);

export type SnpReportField = keyof typeof SNP_REPORT_LAYOUT;

/** Reserved ranges the spec marks must-be-zero, as [start, end) per report version (computed once per version). */
const RESERVED_BY_VERSION = new Map(SNP_SUPPORTED_VERSIONS.map((v) => [v, reservedRangesOf(SNP_REPORT_TABLE, v)] as const));

function reservedRanges(version: number): ReadonlyArray<readonly [number, number, string]> {
  return RESERVED_BY_VERSION.get(version) ?? reservedRangesOf(SNP_REPORT_TABLE, version);
}

/** Decoded TCB_VERSION. `fmc` is present only in the Turin encoding. */
export interface SnpTcb {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly fmc?: number;
  /** The 8 bytes as stored in the report, hex (e.g. "0300000000000873"). */
  readonly raw: string;
  /** The TCB as a little-endian u64 printed as 16 hex digits: Azure's `tcbm` form. */
  readonly tcbm: string;
  /** The same u64 in decimal (it may exceed 2^53, so a string). */
  readonly u64: string;
}

/**
 * Which TCB_VERSION encoding applies: Milan/Genoa ([0] BL, [1] TEE, [6] SNP, [7] UCODE) or Turin and
 * later ([0] FMC, [1] BL, [2] TEE, [3] SNP, [7] UCODE) (virtee-sev `snp.rs from_legacy_bytes/from_turin_bytes`).
 */
export type SnpTcbLayout = 'legacy' | 'turin';

export function tcbLayoutOf(product: AmdProduct | undefined): SnpTcbLayout {
  return product === 'Turin' ? 'turin' : 'legacy';
}

export function decodeTcb(raw: Uint8Array, layout: SnpTcbLayout): SnpTcb {
  return decodeTcbHex(raw, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex'), layout);
}

/** {@link decodeTcb} with the hex of `raw` already at hand (a verifier slices it out of the report's hex). */
export function decodeTcbHex(raw: Uint8Array, hex: string, layout: SnpTcbLayout): SnpTcb {
  // The little-endian u64 as 16 hex digits: the byte pairs of `hex` in reverse order.
  let tcbm = '';
  for (let i = hex.length - 2; i >= 0; i -= 2) tcbm += hex.slice(i, i + 2);
  const u64 = BigInt(`0x${tcbm}`).toString();
  if (layout === 'turin') {
    return { fmc: raw[0]!, bootloader: raw[1]!, tee: raw[2]!, snp: raw[3]!, microcode: raw[7]!, raw: hex, tcbm, u64 };
  }
  return { bootloader: raw[0]!, tee: raw[1]!, snp: raw[6]!, microcode: raw[7]!, raw: hex, tcbm, u64 };
}

export interface SnpTcbParts {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly fmc?: number | undefined;
}

export function encodeTcb(t: SnpTcbParts, layout: SnpTcbLayout): Uint8Array {
  const b = new Uint8Array(8);
  if (layout === 'turin') {
    b[0] = t.fmc ?? 0;
    b[1] = t.bootloader;
    b[2] = t.tee;
    b[3] = t.snp;
  } else {
    b[0] = t.bootloader;
    b[1] = t.tee;
    b[6] = t.snp;
  }
  b[7] = t.microcode;
  return b;
}

/**
 * A TCB as AMD KDS names its SPLs in the VCEK query (`[fmcSPL=&]blSPL=&teeSPL=&snpSPL=&ucodeSPL=`, two-digit
 * values as snpguest prints them and KDS links them); the FMC SPL is Turin's only.
 */
export function kdsTcbQuery(t: SnpTcbParts, layout: SnpTcbLayout): string {
  const spl = (n: number) => String(n).padStart(2, '0');
  return `${layout === 'turin' ? `fmcSPL=${spl(t.fmc ?? 0)}&` : ''}blSPL=${spl(t.bootloader)}&teeSPL=${spl(t.tee)}&snpSPL=${spl(t.snp)}&ucodeSPL=${spl(t.microcode)}`;
}

/** Guest POLICY bits (ABI spec "GUEST_POLICY"; go-sev-guest `abi.SnpPolicy`). */
export interface SnpGuestPolicy {
  readonly abiMinor: number;
  readonly abiMajor: number;
  readonly smt: boolean;
  readonly migrateMa: boolean;
  readonly debug: boolean;
  readonly singleSocket: boolean;
  readonly cxlAllow: boolean;
  readonly memAes256Xts: boolean;
  readonly raplDis: boolean;
  readonly ciphertextHiding: boolean;
  readonly pageSwapDisable: boolean;
  /** The u64 as 0x-prefixed hex. */
  readonly raw: string;
}

export function decodePolicy(p: bigint): SnpGuestPolicy {
  // Every field lies in the low 32 bits.
  const lo = Number(BigInt.asUintN(32, p));
  return {
    abiMinor: lo & 0xff,
    abiMajor: (lo >>> 8) & 0xff,
    smt: bitOf(lo, 16),
    migrateMa: bitOf(lo, 18),
    debug: bitOf(lo, 19),
    singleSocket: bitOf(lo, 20),
    cxlAllow: bitOf(lo, 21),
    memAes256Xts: bitOf(lo, 22),
    raplDis: bitOf(lo, 23),
    ciphertextHiding: bitOf(lo, 24),
    pageSwapDisable: bitOf(lo, 25),
    raw: `0x${p.toString(16)}`,
  };
}

/** PLATFORM_INFO bits (ABI spec "PLATFORM_INFO"). */
export interface SnpPlatformInfo {
  readonly smtEnabled: boolean;
  readonly tsmeEnabled: boolean;
  readonly eccEnabled: boolean;
  readonly raplDisabled: boolean;
  readonly ciphertextHidingEnabled: boolean;
  readonly aliasCheckComplete: boolean;
  readonly tioEnabled: boolean;
  readonly raw: string;
}

export function decodePlatformInfo(p: bigint): SnpPlatformInfo {
  const lo = Number(BigInt.asUintN(32, p));
  return {
    smtEnabled: bitOf(lo, 0),
    tsmeEnabled: bitOf(lo, 1),
    eccEnabled: bitOf(lo, 2),
    raplDisabled: bitOf(lo, 3),
    ciphertextHidingEnabled: bitOf(lo, 4),
    aliasCheckComplete: bitOf(lo, 5),
    tioEnabled: bitOf(lo, 7),
    raw: `0x${p.toString(16)}`,
  };
}

/** SIGNING_KEY values of SIGNER_INFO bits 4:2. */
export type SnpSigningKeyKind = 'vcek' | 'vlek' | 'none';

export interface SnpSignerInfo {
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: SnpSigningKeyKind;
  readonly raw: number;
}

/**
 * A parsed attestation report. Byte fields are views of the report's own copy of the input (`bytes`),
 * never of the caller's buffer; `signedBytes` is 0x000–0x29F of that copy, as received.
 */
export interface SnpReport {
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: Uint8Array;
  readonly platformInfo: bigint;
  readonly signerInfo: SnpSignerInfo;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: Uint8Array;
  /** CPUID family/model/stepping (report v3+). */
  readonly cpuid: { readonly family: number; readonly model: number; readonly stepping: number } | undefined;
  readonly chipId: Uint8Array;
  readonly committedTcb: Uint8Array;
  readonly currentFirmware: SnpFirmwareVersion;
  readonly committedFirmware: SnpFirmwareVersion;
  readonly launchTcb: Uint8Array;
  readonly launchMitVector: bigint | undefined;
  readonly currentMitVector: bigint | undefined;
  /** r and s as 48-byte big-endian integers (converted from the report's 72-byte little-endian form). */
  readonly signature: { readonly r: Uint8Array; readonly s: Uint8Array };
  /** The product the CPUID fields name (v3+), when they name a known one. */
  readonly cpuidProduct: AmdProduct | undefined;
  /** The bytes the signature covers: 0x000–0x29F of the input as received (a view of `bytes`). */
  readonly signedBytes: Uint8Array;
  /** The whole 1184-byte report: the parse's one copy of the input. */
  readonly bytes: Uint8Array;
}

export interface SnpFirmwareVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
}

/** Product from CPUID family/model (snpguest `src/fetch.rs get_processor_model`). */
export function productFromCpuid(family: number, model: number): AmdProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
  }
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

function littleToBig48(le72: Uint8Array, which: string): Uint8Array {
  // P-384 scalars fit 48 bytes; the ABI zero-extends them to 72 (ABI spec "ECDSA P-384 signature").
  if (!isAllZero(le72, 48, le72.byteLength)) throw fail('snp.malformed', `signature ${which} exceeds 384 bits`, { field: `signature${which}` });
  return le72.slice(0, 48).reverse();
}

const F = SNP_REPORT_LAYOUT;

/** A byte field of the report: a view of the parse's own copy. */
function fieldOf(own: Uint8Array, f: { readonly offset: number; readonly size: number }): Uint8Array {
  return own.subarray(f.offset, f.offset + f.size);
}

/** Bit `n` of a 32-bit value (the policy and platform bits all lie in the low word). */
function bitOf(lo: number, n: number): boolean {
  return ((lo >>> n) & 1) === 1;
}

/**
 * Parses an attestation report. Input longer than 1184 bytes is accepted only when the tail is zero
 * padding (some transports pad to a page). Throws only `snp.truncated`, `snp.malformed` or
 * `snp.unsupported`.
 *
 * One pass over one copy: the report's 1184 bytes are copied once (`bytes`), and every byte field,
 * `signedBytes` included, is a view of that copy; the caller's buffer is never aliased, and a parsed
 * report shares nothing with another. Only r and s are copies of their own (reversed to big-endian).
 */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (!(bytes instanceof Uint8Array)) throw fail('snp.malformed', 'SNP report must be bytes');
  const input = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new ByteReader(input, 'SNP attestation report', 'snp.truncated');
  r.need('version', 4);
  const version = r.u32('version');
  if (!SNP_SUPPORTED_VERSIONS.includes(version)) throw fail('snp.unsupported', `SNP report version ${version} is not supported`, { version });
  r.offset = 0;
  r.need('report', SNP_REPORT_SIZE);
  if (input.byteLength > SNP_REPORT_SIZE && !isAllZero(input, SNP_REPORT_SIZE, input.byteLength)) {
    throw fail('snp.malformed', 'SNP report has non-zero bytes after offset 0x4A0', { length: input.byteLength });
  }
  // `input` is a plain Uint8Array view, so `.slice()` copies even when the caller passed a Node Buffer.
  const own = input.slice(0, SNP_REPORT_SIZE);
  const view = new DataView(own.buffer, own.byteOffset, SNP_REPORT_SIZE);

  for (const [start, end, name] of reservedRanges(version)) {
    if (!isAllZero(own, start, end)) throw fail('snp.malformed', `SNP report ${name} must be zero`, { field: name, offset: start });
  }
  const signatureAlgo = view.getUint32(F.signatureAlgo.offset, true);
  if (signatureAlgo !== 1) throw fail('snp.unsupported', `SNP signature algorithm ${signatureAlgo} is not ECDSA P-384 with SHA-384`, { signatureAlgo });

  // GUEST_POLICY bit 17 is reserved and must be one; bits 63:26 must be zero (ABI spec Table "GUEST_POLICY").
  const policyLo = view.getUint32(F.policy.offset, true);
  const policyHi = view.getUint32(F.policy.offset + 4, true);
  const policy = view.getBigUint64(F.policy.offset, true);
  if (((policyLo >>> 17) & 1) !== 1) throw fail('snp.malformed', 'SNP guest policy bit 17 must be one', { policy: `0x${policy.toString(16)}` });
  if (policyLo >>> 26 !== 0 || policyHi !== 0) throw fail('snp.malformed', 'SNP guest policy bits 63:26 must be zero', { policy: `0x${policy.toString(16)}` });

  const si = view.getUint32(F.signerInfo.offset, true);
  if (si >>> 5 !== 0) throw fail('snp.malformed', 'SNP SIGNER_INFO bits 31:5 must be zero', { signerInfo: si });
  const keySel = (si >>> 2) & 7;
  let signingKey: SnpSigningKeyKind;
  if (keySel === 0) signingKey = 'vcek';
  else if (keySel === 1) signingKey = 'vlek';
  else if (keySel === 7) signingKey = 'none';
  else throw fail('snp.malformed', `SNP SIGNER_INFO.SIGNING_KEY ${keySel} is reserved`, { signerInfo: si });

  const vmpl = view.getUint32(F.vmpl.offset, true);
  if (vmpl > 3) throw fail('snp.malformed', `SNP VMPL ${vmpl} is out of range`, { vmpl });

  let cpuid: SnpReport['cpuid'];
  let cpuidProduct: AmdProduct | undefined;
  if (version >= 3) {
    cpuid = { family: own[F.cpuidFamId.offset]!, model: own[F.cpuidModId.offset]!, stepping: own[F.cpuidStep.offset]! };
    cpuidProduct = productFromCpuid(cpuid.family, cpuid.model);
  }
  return {
    version,
    guestSvn: view.getUint32(F.guestSvn.offset, true),
    policy,
    familyId: fieldOf(own, F.familyId),
    imageId: fieldOf(own, F.imageId),
    vmpl,
    signatureAlgo,
    currentTcb: fieldOf(own, F.currentTcb),
    platformInfo: view.getBigUint64(F.platformInfo.offset, true),
    signerInfo: { authorKeyEn: (si & 1) === 1, maskChipKey: (si & 2) === 2, signingKey, raw: si },
    reportData: fieldOf(own, F.reportData),
    measurement: fieldOf(own, F.measurement),
    hostData: fieldOf(own, F.hostData),
    idKeyDigest: fieldOf(own, F.idKeyDigest),
    authorKeyDigest: fieldOf(own, F.authorKeyDigest),
    reportId: fieldOf(own, F.reportId),
    reportIdMa: fieldOf(own, F.reportIdMa),
    reportedTcb: fieldOf(own, F.reportedTcb),
    cpuid,
    chipId: fieldOf(own, F.chipId),
    committedTcb: fieldOf(own, F.committedTcb),
    currentFirmware: { major: own[F.currentMajor.offset]!, minor: own[F.currentMinor.offset]!, build: own[F.currentBuild.offset]! },
    committedFirmware: { major: own[F.committedMajor.offset]!, minor: own[F.committedMinor.offset]!, build: own[F.committedBuild.offset]! },
    launchTcb: fieldOf(own, F.launchTcb),
    launchMitVector: version >= 5 ? view.getBigUint64(F.launchMitVector.offset, true) : undefined,
    currentMitVector: version >= 5 ? view.getBigUint64(F.currentMitVector.offset, true) : undefined,
    signature: { r: littleToBig48(fieldOf(own, F.signatureR), 'R'), s: littleToBig48(fieldOf(own, F.signatureS), 'S') },
    cpuidProduct,
    signedBytes: own.subarray(0, SNP_SIGNED_SIZE),
    bytes: own,
  };
}

/** Field values for {@link encodeSnpReport}; everything not given is zero (policy defaults to bit 17). */
export interface SnpReportFields {
  readonly version?: number;
  readonly guestSvn?: number;
  readonly policy?: bigint;
  readonly familyId?: Uint8Array;
  readonly imageId?: Uint8Array;
  readonly vmpl?: number;
  readonly currentTcb?: Uint8Array;
  readonly platformInfo?: bigint;
  readonly signerInfo?: number;
  readonly reportData?: Uint8Array;
  readonly measurement?: Uint8Array;
  readonly hostData?: Uint8Array;
  readonly idKeyDigest?: Uint8Array;
  readonly authorKeyDigest?: Uint8Array;
  readonly reportId?: Uint8Array;
  readonly reportIdMa?: Uint8Array;
  readonly reportedTcb?: Uint8Array;
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
  readonly chipId?: Uint8Array;
  readonly committedTcb?: Uint8Array;
  readonly currentFirmware?: SnpFirmwareVersion;
  readonly committedFirmware?: SnpFirmwareVersion;
  readonly launchTcb?: Uint8Array;
  readonly launchMitVector?: bigint;
  readonly currentMitVector?: bigint;
  /** Big-endian 48-byte r and s; omitted → the signature area stays zero (sign it afterwards). */
  readonly signature?: { readonly r: Uint8Array; readonly s: Uint8Array };
}

/** Encodes a report with the same layout table the parser reads; used by the simulated TEE and tests. */
export function encodeSnpReport(fields: SnpReportFields): Uint8Array {
  const out = new Uint8Array(SNP_REPORT_SIZE);
  const view = new DataView(out.buffer);
  const put = (name: SnpReportField, value: Uint8Array | undefined): void => {
    if (value === undefined) return;
    const f = SNP_REPORT_LAYOUT[name];
    if (value.byteLength > f.size) throw fail('snp.malformed', `${name} is longer than ${f.size} bytes`, { field: name });
    out.set(value, f.offset);
  };
  const version = fields.version ?? 3;
  view.setUint32(SNP_REPORT_LAYOUT.version.offset, version, true);
  view.setUint32(SNP_REPORT_LAYOUT.guestSvn.offset, fields.guestSvn ?? 0, true);
  view.setBigUint64(SNP_REPORT_LAYOUT.policy.offset, fields.policy ?? 1n << 17n, true);
  put('familyId', fields.familyId);
  put('imageId', fields.imageId);
  view.setUint32(SNP_REPORT_LAYOUT.vmpl.offset, fields.vmpl ?? 0, true);
  view.setUint32(SNP_REPORT_LAYOUT.signatureAlgo.offset, 1, true);
  put('currentTcb', fields.currentTcb ?? fields.reportedTcb);
  view.setBigUint64(SNP_REPORT_LAYOUT.platformInfo.offset, fields.platformInfo ?? 0n, true);
  view.setUint32(SNP_REPORT_LAYOUT.signerInfo.offset, fields.signerInfo ?? 0, true);
  put('reportData', fields.reportData);
  put('measurement', fields.measurement);
  put('hostData', fields.hostData);
  put('idKeyDigest', fields.idKeyDigest);
  put('authorKeyDigest', fields.authorKeyDigest);
  put('reportId', fields.reportId);
  put('reportIdMa', fields.reportIdMa);
  put('reportedTcb', fields.reportedTcb);
  if (fields.cpuid && version >= 3) {
    out[SNP_REPORT_LAYOUT.cpuidFamId.offset] = fields.cpuid.family;
    out[SNP_REPORT_LAYOUT.cpuidModId.offset] = fields.cpuid.model;
    out[SNP_REPORT_LAYOUT.cpuidStep.offset] = fields.cpuid.stepping;
  }
  put('chipId', fields.chipId);
  put('committedTcb', fields.committedTcb ?? fields.reportedTcb);
  const fw = (p: 'current' | 'committed', v: SnpFirmwareVersion | undefined): void => {
    if (!v) return;
    out[SNP_REPORT_LAYOUT[`${p}Build`].offset] = v.build;
    out[SNP_REPORT_LAYOUT[`${p}Minor`].offset] = v.minor;
    out[SNP_REPORT_LAYOUT[`${p}Major`].offset] = v.major;
  };
  fw('current', fields.currentFirmware);
  fw('committed', fields.committedFirmware ?? fields.currentFirmware);
  put('launchTcb', fields.launchTcb ?? fields.reportedTcb);
  if (version >= 5) {
    view.setBigUint64(SNP_REPORT_LAYOUT.launchMitVector.offset, fields.launchMitVector ?? 0n, true);
    view.setBigUint64(SNP_REPORT_LAYOUT.currentMitVector.offset, fields.currentMitVector ?? 0n, true);
  }
  if (fields.signature) setSnpReportSignature(out, fields.signature.r, fields.signature.s);
  return out;
}

/** Writes big-endian r and s (≤48 bytes each) into the report's little-endian 72-byte slots, in place. */
export function setSnpReportSignature(report: Uint8Array, r: Uint8Array, s: Uint8Array): void {
  if (r.byteLength > 48 || s.byteLength > 48) throw fail('snp.malformed', 'P-384 r/s exceed 48 bytes');
  for (const [v, name] of [
    [r, 'signatureR'],
    [s, 'signatureS'],
  ] as const) {
    const f = SNP_REPORT_LAYOUT[name];
    const slot = report.subarray(f.offset, f.offset + f.size);
    slot.fill(0);
    slot.set(Uint8Array.from(v).reverse());
  }
}
