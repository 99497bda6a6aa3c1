import { ByteReader, toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';

/**
 * NVIDIA's opaque data in the MEASUREMENTS response: `type:u16 | length:u16 | value[length]` entries
 * without padding (gpu-attestation §2 "Opaque data"; type numbers as NVIDIA's verifiers define them).
 */
export const OPAQUE_TYPE = {
  CERT_ISSUER_NAME: 1,
  CERT_AUTHORITY_KEY_IDENTIFIER: 2,
  DRIVER_VERSION: 3,
  GPU_INFO: 4,
  SKU: 5,
  VBIOS_VERSION: 6,
  MANUFACTURER_ID: 7,
  TAMPER_DETECTION: 8,
  SMC: 9,
  VPR: 10,
  NVDEC0_STATUS: 11,
  MSRSCNT: 12,
  CPRINFO: 13,
  BOARD_ID: 14,
  CHIP_SKU: 15,
  CHIP_SKU_MOD: 16,
  PROJECT: 17,
  PROJECT_SKU: 18,
  PROJECT_SKU_MOD: 19,
  FWID: 20,
  PROTECTED_PCIE_STATUS: 21,
  SWITCH_PDI: 22,
  FLOORSWEPT_PORTS: 23,
  POSITION_ID: 24,
  LOCK_SWITCH_STATUS: 25,
  GPU_LINK_CONN: 32,
  SYS_ENABLE_STATUS: 33,
  OPAQUE_DATA_VERSION: 34,
  CHIP_INFO: 35,
  FEATURE_FLAG: 36,
} as const;

const KNOWN_TYPES = new Set<number>(Object.values(OPAQUE_TYPE));
const TYPE_NAME = new Map<number, string>(Object.entries(OPAQUE_TYPE).map(([k, v]) => [v, k]));

/** NVDEC0_STATUS values: 0xAA enabled, 0x55 disabled (RIM index 35 is skipped when disabled). */
export const NVDEC0_ENABLED = 0xaa;
export const NVDEC0_DISABLED = 0x55;

export type GpuFeatureFlag = 'SPT' | 'MPT' | 'PPCIE';
const FEATURE_FLAGS: readonly GpuFeatureFlag[] = ['SPT', 'MPT', 'PPCIE'];

export interface OpaqueEntry {
  readonly type: number;
  readonly name: string;
  readonly value: Uint8Array;
}

/** Decoded opaque data; absent entries are undefined. */
export interface OpaqueData {
  readonly entries: readonly OpaqueEntry[];
  readonly driverVersion: string | undefined;
  /** `b3.b2.b1.b0.b4` in upper-case hex, e.g. "96.00.9F.00.01". */
  readonly vbiosVersion: string | undefined;
  readonly project: string | undefined;
  readonly projectSku: string | undefined;
  readonly projectSkuMod: string | undefined;
  readonly chipSku: string | undefined;
  readonly chipSkuMod: string | undefined;
  readonly chipInfo: string | undefined;
  readonly nvdec0Status: number | undefined;
  readonly fwid: Uint8Array | undefined;
  readonly opaqueDataVersion: number | undefined;
  readonly featureFlag: GpuFeatureFlag | undefined;
  readonly protectedPcieStatus: number | undefined;
  /** NVSwitch PDIs (PPCIe), hex. */
  readonly switchPdis: readonly string[];
  /** MSRSCNT: a counter per measurement block. */
  readonly msrscnt: readonly number[] | undefined;
}

const HEX_UPPER = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase());

/** Printable ASCII of `data[from..to)` less its trailing NULs (the driver's NUL-terminated strings). */
function ascii(data: Uint8Array, from: number, to: number, type: number, offset: number): string {
  let end = to;
  while (end > from && data[end - 1] === 0) end--;
  for (let i = from; i < end; i++) {
    const c = data[i]!;
    if (c < 0x20 || c > 0x7e) throw fail('gpu.malformed', `opaque ${TYPE_NAME.get(type)} is not printable text`, { field: TYPE_NAME.get(type), offset });
  }
  if (end - from > 64) return Buffer.from(data.buffer, data.byteOffset + from, end - from).toString('latin1');
  let s = '';
  for (let i = from; i < end; i++) s += String.fromCharCode(data[i]!);
  return s;
}

function littleEndianInt(data: Uint8Array, from: number, length: number, type: number, offset: number): number {
  if (length === 0 || length > 4) throw fail('gpu.malformed', `opaque ${TYPE_NAME.get(type)} has length ${length}`, { field: TYPE_NAME.get(type), offset });
  let n = 0;
  for (let i = from + length - 1; i >= from; i--) n = n * 256 + data[i]!;
  return n;
}

/** VBIOS_VERSION: 8 bytes b0..b7 → `b3.b2.b1.b0.b4` (NVIDIA's text form, upper-case). */
export function vbiosVersionText(v: Uint8Array): string {
  return `${HEX_UPPER[v[3]!]}.${HEX_UPPER[v[2]!]}.${HEX_UPPER[v[1]!]}.${HEX_UPPER[v[0]!]}.${HEX_UPPER[v[4]!]}`;
}

