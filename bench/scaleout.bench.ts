/**
 * Scale-out throughput (bench/scaleout.md): Secure Key Release, and SGX attestation, through one replica
 * of `conclave serve` and through two replicas on one PostgreSQL database, the load split between them
 * (one closed load loop per replica, half the connections each); release also through one replica with
 * its transparency-log entries switched off (bench/lib/log.ts), for what the log costs.
 *
 *   node scripts/bench.mjs scaleout [--connections 16] [--duration 8000] [--warmup 2000] [--rounds 5] [--workloads release,attest] [--log-batch-ms N]
 *
 * Each run reports throughput, latency, the cores each replica used and each replica's CPU per request
 * it answered (from /proc, all threads; a replica given no load shows its idle cost in cores), the CPU of the database's PostgreSQL backends per request, how busy the host was
 * and its load average, the mean number of sessions waiting on a heavyweight lock, and for release
 * with the log the inclusion latency (entry stored → the signed tree head that includes it) and the
 * batches the sequencer cut. From the median round it prints the model of how release throughput grows
 * with cores (bench/scaleout.md).
 *
 * Both replicas run throughout (an idle replica costs nothing). Every round measures every
 * configuration, in the reverse order of the round before (ABBA), so a neighbour's load and a drift of
 * the host hit each alike; every figure is reported as the median of the rounds with their min and max,
 * and every ratio as the median (min–max) of the rounds' ratios. A warm-up pass (not measured) first gets both
 * replicas' JIT and pools going.
 *
 * Needs PostgreSQL (CONCLAVE_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres); a
 * throw-away database is created and dropped. The replicas share one data dir and name a TCP balancer
 * (bench-local) as their public URL, so attestation tokens from either replica are release targets
 * at both. The load generator is this process, on the same cores as the replicas and PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadOrCreateSimulatedTee } from '../src/evidence/simulated/index.js';
import { openDatabase } from '../src/storage/open.js';
import { httpsClient } from '../test/helpers/https.js';
import { createTestDatabase, PG_ADMIN_URL } from '../test/helpers/postgres.js';
import { startBalancer } from '../test/integration/scaleout/balancer.js';
import { runLoad } from './lib/load.js';
import { type InclusionLatency, inclusionLatency, setLogging } from './lib/log.js';
import { hostLine, machineInterval, processCpuSeconds } from './lib/machine.js';
import { type BenchServer, serverLine, startBenchServer } from './lib/server.js';
import { generateRsaKeyPair } from '../src/core/keygen.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '16' },
    duration: { type: 'string', default: '8000' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    workloads: { type: 'string', default: 'release,attest' },
    /** The replicas' --log-batch-ms (their default, 25, when not given). */
    'log-batch-ms': { type: 'string' },
  },
});
const WORKLOADS = values.workloads!.split(',');
const CONNECTIONS = Number(values.connections);
const DURATION_MS = Number(values.duration);
const WARMUP_MS = Number(values.warmup);
const ROUNDS = Number(values.rounds);
const MRENCLAVE = 'd3'.repeat(32);

interface Workload {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

async function call(s: BenchServer, method: string, path: string, body: object | string, token?: string): Promise<any> {
  const send = httpsClient(s.url, join(s.dataDir, 'tls', 'ca.pem'));
  const r = await send(method, path, { headers: token ? { authorization: `Bearer ${token}` } : {}, body });
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.text ? r.json() : undefined;
}

async function adminToken(s: BenchServer): Promise<string> {
  const grant = new URLSearchParams({ grant_type: 'client_credentials', client_id: s.admin.clientId, client_secret: s.admin.clientSecret }).toString();
  const send = httpsClient(s.url, join(s.dataDir, 'tls', 'ca.pem'));
  const r = await send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: grant });
  return r.json().access_token as string;
}

