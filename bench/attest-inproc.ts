/**
 * Attestation in one process through fastify's inject() (no TLS, no sockets, no client process): the CPU
 * per attestation of everything above TLS (routing, the edge's JSON parse and schema check, evidence
 * verification, claims, policy, token signing), all threads and the event loop alone, at a fixed
 * concurrency, so a change to the attestation path can be judged by CPU time on a busy machine where the
 * HTTPS benchmark's throughput swings. Not the ratio: that is `npm run bench:attest`.
 *
 * Profile the measured rounds alone with `perf record -k mono -g` (node --perf-basic-prof-only-functions)
 * and `perf script --time` of the window it prints, summarised by bench/profile.ts.
 *
 * `--root DIR` runs another checkout's server code (e.g. a worktree of main), so before and after can be
 * measured in alternating processes; `--tee sgx,snp`, `--n` attestations per round, `--c` in flight.
 *
 *   node --import tsx bench/attest-inproc.ts [--tee sgx,snp] [--n 3000] [--c 4] [--rounds 3] [--root DIR]
 *   node dist/bench/attest-inproc.js …        (compiled, after `npm run build`: the code as `conclave serve` runs it)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    tee: { type: 'string', default: 'sgx,snp' },
    n: { type: 'string', default: '3000' },
    c: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    root: { type: 'string', default: resolve(import.meta.dirname, import.meta.url.endsWith('.js') ? '../..' : '..') },
  },
});
const root = resolve(values.root);
// Compiled (dist/bench/attest-inproc.js, as `npm run build` leaves it), `--root` names a checkout and its
// compiled code under dist/ is run; under tsx its TypeScript sources.
const compiled = import.meta.url.endsWith('.js');
const load = (p: string) => import(pathToFileURL(compiled ? resolve(root, 'dist', p.replace(/\.ts$/, '.js')) : resolve(root, p)).href);
const { startTestServer } = await load('test/helpers/server.ts');
const { loadOrCreateSimulatedTee } = await load('src/evidence/simulated/index.ts');

/** CPU time of the calling thread (the event loop), µs: the scheduler's own account, ns resolution. */
function threadCpuUs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000;
}

const server = await startTestServer({ simulate: true });
const sim = loadOrCreateSimulatedTee(server.dataDir);
const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ kty: 'RSA', kid: 'k', key_ops: ['encrypt'], n: Buffer.alloc(256, 7).toString('base64url'), e: 'AQAB' }] }));
const bodies: Record<string, { url: string; payload: string }> = {
  sgx: { url: '/attest/SgxEnclave?api-version=2020-10-01', payload: JSON.stringify(sim.evidence({ tee: 'sgx', runtimeData: runtime }).body) },
  snp: { url: '/attest/SevSnpVm?api-version=2020-10-01', payload: JSON.stringify(sim.evidence({ tee: 'snp', runtimeData: runtime }).body) },
};
const C = Number(values.c);

async function round(tee: string, n: number): Promise<{ cpu: number; main: number }> {
  const { url, payload } = bodies[tee]!;
  let left = n;
  const t0 = process.cpuUsage();
  const m0 = threadCpuUs();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (left-- > 0) {
        const r = await server.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload, remoteAddress: '127.0.0.1' });
        if (r.statusCode !== 200) throw new Error(`${tee}: ${r.statusCode} ${r.body}`);
      }
    }),
  );
  const u = process.cpuUsage(t0);
  return { cpu: (u.user + u.system) / n, main: (threadCpuUs() - m0) / n };
}

const tees = values.tee.split(',');
for (const tee of tees) await round(tee, 1500); // warm-up: JIT, caches, the signing key
// The measured window on CLOCK_MONOTONIC, for `perf record -k mono` then `perf script --time START,END`.
const windowStart = process.hrtime.bigint();
for (let i = 0; i < Number(values.rounds); i++) {
  for (const tee of tees) {
    const r = await round(tee, Number(values.n));
    console.log(`round ${i + 1} ${tee}: ${r.cpu.toFixed(0)} µs CPU per attestation, event loop ${r.main.toFixed(0)} (c${C}, inject, ${root})`);
  }
}
const sec = (t: bigint) => (Number(t) / 1e9).toFixed(6);
console.log(`measured window (CLOCK_MONOTONIC, s): ${sec(windowStart)},${sec(process.hrtime.bigint())}`);
await server.stop();
