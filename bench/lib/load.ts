/**
 * A closed-loop HTTPS load generator for loopback benchmarks: `connections` keep-alive connections,
 * each sending the next request as soon as the previous answered, for a fixed duration after a warm-up.
 * Reports throughput and latency percentiles; non-2xx answers are counted, never silently averaged in.
 *
 * It shares the machine's cores with the server it measures, so it is built to cost as little CPU per
 * request as a dedicated load generator (wrk, autocannon) would, while staying honest: each connection
 * is a real TLS connection (node:tls, the server's CA checked), the request is the same HTTP/1.1 request
 * node:https would send (request line, Host, `connection: keep-alive`, the headers, content-length, the
 * body), written in one piece whose bytes are built once; the answer is read to its last byte (by its
 * content-length, or its chunked framing) and checked: a 2xx status, and `check` on the body if given.
 * What it leaves out is node:http's general machinery (request and response objects, header objects,
 * streams, the agent's socket pool) that a load generator has no use for.
 */
import { connect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
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
  /** A check of a 2xx answer's body: false counts the answer as an error. */
  readonly check?: (body: Buffer) => boolean;
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

interface Answer {
  readonly ok: boolean;
  readonly ms: number;
  readonly text?: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * One HTTP/1.1 response framed out of the bytes read so far: undefined while incomplete; throws on a
 * response it cannot frame.
 */
export function frameResponse(buf: Buffer): { status: number; body: Buffer; close: boolean; rest: Buffer } | undefined {
  const end = buf.indexOf(HEADER_END);
  if (end < 0) {
    if (buf.length > 64 * 1024) throw new Error('response headers over 64 KiB');
    return undefined;
  }
  const head = buf.toString('latin1', 0, end);
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!status) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify(head.slice(0, 40))}`);
  const close = /\r\nconnection:[ \t]*close/i.test(head);
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  let at = end + 4;
  if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
    const parts: Buffer[] = [];
    for (;;) {
      const line = buf.indexOf('\r\n', at);
      if (line < 0) return undefined;
      const size = Number.parseInt(buf.toString('latin1', at, line), 16);
      if (!Number.isInteger(size) || size < 0) throw new Error('bad chunk size');
      if (size === 0) {
        // No trailers are expected: the chunked body ends with an empty line.
        if (buf.length < line + 4) return undefined;
        return { status: Number(status[1]), body: Buffer.concat(parts), close, rest: buf.subarray(line + 4) };
      }
      if (buf.length < line + 2 + size + 2) return undefined;
      parts.push(buf.subarray(line + 2, line + 2 + size));
      at = line + 2 + size + 2;
    }
  }
  if (!length) throw new Error('response without content-length or chunked framing');
  const n = Number(length[1]);
  if (buf.length < at + n) return undefined;
  return { status: Number(status[1]), body: buf.subarray(at, at + n), close, rest: buf.subarray(at + n) };
}

/** One keep-alive TLS connection that sends a request and reads its whole answer, one at a time. */
class Connection {
  private socket: TLSSocket | undefined;
  /** The socket the request in flight was written to: events of an older one are not its answer. */
  private active: TLSSocket | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private waiting: ((a: Answer) => void) | undefined;
  private t0 = 0n;

  private readonly host: string;
  private readonly port: number;
  private readonly ca: string | Buffer;
  private readonly check: ((body: Buffer) => boolean) | undefined;

  constructor(host: string, port: number, ca: string | Buffer, check: ((body: Buffer) => boolean) | undefined) {
    this.host = host;
    this.port = port;
    this.ca = ca;
    this.check = check;
  }

  private open(): TLSSocket {
    const s = connect({ host: this.host, port: this.port, ca: this.ca, ...(isIP(this.host) ? {} : { servername: this.host }) });
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => {
      if (this.active === s) this.onData(chunk);
    });
    const gone = (why: string) => {
      if (this.socket === s) this.socket = undefined;
      if (this.active === s) this.finish({ ok: false, ms: 0, text: why });
    };
    s.on('error', (e) => gone(e.message));
    s.on('close', () => gone('connection closed before the answer'));
    this.socket = s;
    return s;
  }

  private finish(a: Answer): void {
    const w = this.waiting;
    this.waiting = undefined;
    this.active = undefined;
    this.pending = Buffer.alloc(0);
    w?.(a);
  }

  private onData(chunk: Buffer): void {
    if (!this.waiting) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let r: ReturnType<typeof frameResponse>;
    try {
      r = frameResponse(this.pending);
    } catch (e) {
      this.socket?.destroy();
      this.finish({ ok: false, ms: 0, text: (e as Error).message });
      return;
    }
    if (!r) return;
    const ms = Number(process.hrtime.bigint() - this.t0) / 1e6;
    if (r.close || r.rest.length > 0) this.socket?.destroy();
    const ok = r.status >= 200 && r.status < 300;
    if (!ok) this.finish({ ok, ms, text: `${r.status} ${r.body.toString('utf8', 0, Math.min(300, r.body.length))}` });
    else if (this.check && !this.check(r.body)) this.finish({ ok: false, ms, text: `${r.status} body refused by the check: ${r.body.toString('utf8', 0, Math.min(300, r.body.length))}` });
    else this.finish({ ok, ms });
  }

  send(request: Buffer): Promise<Answer> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.pending = Buffer.alloc(0);
      const s = this.socket && !this.socket.destroyed ? this.socket : this.open();
      this.active = s;
      this.t0 = process.hrtime.bigint();
      s.write(request);
    });
  }

  close(): void {
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const u = new URL(o.url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error('benchmarks talk to loopback only');
  const port = Number(u.port || 443);
  // The request node:https sends for the same call, built once (or once per body when bodies vary).
  const head = (body: string | undefined) =>
    `${o.method ?? 'GET'} ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\nconnection: keep-alive\r\n${Object.entries(o.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}${body !== undefined ? `content-length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n`;
  const build = (body: string | undefined) => Buffer.from(head(body) + (body ?? ''), 'utf8');
  const fixed = typeof o.body === 'function' ? undefined : build(o.body);
  let counter = 0;
  let answered = 0;
  const connections = Array.from({ length: o.connections }, () => new Connection(u.hostname, port, o.ca, o.check));
  const once = async (c: Connection): Promise<Answer> => {
    const a = await c.send(fixed ?? build((o.body as (i: number) => string)(counter++)));
    if (a.ok || a.ms > 0) answered++;
    return a;
  };
  const phase = async (ms: number, record: boolean) => {
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const end = Date.now() + ms;
    const worker = async (c: Connection) => {
      while (Date.now() < end) {
        const r = await once(c);
        if (!record) continue;
        if (r.ok) latencies.push(r.ms);
        else {
          errors++;
          firstError ??= r.text;
        }
      }
    };
    const t0 = Date.now();
    await Promise.all(connections.map(worker));
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
  for (const c of connections) c.close();
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