interface Measured {
  readonly perSecond: number;
  readonly requests: number;
  readonly errors: number;
  readonly firstError?: string;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Cores each replica used (CPU seconds per wall second, all its threads). */
  readonly replicaCores: readonly number[];
  /** CPU µs of all the replicas together per answered request. */
  readonly replicaCpuUs: number;
  /** Each replica's CPU µs per request it answered itself (undefined for a replica given no load). */
  readonly replicaCpuUsEach: readonly (number | undefined)[];
  /** CPU µs of the bench database's PostgreSQL backends per answered request. */
  readonly pgCpuUs: number;
  /** CPU µs of this load generator per answered request. */
  readonly clientCpuUs: number;
  /** Share of the host's CPU time busy (every process), in cores. */
  readonly hostBusyCores: number;
  readonly load: number;
  /** Mean sessions of the bench database waiting on a heavyweight lock (row, advisory, …). */
  readonly lockWaiters: number;
  inclusion?: InclusionLatency & { readonly heads: number };
}

/** The process ids of the bench database's PostgreSQL backends (readable in /proc by anyone). */
async function backendPids(c: pg.Client): Promise<number[]> {
  const r = await c.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
  return r.rows.map((x: { pid: number }) => x.pid);
}

/** How often the bench samples the database's lock waiters: rarely enough that its own queries hardly load the host. */
const LOCK_SAMPLE_MS = 100;

/**
 * Runs `during` while sampling, every {@link LOCK_SAMPLE_MS}, how many sessions of the bench database wait on a lock;
 * and measures the CPU the replicas, the database's backends and this process spent meanwhile.
 */
async function observe<T>(monitor: pg.Client, replicas: readonly BenchServer[], during: () => Promise<T>): Promise<{ result: T; wallS: number; replicaS: number[]; pgS: number; clientS: number; busyCores: number; load: number; lockWaiters: number }> {
  const load0 = loadavg()[0]!;
  const pids0 = await backendPids(monitor);
  const pg0 = new Map(pids0.map((p) => [p, processCpuSeconds(p)]));
  const r0 = replicas.map((r) => processCpuSeconds(r.child.pid!));
  const me0 = process.cpuUsage();
  const machine = machineInterval();
  const t0 = Date.now();
  let samples = 0;
  let waiting = 0;
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const q = await monitor.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
      waiting += q.rows[0].n as number;
      samples++;
      await new Promise((res) => setTimeout(res, LOCK_SAMPLE_MS));
    }
  })();
  let result: T;
  try {
    result = await during();
  } finally {
    done = true;
    await sampler;
  }
  const wallS = (Date.now() - t0) / 1000;
  const m = machine.end();
  const me = process.cpuUsage(me0);
  // Backends that lived through the whole run (pools keep theirs open; one opened meanwhile is missed).
  let pgS = 0;
  for (const p of await backendPids(monitor)) {
    const before = pg0.get(p);
    const now = processCpuSeconds(p);
    if (before !== undefined && Number.isFinite(before) && Number.isFinite(now)) pgS += now - before;
  }
  return {
    result,
    wallS,
    replicaS: replicas.map((r, i) => processCpuSeconds(r.child.pid!) - r0[i]!),
    pgS,
    clientS: (me.user + me.system) / 1e6,
    busyCores: (m.busyPct / 100) * cpus().length,
    load: (load0 + m.load1) / 2,
    lockWaiters: samples ? waiting / samples : 0,
  };
}

/** One load loop per replica, `CONNECTIONS` split evenly; throughput is the sum, latency the worst loop's. */
async function drive(monitor: pg.Client, targets: readonly BenchServer[], all: readonly BenchServer[], w: Workload, warmupMs = WARMUP_MS, durationMs = DURATION_MS): Promise<Measured> {
  const per = Math.max(1, Math.floor(CONNECTIONS / targets.length));
  const o = await observe(monitor, all, () =>
    Promise.all(targets.map((r) => runLoad({ url: `${r.url}${w.path}`, method: w.method, headers: w.headers, body: w.body, ca: r.ca, connections: per, durationMs, warmupMs }))),
  );
  const results = o.result;
  const requests = results.reduce((s, r) => s + r.requests, 0);
  // CPU was measured over warm-up and measured phase alike: per request, divide by the requests of both.
  const perSecond = results.reduce((s, r) => s + r.perSecond, 0);
  const answered = results.reduce((s, r) => s + r.answered, 0);
  const firstError = results.find((r) => r.firstError)?.firstError;
  return {
    perSecond,
    requests,
    errors: results.reduce((s, r) => s + r.errors, 0),
    ...(firstError ? { firstError } : {}),
    p50Ms: Math.max(...results.map((r) => r.p50Ms)),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    replicaCores: o.replicaS.map((s) => s / o.wallS),
    replicaCpuUs: (o.replicaS.reduce((a, b) => a + b, 0) * 1e6) / answered,
    replicaCpuUsEach: all.map((r, i) => {
      const t = targets.indexOf(r);
      return t < 0 || results[t]!.answered === 0 ? undefined : (o.replicaS[i]! * 1e6) / results[t]!.answered;
    }),
    pgCpuUs: (o.pgS * 1e6) / answered,
    clientCpuUs: (o.clientS * 1e6) / answered,
    hostBusyCores: o.busyCores,
    load: o.load,
    lockWaiters: o.lockWaiters,
  };
}

