/**
 * NVIDIA GPU report verification throughput on one core, against its floor (one raw ECDSA P-384 verify
 * of the report with node:crypto and a ready KeyObject). Cold: nothing cached (device chain, two RIMs with
 * XML-DSig and their chains, every time). Warm: verified chains and RIMs found by content hash in a
 * GpuVerifierCache; parse, nonce, the report signature, FWID and the measurement comparison run every time.
 * Interleaved rounds in one process, so the cases share machine conditions.
 *
 *   node --import tsx bench/gpu.bench.ts [--seconds-per-round 1] [--rounds 5]
 */
import { verify as cryptoVerify } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseCertificate, pemToDer, publicKeyOf } from '../src/core/x509.js';
import { GpuVerifierCache, type GpuVerifyOptions, parseGpuReport, verifyGpuEvidence } from '../src/evidence/nvidia/index.js';
import { createFakeNvidiaHierarchy, makeFakeGpuReport, makeFakeRims } from '../src/evidence/nvidia/testing.js';
import { fixturesAvailable, readFixture, readFixtureText } from '../test/fixtures.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const secondsPerRound = arg('--seconds-per-round', 1);
const rounds = arg('--rounds', 5);

let report: Uint8Array;
let chain: string;
let opts: GpuVerifyOptions;
let source: string;
if (fixturesAvailable()) {
  const v = 'nvidia/hopper-545.00-nvtrust-initial-sample';
  report = readFixture(`${v}/attestation_report.bin`);
  chain = readFixtureText(`${v}/cert_chain.pem`);
  opts = {
    at: new Date('2024-01-01T00:00:00Z'),
    nonce: Buffer.from(readFixtureText(`${v}/nonce.hex`).trim(), 'hex'),
    rims: { driver: readFixture(`${v}/Driver_RIM_test_no_gpu.swidtag`), vbios: readFixture(`${v}/1010_0200_882_96005E0001_test_no_gpu.swidtag`) },
  };
  source = 'real H100 report 545.00 (fixtures/nvidia/hopper-545.00-nvtrust-initial-sample), 5-certificate chain, driver + VBIOS RIMs';
} else {
  const h = createFakeNvidiaHierarchy();
  const nonce = new Uint8Array(32).fill(1);
  report = makeFakeGpuReport(h, { nonce });
  chain = h.chainPem;
  opts = { at: new Date('2025-01-01T00:00:00Z'), nonce, rims: makeFakeRims(h), trust: h.trust };
  source = 'fake hierarchy (src/evidence/nvidia/testing.ts), 4-certificate chain, driver + VBIOS RIMs';
}

const parsed = parseGpuReport(report);
const key = publicKeyOf(parseCertificate(pemToDer(chain)[0]!));
const cache = new GpuVerifierCache();
const evidence = { report, certificateChain: chain };
if (verifyGpuEvidence(evidence, opts).measres !== 'success') throw new Error('the benchmark input must verify with measres success');

const cases: Record<string, () => void> = {
  floor: () => {
    if (!cryptoVerify('sha384', parsed.signedBytes, { key, dsaEncoding: 'ieee-p1363' }, parsed.signature)) throw new Error('floor verify failed');
  },
  cold: () => {
    verifyGpuEvidence(evidence, opts);
  },
  warm: () => {
    verifyGpuEvidence(evidence, { ...opts, cache });
  },
};

function measure(f: () => void, ms: number): { ops: number; seconds: number } {
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(ms * 1e6));
  let ops = 0;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 4; i++) f();
    ops += 4;
    now = process.hrtime.bigint();
  }
  return { ops, seconds: Number(now - start) / 1e9 };
}

for (const f of Object.values(cases)) measure(f, 200);
const totals: Record<string, { ops: number; seconds: number }> = {};
const perRound: Record<string, number[]> = {};
for (let r = 0; r < rounds; r++) {
  for (const [name, f] of Object.entries(cases)) {
    const m = measure(f, secondsPerRound * 1000);
    const t = (totals[name] ??= { ops: 0, seconds: 0 });
    t.ops += m.ops;
    t.seconds += m.seconds;
    (perRound[name] ??= []).push(m.ops / m.seconds);
  }
}
const rate = (n: string): number => totals[n]!.ops / totals[n]!.seconds;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`GPU report verify, one core, node ${process.version}, ${rounds} interleaved rounds × ${secondsPerRound}s, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`input: ${source}`);
console.log('case   verified/s   median/s   vs floor');
for (const n of ['floor', 'cold', 'warm']) {
  console.log(`${n.padEnd(6)} ${rate(n).toFixed(0).padStart(10)} ${median(perRound[n]!).toFixed(0).padStart(10)}   ${(rate(n) / rate('floor')).toFixed(3)}x`);
}
console.log(`warm/floor = ${(rate('warm') / rate('floor')).toFixed(3)} (target ≥ 0.8); warm/cold = ${(rate('warm') / rate('cold')).toFixed(1)}x`);
