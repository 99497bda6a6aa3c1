/**
 * NVIDIA GPU report verification throughput on one core, against its floor (one raw ECDSA P-384 verify
 * of the report with node:crypto and a ready KeyObject: the same call, message and public key the verifier uses).
 * Cold: nothing cached (device chain, two RIMs with XML-DSig and their chains, every time). Warm: a
 * GpuVerifierCache holds the verified device chain with its leaf KeyObject, the verified RIMs and the
 * reference table of the RIM pair, found by content hash; every call still parses the report, checks
 * the nonce, verifies the report signature (the one P-384 verify), checks the FWID, re-checks the chain
 * and RIM validity windows against `at`, and compares every active golden value.
 * Interleaved rounds in one process, so the cases share machine conditions; the ratio is taken on CPU time.
 *
 *   node scripts/bench.mjs gpu [--seconds-per-round 1] [--rounds 5]
 */
import { verify as cryptoVerify } from 'node:crypto';
import { parseCertificate, pemToDer, publicKeyOf } from '../src/core/x509.js';
import { GpuVerifierCache, type GpuVerifyOptions, parseGpuReport, verifyGpuEvidence } from '../src/evidence/nvidia/index.js';
import { createFakeNvidiaHierarchy, makeFakeGpuReport, makeFakeRims } from '../src/evidence/nvidia/testing.js';
import { fixturesAvailable, readFixture, readFixtureText } from '../test/fixtures.js';
import { microRatio, printMicro, runMicro } from './lib/micro.js';

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

const o = { rounds, msPerRound: secondsPerRound * 1000, batch: 4 };
const results = await runMicro(cases, o);
printMicro(`GPU report verify (${source})`, results, o);
const warmCold = results.find((r) => r.name === 'warm')!.figure('perCpuSecond').median / results.find((r) => r.name === 'cold')!.figure('perCpuSecond').median;
console.log(`\nwarm/floor = ${microRatio(results, 'warm').toFixed(3)} by CPU time (target ≥ 0.8); warm/cold = ${warmCold.toFixed(1)}x`);
