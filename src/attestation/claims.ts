/**
 * Verified evidence → MAA claims. One mapping per TEE, with MAA's claim names (skr-maa-protocol.md §3);
 * claims MAA has no name for carry the `x-conclave-` prefix. These are the claims the service always
 * emits; policy issuance rules may add more.
 */
import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import { CollateralMemo } from '../evidence/dcap/collateral-memo.js';
import { createHash } from 'node:crypto';
import { b64url } from '../core/bytes.js';
import type { SgxQuoteVerificationResult, TdxQuoteVerificationResult } from '../evidence/dcap/result.js';
import type { SnpVerificationResult } from '../evidence/snp/verify.js';
import type { Claim } from './policy/index.js';
import type { DataInput } from './runtime-data.js';
import { markVerified, type Verified } from '../core/verified.js';

export type Claims = Record<string, unknown>;

/**
 * Claims established by verification: derived from `Verified<…>` evidence only, so claims building,
 * policy evaluation and token issuance (attestation/token.ts) cannot be handed unverified evidence.
 */
export type EvidenceClaims = Verified<Claims>;

/**
 * Claims derived from verified evidence (`from`: the verified result, or every one of them for
 * composite evidence). The evidence's mark carries over; nothing else can produce it.
 */
export function claimsOf(from: Verified<unknown> | readonly Verified<unknown>[], claims: Claims): EvidenceClaims {
  void from;
  return markVerified(claims);
}

/** MAA claims of a verified SGX quote. */
export function sgxClaims(r: Verified<SgxQuoteVerificationResult>, quote: Uint8Array, collateral: QuoteCollateral, runtime?: DataInput, initTime?: DataInput): EvidenceClaims {
  return claimsOf(r, sgxClaimsOf(r, quote, collateral, runtime, initTime));
}

/** MAA claims of a verified TDX quote. */
export function tdxClaims(r: Verified<TdxQuoteVerificationResult>, quote: Uint8Array, collateral: QuoteCollateral, runtime?: DataInput, initTime?: DataInput): EvidenceClaims {
  return claimsOf(r, tdxClaimsOf(r, quote, collateral, runtime, initTime));
}

/** MAA claims of a verified SEV-SNP report (container or Azure CVM HCL form). */
export function snpClaims(r: Verified<SnpVerificationResult>, form: 'container' | 'azure-hcl', runtime?: DataInput, initTime?: DataInput): EvidenceClaims {
  return claimsOf(r, snpClaimsOf(r, form, runtime, initTime));
}

