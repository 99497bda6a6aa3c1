/**
 * What the machine was doing while a figure was taken: the 1-minute load average and the share of CPU
 * time stolen by the hypervisor (from /proc/stat), so that a figure taken on a busy machine says so.
 * Also the CPU time a process spent (from /proc/<pid>/stat), which, unlike wall-clock throughput, hardly
 * depends on what else runs: CPU time per operation is the figure to compare across busy runs.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

interface CpuTicks {
  readonly total: number;
  readonly idle: number;
  readonly steal: number;
}

function readTicks(): CpuTicks | undefined {
  try {
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (proc(5))
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { total, idle: (f[3] ?? 0) + (f[4] ?? 0), steal: f[7] ?? 0 };
  } catch {
    return undefined;
  }
}

/** The machine's state over an interval: load average at its end, steal and busy share during it. */
export interface MachineSample {
  readonly load1: number;
  /** Percent of all CPU time stolen by the hypervisor during the interval (NaN where /proc is absent). */
  readonly stealPct: number;
  /** Percent of all CPU time not idle during the interval, every process counted. */
  readonly busyPct: number;
}

/** Starts an interval; `end()` reports what the machine did during it. */
export function machineInterval(): { end(): MachineSample } {
  const a = readTicks();
  return {
    end() {
      const b = readTicks();
      const dt = a && b ? b.total - a.total : 0;
      return {
        load1: loadavg()[0]!,
        stealPct: a && b && dt > 0 ? (100 * (b.steal - a.steal)) / dt : Number.NaN,
        busyPct: a && b && dt > 0 ? (100 * (dt - (b.idle - a.idle))) / dt : Number.NaN,
      };
    },
  };
}

export function formatMachine(s: MachineSample): string {
  return `load ${s.load1.toFixed(1)}, steal ${Number.isNaN(s.stealPct) ? '?' : s.stealPct.toFixed(1)} %`;
}

/** One line naming the host, for the head of a benchmark's output. */
export function hostLine(): string {
  return `host: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ; 100 on Linux everywhere in practice). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) process `pid` has used so far, all its threads together, or with `thread`
 * only that thread (its main thread has the process's id). NaN without /proc.
 */
export function processCpuSeconds(pid: number, thread?: number): number {
  try {
    const s = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    // The command name may hold spaces: the fields resume after its closing parenthesis (field 3 is state).
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / USER_HZ; // utime (14), stime (15)
  } catch {
    return Number.NaN;
  }
}
