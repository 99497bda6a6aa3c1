/**
 * SEV-SNP verification throughput on one core: the physical floor (one raw ECDSA P-384 verify with
 * node:crypto and a ready KeyObject), cold verification (chain VCEK ← ASK ← ARK verified each time),
 * and warm verification (verified chains cached by content hash in an SnpVerifierCache). The three
 * are measured in interleaved rounds in one process so that they share machine conditions.
 *
 *   node --import tsx bench/snp.bench.ts [--seconds-per-round 1] [--rounds 5]
 */
import { verify as cryptoVerify } from 'node:crypto';
import { pemToDer, parseCertificate, publicKeyOf } from '../src/core/x509.js';
import { SnpVerifierCache, parseSnpReport, verifySnpReport } from '../src/evidence/snp/index.js';
import { createFakeSnpHierarchy, makeFakeSnpReport } from '../src/evidence/snp/testing.js';
import { fixturesAvailable, readFixture, readFixtureText } from '../test/fixtures.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const secondsPerRound = arg('--seconds-per-round', 1);
const rounds = arg('--rounds', 5);

let report: Uint8Array;
let certs: { vcek: Uint8Array; chain: Uint8Array[] };
let opts: { at: Date; trustAnchors?: ReturnType<typeof createFakeSnpHierarchy>['trustAnchors'] };
let source: string;
if (fixturesAvailable()) {
  report = readFixture('amd/snp-milan-virtee/report.bin');
  certs = { vcek: readFixture('amd/snp-milan-virtee/vcek.der'), chain: pemToDer(readFixtureText('amd/snp-milan-virtee/cert_chain.pem')) };
  opts = { at: new Date('2025-06-01T00:00:00Z') };
  source = 'real Milan report (fixtures/amd/snp-milan-virtee) with its KDS cert_chain (RSA-4096 ARK/ASK)';
} else {
  const h = createFakeSnpHierarchy({ rsaBits: 4096 });
  report = makeFakeSnpReport(h);
  certs = { vcek: h.vek.der, chain: h.chain };
  opts = { at: new Date('2025-06-01T00:00:00Z'), trustAnchors: h.trustAnchors };
  source = 'fake Milan hierarchy (testing.ts, RSA-4096 ARK/ASK)';
}

// Floor inputs prepared outside the timed loop: key object, signed bytes, r||s.
const parsed = parseSnpReport(report);
const key = publicKeyOf(parseCertificate(certs.vcek));
const signed = parsed.signedBytes;
const sig = Buffer.concat([parsed.signature.r, parsed.signature.s]);
const cache = new SnpVerifierCache();

const cases: Record<string, () => void> = {
  floor: () => {
    if (!cryptoVerify('sha384', signed, { key, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('floor verify failed');
  },
  cold: () => {
    verifySnpReport(report, certs, opts);
  },
  warm: () => {
    verifySnpReport(report, certs, { ...opts, cache });
  },
};

function measure(f: () => void, ms: number): { ops: number; seconds: number } {
  const end = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  const start = process.hrtime.bigint();
  let ops = 0;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 16; i++) f();
    ops += 16;
    now = process.hrtime.bigint();
  }
  return { ops, seconds: Number(now - start) / 1e9 };
}

for (const f of Object.values(cases)) measure(f, 200); // warm-up (JIT, OpenSSL)
const totals: Record<string, { ops: number; seconds: number }> = { floor: { ops: 0, seconds: 0 }, cold: { ops: 0, seconds: 0 }, warm: { ops: 0, seconds: 0 } };
const perRound: Record<string, number[]> = { floor: [], cold: [], warm: [] };
for (let r = 0; r < rounds; r++) {
  for (const [name, f] of Object.entries(cases)) {
    const m = measure(f, secondsPerRound * 1000);
    totals[name]!.ops += m.ops;
    totals[name]!.seconds += m.seconds;
    perRound[name]!.push(m.ops / m.seconds);
  }
}
const rate = (n: string): number => totals[n]!.ops / totals[n]!.seconds;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`SEV-SNP verify, one core, node ${process.version}, ${rounds} interleaved rounds × ${secondsPerRound}s`);
console.log(`input: ${source}`);
console.log('case   verified/s   median/s   vs floor');
for (const n of ['floor', 'cold', 'warm']) {
  console.log(`${n.padEnd(6)} ${rate(n).toFixed(0).padStart(10)} ${median(perRound[n]!).toFixed(0).padStart(10)}   ${(rate(n) / rate('floor')).toFixed(3)}x`);
}
console.log(`warm/floor = ${(rate('warm') / rate('floor')).toFixed(3)} (target ≥ 0.8); warm/cold = ${(rate('warm') / rate('cold')).toFixed(1)}x`);
