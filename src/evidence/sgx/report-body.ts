import type { Decoded } from '../../core/layout.js';

/**
 * sgx_report_body_t (384 bytes): the enclave report in SGX quotes and the QE report of every quote.
 * Intel SGX SDK `sgx_report.h`; offsets as in evidence-and-collateral §1.2.
 */
export const SGX_REPORT_BODY = [
  { name: 'cpusvn', offset: 0, type: 16 },
  { name: 'miscselect', offset: 16, type: 4 },
  { name: 'reserved1', offset: 20, type: 12 },
  { name: 'isvextprodid', offset: 32, type: 16 },
  { name: 'attributes', offset: 48, type: 16 },
  { name: 'mrenclave', offset: 64, type: 32 },
  { name: 'reserved2', offset: 96, type: 32 },
  { name: 'mrsigner', offset: 128, type: 32 },
  { name: 'reserved3', offset: 160, type: 32 },
  { name: 'configid', offset: 192, type: 64 },
  { name: 'isvprodid', offset: 256, type: 'u16' },
  { name: 'isvsvn', offset: 258, type: 'u16' },
  { name: 'configsvn', offset: 260, type: 'u16' },
  { name: 'reserved4', offset: 262, type: 42 },
  { name: 'isvfamilyid', offset: 304, type: 16 },
  { name: 'reportdata', offset: 320, type: 64 },
] as const;

export const SGX_REPORT_BODY_SIZE = 384;

export type SgxReportBody = Decoded<typeof SGX_REPORT_BODY>;

/** ATTRIBUTES.FLAGS bit 1 (SGX_FLAGS_DEBUG): the enclave was launched in debug mode. */
export function isSgxDebug(body: SgxReportBody): boolean {
  return (body.attributes[0]! & 0x02) !== 0;
}

/** MISCSELECT as the little-endian u32 the report holds. */
export function miscselectOf(body: SgxReportBody): number {
  return Buffer.from(body.miscselect).readUInt32LE(0);
}
