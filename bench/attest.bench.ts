/**
 * Attestation throughput over HTTPS on loopback (npm run bench:attest): SGX and SEV-SNP evidence from
 * the simulated TEE (full verification every request; collateral and certificate chains warm), against
 * the floor of the same work's crypto in one thread (quote/report verification plus one RS256 signature).
 *
 *   npm run bench:attest -- [--connections 4,16] [--seconds 5] [--rounds 5] [--tee sgx,snp] [--baseline DIR]
 *
 * `--tee snp` measures one evidence kind only (e.g. for a CPU profile of that path, BENCH_PROFILE=DIR).
 *
 * Interleaved rounds (bench/lib/rounds.ts): each round measures both floors, then every evidence kind at
 * every connection count; figures are medians of the rounds with min and max, ratios are taken round by
 * round against the floor of the same round, and the server's CPU time per attestation is read from /proc.
 * `--baseline DIR` adds a server run from another checkout (e.g. a worktree of main) to the same rounds.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signJws } from '../src/core/jwt.js';
import { VerifierCache, parseQuote, verifyQuote } from '../src/evidence/dcap/index.js';
import { loadOrCreateSimulatedTee } from '../src/evidence/simulated/index.js';
import { SnpVerifierCache, verifyMaaSevSnpEvidence } from '../src/evidence/snp/index.js';
import { arg, measureOps, runLoad } from './lib/load.js';
import { hostLine } from './lib/machine.js';
import { type Case, fmt, interleave, ratio } from './lib/rounds.js';
import { type BenchServer, serverLine, startBenchServer } from './lib/server.js';
import { generateRsaKeyPair } from '../src/core/keygen.js';

const connectionCounts = arg('connections', '4,16').split(',').map(Number);
const seconds = Number(arg('seconds', '5'));
const rounds = Number(arg('rounds', '5'));
const baseline = arg('baseline', '');
const tees = arg('tee', 'sgx,snp').split(',').filter((t): t is 'sgx' | 'snp' => t === 'sgx' || t === 'snp');
const runtime = new TextEncoder().encode(JSON.stringify({ keys: [{ kty: 'RSA', kid: 'k', key_ops: ['encrypt'], n: randomBytes(256).toString('base64url'), e: 'AQAB' }] }));

const server = await startBenchServer(['--simulate']);
const servers: { label: string; server: BenchServer; answered: number }[] = [{ label: '', server, answered: 0 }];
try {
  if (baseline) {
    // The baseline server gets the same simulated vendor roots, so the same evidence verifies at both.
    const dir = mkdtempSync(join(tmpdir(), 'conclave-bench-'));
    cpSync(join(server.dataDir, 'simulated'), join(dir, 'simulated'), { recursive: true });
    servers.push({ label: 'baseline ', server: await startBenchServer(['--simulate'], dir, { root: baseline }), answered: 0 });
  }
  const sim = loadOrCreateSimulatedTee(server.dataDir);
  const sgx = sim.evidence({ tee: 'sgx', runtimeData: runtime });
  const snp = sim.evidence({ tee: 'snp', runtimeData: runtime });

  // The floor: the same verification and one RS256 signature, in this one thread.
  const { privateKey } = generateRsaKeyPair(2048);
  const dcapCache = new VerifierCache();
  const snpCache = new SnpVerifierCache();
  const quote = new Uint8Array(Buffer.from(sgx.body.quote as string, 'base64url'));
  const claims = { 'x-ms-attestation-type': 'sgx', 'x-ms-sgx-mrenclave': '00'.repeat(32), 'x-ms-runtime': JSON.parse(new TextDecoder().decode(runtime)) };
  const snpInner = Buffer.from(snp.body.report as string, 'base64url');
  const floors: Record<'sgx' | 'snp', () => void> = {
    sgx: () => {
      verifyQuote(parseQuote(quote), sim.collateral('sgx'), { at: new Date(), freshness: 'azure', cache: dcapCache, trustAnchors: { intelRoot: sim.intelRoot } });
      signJws({ alg: 'RS256', typ: 'JWT' }, claims, privateKey);
    },
    snp: () => {
      verifyMaaSevSnpEvidence(snpInner, runtime, undefined, { at: new Date(), cache: snpCache, trustAnchors: sim.amdAnchors });
      signJws({ alg: 'RS256', typ: 'JWT' }, claims, privateKey);
    },
  };
  const evidence = { sgx: { path: '/attest/SgxEnclave', body: JSON.stringify(sgx.body) }, snp: { path: '/attest/SevSnpVm', body: JSON.stringify(snp.body) } };
  const cases: Case[] = [];
  for (const tee of tees) {
    cases.push({
      name: `${tee} floor`,
      async run() {
        const m = await measureOps(floors[tee], 1000);
        return { perSecond: m.perSecond, cpuUs: m.cpuUs };
      },
    });
  }
  for (const connections of connectionCounts) {
    for (const tee of tees) for (const target of servers) {
      const { label, server } = target;
      cases.push({
        name: `${label}${tee} c${connections}`,
        async run(round) {
          const r = await runLoad({
            url: `${server.url}${evidence[tee].path}?api-version=2020-10-01`,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: evidence[tee].body,
            ca: server.ca,
            connections,
            durationMs: seconds * 1000,
            warmupMs: round === 1 ? 1500 : 500,
            cpuPid: server.child.pid!,
          });
          target.answered += r.answered;
          if (r.errors) throw new Error(`${r.errors} failed attestations; first: ${r.firstError}`);
          return { perSecond: r.perSecond, p50: r.p50Ms, p99: r.p99Ms, cpuUs: r.serverCpuUs, mainCpuUs: r.serverMainCpuUs, clientCpuUs: r.clientCpuUs };
        },
      });
    }
  }
  console.log(hostLine());
  console.log(serverLine());
  console.log(`attestation over HTTPS: ${rounds} interleaved rounds of ${seconds} s per case; load generator in this process, server (--simulate, SQLite) in its own`);
  const results = await interleave(cases, rounds, (round, name, f, m) =>
    console.log(`  round ${round} ${name.padEnd(18)} ${f.perSecond!.toFixed(0).padStart(6)}/s  cpu ${f.cpuUs!.toFixed(0)} µs/op${f.mainCpuUs !== undefined ? ` (main ${f.mainCpuUs.toFixed(0)})` : ''}${f.p50 !== undefined ? `  p50 ${f.p50.toFixed(2)} ms` : ''}  (load ${m.load1.toFixed(1)})`),
  );
  const floorOf = (tee: string) => results.find((r) => r.name === `${tee} floor`)!;
  console.log('\n| case | attestations/s | vs floor (per round) | p50 ms | p99 ms | server CPU µs/attestation | of which event loop | floor CPU / server CPU | machine |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const tee = r.name.replace('baseline ', '').slice(0, 3);
    if (r.name.endsWith('floor')) {
      console.log(`| ${r.name} (verify + RS256, 1 thread) | ${fmt(r.figure('perSecond'))} | 1 | | | ${fmt(r.figure('cpuUs'))} (this process) | | | ${r.machineLine()} |`);
      continue;
    }
    const floor = floorOf(tee);
    console.log(
      `| ${r.name} | ${fmt(r.figure('perSecond'))} | ${fmt(ratio(r, 'perSecond', floor, 'perSecond'), 2)} | ${fmt(r.figure('p50'), 2)} | ${fmt(r.figure('p99'), 1)} | ${fmt(r.figure('cpuUs'))} | ${fmt(r.figure('mainCpuUs'))} | ${fmt(ratio(floor, 'cpuUs', r, 'cpuUs'), 2)} | ${r.machineLine()} |`,
    );
  }
  for (const t of servers) console.log(`server ${t.label || 'this checkout '}(pid ${t.server.child.pid}) answered ${t.answered} attestations${process.env.BENCH_PROFILE ? ` (CPU profile in ${process.env.BENCH_PROFILE})` : ''}`);
} finally {
  for (const s of servers) await s.server.stop();
}
