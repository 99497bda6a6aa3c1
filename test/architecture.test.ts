/**
 * The dependency rules of ARCHITECTURE.md, enforced over every file of src/: dependencies point inward
 * (a table of what each folder may import, with no folder left out), no import cycle of any length, no
 * adapter built inside the HTTP layer, the domains do no I/O and read no clock or environment, and the
 * SDK stays free of server dependencies. The checks are plain functions, tested on synthetic graphs
 * below as well, so a check that cannot fail would show.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

interface Import {
  /** As written. */
  readonly spec: string;
  /** Path relative to src/ with `.ts` for a relative import; the package name otherwise. */
  readonly target: string;
  /** `import type …`, `export type …`, or every named specifier marked `type`. */
  readonly typeOnly: boolean;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : (p.endsWith('.ts') || p.endsWith('.tsx')) && !p.endsWith('.test.ts') ? [p] : [];
  });
}

function parseImports(fileRel: string, text: string): Import[] {
  const out: Import[] = [];
  const re = /(?:^|\n)\s*(import|export)(\s+type)?\s*(\{[^}]*\}|[^'";]*?)\s*from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[4] ?? m[5]!;
    const braces = m[3]?.startsWith('{') ? m[3].slice(1, -1).split(',').map((s) => s.trim()).filter(Boolean) : [];
    const typeOnly = m[5] === undefined && (m[2] !== undefined || (braces.length > 0 && braces.every((s) => s.startsWith('type '))));
    const target = spec.startsWith('.') ? join(dirname(fileRel), spec).replace(/\.js$/, '.ts') : spec;
    out.push({ spec, target, typeOnly });
  }
  return out;
}

/** The import graph of src/: file (relative to src/) → its imports. */
function sourceGraph(): Map<string, Import[]> {
  const g = new Map<string, Import[]>();
  for (const f of files(src)) {
    const rel = relative(src, f);
    g.set(rel, parseImports(rel, readFileSync(f, 'utf8')));
  }
  return g;
}

/** A file's folder under src/ (`vault`), or `(root)` for src/main.ts, src/compose.ts, src/index.ts. */
const area = (rel: string) => (rel.includes('/') ? rel.split('/')[0]! : '(root)');

const ALL = ['core', 'evidence', 'collateral', 'attestation', 'vault', 'log', 'wire', 'config', 'storage', 'hsm', 'upstream', 'sdk', 'agent', 'server', 'cli', '(root)'] as const;

/**
 * What each folder of src/ may import besides itself. `types` may be imported for their types only
 * (`import type`), never for values: the HTTP layer may name an adapter's interface but builds none.
 * The composition root (`(root)`: main.ts, compose.ts) may import anything; only the CLI imports it.
 */
const RULES: Record<string, { values: readonly string[]; types?: readonly string[] }> = {
  core: { values: [] },
  evidence: { values: ['core'] },
  collateral: { values: ['core', 'evidence'] },
  attestation: { values: ['core', 'evidence', 'collateral'] },
  vault: { values: ['core'] },
  log: { values: ['core'] },
  wire: { values: ['core'] },
  config: { values: ['core', 'collateral'] },
  // Adapters implement the domains' ports.
  storage: { values: ['core', 'vault', 'log', 'collateral', 'attestation'] },
  hsm: { values: ['core', 'vault'], types: ['storage'] },
  upstream: { values: ['core', 'evidence', 'collateral', 'attestation', 'vault', 'sdk'] },
  sdk: { values: ['core', 'evidence', 'log', 'wire'] },
  agent: { values: ['core', 'sdk', 'wire'] },
  server: { values: ['core', 'evidence', 'collateral', 'attestation', 'vault', 'log', 'config', 'wire'], types: ['storage', 'hsm'] },
  // The web console's browser code (built by esbuild, served by server/console/): it reaches the server over HTTP only.
  console: { values: [] },
  cli: { values: ['core', 'evidence', 'collateral', 'attestation', 'vault', 'log', 'wire', 'config', 'storage', 'hsm', 'upstream', 'sdk', 'agent', '(root)'] },
  '(root)': { values: ALL.filter((a) => a !== '(root)' && a !== 'cli') },
};

/** Imports that point the wrong way, and folders the table does not cover. */
function wrongWay(g: ReadonlyMap<string, readonly Import[]>, rules = RULES): string[] {
  const out: string[] = [];
  for (const [file, imps] of g) {
    const from = area(file);
    const rule = rules[from];
    if (!rule) {
      out.push(`${file}: folder ${from}/ has no dependency rule (add it to RULES)`);
      continue;
    }
    for (const imp of imps) {
      if (!imp.spec.startsWith('.')) continue;
      if (imp.target.startsWith('..')) {
        out.push(`${file} imports ${imp.spec}, outside src/`);
        continue;
      }
      const to = area(imp.target);
      if (to === from || rule.values.includes(to) || (imp.typeOnly && rule.types?.includes(to))) continue;
      out.push(`${file} imports ${imp.spec} (${from} → ${to}${rule.types?.includes(to) ? ': types only' : ''})`);
    }
  }
  return out;
}

