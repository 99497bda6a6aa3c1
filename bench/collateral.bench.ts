/**
 * Cached-collateral throughput (npm run bench:collateral): PCS/PCCS GETs over HTTPS on loopback, 16 keep-alive
 * connections cycling through tcb, qe/identity, pckcrl and pckcert, against Conclave (its cache seeded from the
 * fixture stand-in, then the upstream stopped: every measured request is a warm hit) and against a bare
 * node:https server answering each of those URLs with the very status, headers and body Conclave answered.
 *
 *   npm run bench:collateral -- [--seconds 5] [--rounds 5] [--connections 16] [--baseline DIR] [--url URL --ca FILE]
 *
 * Every server and the load generator run in processes of their own (this process only orchestrates), so
 * none shares an event loop with another. Interleaved rounds (bench/lib/rounds.ts): each round measures
 * bare, Conclave (and `--baseline DIR`, the same server from another checkout, e.g. a worktree of main),
 * one after the other; figures are medians of the rounds with min and max, the ratio to bare is taken round
 * by round, and the load average is printed beside every figure. The server's CPU time per request (all its
 * threads, from /proc) is the figure to compare on a busy machine: it hardly depends on what else runs.
 * `BENCH_PROFILE=DIR` runs the servers under --cpu-prof, `BENCH_PERF=DIR` under Linux perf (CPU time, not
 * wall time: truthful on a busy machine); bench/profile.ts summarises either, per request with `--per N`
 * (N: what the last lines say each server answered).
 *
 * Internal: `--serve conclave|bare` is this file run as one of the server processes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { arg } from './lib/load.js';
import { hostLine, processCpuSeconds } from './lib/machine.js';
import { type Case, fmt, interleave, ratio } from './lib/rounds.js';

const PATHS = [
  '/sgx/certification/v4/tcb?fmspc=00A067110000',
  '/sgx/certification/v4/qe/identity',
  '/sgx/certification/v4/pckcrl?ca=processor&encoding=der',
  '/sgx/certification/v4/pckcert?qeid=00112233445566778899AABBCCDDEEFF&cpusvn=0B0B0202FF0100000000000000000000&pcesvn=0D00&pceid=0000',
];

/** What a server process reports on its stdout once it listens. */
interface Listening {
  readonly url: string;
  readonly caPath: string;
}

interface Captured {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string; // base64
}

// ── server processes ─────────────────────────────────────────────────────────────────────────────────

/** Conclave (from checkout `root`), collateral service only, its cache filled through the stand-in, which then stops. */
async function serveConclave(root: string): Promise<Listening> {
  // The checkout's compiled helpers when this benchmark runs compiled (scripts/bench.mjs), its sources under tsx otherwise.
  const helper = (name: string) => join(root, ...(import.meta.url.endsWith('.ts') ? ['test', 'helpers', `${name}.ts`] : ['dist', 'test', 'helpers', `${name}.js`]));
  const { startPcsStandin } = await import(helper('pcs-standin'));
  const { startTestServer } = await import(helper('server'));
  const up = await startPcsStandin('sgx-phala');
  // The fixture collateral's signed nextUpdate is in 2025: the clock is set where it is fresh.
  const server = await startTestServer({ services: 'collateral', upstreamIntel: up.url, logLevel: 'silent' }, { now: () => new Date('2025-06-20T00:00:00Z') });
  for (const p of PATHS) if ((await server.send('GET', p)).status !== 200) throw new Error(`seeding ${p} failed`);
  await up.close();
  return { url: server.url, caPath: server.caPath };
}

