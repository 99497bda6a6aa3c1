/**
 * DCAP quote verification throughput on one core: Conclave cold (every collateral signature, chain and
 * CRL verified on each call) and warm (verified collateral and PCK chains cached by content hash in a
 * VerifierCache; QE report signature, quote signature, attestation-key binding and TCB match still run
 * per quote), side by side with @phala/dcap-qvl (pure JS) and @phala/dcap-qvl-web (WASM) given the same
 * quote, collateral and time, in interleaved rounds timed by CPU time (bench/lib/micro.ts).
 * Run: node scripts/bench.mjs quote [--ms=1000] [--rounds=5]
 * Method and figures: bench/quote.md.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { VerifierCache, parseQuoteCollateral, verifyQuote } from '../src/evidence/dcap/index.js';
import { FIXTURES_DIR } from '../test/fixtures.js';
import { ROOT as root } from '../test/helpers/root.js';
import { hostLine } from './lib/machine.js';
import { runMicro } from './lib/micro.js';
import { type CaseResult, fmt, ratio } from './lib/rounds.js';

interface DcapQvl {
  verify(quote: Uint8Array, collateral: unknown, nowSecs: number): { status: string };
}
interface DcapQvlWeb {
  initSync(m: { module: Uint8Array }): unknown;
  js_verify(quote: Uint8Array, collateral: unknown, now: bigint): { status: string };
}

const require = createRequire(resolve(root, 'package.json'));
const msArg = process.argv.find((a) => a.startsWith('--ms='));
const RUN_MS = msArg ? Number(msArg.slice(5)) : 1000;
const roundsArg = process.argv.find((a) => a.startsWith('--rounds='));
const ROUNDS = roundsArg ? Number(roundsArg.slice(9)) : 5;

const qvl = require('@phala/dcap-qvl') as DcapQvl;
const web = (await import(resolve(root, 'node_modules/@phala/dcap-qvl-web/dcap-qvl-web.js'))) as DcapQvlWeb;
web.initSync({ module: readFileSync(resolve(root, 'node_modules/@phala/dcap-qvl-web/dcap-qvl-web_bg.wasm')) });

const CASES = [
  { name: 'SGX v3 (sgx-v3-phala)', folder: 'sgx-v3-phala', file: 'quote.bin', at: '2025-06-20T00:00:00Z' },
  { name: 'TDX v4 (tdx-v4-phala)', folder: 'tdx-v4-phala', file: 'quote.bin', at: '2025-06-20T00:00:00Z' },
];

const rows: string[][] = [];
const machine: string[] = [];
for (const c of CASES) {
  const quote = new Uint8Array(readFileSync(resolve(FIXTURES_DIR, 'intel', c.folder, c.file)));
  const collateralJson = JSON.parse(readFileSync(resolve(FIXTURES_DIR, 'intel', c.folder, 'collateral.orig.json'), 'utf8')) as Record<string, unknown>;
  const at = new Date(c.at);
  const nowSecs = at.getTime() / 1000;

  // Same verdict from all four before timing anything.
  const collateral = parseQuoteCollateral(collateralJson);
  const cache = new VerifierCache();
  const statuses = [
    verifyQuote(quote, collateral, { at }).status,
    verifyQuote(quote, collateral, { at, cache }).status,
    qvl.verify(quote, collateralJson, nowSecs).status,
    web.js_verify(quote, collateralJson, BigInt(nowSecs)).status,
  ];
  if (new Set(statuses).size !== 1) throw new Error(`${c.name}: verdicts differ: ${statuses.join(', ')}`);

  const o = { rounds: ROUNDS, msPerRound: RUN_MS, batch: 8 };
  // The peers first: each ratio is Conclave's rate over a peer's in the same round, by CPU time.
  const results = await runMicro(
    {
      'dcap-qvl (JS)': () => qvl.verify(quote, collateralJson, nowSecs),
      'dcap-qvl-web (WASM)': () => web.js_verify(quote, collateralJson, BigInt(nowSecs)),
      cold: () => verifyQuote(quote, parseQuoteCollateral(collateralJson), { at }),
      warm: () => verifyQuote(quote, collateral, { at, cache }),
    },
    o,
  );
  const [js, wasm, cold, warm] = results as [CaseResult, CaseResult, CaseResult, CaseResult];
  const rate = (r: CaseResult): string => r.figure('perCpuSecond').median.toFixed(0);
  const x = (a: CaseResult, b: CaseResult): string => `${ratio(a, 'perCpuSecond', b, 'perCpuSecond').median.toFixed(1)}x`;
  rows.push([c.name, statuses[0]!, rate(cold), rate(warm), rate(js), rate(wasm), x(cold, js), x(cold, wasm), x(warm, js), x(warm, wasm)]);
  machine.push(`${c.name}: ${cold.machineLine()}; cold/JS per round ${fmt(ratio(cold, 'perCpuSecond', js, 'perCpuSecond'), 1)}, warm/JS ${fmt(ratio(warm, 'perCpuSecond', js, 'perCpuSecond'), 1)}`);
}

const header = ['quote', 'status', 'cold /CPU-s', 'warm /CPU-s', 'dcap-qvl (JS) /CPU-s', 'dcap-qvl-web (WASM) /CPU-s', 'cold/JS', 'cold/WASM', 'warm/JS', 'warm/WASM'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
const line = (cells: string[]): string => `| ${cells.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
console.log(hostLine());
console.log(`one thread, ${ROUNDS} interleaved rounds × ${RUN_MS} ms per case; rates per CPU-second, ratios the median of the per-round ratios (bench/lib/micro.ts)`);
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
for (const m of machine) console.log(m);
