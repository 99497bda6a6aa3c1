import { fromB64, sha256, toHex } from '../core/bytes.js';
import { fail } from '../core/errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../core/json.js';

/** MAA's `runtimeData` / `initTimeData`: `{data: base64url, dataType: "Binary" | "JSON"}`. */
export interface DataInput {
  readonly bytes: Uint8Array;
  readonly dataType: 'Binary' | 'JSON';
  /** The parsed JSON (dataType JSON). */
  readonly json?: unknown;
}

/** Decodes an MAA data field; undefined when absent or empty (as the sidecar sends `{data:"",dataType:""}`). */
export function parseDataInput(raw: unknown, field: string): DataInput | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object') throw fail('request.invalid', `${field} must be an object {data, dataType}`);
  const { data, dataType } = raw as { data?: unknown; dataType?: unknown };
  if (data === undefined || data === '') return undefined;
  if (typeof data !== 'string') throw fail('request.invalid', `${field}.data must be a base64url string`);
  const type = dataType === undefined || dataType === '' ? 'Binary' : dataType;
  if (type !== 'Binary' && type !== 'JSON') throw fail('request.invalid', `${field}.dataType must be Binary or JSON`);
  const bytes = fromB64(data, `${field}.data`);
  if (type === 'Binary') return { bytes, dataType: 'Binary' };
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (jsonTextTooDeep(text)) throw fail('request.invalid', `${field}.data nests deeper than ${MAX_JSON_DEPTH} levels`, { field: `${field}.data`, maxDepth: MAX_JSON_DEPTH });
  try {
    return { bytes, dataType: 'JSON', json: JSON.parse(text) };
  } catch {
    throw fail('request.invalid', `${field}.data is declared JSON but does not parse as JSON`);
  }
}

/**
 * MAA's binding of runtime data to report data (SGX, TDX): SHA-256(runtime data) must equal the first
 * 32 bytes of REPORTDATA. A mismatch means the data did not come from this TEE.
 */
export function checkReportDataBinding(reportDataHex: string, data: DataInput, what: string): void {
  const expected = toHex(sha256(data.bytes));
  const actual = reportDataHex.slice(0, 64);
  if (expected !== actual) {
    throw fail('attestation.runtime_data_mismatch', `${what}: SHA-256 of the runtime data (${expected}) does not match the first 32 bytes of the report data (${actual})`, {
      expected,
      actual,
    });
  }
}

/**
 * MAA's binding of init-time data (per its dataType, the decoded bytes): SHA-256 of the data must equal
 * the first 32 bytes of the register the TEE fixes at launch, SGX CONFIGID (set only with KSS), TDX
 * MRCONFIGID, SNP HOST_DATA. `x-ms-inittime` is issued only after this check: a claim the evidence does
 * not vouch for never reaches a token.
 */
export function checkInitTimeBinding(registerHex: string, data: DataInput, register: string): void {
  const expected = toHex(sha256(data.bytes));
  const actual = registerHex.slice(0, 64);
  if (expected !== actual) {
    throw fail('attestation.init_time_data_mismatch', `SHA-256 of the init-time data (${expected}) does not match the first 32 bytes of ${register} (${actual})`, {
      field: 'initTimeData',
      register,
      expected,
      actual,
    });
  }
}
