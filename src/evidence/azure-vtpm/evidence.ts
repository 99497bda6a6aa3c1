/**
 * The JSON evidence documents that carry an Azure confidential VM's vTPM evidence (HCL report + TPM
 * quote + hardware evidence) as confidential-containers/trustee publishes them (`az-snp-vtpm` and
 * `az-tdx-vtpm` verifiers, `deps/verifier/src/az_*_vtpm/compat.rs`):
 *
 * | form | fields |
 * |---|---|
 * | SNP v0 | `{quote: {signature: [u8], message: [u8], pcrs: [[u8; 32]]}, report: [u8] (HCL report), vcek: PEM}` |
 * | SNP v1, v2 | `{version, tpm_quote: {signature: hex, message: hex, pcrs: [hex]}, hcl_report: base64url, vcek: base64url(DER)}` |
 * | TDX v0 | `{tpm_quote: {signature: [u8], message: [u8], pcrs: [[u8]]}, hcl_report: [u8], td_quote: [u8]}` |
 * | TDX v1, v2 | `{version, tpm_quote: {hex…}, hcl_report: base64url, td_quote: base64url}` |
 *
 * v2 is v1 whose HCL `user-data` holds the caller's report data. The quote's `message` is a TPMS_ATTEST,
 * `signature` the bare RSASSA signature, `pcrs` the SHA-256 values of the selected PCRs in order.
 */
import { fromB64 } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../../core/json.js';
import type { PcrValue } from '../tpm/quote.js';
import { parseTpmsAttest, TPM_ALG } from '../tpm/structures.js';
import { isHclReport } from './hcl.js';

export interface VtpmQuoteEvidence {
  /** TPMS_ATTEST bytes, exactly as signed. */
  readonly message: Uint8Array;
  /** The RSASSA signature bytes. */
  readonly signature: Uint8Array;
  /** The PCR values sent, mapped onto the quote's selection. */
  readonly pcrs: readonly PcrValue[];
}

export interface AzureVtpmEvidence {
  readonly form: 'trustee-az-snp-vtpm' | 'trustee-az-tdx-vtpm';
  readonly version: 0 | 1 | 2;
  readonly hclReport: Uint8Array;
  readonly tpmQuote: VtpmQuoteEvidence;
  /** SNP: the VCEK, DER, then any further certificates the document carried (PEM form). */
  readonly vcek?: { readonly der?: Uint8Array; readonly pem?: string };
  /** TDX: the TD quote (DCAP v4/v5). */
  readonly tdQuote?: Uint8Array;
}

function malformed(message: string, detail?: Record<string, unknown>): never {
  throw fail('tpm.malformed', `Azure vTPM evidence: ${message}`, detail);
}

function byteArray(v: unknown, field: string): Uint8Array {
  if (!Array.isArray(v) || v.length > 1 << 20 || !v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) malformed(`${field} must be a byte array`, { field });
  return Uint8Array.from(v as number[]);
}

function hexBytes(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) malformed(`${field} must be hex`, { field });
  return new Uint8Array(Buffer.from(v, 'hex'));
}

function b64Bytes(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string') malformed(`${field} must be base64url`, { field });
  try {
    return fromB64(v, field);
  } catch {
    return malformed(`${field} is not base64url`, { field });
  }
}

/** Maps the bare PCR values of a trustee quote onto the PCRs its TPMS_ATTEST selects, in order. */
export function pcrsForSelection(message: Uint8Array, values: readonly Uint8Array[]): PcrValue[] {
  const attest = parseTpmsAttest(message);
  if (attest.type !== 'quote') malformed('tpm_quote.message is not a TPM2_Quote attestation');
  const slots = attest.pcrSelect.flatMap((s) => s.pcrs.map((index) => ({ hashAlg: s.hashAlg, index })));
  if (slots.length !== values.length) {
    throw fail('tpm.pcr_digest_mismatch', `the quote selects ${slots.length} PCRs but ${values.length} values were sent`, { selected: slots.length, sent: values.length });
  }
  return slots.map((s, i) => ({ ...s, value: values[i]! }));
}

