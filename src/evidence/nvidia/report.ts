import { ByteReader, isAllZero, toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { type Decoded, type Layout, decodeLayout, encodeLayout, indexLayout, layoutSize } from '../../core/layout.js';
import { type OpaqueData, encodeOpaqueData, parseOpaqueData } from './opaque.js';

/**
 * The NVIDIA GPU attestation report: the SPDM 1.1 GET_MEASUREMENTS request the driver sent to the GPU,
 * followed by the GPU's MEASUREMENTS response (DSP0274 1.1.0 §10.11; gpu-attestation §2). Little-endian.
 * The ECDSA P-384 signature at the end of the response covers the request and the response up to the
 * signature (the SPDM 1.1 measurement transcript of a single exchange), so the verifier's nonce, which
 * sits in the request, is signed too.
 */

export const SPDM_VERSION_1_1 = 0x11;
export const SPDM_GET_MEASUREMENTS = 0xe0;
export const SPDM_MEASUREMENTS = 0x60;
/** DSP0274 §10.11.1: Param1 bit 0 asks for a signed response. */
export const SPDM_PARAM1_SIGNATURE_REQUESTED = 0x01;
/** DSP0274 §10.11.1: Param2 0xFF asks for every measurement block. */
export const SPDM_PARAM2_ALL_MEASUREMENTS = 0xff;
/** MeasurementSpecification bit 0: the DMTF measurement format (DSP0274 §10.11.1.1). */
export const SPDM_MEASUREMENT_SPEC_DMTF = 0x01;
export const GPU_NONCE_SIZE = 32;
/** Raw ECDSA P-384 r‖s (NVIDIA HopperSettings/BlackwellSettings signature_length). */
export const GPU_SIGNATURE_SIZE = 96;
/** nvmlConfComputeGpuAttestationReport_t holds at most 8 KiB of report. */
export const GPU_REPORT_MAX_SIZE = 8192;

/** GET_MEASUREMENTS request (DSP0274 1.1 Table 40), always 37 bytes as NVIDIA's driver sends it. */
export const SPDM_REQUEST_LAYOUT = [
  { name: 'spdmVersion', offset: 0x00, type: 'u8' },
  { name: 'requestResponseCode', offset: 0x01, type: 'u8' },
  { name: 'param1', offset: 0x02, type: 'u8' },
  { name: 'param2', offset: 0x03, type: 'u8' },
  { name: 'nonce', offset: 0x04, type: GPU_NONCE_SIZE },
  { name: 'slotIdParam', offset: 0x24, type: 'u8' },
] as const satisfies Layout;
export const SPDM_REQUEST_SIZE = layoutSize(SPDM_REQUEST_LAYOUT);

/** MEASUREMENTS response header (DSP0274 1.1 Table 43); MeasurementRecordLength is a 3-byte integer. */
export const SPDM_RESPONSE_HEADER_LAYOUT = [
  { name: 'spdmVersion', offset: 0x00, type: 'u8' },
  { name: 'requestResponseCode', offset: 0x01, type: 'u8' },
  { name: 'param1', offset: 0x02, type: 'u8' },
  { name: 'param2', offset: 0x03, type: 'u8' },
  { name: 'numberOfBlocks', offset: 0x04, type: 'u8' },
  { name: 'measurementRecordLength', offset: 0x05, type: 3 },
] as const satisfies Layout;

/** Measurement block header (DSP0274 1.1 Table 44) followed by the DMTF measurement header (Table 45). */
export const MEASUREMENT_BLOCK_LAYOUT = [
  { name: 'index', offset: 0x00, type: 'u8' },
  { name: 'measurementSpecification', offset: 0x01, type: 'u8' },
  { name: 'measurementSize', offset: 0x02, type: 'u16' },
  { name: 'dmtfSpecMeasurementValueType', offset: 0x04, type: 'u8' },
  { name: 'dmtfSpecMeasurementValueSize', offset: 0x05, type: 'u16' },
] as const satisfies Layout;
const DMTF_HEADER_SIZE = 3;
const MEASUREMENT_BLOCK_SIZE = layoutSize(MEASUREMENT_BLOCK_LAYOUT);
/** Field offsets of a block header, read straight from the table (the parser's per-block hot loop). */
const BLOCK = indexLayout(MEASUREMENT_BLOCK_LAYOUT);

export type SpdmRequest = Decoded<typeof SPDM_REQUEST_LAYOUT>;

export interface MeasurementBlock {
  /** SPDM index, 1-based (RIM index + 1). */
  readonly index: number;
  readonly valueType: number;
  readonly value: Uint8Array;
}

/** A parsed GPU attestation report. Byte fields are views into one private copy of the input. */
export interface GpuReport {
  readonly request: SpdmRequest;
  readonly response: {
    readonly spdmVersion: number;
    readonly param1: number;
    readonly param2: number;
    readonly numberOfBlocks: number;
    readonly measurementRecordLength: number;
    /** The responder's (GPU's) own nonce. */
    readonly nonce: Uint8Array;
    readonly opaqueLength: number;
  };
  /** The blocks in record order (built on first read from {@link measurementTable}). */
  readonly measurements: readonly MeasurementBlock[];
  /** Where each block's value lies in {@link bytes}, by SPDM index: what the comparison reads. */
  readonly measurementTable: MeasurementTable;
  readonly opaque: OpaqueData;
  /** Raw r‖s. */
  readonly signature: Uint8Array;
  /** Request ‖ response up to the signature: the bytes the signature covers. */
  readonly signedBytes: Uint8Array;
  /** Zero bytes after the signature (seen in a trustee capture); anything else is rejected. */
  readonly trailingBytes: number;
  /** The parser's private copy of the whole report; every byte field is a view into it. */
  readonly bytes: Uint8Array;
}

/**
 * The measurement blocks of one report as positions in its bytes: for each SPDM index, the offset and size
 * of its value. Filled by the parser (which has checked every position against the record), so the
 * comparison looks a value up by index without building an object or a view per block.
 */
export class MeasurementTable {
  /**
   * One array: [0, 256) SPDM index → 1 + the block's row (0 when the report has no block with that index);
   * then per block in record order, 4 cells: index, DMTF value type, value offset, value size.
   */
  private readonly cells: Int32Array;
  private built: MeasurementBlock[] | undefined;
  /** The report's bytes (the parser's private copy). */
  readonly bytes: Uint8Array;
  /** Number of blocks. */
  readonly count: number;

  constructor(bytes: Uint8Array, cells: Int32Array, count: number) {
    this.bytes = bytes;
    this.cells = cells;
    this.count = count;
  }

  /** Offset in {@link bytes} of the value at a 1-based SPDM index, or -1 when there is no such block. */
  offsetOf(spdmIndex: number): number {
    const s = spdmIndex >= 0 && spdmIndex < 256 ? this.cells[spdmIndex]! : 0;
    return s === 0 ? -1 : this.cells[256 + (s - 1) * 4 + 2]!;
  }

  /** Size of the value at a 1-based SPDM index (0 when there is no such block). */
  sizeOf(spdmIndex: number): number {
    const s = spdmIndex >= 0 && spdmIndex < 256 ? this.cells[spdmIndex]! : 0;
    return s === 0 ? 0 : this.cells[256 + (s - 1) * 4 + 3]!;
  }

  /** The blocks in record order, as objects with views of their values (built once). */
  blocks(): readonly MeasurementBlock[] {
    if (!this.built) {
      const out: MeasurementBlock[] = [];
      for (let i = 0; i < this.count; i++) {
        const row = 256 + i * 4;
        const o = this.cells[row + 2]!;
        out.push({ index: this.cells[row]!, valueType: this.cells[row + 1]!, value: this.bytes.subarray(o, o + this.cells[row + 3]!) });
      }
      this.built = out;
    }
    return this.built;
  }
}

function u24(b: Uint8Array): number {
  return b[0]! | (b[1]! << 8) | (b[2]! << 16);
}

/**
 * Parses a GPU attestation report by the lengths it declares. Throws only `gpu.truncated`,
 * `gpu.malformed` or `gpu.unsupported`, naming the field and offset.
 */
export function parseGpuReport(bytes: Uint8Array): GpuReport {
  if (!(bytes instanceof Uint8Array)) throw fail('gpu.malformed', 'GPU attestation report must be bytes');
  if (bytes.byteLength > GPU_REPORT_MAX_SIZE + 64) {
    throw fail('gpu.malformed', `GPU attestation report is ${bytes.byteLength} bytes; at most ${GPU_REPORT_MAX_SIZE} are allowed`, { length: bytes.byteLength });
  }
  // One copy of the input; every byte field below is a view into it, so nothing aliases the caller's buffer.
  const input = new Uint8Array(bytes);
  const r = new ByteReader(input, 'GPU attestation report', 'gpu.truncated');

  const request = decodeLayout(r, SPDM_REQUEST_LAYOUT, 'request', false);
  if (request.spdmVersion !== SPDM_VERSION_1_1) {
    throw fail('gpu.unsupported', `SPDM version 0x${request.spdmVersion.toString(16)} is not supported (only 1.1)`, { field: 'request.spdmVersion', offset: 0 });
  }
  if (request.requestResponseCode !== SPDM_GET_MEASUREMENTS) {
    throw fail('gpu.malformed', 'the report does not start with a GET_MEASUREMENTS request', { field: 'request.requestResponseCode', offset: 1 });
  }
  if ((request.param1 & SPDM_PARAM1_SIGNATURE_REQUESTED) === 0) {
    throw fail('gpu.unsupported', 'the request did not ask for a signed response', { field: 'request.param1', offset: 2 });
  }
  if (request.param2 !== SPDM_PARAM2_ALL_MEASUREMENTS) {
    throw fail('gpu.unsupported', 'the request did not ask for all measurement blocks', { field: 'request.param2', offset: 3 });
  }

  const respStart = r.offset;
  const header = decodeLayout(r, SPDM_RESPONSE_HEADER_LAYOUT, 'response', false);
  if (header.spdmVersion !== SPDM_VERSION_1_1) {
    throw fail('gpu.unsupported', `SPDM response version 0x${header.spdmVersion.toString(16)} is not supported`, { field: 'response.spdmVersion', offset: respStart });
  }
  if (header.requestResponseCode !== SPDM_MEASUREMENTS) {
    throw fail('gpu.malformed', 'the response is not a MEASUREMENTS response', { field: 'response.requestResponseCode', offset: respStart + 1 });
  }
  if (header.numberOfBlocks === 0) throw fail('gpu.malformed', 'the response holds no measurement block', { field: 'response.numberOfBlocks', offset: respStart + 4 });
  const recordLength = u24(header.measurementRecordLength);
  r.need('response.measurementRecord', recordLength);
  const recordEnd = r.offset + recordLength;

  // The record is inside the input (checked above), and each header is checked to fit the record before
  // it is read, so the loop reads the header fields at their table offsets without a cursor per field.
  // Rows for the declared blocks; a record that holds more is refused after the loop (which still checks
  // every block, so each fault gets the same error whatever the count), and its extra blocks need no row.
  const declared = header.numberOfBlocks;
  const cells = new Int32Array(256 + declared * 4);
  let count = 0;
  let at = r.offset;
  while (at < recordEnd) {
    if (at + MEASUREMENT_BLOCK_SIZE > recordEnd) {
      throw fail('gpu.truncated', 'a measurement block runs past the measurement record', { field: 'measurementRecord', offset: at });
    }
    const index = input[at + BLOCK.index.offset]!;
    const spec = input[at + BLOCK.measurementSpecification.offset]!;
    const size = input[at + BLOCK.measurementSize.offset]! | (input[at + BLOCK.measurementSize.offset + 1]! << 8);
    const valueType = input[at + BLOCK.dmtfSpecMeasurementValueType.offset]!;
    const valueSize = input[at + BLOCK.dmtfSpecMeasurementValueSize.offset]! | (input[at + BLOCK.dmtfSpecMeasurementValueSize.offset + 1]! << 8);
    if (spec !== SPDM_MEASUREMENT_SPEC_DMTF) {
      throw fail('gpu.malformed', `measurement block ${index} is not in the DMTF format`, { field: 'measurementSpecification', index, offset: at + 1 });
    }
    if (size !== DMTF_HEADER_SIZE + valueSize) {
      throw fail('gpu.malformed', `measurement block ${index} sizes disagree`, { field: 'measurementSize', index, offset: at + 2 });
    }
    if (index === 0 || index === 0xff || cells[index] !== 0) {
      throw fail('gpu.malformed', `measurement block index ${index} is reserved or repeated`, { field: 'index', index, offset: at });
    }
    const valueAt = at + MEASUREMENT_BLOCK_SIZE;
    if (valueAt + valueSize > recordEnd) {
      throw fail('gpu.truncated', `measurement block ${index} runs past the measurement record`, { field: 'measurementRecord', index, offset: at });
    }
    if (count < declared) {
      const row = 256 + count * 4;
      cells[row] = index;
      cells[row + 1] = valueType;
      cells[row + 2] = valueAt;
      cells[row + 3] = valueSize;
    }
    count++;
    cells[index] = count;
    at = valueAt + valueSize;
  }
  r.offset = at;
  if (count !== header.numberOfBlocks) {
    throw fail('gpu.malformed', `the response declares ${header.numberOfBlocks} measurement blocks but holds ${count}`, {
      field: 'response.numberOfBlocks',
      expected: header.numberOfBlocks,
      actual: count,
    });
  }
  const table = new MeasurementTable(input, cells, count);

  const nonce = r.view_('response.nonce', GPU_NONCE_SIZE);
  const opaqueLength = r.u16('response.opaqueLength');
  const opaqueStart = r.offset;
  const opaque = parseOpaqueData(r.view_('response.opaqueData', opaqueLength), opaqueStart);
  const signedEnd = r.offset;
  const signature = r.view_('response.signature', GPU_SIGNATURE_SIZE);
  const trailing = input.subarray(r.offset);
  if (!isAllZero(trailing)) {
    throw fail('gpu.malformed', `the report has ${trailing.byteLength} non-zero bytes after the signature`, { offset: r.offset, trailingBytes: trailing.byteLength });
  }
  return {
    request,
    response: {
      spdmVersion: header.spdmVersion,
      param1: header.param1,
      param2: header.param2,
      numberOfBlocks: header.numberOfBlocks,
      measurementRecordLength: recordLength,
      nonce,
      opaqueLength,
    },
    get measurements() {
      return table.blocks();
    },
    measurementTable: table,
    opaque,
    signature,
    signedBytes: input.subarray(0, signedEnd),
    trailingBytes: trailing.byteLength,
    bytes: input,
  };
}

/** The measurement at a 1-based SPDM index, as lowercase hex, or undefined. */
export function measurementAt(report: GpuReport, spdmIndex: number): MeasurementBlock | undefined {
  return report.measurementTable.offsetOf(spdmIndex) < 0 ? undefined : report.measurements.find((m) => m.index === spdmIndex);
}

/** Fields for {@link encodeGpuReport}; the result is unsigned (the signature area is zero). */
export interface GpuReportFields {
  readonly nonce: Uint8Array;
  readonly responderNonce?: Uint8Array;
  /** Values of SPDM blocks 1..n (48-byte SHA-384 digests, unused ones zero). */
  readonly measurements: readonly Uint8Array[];
  readonly opaque: Parameters<typeof encodeOpaqueData>[0];
}

/** Encodes a report with the same layout tables the parser reads (simulated GPUs, tests). */
export function encodeGpuReport(f: GpuReportFields): Uint8Array {
  const request = encodeLayout(
    SPDM_REQUEST_LAYOUT,
    {
      spdmVersion: SPDM_VERSION_1_1,
      requestResponseCode: SPDM_GET_MEASUREMENTS,
      param1: SPDM_PARAM1_SIGNATURE_REQUESTED,
      param2: SPDM_PARAM2_ALL_MEASUREMENTS,
      nonce: f.nonce,
      slotIdParam: 0,
    },
    'request',
  );
  const blocks = f.measurements.map((value, i) =>
    Buffer.concat([
      encodeLayout(
        MEASUREMENT_BLOCK_LAYOUT,
        {
          index: i + 1,
          measurementSpecification: SPDM_MEASUREMENT_SPEC_DMTF,
          measurementSize: DMTF_HEADER_SIZE + value.byteLength,
          dmtfSpecMeasurementValueType: 0x01,
          dmtfSpecMeasurementValueSize: value.byteLength,
        },
        'measurement',
      ),
      value,
    ]),
  );
  const record = Buffer.concat(blocks);
  const len = Uint8Array.of(record.length & 0xff, (record.length >> 8) & 0xff, (record.length >> 16) & 0xff);
  const header = encodeLayout(
    SPDM_RESPONSE_HEADER_LAYOUT,
    { spdmVersion: SPDM_VERSION_1_1, requestResponseCode: SPDM_MEASUREMENTS, param1: 0, param2: 0, numberOfBlocks: blocks.length, measurementRecordLength: len },
    'response',
  );
  const opaque = encodeOpaqueData(f.opaque);
  const opaqueLen = Buffer.alloc(2);
  opaqueLen.writeUInt16LE(opaque.byteLength);
  return new Uint8Array(
    Buffer.concat([request, header, record, f.responderNonce ?? new Uint8Array(GPU_NONCE_SIZE), opaqueLen, opaque, new Uint8Array(GPU_SIGNATURE_SIZE)]),
  );
}

/** Hex of a measurement value, for claims and mismatch details. */
export function measurementHex(m: MeasurementBlock): string {
  return toHex(m.value);
}