/** The largest type number NVIDIA defines (FEATURE_FLAG). */
const MAX_TYPE = 36;

/**
 * Where each entry's value lies in the data, by type: `at[t]` is 1 + its offset (0 when absent) and
 * `len[t]` its length; `base` turns an entry's offset into the report's, for error details.
 */
interface Positions {
  readonly data: Uint8Array;
  readonly base: number;
  readonly at: number[];
  readonly len: number[];
}
const has = (p: Positions, t: number): boolean => p.at[t] !== 0;
const from = (p: Positions, t: number): number => p.at[t]! - 1;
/** The report offset of the entry (its type field), for error details. */
const entryOffset = (p: Positions, t: number): number => p.base + from(p, t) - 4;
function text(p: Positions, t: number): string | undefined {
  return has(p, t) ? ascii(p.data, from(p, t), from(p, t) + p.len[t]!, t, entryOffset(p, t)) : undefined;
}
function int(p: Positions, t: number): number | undefined {
  return has(p, t) ? littleEndianInt(p.data, from(p, t), p.len[t]!, t, entryOffset(p, t)) : undefined;
}
function view(p: Positions, t: number): Uint8Array | undefined {
  return has(p, t) ? p.data.subarray(from(p, t), from(p, t) + p.len[t]!) : undefined;
}
function sizeFail(p: Positions, t: number, message: string): never {
  throw fail('gpu.malformed', message, { field: TYPE_NAME.get(t), offset: entryOffset(p, t) });
}

/**
 * Parses the opaque data. Unknown types (outside NVIDIA's 1..36) and repeated types are rejected, as
 * NVIDIA's C++ verifier and trustee do; `base` is the absolute offset of the data, for error details.
 * One pass records where each entry's value lies; the fields are read from those positions, and the
 * list of entries (views of each value) is built only when read.
 */