/** SHA-256 (hex) of the concatenation of `parts`, hashed in place (no copy of the parts). */
function concatHash(parts: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/**
 * `x-ms-sgx-collateral`: SHA-256 (hex) of each collateral item used, so a relying party can tell
 * which TCB info, QE identity and CRLs vouched for the quote. Certificate chains hash the
 * concatenated DER; CRL hashes cover the PCK CRL followed by the root CA CRL (the QE identity's and
 * the TCB info's CRL hashes are the same two CRLs, hashed once).
 */
export function collateralProvenance(quote: Uint8Array, c: QuoteCollateral): Record<string, string> {
  const h = provenance.get(c, collateralHashes);
  return {
    qeidcertshash: h.qeidcertshash,
    qeidcrlhash: h.crls,
    qeidhash: h.qeidhash,
    quotehash: concatHash([quote]),
    tcbinfocertshash: h.tcbinfocertshash,
    tcbinfocrlhash: h.crls,
    tcbinfohash: h.tcbinfohash,
  };
}

/** The hashes of the collateral items alone: once per collateral set while its bytes stay the same. */
const provenance = new CollateralMemo<{ qeidcertshash: string; crls: string; qeidhash: string; tcbinfocertshash: string; tcbinfohash: string }>();

function collateralHashes(c: QuoteCollateral) {
  return {
    qeidcertshash: concatHash(c.qeIdentityIssuerChain),
    crls: concatHash([c.pckCrl, c.rootCaCrl]),
    qeidhash: concatHash([c.qeIdentity]),
    tcbinfocertshash: concatHash(c.tcbInfoIssuerChain),
    tcbinfohash: concatHash([c.tcbInfo]),
  };
}

function runtimeClaims(runtime: DataInput | undefined, initTime: DataInput | undefined): Claims {
  const out: Claims = {};
  if (runtime?.dataType === 'JSON') out['x-ms-runtime'] = runtime.json;
  if (initTime?.dataType === 'JSON') out['x-ms-inittime'] = initTime.json;
  return out;
}

function sgxClaimsOf(r: SgxQuoteVerificationResult, quote: Uint8Array, collateral: QuoteCollateral, runtime?: DataInput, initTime?: DataInput): Claims {
  const claims: Claims = {
    'x-ms-attestation-type': 'sgx',
    'x-ms-sgx-is-debuggable': r.report.debug,
    'x-ms-sgx-mrenclave': r.report.mrenclave,
    'x-ms-sgx-mrsigner': r.report.mrsigner,
    'x-ms-sgx-product-id': r.report.isvprodid,
    'x-ms-sgx-svn': r.report.isvsvn,
    'x-ms-sgx-report-data': r.report.reportdata,
    'x-ms-sgx-config-id': r.report.configid,
    'x-ms-sgx-config-svn': r.report.configsvn,
    'x-ms-sgx-isv-extended-product-id': r.report.isvextprodid,
    'x-ms-sgx-isv-family-id': r.report.isvfamilyid,
    'x-ms-sgx-collateral': collateralProvenance(quote, collateral),
    ...tcbClaims(r),
    ...runtimeClaims(runtime, initTime),
  };
  if (runtime) claims['x-ms-sgx-ehd'] = b64url(runtime.bytes);
  return claims;
}

function tcbClaims(r: SgxQuoteVerificationResult | TdxQuoteVerificationResult): Claims {
  const claims: Claims = {
    'x-conclave-tcb-status': r.status,
    'x-conclave-advisory-ids': [...r.advisoryIds],
    'x-conclave-fmspc': r.fmspc,
    'x-conclave-tcb-evaluation-data-number': r.collateral.tcbEvaluationDataNumber,
    'x-conclave-qe-status': r.qe.status,
  };
  // Collateral past its nextUpdate (accepted under azure freshness) vouches only up to then, e.g. a stale
  // PCK CRL for no later revocation: the token names it (docs/collateral.md).
  if (r.collateral.expired.length > 0) claims['x-conclave-collateral-expired'] = r.collateral.expired.map((x) => x.item);
  return claims;
}

/** TD attributes are a little-endian u64 (Intel TDX module spec, TDINFO_STRUCT.ATTRIBUTES). */
function tdAttributeBit(hex: string, bit: number): boolean {
  const v = Buffer.from(hex, 'hex').readBigUInt64LE(0);
  return ((v >> BigInt(bit)) & 1n) === 1n;
}

function tdxClaimsOf(r: TdxQuoteVerificationResult, quote: Uint8Array, collateral: QuoteCollateral, runtime?: DataInput, initTime?: DataInput): Claims {
  const td = r.td;
  const seamsvn = Buffer.from(td.teetcbsvn, 'hex');
  return {
    'x-ms-attestation-type': 'tdxvm',
    eat_profile: 'https://aka.ms/maa-eat-profile-tdxvm',
    dbgstat: td.debug ? 'enabled' : 'disabled-since-boot',
    intuse: 'generic',
    attester_tcb_status: r.status,
    attester_advisory_ids: [...r.advisoryIds],
    tdx_mrsignerseam: td.mrsignerseam,
    tdx_mrseam: td.mrseam,
    tdx_mrtd: td.mrtd,
    tdx_rtmr0: td.rtmr0,
    tdx_rtmr1: td.rtmr1,
    tdx_rtmr2: td.rtmr2,
    tdx_rtmr3: td.rtmr3,
    tdx_mrconfigid: td.mrconfigid,
    tdx_mrowner: td.mrowner,
    tdx_mrownerconfig: td.mrownerconfig,
    tdx_report_data: td.reportdata,
    tdx_seam_attributes: td.seamattributes,
    tdx_td_attributes: td.tdattributes,
    tdx_xfam: td.xfam,
    tdx_tee_tcb_svn: td.teetcbsvn,
    // TEE_TCB_SVN byte 0 is the TDX module minor SVN, byte 1 the major SVN.
    tdx_seamsvn: (seamsvn[1]! << 8) | seamsvn[0]!,
    tdx_td_attributes_debug: tdAttributeBit(td.tdattributes, 0),
    tdx_td_attributes_septve_disable: tdAttributeBit(td.tdattributes, 28),
    tdx_td_attributes_protection_keys: tdAttributeBit(td.tdattributes, 30),
    tdx_td_attributes_key_locker: tdAttributeBit(td.tdattributes, 31),
    tdx_td_attributes_perfmon: tdAttributeBit(td.tdattributes, 63),
    'x-conclave-tdx-collateral': collateralProvenance(quote, collateral),
    ...tcbClaims(r),
    ...runtimeClaims(runtime, initTime),
  };
}

function snpClaimsOf(r: SnpVerificationResult, form: 'container' | 'azure-hcl', runtime?: DataInput, initTime?: DataInput): Claims {
  const tee: Claims = {
    'x-ms-attestation-type': 'sevsnpvm',
    'x-ms-sevsnpvm-authorkeydigest': r.authorKeyDigest,
    'x-ms-sevsnpvm-bootloader-svn': r.reportedTcb.bootloader,
    'x-ms-sevsnpvm-familyId': r.familyId,
    'x-ms-sevsnpvm-guestsvn': r.guestSvn,
    'x-ms-sevsnpvm-hostdata': r.hostData,
    'x-ms-sevsnpvm-idkeydigest': r.idKeyDigest,
    'x-ms-sevsnpvm-imageId': r.imageId,
    'x-ms-sevsnpvm-is-debuggable': r.isDebuggable,
    'x-ms-sevsnpvm-launchmeasurement': r.measurement,
    'x-ms-sevsnpvm-microcode-svn': r.reportedTcb.microcode,
    'x-ms-sevsnpvm-migration-allowed': r.migrationAllowed,
    'x-ms-sevsnpvm-reportdata': r.reportData,
    'x-ms-sevsnpvm-reportid': r.reportId,
    'x-ms-sevsnpvm-smt-allowed': r.smtAllowed,
    'x-ms-sevsnpvm-snpfw-svn': r.reportedTcb.snp,
    'x-ms-sevsnpvm-tee-svn': r.reportedTcb.tee,
    'x-ms-sevsnpvm-vmpl': r.vmpl,
    'x-conclave-sevsnpvm-product': r.product,
    'x-conclave-sevsnpvm-signing-key': r.signingKey,
    'x-conclave-sevsnpvm-chipid': r.chipId,
    // Whether the AMD CRL of the product vouched that no certificate of the chain is revoked: `unavailable`
    // when none could be had (docs/snp.md, "Revocation"); a policy can require `checked`.
    'x-conclave-sevsnpvm-crl': r.crlChecked ? 'checked' : 'unavailable',
  };
  const runtimeJson = runtime?.json ?? r.runtimeData?.json;
  const claims: Claims = { ...tee, ...runtimeClaims(runtime, initTime) };
  if (runtimeJson !== undefined) claims['x-ms-runtime'] = runtimeJson;
  // The Azure guest shape nests the TEE claims under x-ms-isolation-tee; policies written for Azure
  // CVMs (e.g. the published SKR policies) address them there.
  claims['x-ms-isolation-tee'] = { ...tee, ...(runtimeJson !== undefined ? { 'x-ms-runtime': runtimeJson } : {}) };
  if (form === 'azure-hcl') claims['x-conclave-evidence-form'] = 'azure-hcl';
  // Confidential containers: who endorsed the UVM's launch measurement, for which feed, at which SVN
  // (scalars, so a policy can pin the signer and a minimum SVN; see policy/defaults.ts).
  const uvm = r.uvmEndorsement;
  if (uvm) {
    claims['x-conclave-uvm-issuer'] = uvm.issuer;
    claims['x-conclave-uvm-feed'] = uvm.feed;
    claims['x-conclave-uvm-svn'] = uvm.svn;
  }
  return claims;
}

/**
 * The incoming claim set a policy sees: every top-level scalar claim (objects as JSON text), and the
 * scalar members of `x-ms-isolation-tee` as `x-ms-isolation-tee.<name>` (the dot path SKR policies use).
 */
export function incomingClaims(claims: Claims): Claim[] {
  const out: Claim[] = [];
  for (const type of Object.keys(claims)) addIncoming(out, type, claims[type]);
  const tee = claims['x-ms-isolation-tee'];
  if (typeof tee === 'object' && tee !== null && !Array.isArray(tee)) {
    const nested = tee as Record<string, unknown>;
    for (const k of Object.keys(nested)) addIncoming(out, `x-ms-isolation-tee.${k}`, nested[k]);
  }
  return out;
}

/** One claim as the policy sees it: scalars as they are, arrays of scalars one claim per item, anything else as JSON text. */
function addIncoming(out: Claim[], type: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out.push({ type, value });
  else if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
    for (const v of value) out.push({ type, value: v as string | number | boolean });
  } else out.push({ type, value: JSON.stringify(value) });
}
