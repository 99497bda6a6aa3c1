#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node:test + tsx. Node 20 neither expands globs nor
// discovers .ts test files, so the list is built here; an empty list is an error, never a silent pass.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = ['src', 'test'].flatMap((d) => walk(d, [])).sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, CONCLAVE_LOG_LEVEL: process.env.CONCLAVE_LOG_LEVEL ?? 'silent' },
});
process.exit(r.status ?? 1);
