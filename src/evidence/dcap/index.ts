/**
 * Intel SGX / TDX DCAP quotes: parse (v3, v4, v5), encode, and verify against QvE-style collateral.
 * See docs/dcap.md for the checks, their order, and where this verifier follows Intel's QVL.
 */
export {
  type Quote,
  type QuoteBody,
  type QuoteHeader,
  type QuoteSignatureData,
  type Tee,
  QUOTE_HEADER,
  BODY_DESCRIPTOR,
  TEE_TYPE_SGX,
  TEE_TYPE_TDX,
  ATTESTATION_KEY_TYPE_ECDSA_P256,
  INTEL_QE_VENDOR_ID,
  CERT_DATA_PCK_CHAIN,
  CERT_DATA_QE_REPORT,
  parseQuote,
  encodeQuote,
  encodeSignedRegion,
  encodeSignatureData,
  encodeBody,
  encodeSgxReportBody,
  teeOf,
} from './quote.js';
export { type Field, type FieldType, type Layout, type Decoded, decodeLayout, encodeLayout, layoutSize, zeroLayout } from '../../core/layout.js';
export { type Freshness, PCK_CHAIN_MAX_CERTIFICATES, type VerifyQuoteOptions, pckChainDers, verifyQuote, verifyQuoteAsync } from './verify.js';
export { VerifierCache } from './cache.js';
export type { QuoteVerificationResult, SgxQuoteVerificationResult, TdxQuoteVerificationResult, QuoteVerificationCommon } from './result.js';
export type { QuoteStatus } from './tcb.js';
export { SGX_REPORT_BODY, type SgxReportBody } from '../sgx/report-body.js';
export { TD_REPORT_10, TD_REPORT_15, type TdReport10, type TdReport15 } from '../tdx/td-report.js';
export {
  type QuoteCollateral,
  type PcsResponses,
  type ChainInput,
  parseQuoteCollateral,
  collateralFromPcsResponses,
  quoteCollateralToJson,
} from './collateral.js';
export { INTEL_SGX_ROOT_CA, INTEL_SGX_ROOT_CA_PEM } from './roots.js';
