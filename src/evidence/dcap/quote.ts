import { ByteReader } from '../../core/bytes.js';
import { type ConclaveError, fail } from '../../core/errors.js';
import { SGX_REPORT_BODY, SGX_REPORT_BODY_SIZE, type SgxReportBody } from '../sgx/report-body.js';
import { TD_REPORT_10, TD_REPORT_10_SIZE, TD_REPORT_15, TD_REPORT_15_SIZE, type TdReport10, type TdReport15 } from '../tdx/td-report.js';
import type { DcapTee } from '../../core/tee.js';
import { type Decoded, decodeLayout, encodeLayout } from '../../core/layout.js';

/**
 * Quote header, 48 bytes, all versions (DCAP `sgx_quote_3.h` sgx_quote_header_t, `sgx_quote_4.h`
 * sgx_quote4_header_t). In v4/v5 `teeType` replaces att_key_data_0 and qe_svn/pce_svn are reserved.
 */
export const QUOTE_HEADER = [
  { name: 'version', offset: 0, type: 'u16' },
  { name: 'attestationKeyType', offset: 2, type: 'u16' },
  { name: 'teeType', offset: 4, type: 'u32' },
  { name: 'qeSvn', offset: 8, type: 'u16' },
  { name: 'pceSvn', offset: 10, type: 'u16' },
  { name: 'qeVendorId', offset: 12, type: 16 },
  { name: 'userData', offset: 28, type: 20 },
] as const;

export type QuoteHeader = Decoded<typeof QUOTE_HEADER>;

/** v5 body descriptor at offset 48 (`sgx_quote_5.h` sgx_quote5_t: u16 type, u32 size). */
export const BODY_DESCRIPTOR = [
  { name: 'type', offset: 0, type: 'u16' },
  { name: 'size', offset: 2, type: 'u32' },
] as const;

export const TEE_TYPE_SGX = 0x00000000;
export const TEE_TYPE_TDX = 0x00000081;
/** ECDSA-256-with-P-256 (QVL QuoteConstants.h); the only attestation key type Intel's QVL accepts. */
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
/** Intel QE vendor id 939A7233-F79C-4CA9-940A-0DB3957F0607. */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';

/** Certification data types (QVL QuoteConstants.h). */
export const CERT_DATA_PCK_CHAIN = 5;
export const CERT_DATA_QE_REPORT = 6;

/** v5 body types (`sgx_quote_5.h`). */
const BODY_TYPE_SGX = 1;
const BODY_TYPE_TD10 = 2;
const BODY_TYPE_TD15 = 3;

export type QuoteBody =
  | { readonly kind: 'sgx'; readonly report: SgxReportBody }
  | { readonly kind: 'td10'; readonly report: TdReport10 }
  | { readonly kind: 'td15'; readonly report: TdReport15 };

/** ECDSA-P256 signature data (v3 `sgx_ql_ecdsa_sig_data_t`; v4/v5 `sgx_ecdsa_sig_data_v4_t` + type 6). */
export interface QuoteSignatureData {
  /** r‖s over the signed region, made with the attestation key. */
  readonly signature: Uint8Array;
  /** Attestation public key x‖y (P-256, no 0x04 prefix). */
  readonly attestationKey: Uint8Array;
  readonly qeReport: SgxReportBody;
  /** r‖s over the 384-byte QE report, made with the PCK key. */
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  /** The type-5 certification data: PEM PCK chain (leaf, PCK CA, root), possibly NUL-terminated. */
  readonly certificationData: { readonly type: number; readonly data: Uint8Array };
}

export interface Quote {
  readonly header: QuoteHeader;
  readonly body: QuoteBody;
  readonly signatureData: QuoteSignatureData;
  /** Header ‖ (v5 descriptor) ‖ body: the bytes the quote signature covers (QVL Quote.cpp). */
  readonly signedRegion: Uint8Array;
  /** The raw 384-byte QE report, the bytes the QE report signature covers. */
  readonly qeReportBytes: Uint8Array;
  /** Bytes the quote occupies per its length fields; anything after it (padding) is ignored. */
  readonly size: number;
}

