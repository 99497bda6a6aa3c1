/**
 * DCAP quote verification throughput on one core: Conclave cold (every collateral signature, chain and
 * CRL verified on each call) and warm (verified collateral and PCK chains cached by content hash in a
 * VerifierCache; QE report signature, quote signature, attestation-key binding and TCB match still run
 * per quote), side by side with @phala/dcap-qvl (pure JS) and @phala/dcap-qvl-web (WASM) given the same
 * quote, collateral and time. Run: node --import tsx bench/quote.bench.ts [--ms=2000]
 * Method and figures: bench/quote.md.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VerifierCache, parseQuoteCollateral, verifyQuote } from '../src/evidence/dcap/index.js';
import { FIXTURES_DIR } from '../test/fixtures.js';

interface DcapQvl {
  verify(quote: Uint8Array, collateral: unknown, nowSecs: number): { status: string };
}
interface DcapQvlWeb {
  initSync(m: { module: Uint8Array }): unknown;
  js_verify(quote: Uint8Array, collateral: unknown, now: bigint): { status: string };
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(resolve(root, 'package.json'));
const msArg = process.argv.find((a) => a.startsWith('--ms='));
const RUN_MS = msArg ? Number(msArg.slice(5)) : 2000;

const qvl = require('@phala/dcap-qvl') as DcapQvl;
const web = (await import(resolve(root, 'node_modules/@phala/dcap-qvl-web/dcap-qvl-web.js'))) as DcapQvlWeb;
web.initSync({ module: readFileSync(resolve(root, 'node_modules/@phala/dcap-qvl-web/dcap-qvl-web_bg.wasm')) });

function measure(fn: () => unknown): number {
  const warmupEnd = performance.now() + Math.min(300, RUN_MS / 4);
  while (performance.now() < warmupEnd) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < RUN_MS) {
    for (let i = 0; i < 8; i++) fn();
    n += 8;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

const CASES = [
  { name: 'SGX v3 (sgx-v3-phala)', folder: 'sgx-v3-phala', file: 'quote.bin', at: '2025-06-20T00:00:00Z' },
  { name: 'TDX v4 (tdx-v4-phala)', folder: 'tdx-v4-phala', file: 'quote.bin', at: '2025-06-20T00:00:00Z' },
];

const rows: string[][] = [];
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

  const cold = measure(() => verifyQuote(quote, parseQuoteCollateral(collateralJson), { at }));
  const warm = measure(() => verifyQuote(quote, collateral, { at, cache }));
  const js = measure(() => qvl.verify(quote, collateralJson, nowSecs));
  const wasm = measure(() => web.js_verify(quote, collateralJson, BigInt(nowSecs)));
  const f = (x: number): string => x.toFixed(0);
  const r = (x: number): string => `${x.toFixed(1)}x`;
  rows.push([c.name, statuses[0]!, f(cold), f(warm), f(js), f(wasm), r(cold / js), r(cold / wasm), r(warm / js), r(warm / wasm)]);
}

const header = ['quote', 'status', 'cold ops/s', 'warm ops/s', 'dcap-qvl (JS) ops/s', 'dcap-qvl-web (WASM) ops/s', 'cold/JS', 'cold/WASM', 'warm/JS', 'warm/WASM'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
const line = (cells: string[]): string => `| ${cells.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'cpu'}, one thread, ${RUN_MS} ms per measurement`);
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
