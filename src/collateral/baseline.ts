import { fail } from '../core/errors.js';
import type { KdsTcb } from './amd/kds.js';
import type { TcbInfo, TcbStatus } from '../evidence/dcap/tcb-info.js';
import type { AmdProduct } from '../evidence/snp/roots.js';

/**
 * TCB baseline pinning, after Azure THIM: by default the service answers the TCB info / QE identity of
 * an older `tcbEvaluationDataNumber` than Intel's newest, so platforms get time to patch (THIM docs: "The
 * default TCB baseline from THIM might lag the latest baseline offered by Intel"). Azure publishes no
 * fixed lag; ours is "the newest evaluation number public for at least `minAgeDays`" (default 30, 0 =
 * newest). An operator may pin a number per TEE or per FMSPC. Pure: the time is a parameter.
 */
export interface BaselinePolicy {
  /** Days an evaluation number must have been public before it becomes the default; 0 = newest. */
  readonly minAgeDays: number;
  /** Pinned evaluation numbers: key `sgx`, `tdx`, or `sgx:<FMSPC>` / `tdx:<FMSPC>` (the FMSPC pin wins). */
  readonly pinned: Readonly<Record<string, number>>;
  /** AMD: the lowest VCEK TCB served per product. */
  readonly amdMinimumTcb: Readonly<Partial<Record<AmdProduct, KdsTcb>>>;
}

export const DEFAULT_BASELINE: BaselinePolicy = { minAgeDays: 30, pinned: {}, amdMinimumTcb: {} };

/** How a request selects among the cached versions of one TCB info / identity. */
export type EvaluationSelector = { readonly type: 'baseline' } | { readonly type: 'early' } | { readonly type: 'standard' } | { readonly type: 'number'; readonly number: number };

/**
 * Azure-DCAP-Client's `customParameter`: base64 of `key=value;key=value` (e.g.
 * `tcbEvaluationDataNumber=14;region=us central`). An unknown key that looks like a misspelt evaluation
 * number is rejected, as THIM answers no collateral for it (§3.4).
 */
export function parseCustomParameter(b64: string): { tcbEvaluationDataNumber?: number } {
  let text: string;
  try {
    text = Buffer.from(b64, 'base64').toString('utf8');
  } catch {
    throw fail('request.invalid', 'customParameter is not base64');
  }
  const out: { tcbEvaluationDataNumber?: number } = {};
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 'tcbEvaluationDataNumber') {
      if (!/^\d{1,6}$/.test(v)) throw fail('request.invalid', 'customParameter tcbEvaluationDataNumber must be a number', { value: v });
      out.tcbEvaluationDataNumber = Number(v);
    } else if (/^tcbEval/i.test(k)) throw fail('request.invalid', `customParameter key "${k}" is not known`, { key: k });
  }
  return out;
}

/** The selector of a PCS/THIM request: `tcbEvaluationDataNumber` / customParameter XOR `update`. */
export function selectorOf(query: { update?: string | undefined; tcbEvaluationDataNumber?: string | undefined; customParameter?: string | undefined }): EvaluationSelector {
  const custom = query.customParameter ? parseCustomParameter(query.customParameter).tcbEvaluationDataNumber : undefined;
  const explicit = query.tcbEvaluationDataNumber;
  if (explicit !== undefined && query.update !== undefined) throw fail('request.invalid', 'update and tcbEvaluationDataNumber are mutually exclusive');
  if (explicit !== undefined) {
    if (!/^\d{1,6}$/.test(explicit)) throw fail('request.invalid', 'tcbEvaluationDataNumber must be a number');
    return { type: 'number', number: Number(explicit) };
  }
  if (custom !== undefined) return { type: 'number', number: custom };
  if (query.update === undefined) return { type: 'baseline' };
  const u = query.update.toLowerCase();
  if (u === 'early') return { type: 'early' };
  if (u === 'standard') return { type: 'standard' };
  throw fail('request.invalid', 'update must be early or standard', { update: query.update });
}

/**
 * The evaluation number the baseline names for a TEE/FMSPC at `at`: a pin, or the newest number whose
 * publication (TCB recovery event date) is at least `minAgeDays` old. Undefined when nothing is known,
 * in which case the caller serves Intel's `standard` answer.
 */
export function baselineEvaluationNumber(policy: BaselinePolicy, tee: string, fmspc: string | undefined, published: ReadonlyMap<number, Date>, at: Date): number | undefined {
  const pin = (fmspc !== undefined ? policy.pinned[`${tee}:${fmspc.toUpperCase()}`] : undefined) ?? policy.pinned[tee];
  if (pin !== undefined) return pin;
  const cutoff = at.getTime() - policy.minAgeDays * 86_400_000;
  let best: number | undefined;
  for (const [n, date] of published) if (date.getTime() <= cutoff && (best === undefined || n > best)) best = n;
  return best;
}

/** Of the cached evaluation numbers, the one to serve for `target`: the newest not above it. */
export function chooseEvaluationNumber(available: readonly number[], target: number): number | undefined {
  let best: number | undefined;
  for (const n of available) if (n <= target && (best === undefined || n > best)) best = n;
  return best;
}

