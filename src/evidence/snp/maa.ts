import { b64url, fromB64, sha256, toHex } from '../../core/bytes.js';
import { type SignatureCheck, checkSignatureNow, checkSignaturesOffLoop } from '../../core/deferred-signatures.js';
import { fail, isConclaveError } from '../../core/errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../../core/json.js';
import { type Verified, markVerified } from '../../core/verified.js';
import { pemToDer } from '../../core/x509.js';
import { checkReportDataBinding } from './azure.js';
import type { SnpCertificates } from './chain.js';
import { type UvmEndorsement, uvmEndorsementOf, verifyUvmEndorsement } from './uvm.js';
import { type SnpReport, parseSnpReport } from './report.js';
import { type SnpRuntimeData, type SnpVerificationResult, type SnpVerifyOptions, verifySnpReport } from './verify.js';

/**
 * MAA `SevSnpVm` evidence (evidence-and-collateral §4.4; sidecar `pkg/common/maa.go`): the inner
 * `{SnpReport, VcekCertChain, Endorsements}` JSON, every value base64url (Go's padded URL alphabet),
 * VcekCertChain being PEM VCEK ‖ ASK ‖ ARK. The request body `{report, runtimeData, initTimeData,
 * nonce}` wraps it once more in base64url.
 */
export interface MaaSevSnpEvidence {
  readonly snpReport: Uint8Array;
  readonly vcekCertChain: Uint8Array[];
  /** The decoded Endorsements JSON (`{Uvm: [COSE_Sign1]}`, the UVM reference info), verified by verifyMaaSevSnpEvidence. */
  readonly endorsements: unknown;
  /** From a request body: the runtime and init-time data it carries. */
  readonly runtimeData?: Uint8Array;
  readonly initTimeData?: Uint8Array;
  readonly nonce?: unknown;
}

export interface MaaSevSnpVerifyOptions extends SnpVerifyOptions {
  /** Certificates to use instead of (or in addition to) VcekCertChain. */
  readonly certs?: SnpCertificates | undefined;
}

