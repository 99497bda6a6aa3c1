import type { TcbStatus } from './tcb-info.js';
import type { QuoteStatus } from './tcb.js';

/** The verdict of {@link verifyQuote}; every byte value is lowercase hex. */
export type QuoteVerificationResult = SgxQuoteVerificationResult | TdxQuoteVerificationResult;

export interface QuoteVerificationCommon {
  readonly verified: true;
  readonly quoteVersion: number;
  /** Platform TCB status converged with the TDX module and QE statuses (docs/dcap.md §Status). */
  readonly status: QuoteStatus;
  /** Union of the advisory IDs of the matched platform, TDX module and QE levels. */
  readonly advisoryIds: readonly string[];
  readonly fmspc: string;
  readonly pceId: string;
  readonly tcb: {
    /** Status of the matched platform TCB level (before the QE and module are folded in). */
    readonly status: TcbStatus;
    readonly tcbDate: string;
    readonly advisoryIds: readonly string[];
    /** SGX TCB components comp01..16 of the PCK certificate. */
    readonly sgxtcbcomponents: readonly number[];
    readonly pcesvn: number;
    /** CPUSVN of the PCK certificate. */
    readonly cpusvn: string;
    readonly sgxType: string;
    readonly pckCa: 'processor' | 'platform';
    /** TDX only: the TDX module identity and its level. */
    readonly tdxModule?: {
      readonly id: string;
      readonly isvsvn: number;
      readonly status?: TcbStatus;
      readonly tcbDate?: string;
      readonly advisoryIds: readonly string[];
    };
    /** TDX only: status of the level matched on the SGX components alone. */
    readonly sgxStatus?: TcbStatus;
  };
  readonly qe: {
    readonly id: string;
    readonly status: TcbStatus;
    readonly isvsvn: number;
    readonly tcbDate: string;
    readonly advisoryIds: readonly string[];
  };
  readonly collateral: {
    readonly tcbEvaluationDataNumber: number;
    readonly tcbInfoIssueDate: string;
    /** nextUpdate of the TCB info. */
    readonly nextUpdate: string;
    /** Earliest nextUpdate among TCB info, QE identity and both CRLs. */
    readonly earliestNextUpdate: string;
    readonly qeIdentityTcbEvaluationDataNumber: number;
    /** Collateral whose validity window did not cover `at` (only possible under `azure` freshness). */
    readonly expired: readonly { readonly item: 'tcbInfo' | 'qeIdentity' | 'pckCrl' | 'rootCaCrl'; readonly nextUpdate: string; readonly issued: string }[];
  };
  readonly warnings: readonly string[];
}

export interface SgxQuoteVerificationResult extends QuoteVerificationCommon {
  readonly tee: 'sgx';
  readonly report: {
    readonly mrenclave: string;
    readonly mrsigner: string;
    readonly isvprodid: number;
    readonly isvsvn: number;
    readonly attributes: string;
    /** MISCSELECT as the 4 bytes of the report (little-endian u32). */
    readonly miscselect: string;
    readonly reportdata: string;
    readonly debug: boolean;
    readonly cpusvn: string;
    readonly configid: string;
    readonly configsvn: number;
    readonly isvextprodid: string;
    readonly isvfamilyid: string;
  };
}

export interface TdxQuoteVerificationResult extends QuoteVerificationCommon {
  readonly tee: 'tdx';
  readonly td: {
    readonly mrtd: string;
    readonly mrseam: string;
    readonly mrsignerseam: string;
    readonly seamattributes: string;
    readonly mrconfigid: string;
    readonly mrowner: string;
    readonly mrownerconfig: string;
    readonly rtmr0: string;
    readonly rtmr1: string;
    readonly rtmr2: string;
    readonly rtmr3: string;
    readonly tdattributes: string;
    readonly xfam: string;
    readonly teetcbsvn: string;
    /** TD report 1.5 only. */
    readonly teetcbsvn2?: string;
    readonly mrservicetd?: string;
    readonly reportdata: string;
    readonly debug: boolean;
  };
}