export function parseOpaqueData(data: Uint8Array, base = 0): OpaqueData {
  const n = data.byteLength;
  const p: Positions = { data, base, at: new Array<number>(MAX_TYPE + 1).fill(0), len: new Array<number>(MAX_TYPE + 1).fill(0) };
  const order: number[] = [];
  let o = 0;
  while (o < n) {
    const offset = base + o;
    if (o + 4 > n) new ByteReader(data, 'GPU opaque data', 'gpu.truncated', o + 2 > n ? o : o + 2).need(o + 2 > n ? 'opaque.type' : 'opaque.length', 2);
    const type = data[o]! | (data[o + 1]! << 8);
    const length = data[o + 2]! | (data[o + 3]! << 8);
    if (o + 4 + length > n) new ByteReader(data, 'GPU opaque data', 'gpu.truncated', o + 4).need('opaque.value', length);
    if (!KNOWN_TYPES.has(type)) throw fail('gpu.malformed', `unknown opaque data type ${type}`, { field: 'opaque.type', type, offset });
    if (p.at[type] !== 0) throw fail('gpu.malformed', `opaque data type ${TYPE_NAME.get(type)} is repeated`, { field: TYPE_NAME.get(type), offset });
    p.at[type] = o + 5;
    p.len[type] = length;
    order.push(type);
    o += 4 + length;
  }

  const T = OPAQUE_TYPE;
  if (has(p, T.VBIOS_VERSION) && p.len[T.VBIOS_VERSION]! < 5) sizeFail(p, T.VBIOS_VERSION, 'opaque VBIOS_VERSION is too short');
  if (has(p, T.NVDEC0_STATUS) && p.len[T.NVDEC0_STATUS] !== 1) sizeFail(p, T.NVDEC0_STATUS, 'opaque NVDEC0_STATUS must be one byte');
  if (has(p, T.FWID) && p.len[T.FWID] !== 48) sizeFail(p, T.FWID, 'opaque FWID must be 48 bytes');
  if (has(p, T.SWITCH_PDI) && p.len[T.SWITCH_PDI]! % 8 !== 0) sizeFail(p, T.SWITCH_PDI, 'opaque SWITCH_PDI is not a list of 8-byte PDIs');
  if (has(p, T.MSRSCNT) && p.len[T.MSRSCNT]! % 4 !== 0) sizeFail(p, T.MSRSCNT, 'opaque MSRSCNT is not a list of u32');
  const ff = int(p, T.FEATURE_FLAG);
  if (ff !== undefined && FEATURE_FLAGS[ff] === undefined) sizeFail(p, T.FEATURE_FLAG, `opaque FEATURE_FLAG ${ff} is not SPT, MPT or PPCIE`);
  const pdis: string[] = [];
  if (has(p, T.SWITCH_PDI)) {
    const end = from(p, T.SWITCH_PDI) + p.len[T.SWITCH_PDI]!;
    for (let i = from(p, T.SWITCH_PDI); i < end; i += 8) pdis.push(toHex(data.subarray(i, i + 8)));
  }
  let msrscnt: number[] | undefined;
  if (has(p, T.MSRSCNT)) {
    msrscnt = [];
    const end = from(p, T.MSRSCNT) + p.len[T.MSRSCNT]!;
    for (let i = from(p, T.MSRSCNT); i < end; i += 4) msrscnt.push((data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0);
  }
  const vb = view(p, T.VBIOS_VERSION);
  let entries: OpaqueEntry[] | undefined;
  return {
    get entries(): readonly OpaqueEntry[] {
      entries ??= order.map((type) => ({ type, name: TYPE_NAME.get(type)!, value: view(p, type)! }));
      return entries;
    },
    driverVersion: text(p, T.DRIVER_VERSION),
    vbiosVersion: vb ? vbiosVersionText(vb) : undefined,
    project: text(p, T.PROJECT),
    projectSku: text(p, T.PROJECT_SKU),
    projectSkuMod: text(p, T.PROJECT_SKU_MOD),
    chipSku: text(p, T.CHIP_SKU),
    chipSkuMod: text(p, T.CHIP_SKU_MOD),
    chipInfo: text(p, T.CHIP_INFO),
    nvdec0Status: has(p, T.NVDEC0_STATUS) ? data[from(p, T.NVDEC0_STATUS)] : undefined,
    fwid: view(p, T.FWID),
    opaqueDataVersion: int(p, T.OPAQUE_DATA_VERSION),
    featureFlag: ff === undefined ? undefined : FEATURE_FLAGS[ff],
    protectedPcieStatus: has(p, T.PROTECTED_PCIE_STATUS) && p.len[T.PROTECTED_PCIE_STATUS]! > 0 ? data[from(p, T.PROTECTED_PCIE_STATUS)] : undefined,
    switchPdis: pdis,
    msrscnt,
  };
}

/** Values to encode; strings are written NUL-terminated, as the driver does. */
export interface OpaqueFields {
  readonly driverVersion: string;
  /** Text form "96.00.9F.00.01". */
  readonly vbiosVersion: string;
  readonly project: string;
  readonly projectSku: string;
  readonly chipSku: string;
  readonly nvdec0Status?: number;
  readonly fwid?: Uint8Array;
  readonly featureFlag?: GpuFeatureFlag;
  readonly chipInfo?: string;
  /** PROTECTED_PCIE_STATUS byte (0x55 SPT, 0xAA PPCIe); left out when undefined. */
  readonly protectedPcieStatus?: number;
  /** NVSwitch PDIs (16 hex digits each), PPCIe. */
  readonly switchPdis?: readonly string[];
}

/** Encodes opaque data (simulated GPUs and tests). */
export function encodeOpaqueData(f: OpaqueFields): Uint8Array {
  const parts: Uint8Array[] = [];
  const put = (type: number, value: Uint8Array): void => {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(type, 0);
    h.writeUInt16LE(value.byteLength, 2);
    parts.push(h, value);
  };
  const str = (s: string, pad = 0): Uint8Array => {
    const b = Buffer.alloc(Math.max(s.length + 1, pad));
    b.write(s, 'latin1');
    return b;
  };
  const v = f.vbiosVersion.split('.').map((x) => Number.parseInt(x, 16));
  if (v.length !== 5 || v.some((x) => !(x >= 0 && x <= 255))) throw fail('gpu.malformed', `VBIOS version "${f.vbiosVersion}" is not five hex bytes`);
  put(OPAQUE_TYPE.VBIOS_VERSION, Uint8Array.of(v[3]!, v[2]!, v[1]!, v[0]!, v[4]!, 0, 0, 0));
  put(OPAQUE_TYPE.CHIP_SKU, str(f.chipSku, 4));
  put(OPAQUE_TYPE.PROJECT, str(f.project, 5));
  put(OPAQUE_TYPE.PROJECT_SKU, str(f.projectSku, 5));
  put(OPAQUE_TYPE.DRIVER_VERSION, str(f.driverVersion));
  put(OPAQUE_TYPE.NVDEC0_STATUS, Uint8Array.of(f.nvdec0Status ?? NVDEC0_DISABLED));
  if (f.fwid) put(OPAQUE_TYPE.FWID, f.fwid);
  if (f.protectedPcieStatus !== undefined) put(OPAQUE_TYPE.PROTECTED_PCIE_STATUS, Uint8Array.of(f.protectedPcieStatus));
  if (f.switchPdis?.length) put(OPAQUE_TYPE.SWITCH_PDI, Buffer.from(f.switchPdis.join(''), 'hex'));
  if (f.featureFlag) {
    put(OPAQUE_TYPE.OPAQUE_DATA_VERSION, Uint8Array.of(1, 0, 0, 0));
    put(OPAQUE_TYPE.FEATURE_FLAG, Uint8Array.of(FEATURE_FLAGS.indexOf(f.featureFlag), 0, 0, 0));
  }
  if (f.chipInfo) put(OPAQUE_TYPE.CHIP_INFO, str(f.chipInfo));
  return new Uint8Array(Buffer.concat(parts));
}