function asObject(input: unknown, what: string): Record<string, unknown> {
  let v = input;
  if (v instanceof Uint8Array) v = Buffer.from(v).toString('utf8');
  if (typeof v === 'string') {
    // JSON from inside the body's base64: the edge's depth check never saw it.
    if (jsonTextTooDeep(v)) throw fail('snp.malformed', `${what} nests deeper than ${MAX_JSON_DEPTH} levels`, { maxDepth: MAX_JSON_DEPTH });
    try {
      v = JSON.parse(v);
    } catch {
      throw fail('snp.malformed', `${what} is not JSON`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail('snp.malformed', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function b64Field(o: Record<string, unknown>, key: string, what: string): Uint8Array {
  const v = o[key];
  if (typeof v !== 'string') throw fail('snp.malformed', `${what} lacks "${key}"`, { field: key });
  try {
    return fromB64(v, key);
  } catch (e) {
    if (isConclaveError(e)) throw fail('snp.malformed', `${what}.${key} is not base64url`, { field: key });
    throw e;
  }
}

function dataField(o: Record<string, unknown>, key: string): Uint8Array | undefined {
  const v = o[key];
  if (typeof v !== 'object' || v === null) return undefined;
  const d = (v as Record<string, unknown>).data;
  if (typeof d !== 'string' || d === '') return undefined;
  return b64Field(v as Record<string, unknown>, 'data', key);
}

/** Parses the inner evidence JSON or the whole `/attest/SevSnpVm` request body. */
export function parseMaaSevSnpEvidence(input: Uint8Array | string | Record<string, unknown>): MaaSevSnpEvidence {
  let o = asObject(input, 'MAA SevSnpVm evidence');
  let outer: Record<string, unknown> | undefined;
  if (typeof o.report === 'string' && o.SnpReport === undefined) {
    outer = o;
    o = asObject(Buffer.from(b64Field(o, 'report', 'request body')).toString('utf8'), 'MAA SevSnpVm report');
  }
  const snpReport = b64Field(o, 'SnpReport', 'MAA SevSnpVm evidence');
  const vcekCertChain = typeof o.VcekCertChain === 'string' ? pemToDer(Buffer.from(b64Field(o, 'VcekCertChain', 'evidence')).toString('utf8')) : [];
  let endorsements: unknown;
  if (typeof o.Endorsements === 'string' && o.Endorsements !== '') {
    const text = Buffer.from(b64Field(o, 'Endorsements', 'evidence')).toString('utf8');
    if (jsonTextTooDeep(text)) throw fail('snp.malformed', `MAA SevSnpVm Endorsements nests deeper than ${MAX_JSON_DEPTH} levels`, { maxDepth: MAX_JSON_DEPTH });
    try {
      endorsements = JSON.parse(text);
    } catch {
      throw fail('snp.malformed', 'MAA SevSnpVm Endorsements is not base64url JSON');
    }
  }
  const runtimeData = outer ? dataField(outer, 'runtimeData') : undefined;
  const initTimeData = outer ? dataField(outer, 'initTimeData') : undefined;
  return {
    snpReport,
    vcekCertChain,
    endorsements,
    ...(runtimeData ? { runtimeData } : {}),
    ...(initTimeData ? { initTimeData } : {}),
    ...(outer && outer.nonce !== undefined ? { nonce: outer.nonce } : {}),
  };
}

/**
 * Verifies MAA SevSnpVm evidence as MAA does for confidential containers (ACI/AKS): the SNP report
 * with VcekCertChain, REPORT_DATA[0:32] = SHA-256(runtime data), and HOST_DATA = SHA-256(init-time
 * data, the container security policy) when init-time data is given. Arguments override what a
 * request body carries.
 */
export function verifyMaaSevSnpEvidence(
  evidenceJson: Uint8Array | string | Record<string, unknown>,
  runtimeData: Uint8Array | undefined,
  initTimeData: Uint8Array | undefined,
  opts: MaaSevSnpVerifyOptions,
  checkSignature: SignatureCheck = checkSignatureNow,
): Verified<SnpVerificationResult> {
  const ev = parseMaaSevSnpEvidence(evidenceJson);
  return verifyParsedMaaSevSnpEvidence(ev, parseSnpReport(ev.snpReport), runtimeData, initTimeData, opts, checkSignature);
}

/**
 * {@link verifyMaaSevSnpEvidence} of evidence already parsed ({@link parseMaaSevSnpEvidence}), with its
 * report parsed (`report`, from `ev.snpReport`): for a caller that read the report first (the attestation
 * service, to choose the AMD CRL by the report's product and signing key) and should not parse it twice.
 */
export function verifyParsedMaaSevSnpEvidence(
  ev: MaaSevSnpEvidence,
  report: SnpReport,
  runtimeData: Uint8Array | undefined,
  initTimeData: Uint8Array | undefined,
  opts: MaaSevSnpVerifyOptions,
  checkSignature: SignatureCheck = checkSignatureNow,
): Verified<SnpVerificationResult> {
  const certs: SnpCertificates = opts.certs ?? { chain: ev.vcekCertChain };
  const result = verifySnpReport(report, certs, opts, checkSignature);
  const warnings = [...result.warnings];
  const rt = runtimeData ?? ev.runtimeData;
  let runtime: SnpRuntimeData | undefined;
  if (rt) {
    warnings.push(...checkReportDataBinding(Buffer.from(result.reportData, 'hex'), rt, 'sha256', false));
    // The bytes as JSON when they are JSON no deeper than MAX_JSON_DEPTH: deeper, the claims built from them
    // could not be walked (core/json.ts), so they stay bytes, as declared JSON that deep is refused.
    let json: unknown;
    const text = Buffer.from(rt).toString('utf8');
    if (jsonTextTooDeep(text)) warnings.push(`runtime data nests deeper than ${MAX_JSON_DEPTH} levels; not read as JSON`);
    else {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    const keys = json && typeof json === 'object' && Array.isArray((json as Record<string, unknown>).keys) ? ((json as { keys: unknown[] }).keys.filter((k) => typeof k === 'object' && k !== null) as Record<string, unknown>[]) : undefined;
    runtime = { format: 'maa', data: b64url(rt), ...(json !== undefined ? { json } : {}), ...(keys ? { keys } : {}) };
  } else {
    warnings.push('no runtime data was given; REPORT_DATA binds nothing checked');
  }
  const it = initTimeData ?? ev.initTimeData;
  let init: { data: string; sha256: string } | undefined;
  if (it) {
    const h = toHex(sha256(it));
    if (h !== result.hostData) throw fail('snp.host_data_mismatch', 'HOST_DATA is not SHA-256 of the init-time data', { expected: h, hostData: result.hostData });
    init = { data: b64url(it), sha256: h };
  }
  // Confidential containers: the UVM reference information endorses the report's launch measurement.
  const uvmBytes = uvmEndorsementOf(ev.endorsements);
  let uvmEndorsement: UvmEndorsement | undefined;
  if (uvmBytes) {
    uvmEndorsement = verifyUvmEndorsement(uvmBytes, result.measurement, opts.at);
    if (uvmEndorsement.outOfValidity.length > 0) warnings.push(`UVM endorsement signed by certificates now outside their validity: ${uvmEndorsement.outOfValidity.join(', ')}`);
  }
  return markVerified({ ...result, ...(runtime ? { runtimeData: runtime } : {}), ...(init ? { initTimeData: init } : {}), ...(uvmEndorsement ? { uvmEndorsement } : {}), warnings });
}

/**
 * {@link verifyMaaSevSnpEvidence} with the report's ECDSA P-384 signature checked on the libuv threadpool:
 * the same checks in the same order decide (core/deferred-signatures.ts), and a server's event loop does
 * not spend the signature.
 */
export function verifyMaaSevSnpEvidenceAsync(
  evidenceJson: Uint8Array | string | Record<string, unknown>,
  runtimeData: Uint8Array | undefined,
  initTimeData: Uint8Array | undefined,
  opts: MaaSevSnpVerifyOptions,
): Promise<Verified<SnpVerificationResult>> {
  return checkSignaturesOffLoop((check) => verifyMaaSevSnpEvidence(evidenceJson, runtimeData, initTimeData, opts, check));
}

/** {@link verifyParsedMaaSevSnpEvidence} with the report's signature checked on the libuv threadpool. */
export function verifyParsedMaaSevSnpEvidenceAsync(
  ev: MaaSevSnpEvidence,
  report: SnpReport,
  runtimeData: Uint8Array | undefined,
  initTimeData: Uint8Array | undefined,
  opts: MaaSevSnpVerifyOptions,
): Promise<Verified<SnpVerificationResult>> {
  return checkSignaturesOffLoop((check) => verifyParsedMaaSevSnpEvidence(ev, report, runtimeData, initTimeData, opts, check));
}
