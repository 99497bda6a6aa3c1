#!/usr/bin/env node
// Runs a benchmark as users run Conclave: compiled (dist/, from `npm run build`), not the TypeScript under
// tsx, whose esbuild transform keeps function names (one Object.defineProperty for every function made at
// run time) and installs its own source-map handling, costs the compiled code does not have.
//
//   node scripts/bench.mjs <name> [args...]     runs dist/bench/<name>.bench.js (refused when dist/ is
//                                                missing or older than src/, bench/ or test/)
//   BENCH_FROM_SOURCE=1 node scripts/bench.mjs … runs bench/<name>.bench.ts under tsx instead
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const [name, ...args] = process.argv.slice(2);
if (!name || !existsSync(join(root, 'bench', `${name}.bench.ts`))) {
  console.error(`bench: no benchmark ${name ?? '(none named)'} (bench/*.bench.ts)`);
  process.exit(2);
}

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

let command;
if (process.env.BENCH_FROM_SOURCE === '1') command = ['--import', 'tsx', join('bench', `${name}.bench.ts`)];
else {
  const compiled = join(root, 'dist', 'bench', `${name}.bench.js`);
  if (!existsSync(compiled)) {
    console.error('bench: no dist/: run `npm run build` first (or BENCH_FROM_SOURCE=1)');
    process.exit(2);
  }
  const built = statSync(compiled).mtimeMs;
  if (['src', 'bench', 'test'].some((d) => newest(join(root, d)) > built)) {
    console.error('bench: dist/ is older than the sources: run `npm run build` first (or BENCH_FROM_SOURCE=1)');
    process.exit(2);
  }
  command = [compiled];
}
const r = spawnSync(process.execPath, [...command, ...args], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