export type Tee = DcapTee;

export function teeOf(quote: Quote): Tee {
  return quote.body.kind === 'sgx' ? 'sgx' : 'tdx';
}

function malformed(field: string, offset: number, message: string, extra?: Record<string, unknown>): ConclaveError {
  return fail('quote.malformed', `quote ${field} at offset ${offset}: ${message}`, { field, offset, ...extra });
}

function unsupported(field: string, offset: number, message: string, extra?: Record<string, unknown>): ConclaveError {
  return fail('quote.unsupported', `quote ${field} at offset ${offset}: ${message}`, { field, offset, ...extra });
}

function bodyFor(r: ByteReader, kind: QuoteBody['kind'], copy: boolean): QuoteBody {
  switch (kind) {
    case 'sgx':
      return { kind, report: decodeLayout(r, SGX_REPORT_BODY, 'sgxReportBody', copy) };
    case 'td10':
      return { kind, report: decodeLayout(r, TD_REPORT_10, 'tdReport10', copy) };
    case 'td15':
      return { kind, report: decodeLayout(r, TD_REPORT_15, 'tdReport15', copy) };
  }
}

const BODY_SIZE: Record<QuoteBody['kind'], number> = { sgx: SGX_REPORT_BODY_SIZE, td10: TD_REPORT_10_SIZE, td15: TD_REPORT_15_SIZE };

/**
 * Parses a DCAP quote v3/v4/v5 by its length fields (real TDX buffers carry trailing zero padding, which
 * is ignored). Every defect is a ConclaveError: `quote.truncated` (a declared length runs past the input),
 * `quote.malformed` (a value the format forbids) or `quote.unsupported` (a version, key type, TEE type or
 * certification data type outside what QVL accepts), each naming the field and its absolute offset.
 */
export function parseQuote(bytes: Uint8Array): Quote {
  return decodeQuote(bytes, true);
}

/**
 * parseQuote without copying: byte fields are views of `bytes`. Only for a caller that finishes with the
 * quote before control returns to anyone who could change `bytes` (verifyQuote).
 */
export function parseQuoteView(bytes: Uint8Array): Quote {
  return decodeQuote(bytes, false);
}

/** A byte field of the signature data: a copy, or a view when the parse does not copy. */
function take(reader: ByteReader, field: string, n: number, copy: boolean): Uint8Array {
  return copy ? reader.bytesCopy(field, n) : reader.view_(field, n);
}

/** The QE report, its signature and the QE authentication data, and where the report starts. */
interface QeBlock {
  readonly start: number;
  readonly report: SgxReportBody;
  readonly signature: Uint8Array;
  readonly authData: Uint8Array;
}

function readQeBlock(s: ByteReader, copy: boolean): QeBlock {
  const start = s.offset;
  const report = decodeLayout(s, SGX_REPORT_BODY, 'qeReport', copy);
  const signature = take(s, 'signatureData.qeReportSignature', 64, copy);
  const authLen = s.u16('signatureData.qeAuthDataSize');
  const authData = take(s, 'signatureData.qeAuthData', authLen, copy);
  return { start, report, signature, authData };
}

function readCertData(s: ByteReader, field: string, allowed: number, end: number, copy: boolean): { type: number; data: Uint8Array; end: number } {
  const at = s.offset;
  const type = s.u16(`${field}.type`);
  if (type !== allowed) {
    throw unsupported(`${field}.type`, at, `certification data type ${type} is not supported here (expected ${allowed})`, { certificationDataType: type });
  }
  const sizeAt = s.offset;
  const size = s.u32(`${field}.size`);
  if (s.offset + size > end) {
    throw fail('quote.truncated', `quote ${field}.data at offset ${s.offset} needs ${size} bytes, ${end - s.offset} left in its container`, {
      field: `${field}.data`,
      offset: s.offset,
      sizeOffset: sizeAt,
      needBytes: size,
      gotBytes: end - s.offset,
    });
  }
  return { type, data: take(s, `${field}.data`, size, copy), end: s.offset };
}

