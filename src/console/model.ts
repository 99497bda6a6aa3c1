/**
 * The console's pure logic (no DOM): time buckets, the steps of a verification, groupings of audit and
 * collateral records. Unit-tested in model.test.ts.
 */

/** The page a location hash names (#/keys/app-key → ['keys', 'app-key']); a sign-in answer shows the overview. */
export function routeOf(hash: string): string[] {
  const h = hash.replace(/^#\/?/, '');
  if (h.startsWith('code=') || h.startsWith('signin-error=')) return ['overview'];
  return h.split('/').filter(Boolean).map(decodeSegment);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // a malformed %-escape: the page gets the text as written (no key has such a name)
  }
}

/** A local date and time, minutes precision (the console's one time format). */
export function formatTime(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export interface SeriesBucket {
  readonly start: Date;
  readonly values: readonly number[];
}

/** Groups timestamps into `count` buckets of `size` ms ending now, counting each event in its `series`. */
export function bucketize(events: readonly { time: Date; series: number }[], now: Date, size: number, count: number, seriesCount: number): SeriesBucket[] {
  const end = Math.floor(now.getTime() / size) * size + size;
  const start = end - size * count;
  const out = Array.from({ length: count }, (_, i) => ({ start: new Date(start + i * size), values: new Array<number>(seriesCount).fill(0) }));
  for (const e of events) {
    const i = Math.floor((e.time.getTime() - start) / size);
    if (i >= 0 && i < count) out[i]!.values[e.series]!++;
  }
  return out;
}

/** How fresh the cached collateral is: counts, and the item whose next update comes first. */
export function collateralFreshness(items: readonly { key: string; stale: boolean; nextUpdate: string | null }[], now: Date): { total: number; stale: number; nextUpdate?: Date; nextUpdateLabel?: string } {
  const upcoming = items
    .filter((i) => i.nextUpdate !== null && new Date(i.nextUpdate).getTime() >= now.getTime())
    .sort((a, b) => new Date(a.nextUpdate!).getTime() - new Date(b.nextUpdate!).getTime())[0];
  return {
    total: items.length,
    stale: items.filter((i) => i.stale).length,
    ...(upcoming ? { nextUpdate: new Date(upcoming.nextUpdate!), nextUpdateLabel: upcoming.key } : {}),
  };
}

/** Intel's TCB statuses (and ours for a missing level), best first, with the tone the console gives each. */
const TCB_TONES: readonly [string, string][] = [
  ['UpToDate', 'ok'],
  ['SWHardeningNeeded', 'warn'],
  ['ConfigurationNeeded', 'warn'],
  ['ConfigurationAndSWHardeningNeeded', 'warn'],
  ['OutOfDate', 'bad'],
  ['OutOfDateConfigurationNeeded', 'bad'],
  ['Revoked', 'bad'],
  ['NoMatchingTcbLevel', 'bad'],
  ['NoTcbInfo', 'info'],
];

/** Counts per TCB status, in the order of {@link TCB_TONES} (unknown statuses last). */
export function tcbStatusCounts(statuses: readonly string[]): { label: string; count: number; tone: string }[] {
  const counts = new Map<string, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  const known = TCB_TONES.filter(([s]) => counts.has(s)).map(([label, tone]) => ({ label, count: counts.get(label)!, tone }));
  const other = [...counts].filter(([s]) => !TCB_TONES.some(([k]) => k === s)).map(([label, count]) => ({ label, count, tone: 'info' }));
  return [...known, ...other];
}

export function tcbTone(status: string): string {
  return TCB_TONES.find(([s]) => s === status)?.[1] ?? 'info';
}

/** One node of a release decision's trace (src/vault/release/policy.ts TraceNode). */
export interface TraceNode {
  readonly path: string;
  readonly kind: string;
  readonly result: boolean;
  readonly authority?: string;
  readonly authorityMatched?: boolean;
  readonly claim?: string;
  readonly condition?: string;
  readonly expected?: unknown;
  readonly actual?: unknown;
  readonly children?: readonly TraceNode[];
}

export interface FailedClause {
  readonly path: string;
  readonly authority: string;
  readonly claim: string;
  readonly condition: string;
  readonly expected: unknown;
  readonly actual: unknown;
}

/**
 * The clauses that failed, each with its authority: every unmet claim under an authority whose issuer
 * matched, or the authority itself when the token came from another issuer.
 */
export function failedClauses(trace: TraceNode, issuer?: string): FailedClause[] {
  const out: FailedClause[] = [];
  const walk = (n: TraceNode, authority: string) => {
    if (n.kind === 'authority') {
      authority = n.authority ?? '';
      if (n.authorityMatched === false) {
        out.push({ path: n.path, authority, claim: 'iss', condition: 'authority', expected: n.authority, actual: issuer });
        return;
      }
    }
    if (n.kind === 'claim' && !n.result) out.push({ path: n.path, authority, claim: n.claim ?? '', condition: n.condition ?? '', expected: n.expected, actual: n.actual });
    for (const c of n.children ?? []) walk(c, authority);
  };
  walk(trace, '');
  return out;
}

/** The steps of verifying evidence, as the playground shows them. */
export const VERIFICATION_STEPS = [
  'Evidence parsed',
  'Signatures and certificate chain verified to the vendor root',
  'Collateral and TCB level checked',
  'Runtime data bound to the evidence',
  'Attestation policy evaluated',
  'Token issued',
] as const;

/** Which step an error code of the catalogue stops at (docs/errors.md). */
export function stepOfError(code: string): number {
  const [family = '', reason = ''] = code.split('.');
  if (family === 'attestation') {
    if (reason.startsWith('policy')) return 4;
    if (reason.endsWith('data_mismatch')) return 3;
    return 0;
  }
  if (/(runtime_data|host_data|nonce)_mismatch$/.test(reason)) return 3;
  if (family === 'collateral' || family === 'rim' || family === 'upstream') return 2;
  if (/^(tcb_level_not_found|tcb_revoked|qe_tcb_level_not_found|qe_identity_mismatch|fmspc_mismatch|tdx_module_mismatch|collateral_mismatch|tcb_mismatch|measurement_mismatch|fwid_mismatch)$/.test(reason)) return 2;
  if (/^(truncated|malformed|unsupported|invalid|too_large|not_found)$/.test(reason) && family !== 'cert' && family !== 'crl') return 0;
  return 1;
}

export type StepState = 'passed' | 'failed' | 'not reached';

/** Every step's state for an outcome: all passed, or passed up to the failing step. */
export function stepStates(failedCode: string | undefined): StepState[] {
  const failedAt = failedCode === undefined ? VERIFICATION_STEPS.length : stepOfError(failedCode);
  return VERIFICATION_STEPS.map((_, i) => (i < failedAt ? 'passed' : i === failedAt ? 'failed' : 'not reached'));
}

/** A collateral group: one Intel FMSPC, one AMD product, or what all platforms of a vendor share. */
export interface CollateralGroup<T> {
  readonly title: string;
  readonly items: readonly T[];
}

/** The group of a collateral scope (`sgx/v4/tcb/00906ED50000`, `amd/vcek/Genoa/…`, `sgx/pckcrl/processor`). */
export function collateralGroupOf(scope: string): string {
  const parts = scope.split('/');
  if ((parts[0] === 'sgx' || parts[0] === 'tdx') && parts[2] === 'tcb' && parts[3]) return `Intel FMSPC ${parts[3].toUpperCase()}`;
  if (parts[0] === 'amd' && parts[2]) return `AMD ${parts[2]}`;
  if (parts[0] === 'sgx' || parts[0] === 'tdx') return 'Intel, all platforms';
  if (scope.startsWith('nvidia')) return 'NVIDIA';
  return 'Other';
}

/** Items grouped by {@link collateralGroupOf}, FMSPC and product groups first, in name order. */
export function groupCollateral<T extends { scope: string }>(items: readonly T[]): CollateralGroup<T>[] {
  const groups = new Map<string, T[]>();
  for (const i of items) {
    const g = collateralGroupOf(i.scope);
    groups.set(g, [...(groups.get(g) ?? []), i]);
  }
  const rank = (t: string) => (t.startsWith('Intel FMSPC') ? 0 : t.startsWith('AMD') ? 1 : t.startsWith('Intel') ? 2 : 3);
  return [...groups].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)).map(([title, list]) => ({ title, items: list }));
}

/** Audit entries whose record mentions every word of `query` (case-insensitive), with result `result` when given. */
export function searchAudit<T extends { record: { result: string } }>(entries: readonly T[], query: string, result: string): T[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return entries.filter((e) => {
    if (result && e.record.result !== result) return false;
    if (words.length === 0) return true;
    const text = JSON.stringify(e.record).toLowerCase();
    return words.every((w) => text.includes(w));
  });
}
