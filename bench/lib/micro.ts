/**
 * One-thread micro-benchmarks (a floor and the operations compared with it) in interleaved rounds, each
 * figure the median of the rounds with min and max. Every case is timed two ways: by the wall clock, and
 * by the CPU time this process spent (process.cpuUsage). On a busy machine the wall-clock rate falls with
 * the share of the cores this process gets, round by round; the CPU-time rate hardly moves, so the ratio
 * to the floor is taken on CPU time (per round), and the wall-clock figures stand beside it with the load
 * average and CPU steal of their rounds.
 */
import { hostLine } from './machine.js';
import { type CaseResult, fmt, interleave, ratio } from './rounds.js';

export interface MicroOptions {
  readonly rounds: number;
  readonly msPerRound: number;
  /** Calls per clock check (keeps the clock out of the timed loop). */
  readonly batch?: number;
}

function measure(f: () => unknown, ms: number, batch: number): { perSecond: number; perCpuSecond: number; cpuUs: number } {
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(ms * 1e6));
  let ops = 0;
  let now = start;
  while (now < end) {
    for (let i = 0; i < batch; i++) f();
    ops += batch;
    now = process.hrtime.bigint();
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return { perSecond: ops / (Number(now - start) / 1e9), perCpuSecond: ops / cpuSeconds, cpuUs: (cpuSeconds * 1e6) / ops };
}

/** Runs `cases` (the first is the floor) and returns their results; see {@link printMicro}. */
export async function runMicro(cases: Record<string, () => unknown>, o: MicroOptions): Promise<CaseResult[]> {
  const batch = o.batch ?? 8;
  for (const f of Object.values(cases)) measure(f, 200, batch); // warm-up: JIT, OpenSSL, caches
  return interleave(
    Object.entries(cases).map(([name, f]) => ({ name, run: async () => measure(f, o.msPerRound, batch) })),
    o.rounds,
  );
}

/** The results as a table: rate by CPU time and by wall clock, ratio to the floor (first case) per round. */
export function printMicro(title: string, results: CaseResult[], o: MicroOptions): void {
  const floor = results[0]!;
  console.log(hostLine());
  console.log(`${title}: one thread, ${o.rounds} interleaved rounds × ${o.msPerRound} ms; median (min–max) of the rounds; ratio to ${floor.name} per round, by CPU time`);
  console.log('\n| case | per CPU-second | µs CPU each | vs floor (CPU time) | per second (wall) | vs floor (wall) | machine |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.name} | ${fmt(r.figure('perCpuSecond'))} | ${fmt(r.figure('cpuUs'), 1)} | ${fmt(ratio(r, 'perCpuSecond', floor, 'perCpuSecond'), 3)} | ${fmt(r.figure('perSecond'))} | ${fmt(ratio(r, 'perSecond', floor, 'perSecond'), 3)} | ${r.machineLine()} |`,
    );
  }
}

/** The median per-round CPU-time ratio of case `name` to the floor. */
export function microRatio(results: CaseResult[], name: string): number {
  const r = results.find((x) => x.name === name);
  return r ? ratio(r, 'perCpuSecond', results[0]!, 'perCpuSecond').median : Number.NaN;
}
