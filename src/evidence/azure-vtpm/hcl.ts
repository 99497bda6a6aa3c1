import { ByteReader } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { parseJsonText } from '../../core/json.js';

/**
 * The Azure HCL ("HCLA") attestation report an Azure confidential VM's paravisor writes to vTPM NV
 * index 0x01400001 (evidence-and-collateral §4.3; azure-cvm-tooling `az-cvm-vtpm/src/hcl/mod.rs`):
 * a 32-byte header, the hardware report in a 1184-byte region, then the IGVM request data whose
 * variable part (the runtime claims JSON) the hardware report's REPORT_DATA binds.
 */
export const HCL_SIGNATURE = 0x414c4348; // "HCLA" read as a little-endian u32
export const HCL_HEADER_SIZE = 32;
/** max(SNP report 1184, TDX TD report 1024). */
export const HCL_HW_REPORT_SIZE = 1184;
export const HCL_IGVM_OFFSET = HCL_HEADER_SIZE + HCL_HW_REPORT_SIZE;
export const HCL_IGVM_HEADER_SIZE = 20;

/** IGVM_REQUEST_DATA.report_type. */
export const HCL_REPORT_TYPE = { snp: 2, tdx: 4 } as const;

/** IGVM_REQUEST_DATA.report_data_hash_type → node:crypto hash name. */
export const HCL_HASH_TYPE: Readonly<Record<number, 'sha256' | 'sha384' | 'sha512'>> = { 1: 'sha256', 2: 'sha384', 3: 'sha512' };

export interface HclReport {
  readonly version: number;
  readonly reportSize: number;
  readonly requestType: number;
  readonly status: number;
  readonly reportType: 'snp' | 'tdx';
  /** The hardware report: 1184 bytes for SNP, 1024 for a TDX TD report. */
  readonly hwReport: Uint8Array;
  readonly hashType: 'sha256' | 'sha384' | 'sha512';
  /** The variable data (runtime claims JSON) exactly as stored: REPORT_DATA binds these bytes. */
  readonly runtimeData: Uint8Array;
}

/** Parses an HCL report (the NV index contents, zero padding after the variable data allowed). */
export function parseHclReport(input: Uint8Array): HclReport {
  const r = new ByteReader(input, 'Azure HCL report', 'evidence.truncated');
  const signature = r.u32('signature');
  if (signature !== HCL_SIGNATURE) throw fail('evidence.malformed', 'not an Azure HCL report (signature is not "HCLA")', { signature });
  const version = r.u32('version');
  if (version !== 1 && version !== 2) throw fail('evidence.unsupported', `HCL report version ${version} is not supported`, { version });
  const reportSize = r.u32('report_size');
  const requestType = r.u32('request_type');
  const status = r.u32('status');
  r.skip('reserved', 12);
  r.need('hw_report', HCL_HW_REPORT_SIZE);
  const hwStart = r.offset;
  r.skip('hw_report', HCL_HW_REPORT_SIZE);
  const dataSize = r.u32('igvm.data_size');
  const igvmVersion = r.u32('igvm.version');
  const reportTypeId = r.u32('igvm.report_type');
  const hashTypeId = r.u32('igvm.report_data_hash_type');
  const variableSize = r.u32('igvm.variable_data_size');
  if (igvmVersion !== 1) throw fail('evidence.unsupported', `IGVM request data version ${igvmVersion} is not supported`, { version: igvmVersion });
  const reportType = reportTypeId === HCL_REPORT_TYPE.snp ? 'snp' : reportTypeId === HCL_REPORT_TYPE.tdx ? 'tdx' : undefined;
  if (!reportType) throw fail('evidence.unsupported', `HCL report type ${reportTypeId} is not SNP or TDX`, { reportType: reportTypeId });
  const hashType = HCL_HASH_TYPE[hashTypeId];
  if (!hashType) throw fail('evidence.unsupported', `HCL report-data hash type ${hashTypeId} is not supported`, { hashType: hashTypeId });
  if (dataSize !== HCL_IGVM_HEADER_SIZE + variableSize) {
    throw fail('evidence.malformed', 'IGVM data_size disagrees with variable_data_size', { dataSize, variableSize });
  }
  const runtimeData = r.bytesCopy('igvm.variable_data', variableSize);
  return {
    version,
    reportSize,
    requestType,
    status,
    reportType,
    hwReport: new Uint8Array(input.subarray(hwStart, hwStart + (reportType === 'snp' ? 1184 : 1024))),
    hashType,
    runtimeData,
  };
}