function median<T>(rs: readonly T[], by: (t: T) => number): T {
  return [...rs].sort((x, y) => by(x) - by(y))[Math.floor(rs.length / 2)]!;
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '?');
const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '?');

function line(label: string, r: Measured): string {
  const inc = r.inclusion ? `\n  ${''.padEnd(44)} inclusion p50 ${r.inclusion.p50Ms} ms, p99 ${r.inclusion.p99Ms} ms, max ${r.inclusion.maxMs} ms (${r.inclusion.entries} entries in ${r.inclusion.heads} signed heads)` : '';
  return (
    `  ${label.padEnd(44)} ${f1(r.perSecond).padStart(8)} req/s  p50 ${f1(r.p50Ms).padStart(6)} ms  p99 ${f1(r.p99Ms).padStart(6)} ms  ${r.requests} ok, ${r.errors} errors${r.firstError ? ` (first: ${r.firstError})` : ''}\n` +
    `  ${''.padEnd(44)} replica cores ${r.replicaCores.map((c) => c.toFixed(2)).join('+')}, CPU/request: ${r.replicaCpuUsEach.map((u, i) => `${'AB'[i] ?? i} ${u === undefined ? 'idle' : `${f0(u)} µs`}`).join(', ')}, replicas together ${f0(r.replicaCpuUs)} µs, PostgreSQL backends ${f0(r.pgCpuUs)} µs, load generator ${f0(r.clientCpuUs)} µs; host busy ${r.hostBusyCores.toFixed(2)} of ${cpus().length}, load average ${r.load.toFixed(1)}, lock waiters ${r.lockWaiters.toFixed(2)}${inc}`
  );
}