/** A platform seen in a registration or an attestation. */
export interface PlatformSeen {
  readonly tee: 'sgx' | 'tdx';
  /** Uppercase hex, 6 bytes. */
  readonly fmspc: string;
  /** CPUSVN (the 16 SGX TCB components), hex. */
  readonly cpusvn: string;
  readonly pcesvn: number;
  /** TDX only: TEE_TCB_SVN, hex. */
  readonly teeTcbSvn?: string | undefined;
  readonly lastSeen?: Date | undefined;
}

export type PlatformStatus = TcbStatus | 'NoMatchingTcbLevel';

export interface DryRunRow {
  readonly platform: PlatformSeen;
  readonly current: PlatformStatus;
  readonly candidate: PlatformStatus;
  readonly changed: boolean;
}

function meets(level: TcbInfo['tcbLevels'][number], comps: Uint8Array, pcesvn: number, tee: Uint8Array | undefined): boolean {
  for (let i = 0; i < 16; i++) if (comps[i]! < level.sgxtcbcomponents[i]!) return false;
  if (pcesvn < level.pcesvn) return false;
  if (tee) {
    const tdx = level.tdxtcbcomponents;
    if (!tdx) return false;
    // When TEE_TCB_SVN[1] names a module, indices 0–1 are judged by the module identity (QVL isTdxTcbHigherOrEqual).
    for (let i = tee[1]! > 0 ? 2 : 0; i < 16; i++) if (tee[i]! < tdx[i]!) return false;
  }
  return true;
}

/** The platform TCB status under one TCB info (first level met, Intel orders them newest first). */
export function platformStatus(info: TcbInfo | undefined, p: PlatformSeen): PlatformStatus {
  if (!info) return 'NoMatchingTcbLevel';
  const comps = Buffer.from(p.cpusvn, 'hex');
  const tee = p.tee === 'tdx' && p.teeTcbSvn ? Buffer.from(p.teeTcbSvn, 'hex') : undefined;
  const level = info.tcbLevels.find((l) => meets(l, comps, p.pcesvn, tee));
  return level ? level.tcbStatus : 'NoMatchingTcbLevel';
}

/** What each platform would get under the candidate TCB info compared with the current one. */
export function dryRunBaseline(platforms: readonly PlatformSeen[], current: (p: PlatformSeen) => TcbInfo | undefined, candidate: (p: PlatformSeen) => TcbInfo | undefined): DryRunRow[] {
  return platforms.map((platform) => {
    const a = platformStatus(current(platform), platform);
    const b = platformStatus(candidate(platform), platform);
    return { platform, current: a, candidate: b, changed: a !== b };
  });
}

/** Whether a VCEK's TCB meets the product's minimum (every SPL at least the minimum's). */
export function meetsAmdMinimum(policy: BaselinePolicy, product: AmdProduct, tcb: KdsTcb): boolean {
  const min = policy.amdMinimumTcb[product];
  if (!min) return true;
  return tcb.bootloader >= min.bootloader && tcb.tee >= min.tee && tcb.snp >= min.snp && tcb.microcode >= min.microcode && (tcb.fmc ?? 0) >= (min.fmc ?? 0);
}

/** Validates an operator-supplied policy document (admin API, CLI). */
export function parseBaselinePolicy(input: unknown): BaselinePolicy {
  if (typeof input !== 'object' || input === null) throw fail('request.invalid', 'baseline must be a JSON object');
  const o = input as Record<string, unknown>;
  const minAgeDays = o.minAgeDays ?? DEFAULT_BASELINE.minAgeDays;
  if (typeof minAgeDays !== 'number' || !Number.isInteger(minAgeDays) || minAgeDays < 0 || minAgeDays > 3650) throw fail('request.invalid', 'minAgeDays must be an integer from 0 to 3650');
  const pinned: Record<string, number> = {};
  for (const [k, v] of Object.entries((o.pinned as Record<string, unknown> | undefined) ?? {})) {
    if (!/^(sgx|tdx)(:[0-9A-Fa-f]{12})?$/.test(k)) throw fail('request.invalid', `baseline pin key "${k}" must be sgx, tdx, sgx:<FMSPC> or tdx:<FMSPC>`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw fail('request.invalid', `baseline pin "${k}" must be an evaluation number`);
    const [tee, f] = k.split(':');
    pinned[f ? `${tee}:${f.toUpperCase()}` : tee!] = v;
  }
  const amdMinimumTcb: Partial<Record<AmdProduct, KdsTcb>> = {};
  for (const [k, v] of Object.entries((o.amdMinimumTcb as Record<string, unknown> | undefined) ?? {})) {
    if (k !== 'Milan' && k !== 'Genoa' && k !== 'Turin') throw fail('request.invalid', `amdMinimumTcb product "${k}" must be Milan, Genoa or Turin`);
    const t = v as Record<string, unknown>;
    const n = (f: string) => {
      const x = t?.[f] ?? 0;
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 255) throw fail('request.invalid', `amdMinimumTcb.${k}.${f} must be 0–255`);
      return x;
    };
    amdMinimumTcb[k] = { bootloader: n('bootloader'), tee: n('tee'), snp: n('snp'), microcode: n('microcode'), fmc: n('fmc') };
  }
  return { minAgeDays, pinned, amdMinimumTcb };
}
