/**
 * The dependency rules of ARCHITECTURE.md, enforced over every file of src/: dependencies point inward
 * (a table of what each folder may import, with no folder left out, and inside each folder a table of
 * what its sub-folders may take from each other), no import cycle of any length (src/, test helpers and
 * benchmarks), rule tables that are themselves acyclic, drivers (database, HSM, HTTP, sockets) imported
 * only by their adapters, no adapter or timer built inside the HTTP layer, the domains do no I/O and read
 * no clock or environment, and the SDK stays free of server dependencies. The checks are plain functions, tested on synthetic graphs
 * below as well, so a check that cannot fail would show.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT as root } from './helpers/root.js';

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

/**
 * Inside a folder, what each sub-folder may import from its siblings (its own files and the folder's
 * top-level files are always allowed). A folder missing here may have sub-folders that import no
 * sibling. The evidence formats are layered: DCAP reads SGX and TDX report bodies, an SNP report may
 * come wrapped in Azure's HCL report, the vTPM evidence carries TPM quotes, and the simulated TEE
 * builds every format. `testing.ts` files (fakes for tests) may use each other's fakes.
 */
const SIBLINGS: Record<string, Record<string, readonly string[]>> = {
  evidence: {
    tpm: [],
    sgx: [],
    tdx: [],
    dcap: ['sgx', 'tdx'],
    'azure-vtpm': ['tpm'],
    snp: ['azure-vtpm'],
    nvidia: [],
    simulated: ['tpm', 'sgx', 'tdx', 'dcap', 'azure-vtpm', 'snp', 'nvidia'],
  },
  collateral: { intel: [], amd: [], cache: [] },
  attestation: { policy: [] },
  vault: { release: [] },
  storage: { migrations: [] },
  sdk: { sources: [] },
  console: { pages: [] },
  server: { log: [], vault: ['log'], attestation: [], collateral: [], console: [] },
};

/** `evidence/snp` for src/evidence/snp/verify.ts; undefined for a top-level file of a folder. */
const subArea = (rel: string): string | undefined => {
  const parts = rel.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : undefined;
};

/** Imports between sibling sub-folders that SIBLINGS does not allow. */
function wrongWayInside(g: ReadonlyMap<string, readonly Import[]>, siblings = SIBLINGS): string[] {
  const out: string[] = [];
  for (const [file, imps] of g) {
    const from = subArea(file);
    if (!from) continue;
    const [folder, sub] = from.split('/') as [string, string];
    for (const imp of imps) {
      if (!imp.spec.startsWith('.')) continue;
      const to = subArea(imp.target);
      if (!to || to === from || area(imp.target) !== folder) continue;
      const target = to.split('/')[1]!;
      if (file.endsWith('/testing.ts') && imp.target.endsWith('/testing.ts')) continue;
      const allowed = siblings[folder]?.[sub];
      if (allowed === undefined) out.push(`${file}: sub-folder ${from}/ has no sibling rule (add it to SIBLINGS)`);
      else if (!allowed.includes(target)) out.push(`${file} imports ${imp.spec} (${from} → ${to})`);
    }
  }
  return out;
}

/**
 * Packages that build an adapter (a database, an HSM session, an HTTP client or server, a socket) and
 * the folders that may import them: the HTTP layer gets its stores, protectors and clients finished from
 * the composition root, and the domains never see a driver.
 */
const DRIVERS: Record<string, readonly string[]> = {
  pg: ['storage'],
  'better-sqlite3': ['storage'],
  pkcs11js: ['hsm'],
  fastify: ['server', '(root)'],
  'prom-client': ['server'],
  'node:http': ['upstream', 'sdk', 'agent'],
  'node:https': ['upstream', 'sdk'],
  'node:tls': ['upstream', 'cli'],
  // isIP only, for names in certificates and endpoints.
  'node:net': ['hsm', 'sdk'],
  'node:child_process': ['sdk', 'cli'],
  // The software protector's key-transfer wrap off the event loop (hsm/wrap-worker.ts); SQLite's WAL
  // checkpoints on a second connection off the event loop (storage/sqlite-checkpointer.ts).
  'node:worker_threads': ['hsm', 'storage'],
  commander: ['cli'],
  preact: ['console'],
};

/** Driver imports from folders DRIVERS does not name; any `node:` I/O module or driver not listed is reported too. */
function wrongDrivers(g: ReadonlyMap<string, readonly Import[]>, drivers = DRIVERS): string[] {
  const out: string[] = [];
  for (const [file, imps] of g) {
    for (const imp of imps) {
      if (imp.spec.startsWith('.')) continue;
      const allowed = drivers[imp.spec];
      if (allowed && !allowed.includes(area(file)) && !imp.typeOnly) out.push(`${file} imports ${imp.spec}`);
      if (!allowed && /^(node:)?(http2?|https|tls|net|dgram|child_process|worker_threads|cluster)$/.test(imp.spec) && area(file) !== '(root)') {
        out.push(`${file} imports ${imp.spec} (an I/O module DRIVERS does not list)`);
      }
    }
  }
  return out;
}