async function main(): Promise<void> {
  const store = await createTestDatabase();
  const balancer = await startBalancer();
  const dataDir = mkdtempSync(join(tmpdir(), 'conclave-bench-scaleout-'));
  loadOrCreateSimulatedTee(dataDir);
  const args = ['--db', store.url, '--simulate', '--public-url', balancer.url, ...(values['log-batch-ms'] ? ['--log-batch-ms', values['log-batch-ms']] : [])];
  const replicas: BenchServer[] = [];
  try {
    // The first start prepares the shared data dir; the second replica joins it later.
    replicas.push(await startBenchServer(args, dataDir));
    balancer.targets.push(replicas[0]!.url);
    const a = replicas[0]!;
    const token = await adminToken(a);
    await call(a, 'PUT', '/admin/vault/roleAssignments', { principalId: a.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' }, token);
    const policy = { version: '1.0.0', anyOf: [{ authority: balancer.url, allOf: [{ claim: 'x-ms-sgx-mrenclave', equals: MRENCLAVE }] }] };
    await call(a, 'POST', '/keys/bench-skr/create?api-version=7.4', {
      kty: 'RSA-HSM',
      key_size: 2048,
      attributes: { exportable: true },
      release_policy: { contentType: 'application/json; charset=utf-8', data: Buffer.from(JSON.stringify(policy)).toString('base64url') },
    }, token);
    const workload = generateRsaKeyPair(2048);
    const runtimeData = new TextEncoder().encode(JSON.stringify({ keys: [{ ...workload.publicKey.export({ format: 'jwk' }), kid: 'workload', key_ops: ['encrypt'] }] }));
    const ev = loadOrCreateSimulatedTee(dataDir).evidence({ tee: 'sgx', runtimeData, mrenclave: MRENCLAVE });
    const target = (await call(a, 'POST', `${ev.path}?api-version=2022-08-01`, ev.body)).token as string;
    const evidenceBody = JSON.stringify(ev.body);
    const workloads: Workload[] = [
      { name: 'attest (SGX, simulated)', method: 'POST', path: `${ev.path}?api-version=2022-08-01`, headers: { 'content-type': 'application/json' }, body: evidenceBody },
      {
        name: 'release (RSA-2048)',
        method: 'POST',
        path: '/keys/bench-skr/release?api-version=7.4',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ target }),
      },
    ];

    replicas.push(await startBenchServer(args, dataDir));
    balancer.targets.push(replicas[1]!.url);
    console.log(hostLine());
    console.log(serverLine());
    console.log(`scale-out: PostgreSQL ${new URL(PG_ADMIN_URL).host}, log batch ${values['log-batch-ms'] ?? 'default (25)'} ms, ${CONNECTIONS} connections in all, ${WARMUP_MS} ms warm-up, ${DURATION_MS} ms measured, ${ROUNDS} rounds`);
    const db = await openDatabase(store.url, { poolSize: 2 });
    const monitor = new pg.Client({ connectionString: store.url });
    await monitor.connect();
    const selected = workloads.filter((w) => WORKLOADS.some((n) => w.name.startsWith(n)));
    type Config = 'one' | 'off' | 'two';
    const configs = (w: Workload): Config[] => (w.name.startsWith('release') ? ['one', 'off', 'two'] : ['one', 'two']);
    const label: Record<Config, string> = { one: '1 replica', off: '1 replica, logging disabled', two: '2 replicas' };
    const runs = new Map<string, Record<Config, Measured[]>>(selected.map((w) => [w.name, { one: [], off: [], two: [] }]));
    const measure = async (w: Workload, c: Config, warmupMs?: number, durationMs?: number): Promise<Measured> => {
      const targets = c === 'two' ? replicas : [a];
      if (c === 'off') await setLogging(db, false);
      try {
        const since = Date.now();
        const m = await drive(monitor, targets, replicas, w, warmupMs, durationMs);
        if (c !== 'off' && w.name.startsWith('release')) {
          // The last batches of the run: a few batch intervals after the last release.
          await new Promise((res) => setTimeout(res, 500));
          const heads = await db.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM log_heads WHERE timestamp_ms >= ?', [since]);
          m.inclusion = { ...(await inclusionLatency(db, since)), heads: Number(heads?.n ?? 0) };
        }
        return m;
      } finally {
        if (c === 'off') await setLogging(db, true);
      }
    };
    try {
      // Not measured: JIT, pools and caches of both replicas warmed by every workload.
      for (const w of selected) await measure(w, 'two', 500, Math.min(3000, DURATION_MS));
      const order = selected.flatMap((w) => configs(w).map((c) => ({ w, c })));
      for (let round = 1; round <= ROUNDS; round++) {
        console.log(`round ${round}:`);
        for (const { w, c } of round % 2 === 1 ? order : [...order].reverse()) {
          const m = await measure(w, c);
          console.log(line(`${w.name}, ${label[c]}`, m));
          runs.get(w.name)![c].push(m);
        }
      }
    } finally {
      await monitor.end();
      await db.close();
    }
    report(selected, runs);
  } finally {
    await Promise.allSettled(replicas.map((r) => r.stop()));
    await balancer.close();
    await store.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** `median (min–max)` of a figure over the rounds. */
function spread(xs: readonly number[], f: (n: number) => string = f1): string {
  const sorted = [...xs].sort((a, b) => a - b);
  return `${f(median(sorted, (x) => x))} (${f(sorted[0]!)}–${f(sorted.at(-1)!)})`;
}
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '?');

function report(selected: readonly Workload[], runs: Map<string, Record<'one' | 'off' | 'two', Measured[]>>): void {
  console.log(`\nmedians of ${ROUNDS} rounds (min–max):`);
  for (const w of selected) {
    const { one, two, off } = runs.get(w.name)!;
    const m1 = median(one, (r) => r.perSecond);
    const m2 = median(two, (r) => r.perSecond);
    const ratios = one.map((r, i) => two[i]!.perSecond / r.perSecond);
    console.log(`  ${w.name}:`);
    console.log(`    req/s: 1 replica ${spread(one.map((r) => r.perSecond))}, 2 replicas ${spread(two.map((r) => r.perSecond))}${off.length ? `, 1 replica logging disabled ${spread(off.map((r) => r.perSecond))}` : ''}`);
    console.log(`    2 replicas / 1: ×${spread(ratios, f2)} (rounds' ratios; on the medians ×${f2(m2.perSecond / m1.perSecond)}) (target ≥ 1.00); p99 ${f0(m1.p99Ms)} → ${f0(m2.p99Ms)} ms; lock waiters ${m1.lockWaiters.toFixed(2)} → ${m2.lockWaiters.toFixed(2)}`);
    const each = (rs: readonly Measured[], i: number) => rs.map((m) => m.replicaCpuUsEach[i]).filter((x): x is number => x !== undefined);
    const cores = (rs: readonly Measured[], i: number) => rs.map((m) => m.replicaCores[i] ?? Number.NaN);
    console.log(`    per-replica CPU per request it answered (µs): 1 replica: A ${spread(each(one, 0), f0)} (B idle, ${spread(cores(one, 1), f2)} cores); 2 replicas: A ${spread(each(two, 0), f0)}, B ${spread(each(two, 1), f0)}; cores used by A+B with 2 replicas: ${spread(cores(two, 0), f2)} + ${spread(cores(two, 1), f2)}`);
    if (off.length === 0) continue;
    const logRatios = one.map((r, i) => r.perSecond / off[i]!.perSecond);
    console.log(`    1 replica with the log / logging disabled: ×${spread(logRatios, (x) => x.toFixed(3))} (rounds' ratios) (target ≥ 0.85)`);
    const inc = [...one, ...two].map((r) => r.inclusion).filter((x) => x !== undefined);
    console.log(`    inclusion latency over the runs with the log: p50 ${spread(inc.map((i) => i.p50Ms), f0)} ms, p99 ${spread(inc.map((i) => i.p99Ms), f0)} ms`);
    // CPU per release, medians over all rounds (a figure a busy host hardly moves).
    const cpu = (rs: readonly Measured[], f: (m: Measured) => number) => median(rs.map(f), (x) => x);
    const r1 = cpu(one, (m) => m.replicaCpuUs);
    const r0 = cpu(off, (m) => m.replicaCpuUs);
    const r2 = cpu(two, (m) => m.replicaCpuUs);
    const pg1 = cpu(one, (m) => m.pgCpuUs);
    const pg0 = cpu(off, (m) => m.pgCpuUs);
    const pg2 = cpu(two, (m) => m.pgCpuUs);
    const client = cpu([...one, ...two], (m) => m.clientCpuUs);
    console.log(`    CPU per release (µs, median): replicas ${f0(r1)} with the log, ${f0(r0)} without, ${f0(r2)} over two replicas; PostgreSQL backends ${f0(pg1)} / ${f0(pg0)} / ${f0(pg2)}; load generator ${f0(client)}`);
    console.log(`    the log costs ${f0(r1 - r0)} µs of replica CPU and ${f0(pg1 - pg0)} µs of PostgreSQL CPU per release`);
    // The model (bench/scaleout.md): no lock serialises releases, so throughput follows the cores given
    // to replicas (each release costs r2 µs of them) as long as PostgreSQL has pg2 µs per release.
    console.log('    model (replicas on C cores of their own, PostgreSQL and clients elsewhere): releases/s ≈ C × 10^6 / replica CPU per release; PostgreSQL cores needed ≈ releases/s × its CPU per release / 10^6');
    for (const c of [1, 2, 4, 8, 16]) {
      const x = (c * 1e6) / r2;
      console.log(`      C = ${String(c).padStart(2)}: ≈ ${f0(x).padStart(6)} releases/s, PostgreSQL ≈ ${((x * pg2) / 1e6).toFixed(2)} cores`);
    }
    console.log(`    on this host (${cpus().length} cores shared by everything): ≤ ${f0((cpus().length * 1e6) / (r2 + pg2 + client))} releases/s if nothing else ran`);
  }
}

await main();