function quoteOf(q: unknown, encoding: 'bytes' | 'hex', field: string): VtpmQuoteEvidence {
  if (typeof q !== 'object' || q === null) malformed(`${field} must be an object {signature, message, pcrs}`, { field });
  const o = q as Record<string, unknown>;
  const read = encoding === 'bytes' ? byteArray : hexBytes;
  if (!Array.isArray(o.pcrs) || o.pcrs.length > 64) malformed(`${field}.pcrs must be an array of PCR values`, { field });
  const message = read(o.message, `${field}.message`);
  const values = (o.pcrs as unknown[]).map((p, i) => read(p, `${field}.pcrs[${i}]`));
  const pcrs = pcrsForSelection(message, values);
  for (const p of pcrs) if (p.hashAlg !== TPM_ALG.SHA256) throw fail('tpm.unsupported', 'trustee vTPM quotes carry SHA-256 PCR values only', { bank: p.hashAlg });
  return { message, signature: read(o.signature, `${field}.signature`), pcrs };
}

/**
 * Reads trustee's az-snp-vtpm / az-tdx-vtpm evidence JSON (every published version). Returns undefined
 * when the bytes are not a JSON object of that shape (so other evidence forms can be tried); throws
 * `tpm.malformed` when the shape is recognised but a field is wrong.
 */
export function parseAzureVtpmEvidence(input: Uint8Array): AzureVtpmEvidence | undefined {
  const first = input.findIndex((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first < 0 || input[first] !== 0x7b) return undefined;
  const text = Buffer.from(input).toString('utf8');
  // JSON inside the body's base64, so the edge's depth check never saw it; its members reach error messages.
  if (jsonTextTooDeep(text)) malformed(`the evidence JSON nests deeper than ${MAX_JSON_DEPTH} levels`, { maxDepth: MAX_JSON_DEPTH });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const d = doc as Record<string, unknown>;
  const version = d.version;
  if (version === undefined) {
    // v0: SNP {quote, report, vcek} or TDX {tpm_quote, hcl_report, td_quote}, all byte arrays.
    if ('quote' in d && 'report' in d) {
      const hclReport = byteArray(d.report, 'report');
      if (!isHclReport(hclReport)) malformed('report is not an HCL report');
      if (typeof d.vcek !== 'string') malformed('vcek must be a PEM string');
      return { form: 'trustee-az-snp-vtpm', version: 0, hclReport, tpmQuote: quoteOf(d.quote, 'bytes', 'quote'), vcek: { pem: d.vcek } };
    }
    if ('tpm_quote' in d && 'td_quote' in d) {
      return { form: 'trustee-az-tdx-vtpm', version: 0, hclReport: byteArray(d.hcl_report, 'hcl_report'), tpmQuote: quoteOf(d.tpm_quote, 'bytes', 'tpm_quote'), tdQuote: byteArray(d.td_quote, 'td_quote') };
    }
    return undefined;
  }
  if (!('tpm_quote' in d) || !('hcl_report' in d)) return undefined;
  if (version !== 1 && version !== 2) throw fail('tpm.unsupported', `Azure vTPM evidence version ${String(version)} is not supported (0, 1 and 2 are)`, { version });
  const hclReport = b64Bytes(d.hcl_report, 'hcl_report');
  const tpmQuote = quoteOf(d.tpm_quote, 'hex', 'tpm_quote');
  if ('td_quote' in d) return { form: 'trustee-az-tdx-vtpm', version, hclReport, tpmQuote, tdQuote: b64Bytes(d.td_quote, 'td_quote') };
  if ('vcek' in d) return { form: 'trustee-az-snp-vtpm', version, hclReport, tpmQuote, vcek: { der: b64Bytes(d.vcek, 'vcek') } };
  return malformed('a versioned document needs vcek (SNP) or td_quote (TDX)');
}