/** Cycles in a rule table: a folder that may, through the table, reach itself. */
function ruleCycles(rules: Record<string, { values: readonly string[]; types?: readonly string[] }>): string[][] {
  const g = new Map(Object.entries(rules).map(([a, r]) => [a, [...r.values, ...(r.types ?? [])].map((t) => ({ spec: `./${t}`, target: t, typeOnly: false }))]));
  return cycles(g);
}

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

  test('inside each folder, sub-folders import their siblings only as SIBLINGS allows', () => {
    assert.deepEqual(wrongWayInside(graph), []);
  });

  test('database, HSM, HTTP and socket drivers are imported only by their adapters (DRIVERS)', () => {
    assert.deepEqual(wrongDrivers(graph), []);
  });

  test('the rule tables allow no cycle between folders', () => {
    assert.deepEqual(ruleCycles(RULES), []);
    for (const [folder, subs] of Object.entries(SIBLINGS)) {
      assert.deepEqual(ruleCycles(Object.fromEntries(Object.entries(subs).map(([s, v]) => [s, { values: v }]))), [], folder);
    }
  });

  test('the HTTP layer starts no timer and reads no environment (the composition root does)', () => {
    const out: string[] = [];
    for (const file of files(join(src, 'server'))) {
      const text = readFileSync(file, 'utf8');
      if (/\bset(Interval|Timeout)\(/.test(text)) out.push(`${relative(src, file)}: a timer`);
      if (/process\.env/.test(text)) out.push(`${relative(src, file)}: process.env`);
    }
    assert.deepEqual(out, []);
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

test('no import cycle among the test helpers and benchmarks either', () => {
  const g = new Map<string, Import[]>();
  for (const dir of ['test', 'bench']) {
    for (const f of files(join(root, dir))) {
      const rel = relative(root, f);
      g.set(rel, parseImports(rel, readFileSync(f, 'utf8')));
    }
  }
  assert.ok(g.size > 10);
  assert.deepEqual(cycles(g), []);
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

  test('a sibling import inside a folder is reported unless SIBLINGS allows it', () => {
    assert.deepEqual(wrongWayInside(g({ 'evidence/dcap/a.ts': ['evidence/sgx/b.ts'], 'evidence/sgx/b.ts': [] })), []);
    assert.equal(wrongWayInside(g({ 'evidence/sgx/b.ts': ['evidence/dcap/a.ts'], 'evidence/dcap/a.ts': [] })).length, 1);
    assert.equal(wrongWayInside(g({ 'server/vault/a.ts': ['server/collateral/b.ts'], 'server/collateral/b.ts': [] })).length, 1);
    assert.deepEqual(wrongWayInside(g({ 'server/vault/a.ts': ['server/app.ts'], 'server/app.ts': ['server/vault/a.ts'] })), []);
    assert.match(wrongWayInside(g({ 'vault/newsub/a.ts': ['vault/release/b.ts'] }))[0]!, /no sibling rule/);
  });

  test('a driver imported outside its adapter is reported', () => {
    const d = (file: string, spec: string) => new Map([[file, [{ spec, target: spec, typeOnly: false }]]]);
    assert.deepEqual(wrongDrivers(d('storage/sqlite.ts', 'better-sqlite3')), []);
    assert.equal(wrongDrivers(d('server/vault/plugin.ts', 'pg')).length, 1);
    assert.equal(wrongDrivers(d('vault/service.ts', 'pkcs11js')).length, 1);
    assert.equal(wrongDrivers(d('collateral/service.ts', 'node:https')).length, 1);
    assert.equal(wrongDrivers(d('attestation/service.ts', 'node:net')).length, 1);
  });

  test('a rule table that lets two folders import each other is reported', () => {
    assert.equal(ruleCycles({ a: { values: ['b'] }, b: { values: [], types: ['a'] } }).length, 1);
    assert.deepEqual(ruleCycles({ a: { values: ['b'] }, b: { values: [] } }), []);
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

/** node:crypto's key-pair generators, by name (a call, an import, `crypto.…`): src/core/keygen.ts says why only it may use them. */
const KEYGEN_CALL = /\bgenerateKeyPair(Sync)?\b/;
/** The helper, its tests, and this check, which names them. */
const KEYGEN_OWNERS = ['src/core/keygen.ts', 'src/core/keygen.test.ts', 'test/architecture.test.ts'];

test('key pairs come from src/core/keygen.ts only: no other code calls generateKeyPairSync or generateKeyPair (Node 20 deadlock)', () => {
  const code = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? code(p) : /\.(ts|tsx|js|mjs|cjs)$/.test(n) && !n.endsWith('.d.ts') ? [p] : [];
    });
  const scanned = ['src', 'test', 'bench', 'scripts'].flatMap((d) => code(join(root, d))).map((f) => relative(root, f));
  assert.ok(scanned.length > 100 && scanned.includes('src/hsm/software.ts') && scanned.includes('scripts/run-tests.mjs'));
  assert.deepEqual(
    scanned.filter((f) => !KEYGEN_OWNERS.includes(f) && KEYGEN_CALL.test(readFileSync(join(root, f), 'utf8'))),
    [],
  );
});

test('the key-pair check finds the generators however they are reached, and not the helper', () => {
  for (const text of ["import { generateKeyPairSync } from 'node:crypto';", "crypto.generateKeyPair('ec', opts, cb)", 'const { generateKeyPairSync: g } = crypto;', "promisify(generateKeyPair)('rsa', o)"]) {
    assert.ok(KEYGEN_CALL.test(text), text);
  }
  for (const text of ['generateRsaKeyPair(2048)', "generateEcKeyPair('P-256')", "subtle.generateKey(alg, true, ['sign'])", 'generateKeySync(\'hmac\', { length: 256 })']) {
    assert.ok(!KEYGEN_CALL.test(text), text);
  }
});
