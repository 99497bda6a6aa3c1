/**
 * Scale-out throughput: Secure Key Release and SGX attestation through one replica, then through two
 * replicas of `conclave serve` on one PostgreSQL database, the load split between them (one closed
 * load loop per replica, half the connections each), and the ratio.
 *
 *   node --import tsx bench/scaleout.bench.ts [--connections 8] [--duration 8000] [--warmup 2000] [--rounds 3] [--workloads attest,release]
 *
 * The release workload is measured a third way each round, through replica A with logging disabled
 * (bench/lib/log.ts), for the cost of the transparency log; each run with the log reports its
 * inclusion latency (entry stored → signed tree head), and every line the host's load average.
 *
 * Both replicas run throughout (an idle replica costs nothing); each round measures every workload
 * through replica A alone, then through A and B, so a noisy neighbour on the host hits both
 * configurations alike. The median round is reported.
 *
 * Needs PostgreSQL (CONCLAVE_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres); a
 * throw-away database is created and dropped. The replicas share one data dir and name a TCP balancer
 * (bench-local) as their public URL, so attestation tokens from either replica are release targets
 * at both. The load generator runs in this process, on the same cores as the replicas and PostgreSQL.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadOrCreateSimulatedTee } from '../src/evidence/simulated/index.js';
import { httpsClient } from '../test/helpers/https.js';
import { createTestDatabase, PG_ADMIN_URL } from '../test/helpers/postgres.js';
import { startBalancer } from '../test/integration/scaleout/balancer.js';
import { openDatabase } from '../src/storage/open.js';
import { type InclusionLatency, inclusionLatency, setLogging } from './lib/log.js';
import { type BenchServer, startBenchServer } from './lib/server.js';
import { type LoadResult, runLoad } from './lib/load.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '8' },
    duration: { type: 'string', default: '8000' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    workloads: { type: 'string', default: 'attest,release' },
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

type Measured = LoadResult & { readonly advisoryWaiters: number; readonly cpu: string; readonly load: number; inclusion?: InclusionLatency };

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used, from /proc (Linux); 0 elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  const f = `/proc/${pid}/stat`;
  if (pid === undefined || !existsSync(f)) return 0;
  try {
    const fields = readFileSync(f, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole host (all processes: replicas, PostgreSQL, this generator, neighbours). */
function hostBusySeconds(): number {
  if (!existsSync('/proc/stat')) return 0;
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const t = f.map(Number);
  const idle = (t[3] ?? 0) + (t[4] ?? 0);
  return (t.reduce((x, y) => x + y, 0) - idle) / TICKS_PER_SECOND;
}

/** Cores used during `during` by each replica, by this load generator, and by the whole host. */
async function measureCpu<T>(replicas: BenchServer[], during: () => Promise<T>): Promise<{ result: T; cpu: string }> {
  const t0 = Date.now();
  const before = replicas.map((r) => cpuSeconds(r.child.pid));
  const host0 = hostBusySeconds();
  const me0 = process.cpuUsage();
  const result = await during();
  const wall = (Date.now() - t0) / 1000;
  const me = process.cpuUsage(me0);
  const used = replicas.map((r, i) => (cpuSeconds(r.child.pid) - before[i]!) / wall);
  const cpu = `cores: replicas ${used.map((u) => u.toFixed(2)).join('+')}, load generator ${((me.user + me.system) / 1e6 / wall).toFixed(2)}, host busy ${((hostBusySeconds() - host0) / wall).toFixed(2)} of ${cpus().length}`;
  return { result, cpu };
}

/**
 * Mean number of sessions of the bench database waiting on an advisory lock (before the transparency
 * log: the audit-chain head every write took; now only per-key locks of key changes), sampled every
 * 20 ms while `during` runs.
 */