/** A bare node:https server (a TLS identity made as Conclave makes its own) replaying what Conclave answered. */
async function serveBare(capturedFile: string): Promise<Listening> {
  const { loadOrCreateTls } = await import('../src/server/tls.js');
  const tls = await loadOrCreateTls(mkdtempSync(join(tmpdir(), 'conclave-bench-')), '127.0.0.1');
  const answers = new Map<string, { status: number; headers: Record<string, string>; body: Buffer }>();
  for (const [url, c] of Object.entries(JSON.parse(readFileSync(capturedFile, 'utf8')) as Record<string, Captured>)) answers.set(url, { ...c, body: Buffer.from(c.body, 'base64') });
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const a = answers.get(req.url ?? '');
    if (!a) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(a.status, a.headers);
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { url: `https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, caPath: tls.caPath };
}

type ServerProcess = Listening & { child: ChildProcess; pid: number; label: string; perf?: ChildProcess; answered: number };

function startServerProcess(args: string[], label: string): Promise<ServerProcess> {
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  if (process.env.BENCH_PERF) profile.push('--perf-basic-prof-only-functions');
  const child = spawn(process.execPath, [...profile, ...process.execArgv, process.argv[1]!, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveP, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((s) => s.startsWith('{'));
      if (!line || !out.includes('\n')) return;
      // BENCH_PERF=DIR: Linux perf samples the server's CPU time (every thread) into DIR/perf-PID.data, as
      // bench/lib/server.ts does (bench/stage-profile.sh, bench/profile.ts --per N read them).
      const perf = process.env.BENCH_PERF
        ? spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '499', '-g', '-p', String(child.pid), '-o', join(process.env.BENCH_PERF, `perf-${child.pid}.data`)], { stdio: 'inherit' })
        : undefined;
      resolveP({ ...(JSON.parse(line) as Listening), child, pid: child.pid!, label, answered: 0, ...(perf ? { perf } : {}) });
    });
    child.on('exit', (code) => reject(new Error(`${label} server exited with ${code}: ${out}`)));
  });
}

async function stopProcess(child: ChildProcess, perf?: ChildProcess): Promise<void> {
  if (perf && perf.exitCode === null) {
    const done = new Promise((r) => perf.once('exit', r));
    perf.kill('SIGINT');
    await done;
  }
  if (child.exitCode !== null) return;
  await new Promise<void>((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
  });
}

// ── load generator (plain JS in a child process: `node -e`) ─────────────────────────────────────────────

/**
 * N keep-alive connections, each sending the next request (the next URL of the list, round robin) when the
 * previous one is answered. Prints `W` when the warm-up ends, then the result as JSON.
 */
const LOADGEN = `
const https = require('node:https');
const [urls, ca, secs, conns] = [JSON.parse(process.argv[1]), process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const agent = new https.Agent({ keepAlive: true, maxSockets: conns, ca: require('node:fs').readFileSync(ca) });
const lat = []; let ok = 0, bad = 0, all = 0, next = 0, measuring = false, firstError; let t0, c0;
const warmEnd = Date.now() + 1000; const end = warmEnd + secs * 1000;
setTimeout(() => { measuring = true; t0 = process.hrtime.bigint(); c0 = process.cpuUsage(); process.stdout.write('W\\n'); }, warmEnd - Date.now());
function one(done) {
  const t = process.hrtime.bigint(); const url = urls[next++ % urls.length];
  https.get(url, { agent, headers: { metadata: 'true' } }, (res) => { res.on('data', () => {}); res.on('end', () => { all++;
    if (measuring) { if (res.statusCode === 200) { ok++; lat.push(Number(process.hrtime.bigint() - t) / 1e6); } else { bad++; firstError ??= url + ' ' + res.statusCode; } }
    Date.now() < end ? one(done) : done(); }); }).on('error', (e) => { bad++; firstError ??= e.message; Date.now() < end ? one(done) : done(); });
}
let left = conns;
for (let i = 0; i < conns; i++) one(() => { if (--left === 0) {
  const secsMeasured = Number(process.hrtime.bigint() - t0) / 1e9; const cpu = process.cpuUsage(c0);
  lat.sort((a, b) => a - b); const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN;
  process.stdout.write(JSON.stringify({ perSecond: ok / secsMeasured, p50Ms: q(0.5), p99Ms: q(0.99), ok, bad, all, firstError, clientCpuUs: (cpu.user + cpu.system) / ok }) + '\\n');
  agent.destroy(); } });
`;

interface LoadResult {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ok: number;
  readonly bad: number;
  /** Requests answered in all, the warm-up's included (to relate a CPU profile of the server to requests). */
  readonly all: number;
  readonly firstError?: string;
  readonly clientCpuUs: number;
  /** CPU µs (all threads) the server process spent per answered request during the measured phase. */
  readonly serverCpuUs: number;
}

function load(urls: string[], ca: string, seconds: number, connections: number, serverPid: number | undefined): Promise<LoadResult> {
  const child = spawn(process.execPath, ['-e', LOADGEN, JSON.stringify(urls), ca, String(seconds), String(connections)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveP, reject) => {
    let out = '';
    let cpu0 = Number.NaN;
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (Number.isNaN(cpu0) && out.startsWith('W\n') && serverPid !== undefined) cpu0 = processCpuSeconds(serverPid);
    });
    child.on('exit', (code) => {
      const cpu1 = serverPid !== undefined ? processCpuSeconds(serverPid) : Number.NaN;
      const line = out.split('\n').find((s) => s.startsWith('{'));
      if (code !== 0 || !line) return reject(new Error(`load generator exited with ${code}: ${out}`));
      const r = JSON.parse(line) as Omit<LoadResult, 'serverCpuUs'>;
      resolveP({ ...r, serverCpuUs: ((cpu1 - cpu0) * 1e6) / r.ok });
    });
  });
}

// ── orchestration ────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '5'));
  const rounds = Number(arg('rounds', '5'));
  const connections = Number(arg('connections', '16'));
  const baseline = arg('baseline', '');
  const external = arg('url', '');
  console.log(hostLine());
  console.log(`${connections} connections, ${seconds} s per case after 1 s warm-up, ${rounds} interleaved rounds; routes (round robin): ${PATHS.map((p) => p.split('?')[0]!.split('/').slice(4).join('/')).join(', ')}`);

  const targets: Array<Listening & Partial<ServerProcess> & { label: string }> = [];
  try {
    if (external) targets.push({ url: external.replace(/\/$/, ''), caPath: arg('ca', ''), label: 'service' });
    else targets.push(await startServerProcess(['--serve', 'conclave', '--root', '.'], 'conclave'));
    if (baseline) targets.push(await startServerProcess(['--serve', 'conclave', '--root', resolve(baseline)], 'baseline'));

    // The bare server answers exactly what the first target answered (status, headers, body), per URL.
    const { request } = await import('node:https');
    const ca = readFileSync(targets[0]!.caPath);
    const captured: Record<string, Captured> = {};
    for (const p of PATHS) {
      captured[p] = await new Promise<Captured>((res, rej) => {
        request(`${targets[0]!.url}${p}`, { ca, headers: { metadata: 'true' } }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(r.headers)) if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(k) && typeof v === 'string') headers[k] = v;
            if (r.statusCode !== 200) rej(new Error(`${p}: ${r.statusCode}`));
            res({ status: r.statusCode!, headers, body: Buffer.concat(chunks).toString('base64') });
          });
        })
          .on('error', rej)
          .end();
      });
    }
    const capturedFile = join(mkdtempSync(join(tmpdir(), 'conclave-bench-')), 'captured.json');
    writeFileSync(capturedFile, JSON.stringify(captured));
    targets.unshift(await startServerProcess(['--serve', 'bare', '--captured', capturedFile], 'bare node:https'));
    console.log(`bare server answers the same bytes: ${PATHS.map((p) => `${Buffer.from(captured[p]!.body, 'base64').length} B body + ${Object.entries(captured[p]!.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0)} B headers`).join(', ')}`);

    const cases: Case[] = targets.map((t) => ({
      name: t.label,
      async run() {
        const r = await load(
          PATHS.map((p) => `${t.url}${p}`),
          t.caPath,
          seconds,
          connections,
          t.pid,
        );
        t.answered = (t.answered ?? 0) + r.all;
        if (r.bad) throw new Error(`${t.label}: ${r.bad} failed requests (${r.firstError})`);
        return { perSecond: r.perSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms, serverCpuUs: r.serverCpuUs, clientCpuUs: r.clientCpuUs };
      },
    }));
    const results = await interleave(cases, rounds, (round, name, f, m) =>
      console.log(`  round ${round} ${name.padEnd(16)} ${Math.round(f.perSecond!)} req/s, p50 ${f.p50Ms!.toFixed(2)} ms, p99 ${f.p99Ms!.toFixed(2)} ms, server ${f.serverCpuUs!.toFixed(0)} µs CPU/req (load ${m.load1.toFixed(1)})`),
    );
    console.log(`\nmedian (min–max) of ${rounds} rounds:`);
    console.table(
      results.map((r) => ({
        target: r.name,
        'req/s': fmt(r.figure('perSecond')),
        'p50 ms': fmt(r.figure('p50Ms'), 2),
        'p99 ms': fmt(r.figure('p99Ms'), 2),
        'server CPU µs/req': fmt(r.figure('serverCpuUs')),
        'client CPU µs/req': fmt(r.figure('clientCpuUs')),
        machine: r.machineLine(),
      })),
    );
    const bare = results[0]!;
    for (const r of results.slice(1)) {
      const t = ratio(r, 'perSecond', bare, 'perSecond');
      const c = ratio(r, 'serverCpuUs', bare, 'serverCpuUs');
      console.log(`${r.name}: ${fmt({ median: t.median * 100, min: t.min * 100, max: t.max * 100 })} % of bare node:https throughput; server CPU per request ${fmt(c, 2)}x bare's (${r.machineLine()})`);
    }
  } finally {
    for (const t of targets) if (t.child) await stopProcess(t.child, t.perf);
    for (const t of targets) if (t.pid !== undefined) console.log(`server ${t.label} (pid ${t.pid}) answered ${t.answered} requests`);
  }
}

if (arg('serve', '')) {
  const mode = arg('serve', '');
  const l = mode === 'bare' ? await serveBare(arg('captured', '')) : await serveConclave(resolve(arg('root', '.')));
  process.stdout.write(`${JSON.stringify(l)}\n`);
  process.on('SIGTERM', () => process.exit(0));
} else {
  await main();
}
