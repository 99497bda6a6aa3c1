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

function ascii(v: Uint8Array, type: number, offset: number): string {
  let end = v.byteLength;
  while (end > 0 && v[end - 1] === 0) end--;
  const s = Buffer.from(v.subarray(0, end)).toString('latin1');
  if (!/^[\x20-\x7e]*$/.test(s)) throw fail('gpu.malformed', `opaque ${TYPE_NAME.get(type)} is not printable text`, { field: TYPE_NAME.get(type), offset });
  return s;
}

function littleEndianInt(v: Uint8Array, type: number, offset: number): number {
  if (v.byteLength === 0 || v.byteLength > 4) throw fail('gpu.malformed', `opaque ${TYPE_NAME.get(type)} has length ${v.byteLength}`, { field: TYPE_NAME.get(type), offset });
  let n = 0;
  for (let i = v.byteLength - 1; i >= 0; i--) n = n * 256 + v[i]!;
  return n;
}

/** VBIOS_VERSION: 8 bytes b0..b7 → `b3.b2.b1.b0.b4` (NVIDIA's text form, upper-case). */
export function vbiosVersionText(v: Uint8Array): string {
  const h = (i: number): string => v[i]!.toString(16).padStart(2, '0').toUpperCase();
  return `${h(3)}.${h(2)}.${h(1)}.${h(0)}.${h(4)}`;
}

/**
 * Parses the opaque data. Unknown types (outside NVIDIA's 1..36) and repeated types are rejected, as
 * NVIDIA's C++ verifier and trustee do; `base` is the absolute offset of the data, for error details.
 */
export function parseOpaqueData(data: Uint8Array, base = 0): OpaqueData {
  const r = new ByteReader(data, 'GPU opaque data', 'gpu.truncated');
  const entries: OpaqueEntry[] = [];
  const byType = new Map<number, { value: Uint8Array; offset: number }>();
  while (r.remaining > 0) {
    const offset = base + r.offset;
    const type = r.u16('opaque.type');
    const length = r.u16('opaque.length');
    const value = r.view_('opaque.value', length);
    if (!KNOWN_TYPES.has(type)) throw fail('gpu.malformed', `unknown opaque data type ${type}`, { field: 'opaque.type', type, offset });
    if (byType.has(type)) throw fail('gpu.malformed', `opaque data type ${TYPE_NAME.get(type)} is repeated`, { field: TYPE_NAME.get(type), offset });
    byType.set(type, { value, offset });
    entries.push({ type, name: TYPE_NAME.get(type)!, value });
  }
  const get = (t: number): { value: Uint8Array; offset: number } | undefined => byType.get(t);
  const text = (t: number): string | undefined => {
    const e = get(t);
    return e ? ascii(e.value, t, e.offset) : undefined;
  };
  const int = (t: number): number | undefined => {
    const e = get(t);
    return e ? littleEndianInt(e.value, t, e.offset) : undefined;
  };

  const vb = get(OPAQUE_TYPE.VBIOS_VERSION);
  if (vb && vb.value.byteLength < 5) throw fail('gpu.malformed', 'opaque VBIOS_VERSION is too short', { field: 'VBIOS_VERSION', offset: vb.offset });
  const nvdec = get(OPAQUE_TYPE.NVDEC0_STATUS);
  if (nvdec && nvdec.value.byteLength !== 1) throw fail('gpu.malformed', 'opaque NVDEC0_STATUS must be one byte', { field: 'NVDEC0_STATUS', offset: nvdec.offset });
  const fwid = get(OPAQUE_TYPE.FWID);
  if (fwid && fwid.value.byteLength !== 48) throw fail('gpu.malformed', 'opaque FWID must be 48 bytes', { field: 'FWID', offset: fwid.offset });
  const pdi = get(OPAQUE_TYPE.SWITCH_PDI);
  if (pdi && pdi.value.byteLength % 8 !== 0) throw fail('gpu.malformed', 'opaque SWITCH_PDI is not a list of 8-byte PDIs', { field: 'SWITCH_PDI', offset: pdi.offset });
  const cnt = get(OPAQUE_TYPE.MSRSCNT);
  if (cnt && cnt.value.byteLength % 4 !== 0) throw fail('gpu.malformed', 'opaque MSRSCNT is not a list of u32', { field: 'MSRSCNT', offset: cnt.offset });
  const pcie = get(OPAQUE_TYPE.PROTECTED_PCIE_STATUS);
  const ff = int(OPAQUE_TYPE.FEATURE_FLAG);
  if (ff !== undefined && FEATURE_FLAGS[ff] === undefined) {
    throw fail('gpu.malformed', `opaque FEATURE_FLAG ${ff} is not SPT, MPT or PPCIE`, { field: 'FEATURE_FLAG', offset: get(OPAQUE_TYPE.FEATURE_FLAG)!.offset });
  }
  const pdis: string[] = [];
  if (pdi) for (let i = 0; i < pdi.value.byteLength; i += 8) pdis.push(toHex(pdi.value.subarray(i, i + 8)));
  let msrscnt: number[] | undefined;
  if (cnt) {
    const v = new DataView(cnt.value.buffer, cnt.value.byteOffset, cnt.value.byteLength);
    msrscnt = [];
    for (let i = 0; i < cnt.value.byteLength; i += 4) msrscnt.push(v.getUint32(i, true));
  }
  return {
    entries,
    driverVersion: text(OPAQUE_TYPE.DRIVER_VERSION),
    vbiosVersion: vb ? vbiosVersionText(vb.value) : undefined,
    project: text(OPAQUE_TYPE.PROJECT),
    projectSku: text(OPAQUE_TYPE.PROJECT_SKU),
    projectSkuMod: text(OPAQUE_TYPE.PROJECT_SKU_MOD),
    chipSku: text(OPAQUE_TYPE.CHIP_SKU),
    chipSkuMod: text(OPAQUE_TYPE.CHIP_SKU_MOD),
    chipInfo: text(OPAQUE_TYPE.CHIP_INFO),
    nvdec0Status: nvdec?.value[0],
    fwid: fwid?.value,
    opaqueDataVersion: int(OPAQUE_TYPE.OPAQUE_DATA_VERSION),
    featureFlag: ff === undefined ? undefined : FEATURE_FLAGS[ff],
    protectedPcieStatus: pcie?.value[0],
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
  if (f.featureFlag) {
    put(OPAQUE_TYPE.OPAQUE_DATA_VERSION, Uint8Array.of(1, 0, 0, 0));
    put(OPAQUE_TYPE.FEATURE_FLAG, Uint8Array.of(FEATURE_FLAGS.indexOf(f.featureFlag), 0, 0, 0));
  }
  if (f.chipInfo) put(OPAQUE_TYPE.CHIP_INFO, str(f.chipInfo));
  return new Uint8Array(Buffer.concat(parts));
}
