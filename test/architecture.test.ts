/**
 * The dependency rules of ARCHITECTURE.md, enforced: dependencies point inward, the domains do no I/O
 * and read no clock or environment, and the SDK stays free of server dependencies.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('testing.ts') && !p.endsWith('.test-data.ts') ? [p] : [];
  });
}

function imports(file: string): { spec: string; target: string }[] {
  const text = readFileSync(file, 'utf8');
  const out: { spec: string; target: string }[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2]!;
    out.push({ spec, target: spec.startsWith('.') ? relative(src, resolve(dirname(file), spec)) : spec });
  }
  return out;
}

const area = (relPath: string) => relPath.split('/')[0]!;

/** What each area of src/ may import from src/ (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  evidence: ['core'],
  collateral: ['core', 'evidence'],
  attestation: ['core', 'evidence', 'collateral'],
  vault: ['core'],
  sdk: ['core', 'evidence'],
};

test('dependencies point inward (ARCHITECTURE.md §Layout)', () => {
  const violations: string[] = [];
  for (const file of files(src)) {
    const rel = relative(src, file);
    const from = area(rel);
    const allowed = ALLOWED[from];
    if (!allowed) continue;
    for (const { spec, target } of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const to = area(target);
      if (to !== from && !allowed.includes(to)) violations.push(`${rel} imports ${spec} (${from} → ${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the domains read no clock, environment or network', () => {
  const violations: string[] = [];
  for (const file of files(src)) {
    const rel = relative(src, file);
    if (!['core', 'evidence', 'attestation', 'vault'].includes(area(rel)) || rel.startsWith('evidence/simulated')) continue;
    const text = readFileSync(file, 'utf8');
    for (const [re, what] of [
      [/\bDate\.now\(\)/, 'Date.now()'],
      [/new Date\(\)/, 'new Date()'],
      [/process\.env/, 'process.env'],
      [/\bfetch\(/, 'fetch('],
      [/from 'node:(https?|net|fs)'/, 'node I/O module'],
    ] as const) {
      if (re.test(text)) violations.push(`${rel}: ${what}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the SDK imports no server-side dependency', () => {
  const banned = ['fastify', 'pg', 'better-sqlite3', 'pkcs11js', 'pino', 'prom-client'];
  const violations: string[] = [];
  for (const file of files(join(src, 'sdk'))) {
    for (const { spec } of imports(file)) if (banned.includes(spec)) violations.push(`${relative(src, file)} imports ${spec}`);
  }
  assert.deepEqual(violations, []);
});
