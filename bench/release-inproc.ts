/**
 * Key release in one process through fastify's inject() (no TLS, no sockets, no client process): the
 * CPU per release (all threads, and the main thread's share) of everything above TLS (routing, auth,
 * store, policy, wrap, sign, audit, and inject's own request and response objects), at a fixed
 * concurrency, so a change can be judged by CPU time even on a busy machine where the HTTPS benchmark's
 * throughput (and with it its batching) swings. Profile it with `node --cpu-prof` or `perf record -k mono
 * -g` (with --perf-basic-prof-only-functions) and `perf script --time` of the window it prints, summarised
 * by bench/profile.ts. Not the ratio: that is `npm run bench:release`; the releases/s and p50 it
 * prints beside the CPU are the in-process latency of the path (the audit's flush included), for an A/B of
 * a change in the order of its waits, read only against a baseline run alternately on the same machine.
 *
 * `--root DIR` runs another checkout's server code (e.g. a worktree of main), so before and after can be
 * measured in alternating processes; `--n` releases per round, `--c` in flight, `--rounds` after a warm-up;
 * `--log off` the same path with the transparency log's entry writes turned into no-ops (bench/lib/log.ts),
 * to read what the log costs. Each round also prints the bytes and write calls the process issued per
 * release (/proc/self/io wchar, syscw: the WAL, checkpoints into the database file, the server's log).
 *
 *   node --import tsx bench/release-inproc.ts [--n 3000] [--c 16] [--rounds 3] [--root DIR]
 *   node dist/bench/release-inproc.js …        (compiled, after `npm run build`: the code as `conclave serve` runs it)
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { setLogging } from './lib/log.js';
import { processCpuSeconds } from './lib/machine.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '3000' },
    c: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    log: { type: 'string', default: 'on' },
    root: { type: 'string', default: resolve(import.meta.dirname, import.meta.url.endsWith('.js') ? '../..' : '..') },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('node dist/bench/release-inproc.js [--n 3000] [--c 16] [--rounds 3] [--root DIR] [--log on|off]  (or node --import tsx bench/release-inproc.ts …)');
  console.log('CPU per release (all threads / event loop), releases/s and p50 through fastify inject(); --root: another checkout (its dist/ when run compiled)');
  process.exit(0);
}
const root = resolve(values.root);
// Compiled (dist/bench/release-inproc.js), `--root` names a checkout and its compiled code under dist/ is
// run; under tsx its TypeScript sources.
const compiled = import.meta.url.endsWith('.js');
const load = (p: string) => import(pathToFileURL(compiled ? resolve(root, 'dist', p.replace(/\.ts$/, '.js')) : resolve(root, p)).href);
const { startTestServer } = (await load('test/helpers/server.ts')) as typeof import('../test/helpers/server.js');
const { policyFor, startAuthority } = (await load('test/integration/vault/harness.ts')) as typeof import('../test/integration/vault/harness.js');

const server = await startTestServer({ services: 'vault' });
const authority = await startAuthority({ dataDir: server.dataDir });
const admin = await server.adminToken();
const call = async (method: string, path: string, body: object) => {
  const r = await server.send(method, path, { headers: { authorization: `Bearer ${admin}` }, body });
  if (r.status >= 300) throw new Error(`${path} ${r.status} ${r.text}`);
};
await call('PUT', '/admin/vault/authorities', { authorities: [authority.url] });
await call('PUT', '/admin/vault/roleAssignments', { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' });
await call('POST', '/keys/bench/create?api-version=7.4', { kty: 'RSA-HSM', key_size: 2048, attributes: { exportable: true }, release_policy: { data: Buffer.from(policyFor(authority.url)).toString('base64url') } });
if (values.log !== 'on' && values.log !== 'off') throw new Error('--log: on or off');
await setLogging(server.ctx.db, values.log === 'on');
const payload = JSON.stringify({ target: authority.token(), enc: 'RSA_AES_KEY_WRAP_256' });
const N = Number(values.n);
const C = Number(values.c);
/** This process's write calls and the bytes they wrote (all threads), from /proc/self/io. */
function writes(): { bytes: number; calls: number } {
  const io = readFileSync('/proc/self/io', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? Number.NaN);
  return { bytes: field('wchar'), calls: field('syscw') };
}
async function round(n: number): Promise<{ all: number; main: number; perSecond: number; p50: number; bytes: number; calls: number }> {
  let left = n;
  const latencies: number[] = [];
  const w0 = performance.now();
  const t0 = process.cpuUsage();
  const w0io = writes();
  const main0 = processCpuSeconds(process.pid, process.pid);
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (left-- > 0) {
        const s0 = performance.now();
        const r = await server.app.inject({ method: 'POST', url: '/keys/bench/release?api-version=7.4', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, payload });
        if (r.statusCode !== 200) throw new Error(`${r.statusCode} ${r.body}`);
        latencies.push(performance.now() - s0);
      }
    }),
  );
  const u = process.cpuUsage(t0);
  const w1io = writes();
  const wall = performance.now() - w0;
  latencies.sort((a, b) => a - b);
  return { all: (u.user + u.system) / n, main: ((processCpuSeconds(process.pid, process.pid) - main0) * 1e6) / n, perSecond: (n * 1000) / wall, p50: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN, bytes: (w1io.bytes - w0io.bytes) / n, calls: (w1io.calls - w0io.calls) / n };
}
// Warm-up (JIT, the release signing key made on first use, the authority's JWKS fetched once).
await round(500);
// The measured window on CLOCK_MONOTONIC, for `perf record -k mono` then `perf script --time START,END`.
const windowStart = process.hrtime.bigint();
for (let i = 0; i < Number(values.rounds); i++) {
  const r = await round(N);
  console.log(`round ${i + 1}: ${r.all.toFixed(0)} µs CPU per release (c${C}, inject), of which the main thread (event loop) ${r.main.toFixed(0)}; written ${r.bytes.toFixed(0)} B in ${r.calls.toFixed(1)} calls per release; log ${values.log}; ${r.perSecond.toFixed(0)} releases/s, p50 ${r.p50.toFixed(2)} ms (wall clock: swings with the machine's load) (${root})`);
}
const sec = (t: bigint) => (Number(t) / 1e9).toFixed(6);
console.log(`measured window (CLOCK_MONOTONIC, s): ${sec(windowStart)},${sec(process.hrtime.bigint())}`);
await authority.close();
await server.stop();