function decodeQuote(bytes: Uint8Array, copy: boolean): Quote {
  if (!(bytes instanceof Uint8Array)) throw fail('quote.malformed', 'quote must be a byte array', { field: 'quote', offset: 0 });
  const r = new ByteReader(bytes, 'quote', 'quote.truncated');
  const header = decodeLayout(r, QUOTE_HEADER, 'header', copy);
  const { version, attestationKeyType, teeType } = header;
  if (version !== 3 && version !== 4 && version !== 5) throw unsupported('header.version', 0, `version ${version} is not 3, 4 or 5`, { version });
  if (attestationKeyType !== ATTESTATION_KEY_TYPE_ECDSA_P256) {
    throw unsupported('header.attestationKeyType', 2, `attestation key type ${attestationKeyType} is not ECDSA-256-with-P-256 (2)`, { attestationKeyType });
  }
  if (teeType !== TEE_TYPE_SGX && teeType !== TEE_TYPE_TDX) throw unsupported('header.teeType', 4, `TEE type 0x${teeType.toString(16)} is neither SGX nor TDX`, { teeType });
  if (version === 3 && teeType !== TEE_TYPE_SGX) throw malformed('header.teeType', 4, 'a v3 quote must be SGX', { teeType });

  let kind: QuoteBody['kind'];
  if (version === 5) {
    const descOffset = r.offset;
    const desc = decodeLayout(r, BODY_DESCRIPTOR, 'bodyDescriptor');
    const expected = desc.type === BODY_TYPE_SGX ? 'sgx' : desc.type === BODY_TYPE_TD10 ? 'td10' : desc.type === BODY_TYPE_TD15 ? 'td15' : undefined;
    if (!expected) throw unsupported('bodyDescriptor.type', descOffset, `body type ${desc.type} is not 1, 2 or 3`, { bodyType: desc.type });
    if ((expected === 'sgx') !== (teeType === TEE_TYPE_SGX)) throw malformed('bodyDescriptor.type', descOffset, `body type ${desc.type} disagrees with the TEE type`, { bodyType: desc.type, teeType });
    if (desc.size !== BODY_SIZE[expected]) throw malformed('bodyDescriptor.size', descOffset + 2, `body size ${desc.size} is not ${BODY_SIZE[expected]}`, { size: desc.size });
    kind = expected;
  } else {
    kind = teeType === TEE_TYPE_SGX ? 'sgx' : 'td10';
  }
  const body = bodyFor(r, kind, copy);
  const signedEnd = r.offset;

  const sigLenOffset = r.offset;
  const sigLen = r.u32('signatureDataLength');
  r.need('signatureData', sigLen);
  const sigEnd = r.offset + sigLen;
  // Bound the signature data by its declared length so no field can read into padding after it.
  const s = new ByteReader(bytes.subarray(0, sigEnd), 'quote', 'quote.truncated', r.offset);
  const signature = take(s, 'signatureData.signature', 64, copy);
  const attestationKey = take(s, 'signatureData.attestationKey', 64, copy);
  let qe: QeBlock;
  let certificationData: QuoteSignatureData['certificationData'];

  if (version === 3) {
    qe = readQeBlock(s, copy);
    const cd = readCertData(s, 'certificationData', CERT_DATA_PCK_CHAIN, sigEnd, copy);
    certificationData = { type: cd.type, data: cd.data };
  } else {
    const outer = s.offset;
    const outerType = s.u16('qeReportCertificationData.type');
    if (outerType !== CERT_DATA_QE_REPORT) {
      throw unsupported('qeReportCertificationData.type', outer, `certification data type ${outerType} is not 6 (QE report certification data)`, { certificationDataType: outerType });
    }
    const outerSizeAt = s.offset;
    const outerSize = s.u32('qeReportCertificationData.size');
    const outerEnd = s.offset + outerSize;
    if (outerEnd > sigEnd) {
      throw fail('quote.truncated', `quote qeReportCertificationData at offset ${s.offset} needs ${outerSize} bytes, ${sigEnd - s.offset} left in the signature data`, {
        field: 'qeReportCertificationData.data',
        offset: s.offset,
        sizeOffset: outerSizeAt,
        needBytes: outerSize,
        gotBytes: sigEnd - s.offset,
      });
    }
    qe = readQeBlock(s, copy);
    const cd = readCertData(s, 'certificationData', CERT_DATA_PCK_CHAIN, outerEnd, copy);
    if (cd.end !== outerEnd) throw malformed('qeReportCertificationData.size', outerSizeAt, `declares ${outerSize} bytes but its content uses ${cd.end - (outerSizeAt + 4)}`);
    certificationData = { type: cd.type, data: cd.data };
  }
  if (s.offset !== sigEnd) throw malformed('signatureDataLength', sigLenOffset, `declares ${sigLen} bytes but the signature data uses ${s.offset - (sigLenOffset + 4)}`, { signatureDataLength: sigLen });

  return {
    header,
    body,
    signatureData: {
      signature,
      attestationKey,
      qeReport: qe.report,
      qeReportSignature: qe.signature,
      qeAuthData: qe.authData,
      certificationData,
    },
    signedRegion: copy ? bytes.slice(0, signedEnd) : bytes.subarray(0, signedEnd),
    qeReportBytes: (copy ? bytes.slice : bytes.subarray).call(bytes, qe.start, qe.start + SGX_REPORT_BODY_SIZE),
    size: sigEnd,
  };
}

