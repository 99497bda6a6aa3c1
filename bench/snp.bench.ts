/**
 * SEV-SNP verification throughput on one core: the physical floor (one raw ECDSA P-384 verify with
 * node:crypto and a ready KeyObject), cold verification (chain VCEK ← ASK ← ARK verified each time),
 * and warm verification (verified chains cached by content hash in an SnpVerifierCache). The three
 * are measured in interleaved rounds in one process so that they share machine conditions, by CPU time
 * and by the wall clock (bench/lib/micro.ts): the ratio to the floor is taken on CPU time, which a busy
 * machine hardly moves.
 *
 *   node scripts/bench.mjs snp [--seconds-per-round 1] [--rounds 5]
 */
import { verify as cryptoVerify } from 'node:crypto';
import { pemToDer, parseCertificate, publicKeyOf } from '../src/core/x509.js';
import { SnpVerifierCache, parseSnpReport, verifySnpReport } from '../src/evidence/snp/index.js';
import { createFakeSnpHierarchy, makeFakeSnpReport } from '../src/evidence/snp/testing.js';
import { fixturesAvailable, readFixture, readFixtureText } from '../test/fixtures.js';
import { microRatio, printMicro, runMicro } from './lib/micro.js';

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

const o = { rounds, msPerRound: secondsPerRound * 1000, batch: 16 };
const results = await runMicro(cases, o);
printMicro(`SEV-SNP report verify (${source})`, results, o);
const warmCold = results.find((r) => r.name === 'warm')!.figure('perCpuSecond').median / results.find((r) => r.name === 'cold')!.figure('perCpuSecond').median;
console.log(`\nwarm/floor = ${microRatio(results, 'warm').toFixed(3)} by CPU time (target ≥ 0.9); warm/cold = ${warmCold.toFixed(1)}x`);
