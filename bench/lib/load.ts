/**
 * A closed-loop HTTPS load generator for loopback benchmarks: `connections` keep-alive connections,
 * each sending the next request as soon as the previous answered, for a fixed duration after a warm-up.
 * Reports throughput and latency percentiles; non-2xx answers are counted, never silently averaged in.
 */
import { Agent, request } from 'node:https';
import { processCpuSeconds } from './machine.js';

export interface LoadOptions {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** A body, or a function giving the body of the i-th request. */
  readonly body?: string | ((i: number) => string);
  readonly ca: string | Buffer;
  readonly connections: number;
  readonly durationMs: number;
  readonly warmupMs?: number;
  /** A process (the server) whose CPU time per answered request to report as `serverCpuUs`. */
  readonly cpuPid?: number;
}

export interface LoadResult {
  readonly requests: number;
  /** Requests answered in all, the warm-up's included (to relate a server's CPU profile to operations). */
  readonly answered: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly firstError?: string;
  /** CPU µs (all threads) the `cpuPid` process spent per answered request during the measured phase. */
  readonly serverCpuUs: number;
  /** Of `serverCpuUs`, what its main thread (the event loop) spent; the rest ran on other threads. */
  readonly serverMainCpuUs: number;
  /** CPU µs this load generator spent per answered request. */
  readonly clientCpuUs: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections, ca: o.ca });
  const u = new URL(o.url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error('benchmarks talk to loopback only');
  let counter = 0;
  let answered = 0;
  const once = (): Promise<{ ok: boolean; ms: number; text?: string }> =>
    new Promise((resolve) => {
      const body = typeof o.body === 'function' ? o.body(counter++) : o.body;
      const t0 = process.hrtime.bigint();
      const req = request(u, { method: o.method ?? 'GET', agent, headers: { ...(o.headers ?? {}), ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          answered++;
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
          resolve(ok ? { ok, ms } : { ok, ms, text: `${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}` });
        });
      });
      req.on('error', (e) => resolve({ ok: false, ms: 0, text: e.message }));
      if (body) req.write(body);
      req.end();
    });
  const phase = async (ms: number, record: boolean) => {
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const end = Date.now() + ms;
    const worker = async () => {
      while (Date.now() < end) {
        const r = await once();
        if (!record) continue;
        if (r.ok) latencies.push(r.ms);
        else {
          errors++;
          firstError ??= r.text;
        }
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: o.connections }, worker));
    return { latencies, errors, firstError, elapsed: Date.now() - t0 };
  };
  await phase(o.warmupMs ?? 1000, false);
  const server0 = o.cpuPid !== undefined ? processCpuSeconds(o.cpuPid) : Number.NaN;
  const main0 = o.cpuPid !== undefined ? processCpuSeconds(o.cpuPid, o.cpuPid) : Number.NaN;
  const client0 = process.cpuUsage();
  const r = await phase(o.durationMs, true);
  const client = process.cpuUsage(client0);
  const serverSeconds = o.cpuPid !== undefined ? processCpuSeconds(o.cpuPid) - server0 : Number.NaN;
  const mainSeconds = o.cpuPid !== undefined ? processCpuSeconds(o.cpuPid, o.cpuPid) - main0 : Number.NaN;
  agent.destroy();
  const sorted = Float64Array.from(r.latencies).sort();
  return {
    requests: r.latencies.length,
    answered,
    errors: r.errors,
    perSecond: (r.latencies.length / r.elapsed) * 1000,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    serverCpuUs: (serverSeconds * 1e6) / r.latencies.length,
    serverMainCpuUs: (mainSeconds * 1e6) / r.latencies.length,
    clientCpuUs: (client.user + client.system) / r.latencies.length,
    ...(r.firstError ? { firstError: r.firstError } : {}),
  };
}

/** Runs `fn` repeatedly for `ms` (after a short warm-up) and returns operations per second. */
export async function opsPerSecond(fn: () => unknown | Promise<unknown>, ms: number): Promise<number> {
  return (await measureOps(fn, ms)).perSecond;
}

/**
 * Runs `fn` repeatedly in this thread for `ms` (after a short warm-up): operations per wall-clock second,
 * and CPU µs of this process per operation (which a busy machine hardly changes).
 */
export async function measureOps(fn: () => unknown | Promise<unknown>, ms: number): Promise<{ perSecond: number; cpuUs: number }> {
  const warm = Date.now() + Math.min(300, ms / 4);
  while (Date.now() < warm) await fn();
  let n = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await fn();
    n++;
  }
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: n / (Number(process.hrtime.bigint() - t0) / 1e9), cpuUs: (cpu.user + cpu.system) / n };
}

export function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (hit) return hit.slice(name.length + 3);
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