// ── encoding (simulated TEE, tests) ──────────────────────────────────────────────────────────────

function u16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return b;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Header ‖ (v5 descriptor) ‖ body: the region the attestation key signs. */
export function encodeSignedRegion(header: QuoteHeader, body: QuoteBody): Uint8Array {
  const parts = [encodeLayout(QUOTE_HEADER, header, 'header')];
  if (header.version === 5) {
    const type = body.kind === 'sgx' ? BODY_TYPE_SGX : body.kind === 'td10' ? BODY_TYPE_TD10 : BODY_TYPE_TD15;
    parts.push(encodeLayout(BODY_DESCRIPTOR, { type, size: BODY_SIZE[body.kind] }, 'bodyDescriptor'));
  }
  parts.push(encodeBody(body));
  return concat(parts);
}

export function encodeBody(body: QuoteBody): Uint8Array {
  switch (body.kind) {
    case 'sgx':
      return encodeLayout(SGX_REPORT_BODY, body.report, 'sgxReportBody');
    case 'td10':
      return encodeLayout(TD_REPORT_10, body.report, 'tdReport10');
    case 'td15':
      return encodeLayout(TD_REPORT_15, body.report, 'tdReport15');
  }
}

export function encodeSgxReportBody(report: SgxReportBody): Uint8Array {
  return encodeLayout(SGX_REPORT_BODY, report, 'sgxReportBody');
}

/** The signature data (without its u32 length) in the form of the given quote version. */
export function encodeSignatureData(version: number, sig: QuoteSignatureData): Uint8Array {
  const qeBlock = [encodeSgxReportBody(sig.qeReport), sig.qeReportSignature, u16(sig.qeAuthData.byteLength), sig.qeAuthData];
  const cert = [u16(sig.certificationData.type), u32(sig.certificationData.data.byteLength), sig.certificationData.data];
  if (version === 3) return concat([sig.signature, sig.attestationKey, ...qeBlock, ...cert]);
  const inner = concat([...qeBlock, ...cert]);
  return concat([sig.signature, sig.attestationKey, u16(CERT_DATA_QE_REPORT), u32(inner.byteLength), inner]);
}

/** Serialises a quote from its parts; `parseQuote(encodeQuote(q))` reproduces `q`. */
export function encodeQuote(parts: { readonly header: QuoteHeader; readonly body: QuoteBody; readonly signatureData: QuoteSignatureData }): Uint8Array {
  const signed = encodeSignedRegion(parts.header, parts.body);
  const sig = encodeSignatureData(parts.header.version, parts.signatureData);
  return concat([signed, u32(sig.byteLength), sig]);
}
