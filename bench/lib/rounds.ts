/**
 * Interleaved rounds: every case of a benchmark runs once per round, in the same order, for `rounds`
 * rounds, so that a floor and the figure compared with it meet the same machine conditions. Each
 * figure is reported as the median of its rounds with their min and max, beside the load average and
 * the CPU steal seen while it was taken.
 */
import { formatMachine, type MachineSample, machineInterval } from './machine.js';

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  const s = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (s.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const mid = Math.floor(s.length / 2);
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}

/** `median (min–max)` with `digits` decimals. */
export function fmt(s: Spread, digits = 0): string {
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/** One measurement of one case in one round: named numbers (throughput, latencies, CPU per operation…). */
export type Figures = Record<string, number>;

export interface Case {
  readonly name: string;
  run(round: number): Promise<Figures>;
}

export interface CaseResult {
  readonly name: string;
  /** Every figure's values, one per round. */
  readonly rounds: ReadonlyArray<Figures>;
  readonly machine: ReadonlyArray<MachineSample>;
  figure(key: string): Spread;
  /** Load average and steal over the case's rounds: `load 12.3 (10.1–14.0), steal 0.4 %`. */
  machineLine(): string;
}

/**
 * Runs `cases` in `rounds` interleaved rounds (case 1, case 2, …, case 1, case 2, …) and returns each
 * case's figures. `onRound` sees every measurement as it is taken (for a progress line).
 */
export async function interleave(cases: readonly Case[], rounds: number, onRound?: (round: number, name: string, f: Figures, m: MachineSample) => void): Promise<CaseResult[]> {
  const figures = cases.map(() => [] as Figures[]);
  const machine = cases.map(() => [] as MachineSample[]);
  for (let r = 1; r <= rounds; r++) {
    for (const [i, c] of cases.entries()) {
      const m = machineInterval();
      const f = await c.run(r);
      const s = m.end();
      figures[i]!.push(f);
      machine[i]!.push(s);
      onRound?.(r, c.name, f, s);
    }
  }
  return cases.map((c, i) => resultOf(c.name, figures[i]!, machine[i]!));
}

function resultOf(name: string, rounds: Figures[], machine: MachineSample[]): CaseResult {
  return {
    name,
    rounds,
    machine,
    figure: (key) => spread(rounds.map((f) => f[key] ?? Number.NaN)),
    machineLine() {
      const load = spread(machine.map((m) => m.load1));
      const steal = spread(machine.map((m) => m.stealPct));
      return `load ${fmt(load, 1)}, steal ${Number.isNaN(steal.median) ? '?' : `${steal.max.toFixed(1)} % max`}`;
    },
  };
}

/** Per-round ratio a/b of two cases' figures (same round, same conditions), as a spread. */
export function ratio(a: CaseResult, aKey: string, b: CaseResult, bKey: string): Spread {
  return spread(a.rounds.map((f, i) => (f[aKey] ?? Number.NaN) / (b.rounds[i]?.[bKey] ?? Number.NaN)));
}

export { formatMachine };