/** Whether bytes start with the HCL report signature. */
export function isHclReport(input: Uint8Array): boolean {
  return input.byteLength >= 4 && input[0] === 0x48 && input[1] === 0x43 && input[2] === 0x4c && input[3] === 0x41;
}

/** JWK-ish objects of the HCL runtime claims (`keys`, `vm-configuration`, `user-data`). */
export interface HclRuntimeClaims {
  readonly json: Record<string, unknown>;
  readonly keys: Record<string, unknown>[];
  readonly hclAkPub: Record<string, unknown> | undefined;
  readonly hclEkPub: Record<string, unknown> | undefined;
  readonly userData: string | undefined;
  readonly vmConfiguration: Record<string, unknown> | undefined;
}

/** Parses the runtime claims JSON of an HCL report (evidence-and-collateral §4.3). */
export function parseHclRuntimeClaims(runtimeData: Uint8Array): HclRuntimeClaims {
  // Bytes any SNP/TDX guest can bind: depth-limited, as the runtime claims are walked afterwards (core/json.ts).
  const json = parseJsonText(Buffer.from(runtimeData).toString('utf8'), 'HCL runtime data', 'evidence.malformed');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fail('evidence.malformed', 'HCL runtime data is not a JSON object');
  const o = json as Record<string, unknown>;
  const keys = Array.isArray(o.keys) ? (o.keys.filter((k) => typeof k === 'object' && k !== null) as Record<string, unknown>[]) : [];
  const vm = o['vm-configuration'];
  return {
    json: o,
    keys,
    hclAkPub: keys.find((k) => k.kid === 'HCLAkPub'),
    hclEkPub: keys.find((k) => k.kid === 'HCLEkPub'),
    userData: typeof o['user-data'] === 'string' ? (o['user-data'] as string).toLowerCase() : undefined,
    vmConfiguration: typeof vm === 'object' && vm !== null ? (vm as Record<string, unknown>) : undefined,
  };
}

/**
 * Encodes an HCL report with the layout {@link parseHclReport} reads (header, hardware report region,
 * IGVM request data, variable data, zero padding to the 2600-byte NV buffer). The simulated Azure CVM of
 * the tests and the SDK's replay device use it; it signs nothing.
 */
export function encodeHclReport(fields: { readonly hwReport: Uint8Array; readonly runtimeData: Uint8Array; readonly reportType?: 'snp' | 'tdx' }): Uint8Array {
  const variable = fields.runtimeData.byteLength;
  const size = Math.max(2600, HCL_IGVM_OFFSET + HCL_IGVM_HEADER_SIZE + variable);
  const b = Buffer.alloc(size);
  b.writeUInt32LE(HCL_SIGNATURE, 0);
  b.writeUInt32LE(2, 4);
  b.writeUInt32LE(HCL_IGVM_OFFSET + HCL_IGVM_HEADER_SIZE + variable, 8);
  b.writeUInt32LE(2, 12);
  Buffer.from(fields.hwReport).copy(b, HCL_HEADER_SIZE);
  b.writeUInt32LE(HCL_IGVM_HEADER_SIZE + variable, HCL_IGVM_OFFSET);
  b.writeUInt32LE(1, HCL_IGVM_OFFSET + 4);
  b.writeUInt32LE(HCL_REPORT_TYPE[fields.reportType ?? 'snp'], HCL_IGVM_OFFSET + 8);
  b.writeUInt32LE(1, HCL_IGVM_OFFSET + 12);
  b.writeUInt32LE(variable, HCL_IGVM_OFFSET + 16);
  Buffer.from(fields.runtimeData).copy(b, HCL_IGVM_OFFSET + HCL_IGVM_HEADER_SIZE);
  return new Uint8Array(b);
}
