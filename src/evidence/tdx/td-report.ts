import type { Decoded } from '../../core/layout.js';

/**
 * TD report body 1.0 (sgx_report2_body_t, 584 bytes) as carried in TDX quotes v4/v5
 * (DCAP `sgx_quote_4.h`; offsets as in evidence-and-collateral §1.2).
 */
export const TD_REPORT_10 = [
  { name: 'teeTcbSvn', offset: 0, type: 16 },
  { name: 'mrseam', offset: 16, type: 48 },
  { name: 'mrsignerseam', offset: 64, type: 48 },
  { name: 'seamattributes', offset: 112, type: 8 },
  { name: 'tdattributes', offset: 120, type: 8 },
  { name: 'xfam', offset: 128, type: 8 },
  { name: 'mrtd', offset: 136, type: 48 },
  { name: 'mrconfigid', offset: 184, type: 48 },
  { name: 'mrowner', offset: 232, type: 48 },
  { name: 'mrownerconfig', offset: 280, type: 48 },
  { name: 'rtmr0', offset: 328, type: 48 },
  { name: 'rtmr1', offset: 376, type: 48 },
  { name: 'rtmr2', offset: 424, type: 48 },
  { name: 'rtmr3', offset: 472, type: 48 },
  { name: 'reportdata', offset: 520, type: 64 },
] as const;

/** TD report body 1.5 (sgx_report2_body_v1_5_t, 648 bytes; DCAP `sgx_quote_5.h`). */
export const TD_REPORT_15 = [...TD_REPORT_10, { name: 'teeTcbSvn2', offset: 584, type: 16 }, { name: 'mrservicetd', offset: 600, type: 48 }] as const;

export const TD_REPORT_10_SIZE = 584;
export const TD_REPORT_15_SIZE = 648;

export type TdReport10 = Decoded<typeof TD_REPORT_10>;
export type TdReport15 = Decoded<typeof TD_REPORT_15>;

/** TDATTRIBUTES bit 0 (TUD.DEBUG): the TD is debuggable (dcap-qvl `src/quote.rs TDAttributes`). */
export function isTdDebug(body: TdReport10): boolean {
  return (body.tdattributes[0]! & 0x01) !== 0;
}