async function sampleAdvisoryWaits<T>(dbUrl: string, during: Promise<T>): Promise<{ result: T; mean: number }> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  let samples = 0;
  let waiting = 0;
  let done = false;
  const loop = (async () => {
    while (!done) {
      const r = await c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'");
      waiting += r.rows[0].n as number;
      samples++;
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  try {
    return { result: await during, mean: samples ? waiting / samples : 0 };
  } finally {
    done = true;
    await loop;
    await c.end();
  }
}

/** One load loop per replica, `CONNECTIONS` split evenly; throughput is the sum, latency the worst loop's. */
async function drive(replicas: BenchServer[], w: Workload, dbUrl: string): Promise<Measured> {
  const per = Math.max(1, Math.floor(CONNECTIONS / replicas.length));
  const load0 = loadavg()[0]!;
  const { result: { result: results, mean }, cpu } = await measureCpu(replicas, () => sampleAdvisoryWaits(dbUrl, Promise.all(
    replicas.map((r) => runLoad({ url: `${r.url}${w.path}`, method: w.method, headers: w.headers, body: w.body, ca: r.ca, connections: per, durationMs: DURATION_MS, warmupMs: WARMUP_MS })),
  )));
  const firstError = results.find((r) => r.firstError)?.firstError;
  return {
    requests: results.reduce((s, r) => s + r.requests, 0),
    answered: results.reduce((s, r) => s + r.answered, 0),
    errors: results.reduce((s, r) => s + r.errors, 0),
    perSecond: results.reduce((s, r) => s + r.perSecond, 0),
    p50Ms: Math.max(...results.map((r) => r.p50Ms)),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    advisoryWaiters: mean,
    cpu,
    load: (load0 + loadavg()[0]!) / 2,
    serverCpuUs: Number.NaN,
    serverMainCpuUs: Number.NaN,
    clientCpuUs: Number.NaN,
    ...(firstError ? { firstError } : {}),
  };
}

function median(rs: Measured[]): Measured {
  return [...rs].sort((x, y) => x.perSecond - y.perSecond)[Math.floor(rs.length / 2)]!;
}

function line(label: string, r: Measured): string {
  const inc = r.inclusion ? `\n  ${''.padEnd(38)} inclusion latency p50 ${r.inclusion.p50Ms} ms, p99 ${r.inclusion.p99Ms} ms, max ${r.inclusion.maxMs} ms (${r.inclusion.entries} entries)` : '';
  return `  ${label.padEnd(38)} ${r.perSecond.toFixed(1).padStart(8)} req/s  p50 ${r.p50Ms.toFixed(1).padStart(6)} ms  p99 ${r.p99Ms.toFixed(1).padStart(6)} ms  lock waiters ${r.advisoryWaiters.toFixed(1)}  ${r.requests} ok, ${r.errors} errors${r.firstError ? ` (first: ${r.firstError})` : ''}\n  ${''.padEnd(38)} ${r.cpu}, load average ${r.load.toFixed(1)}${inc}`;
}

async function main(): Promise<void> {
  const store = await createTestDatabase();
  const balancer = await startBalancer();
  const dataDir = mkdtempSync(join(tmpdir(), 'conclave-bench-scaleout-'));
  loadOrCreateSimulatedTee(dataDir);
  const args = ['--db', store.url, '--simulate', '--public-url', balancer.url];
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
    const workload = generateKeyPairSync('rsa', { modulusLength: 2048 });
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
    console.log(`scale-out: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), PostgreSQL ${new URL(PG_ADMIN_URL).host}, ${CONNECTIONS} connections in all, ${WARMUP_MS} ms warm-up, ${DURATION_MS} ms measured, ${ROUNDS} rounds`);
    const db = await openDatabase(store.url, { poolSize: 2 });
    const selected = workloads.filter((w) => WORKLOADS.some((n) => w.name.startsWith(n)));
    const runs = new Map<string, { one: Measured[]; two: Measured[]; off: Measured[] }>(selected.map((w) => [w.name, { one: [], two: [], off: [] }]));
    const withLog = async (targets: BenchServer[], w: Workload): Promise<Measured> => {
      const since = Date.now();
      const m = await drive(targets, w, store.url);
      if (w.name.startsWith('release')) {
        await new Promise((res) => setTimeout(res, 500));
        m.inclusion = await inclusionLatency(db, since);
      }
      return m;
    };
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        console.log(`round ${round}:`);
        for (const w of selected) {
          const one = await withLog([a], w);
          console.log(line(`${w.name}, 1 replica`, one));
          runs.get(w.name)!.one.push(one);
          if (w.name.startsWith('release')) {
            await setLogging(db, false);
            try {
              const off = await drive([a], w, store.url);
              console.log(line(`${w.name}, 1 replica, logging disabled`, off));
              runs.get(w.name)!.off.push(off);
            } finally {
              await setLogging(db, true);
            }
          }
          const two = await withLog(replicas, w);
          console.log(line(`${w.name}, 2 replicas`, two));
          runs.get(w.name)!.two.push(two);
        }
      }
    } finally {
      await db.close();
    }
    console.log('median of the rounds (req/s, 1 replica → 2 replicas, ratio):');
    for (const w of selected) {
      const { one, two, off } = runs.get(w.name)!;
      const m1 = median(one);
      const m2 = median(two);
      console.log(`  ${w.name.padEnd(26)} ${m1.perSecond.toFixed(1).padStart(8)} → ${m2.perSecond.toFixed(1).padStart(8)}  ×${(m2.perSecond / m1.perSecond).toFixed(2)}  (p99 ${m1.p99Ms.toFixed(0)} → ${m2.p99Ms.toFixed(0)} ms, advisory-lock waiters ${m1.advisoryWaiters.toFixed(1)} → ${m2.advisoryWaiters.toFixed(1)})`);
      if (off.length > 0) {
        const mo = median(off);
        const ratios = one.map((r, i) => r.perSecond / off[i]!.perSecond).sort((x, y) => x - y);
        console.log(`  ${''.padEnd(26)} 1 replica with the log / logging disabled: medians ${m1.perSecond.toFixed(1)} / ${mo.perSecond.toFixed(1)} = ×${(m1.perSecond / mo.perSecond).toFixed(3)}; median of the rounds' ratios ×${ratios[Math.floor(ratios.length / 2)]!.toFixed(3)} (target ≥ 0.85)`);
        const inc = [...one, ...two].map((r) => r.inclusion).filter((x) => x !== undefined).sort((x, y) => x.p50Ms - y.p50Ms);
        const mid = inc[Math.floor(inc.length / 2)];
        if (mid) console.log(`  ${''.padEnd(26)} inclusion latency (median run): p50 ${mid.p50Ms} ms, p99 ${mid.p99Ms} ms`);
      }
    }
  } finally {
    await Promise.allSettled(replicas.map((r) => r.stop()));
    await balancer.close();
    await store.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