/** Every import cycle (strongly connected component of more than one file, or a file importing itself). */
function cycles(g: ReadonlyMap<string, readonly Import[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const edges = (v: string) => (g.get(v) ?? []).filter((i) => i.spec.startsWith('.') && g.has(i.target)).map((i) => i.target);
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || edges(v).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

describe('the import graph of src/', () => {
  const graph = sourceGraph();

  test('every folder of src/ has a dependency rule, and every import follows it (ARCHITECTURE.md §Layout)', () => {
    assert.deepEqual(wrongWay(graph), []);
  });

  test('no import cycle, of any length, type-only imports included', () => {
    assert.deepEqual(cycles(graph), []);
  });

  test('no domain file imports the HTTP layer, and the HTTP layer builds no adapter', () => {
    const out: string[] = [];
    for (const [file, imps] of graph) {
      for (const imp of imps) {
        if (!imp.spec.startsWith('.')) continue;
        const to = area(imp.target);
        if (['core', 'evidence', 'collateral', 'attestation', 'vault', 'wire'].includes(area(file)) && to === 'server') out.push(`${file} imports ${imp.spec}`);
        if (area(file) === 'server' && ['storage', 'hsm', 'upstream'].includes(to) && !imp.typeOnly) out.push(`${file} imports ${imp.spec} for a value`);
      }
    }
    assert.deepEqual(out, []);
  });
});

describe('the checks themselves', () => {
  const g = (edges: Record<string, string[]>, typeOnly: string[] = []) =>
    new Map(Object.entries(edges).map(([f, ts]) => [f, ts.map((t) => ({ spec: `./${t}`, target: t, typeOnly: typeOnly.includes(`${f}>${t}`) }))]));

  test('a wrong-way import is reported, a type-only one only where the rule allows types', () => {
    assert.deepEqual(wrongWay(g({ 'vault/a.ts': ['core/b.ts'], 'core/b.ts': [] })), []);
    assert.equal(wrongWay(g({ 'core/b.ts': ['vault/a.ts'], 'vault/a.ts': [] })).length, 1);
    assert.equal(wrongWay(g({ 'evidence/x.ts': ['collateral/y.ts'], 'collateral/y.ts': [] })).length, 1);
    assert.equal(wrongWay(g({ 'server/p.ts': ['storage/s.ts'], 'storage/s.ts': [] })).length, 1);
    assert.deepEqual(wrongWay(g({ 'server/p.ts': ['storage/s.ts'], 'storage/s.ts': [] }, ['server/p.ts>storage/s.ts'])), []);
    assert.equal(wrongWay(g({ 'vault/a.ts': ['(root)/main.ts'] }).set('main.ts', [])).length, 1);
  });

  test('a folder without a rule is reported', () => {
    assert.match(wrongWay(g({ 'newthing/a.ts': [] }))[0]!, /no dependency rule/);
  });

  test('cycles of two and of three files are found; a chain is not a cycle', () => {
    assert.equal(cycles(g({ 'a.ts': ['b.ts'], 'b.ts': ['a.ts'] })).length, 1);
    assert.deepEqual(cycles(g({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts'] })), [['a.ts', 'b.ts', 'c.ts']]);
    assert.deepEqual(cycles(g({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': [] })), []);
  });

  test('type-only imports are told apart from value imports', () => {
    const imps = parseImports('server/x.ts', "import type { A } from '../storage/a.js';\nimport { type B, type C } from '../hsm/b.js';\nimport { type D, e } from '../upstream/c.js';\nexport type { F } from '../vault/f.js';");
    assert.deepEqual(
      imps.map((i) => [i.target, i.typeOnly]),
      [
        ['storage/a.ts', true],
        ['hsm/b.ts', true],
        ['upstream/c.ts', false],
        ['vault/f.ts', true],
      ],
    );
  });
});

test('the domains read no clock, environment or network', () => {
  const violations: string[] = [];
  for (const file of files(src)) {
    const rel = relative(src, file);
    if (!['core', 'evidence', 'collateral', 'attestation', 'vault', 'log', 'wire'].includes(area(rel)) || rel.startsWith('evidence/simulated') || rel.endsWith('testing.ts')) continue;
    const text = readFileSync(file, 'utf8');
    for (const [re, what] of [
      [/\bDate\.now\(\)/, 'Date.now()'],
      [/new Date\(\)/, 'new Date()'],
      [/process\.env/, 'process.env'],
      [/\bfetch\(/, 'fetch('],
      [/from 'node:(https?|net|fs)'/, 'node I/O module'],
      [/\bset(Interval|Timeout)\(/, 'a timer'],
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
    for (const { spec } of parseImports(relative(src, file), readFileSync(file, 'utf8'))) if (banned.includes(spec)) violations.push(`${relative(src, file)} imports ${spec}`);
  }
  assert.deepEqual(violations, []);
});
