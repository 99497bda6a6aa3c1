/**
 * Summarises CPU profiles into the stages of a request: each sample goes to the stage of the first
 * frame, from the leaf up, that belongs to one (so native crypto counts for the code that called it),
 * with logging and metrics claiming every sample under them and JSON built-ins counted as JSON wherever
 * they are called from.
 *
 *   node --import tsx bench/profile.ts FILE… [--per N] [--top 25] [--folded OUT]
 *
 * FILE: a V8 profile (`node --cpu-prof`, BENCH_PROFILE=DIR for the bench servers), or the text of
 * `perf script` (BENCH_PERF=DIR, then `perf script -i DIR/perf-PID.data > FILE`). Prefer perf on a busy
 * machine: V8's profiler samples wall-clock time, so a function that wakes another thread or process
 * (a socket write, a job handed to the threadpool) is charged for the time this thread then waits to
 * be scheduled again; perf samples CPU time, of every thread, native frames included.
 *
 * `--per N`: also show µs per operation, N being how many operations the profile covers.
 * `--folded OUT`: write the collapsed stacks (`a;b;c count`) for flamegraph.pl or speedscope.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Frame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: Frame;
  readonly children?: number[];
}
interface Profile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Stages by source location, most specific first. */
const STAGES: ReadonlyArray<readonly [string, RegExp]> = [
  ['auth (bearer token, roles)', /src\/server\/(auth|identity)\.ts|src\/vault\/(access-control|roles)\.ts/],
  ['target-token verify', /src\/vault\/release\/target-token\.ts/],
  ['release policy', /src\/vault\/release\/policy\.ts/],
  ['wrap (OAEP + KWP)', /src\/vault\/release\/key-transfer\.ts|src\/hsm\/(software|oaep|pkcs11)\.ts/],
  ['sign (response JWS / token)', /src\/vault\/release\/release-jws\.ts|src\/attestation\/token\.ts|src\/hsm\/service-keys\.ts/],
  ['store (SQL, commit, fsync)', /src\/storage\/|better-sqlite3|node_modules\/pg|node_modules\/pg-/],
  ['transparency log', /src\/log\//],
  ['evidence verify', /src\/evidence\//],
  ['attestation (claims, policy)', /src\/attestation\//],
  ['collateral', /src\/collateral\//],
  ['jwt (jose / core/jwt)', /src\/core\/jwt\.ts|node_modules\/jose/],
  ['vault (other)', /src\/vault\//],
  ['conclave (other)', /src\//],
  ['fastify', /node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify)/],
  ['TLS, HTTP, net, streams (node)', /^node:(_tls|tls|net|_http|http|https|stream|internal\/(tls|net|http|stream|streams|js_stream|async_hooks|timers|process\/task_queues))/],
];

/** Stages of native frames that run with no JavaScript above them (threadpool jobs, V8's own threads). */
const NATIVE_STAGES: ReadonlyArray<readonly [string, RegExp]> = [
  ['GC', /v8::internal::(Heap|Scavenger|MarkCompact|ConcurrentMarking|Sweeper|MinorMarkCompact|IncrementalMarking)|ScavengerCollector|GCTracer/],
  ['V8 compiler (background)', /v8::internal::(compiler|maglev|baseline)::|OptimizingCompileDispatcher|v8::internal::Compiler::/],
  ['sign (threadpool)', /SignTraits|SignJob/],
  ['crypto (threadpool, other)', /node::crypto::.*(Job|Traits)/],
  ['fs (threadpool)', /uv__fs_|uv_fs_/],
];

const JSON_LIBS = /node_modules\/(secure-json-parse|fast-json-stringify|fast-uri)/;

function stageOf(stack: readonly Frame[]): string {
  if (stack.some((f) => /node_modules\/(pino|sonic-boom|thread-stream)|src\/server\/log\//.test(f.url))) return 'logging';
  if (stack.some((f) => /node_modules\/(prom-client|tdigest)|src\/server\/metrics\.ts/.test(f.url))) return 'metrics';
  const leaf = stack[0]!;
  if (leaf.functionName === '(garbage collector)') return 'GC';
  for (const [stage, re] of NATIVE_STAGES.slice(0, 2)) if (stack.some((f) => re.test(f.functionName))) return stage;
  if (leaf.functionName === '(program)') return '(program: native, outside JS)';
  if (leaf.functionName === '(idle)') return 'idle';
  // JSON built-ins (no url) under the leaf, or a JSON library anywhere in the innermost frames.
  for (const f of stack) {
    if (f.url === '' && /^(parse|stringify|JSONParse|JSONStringify)$/.test(f.functionName)) return 'JSON parse/serialise';
    if (JSON_LIBS.test(f.url)) return 'JSON parse/serialise';
    if (f.url !== '') break;
  }
  for (const f of stack) {
    for (const [stage, re] of STAGES) if (re.test(f.url)) return stage === 'jwt (jose / core/jwt)' ? jwtOwner(stack) : stage;
  }
  for (const [stage, re] of NATIVE_STAGES.slice(2)) if (stack.some((f) => re.test(f.functionName))) return stage;
  return stack.some((f) => f.url.startsWith('node:') || f.url.includes('/node_modules/')) || stack.every((f) => f.url === '' || f.url.startsWith('/')) ? 'other (node, libraries)' : 'other';
}

/** A JWT verification is the bearer check's or the target token's, by who called it. */
function jwtOwner(stack: readonly Frame[]): string {
  for (const f of stack) {
    if (/src\/server\/(auth|identity)\.ts/.test(f.url)) return 'auth (bearer token, roles)';
    if (/src\/vault\/release\/target-token\.ts/.test(f.url)) return 'target-token verify';
    if (/src\/attestation\//.test(f.url)) return 'sign (response JWS / token)';
  }
  return 'jwt (jose / core/jwt)';
}

function short(f: Frame): string {
  const file = f.url.replace(/^file:\/\/.*?\/(src|node_modules|bench|test)\//, '$1/').replace(/^node:/, '');
  return `${f.functionName || '(anonymous)'} ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string' }, top: { type: 'string', default: '25' }, folded: { type: 'string' } } });
  for (const path of positionals) {
    const text = readFileSync(path, 'utf8');
    const samples = text.startsWith('{') ? v8Samples(JSON.parse(text) as Profile) : perfSamples(text, /perf-(\d+)\.[^/]*$/.exec(path)?.[1]);
    summarise(path, samples, values.per ? Number(values.per) : undefined, Number(values.top), values.folded);
  }
}

/** One sample: its thread (`main` or another), its weight in µs, its frames from the leaf up. */
interface Sample {
  readonly thread: 'main' | 'other';
  readonly us: number;
  readonly stack: readonly Frame[];
}

function v8Samples(p: Profile): Sample[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = new Map<number, Frame[]>();
  const stack = (id: number): Frame[] => {
    let s = stackOf.get(id);
    if (!s) {
      s = [];
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = byId.get(cur)!.callFrame;
        if (f.functionName !== '(root)') s.push(f);
      }
      stackOf.set(id, s);
    }
    return s;
  };
  return p.samples.map((id, i) => ({ thread: 'main' as const, us: p.timeDeltas[i + 1] ?? 0, stack: stack(id) }));
}

/**
 * `perf script` text: a header line per sample (`comm pid/tid time: period event:` or `comm tid …`),
 * then one frame per line, `addr symbol+off (dso)`, JIT frames as `JS:*name url:line:col`.
 */
function perfSamples(text: string, filePid?: string): Sample[] {
  const out: Sample[] = [];
  // The server's pid: from the header (perf script -F pid,tid,…), or the file name (perf-PID.data → perf-PID.txt).
  let pid: string | undefined = filePid;
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const head = /^\S.*?\s+(\d+)(?:\/(\d+))?\s+[\d.]+:\s+(\d+)\s/.exec(lines[0] ?? '');
    if (!head) continue;
    // Without pid/tid in the header or a pid in the file name, the first thread seen is taken as the main one.
    const tid = head[2] ?? head[1]!;
    const procId = head[2] ? head[1]! : (pid ??= tid);
    const stack = lines.slice(1).map((l): Frame => {
      const m = /^\s*[0-9a-f]+\s+(.*?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)\s*$/.exec(l);
      const sym = m?.[1] ?? l.trim();
      const js = /^JS:[*~^+-]?(\S*)\s+(\S+?)(?::\d+){0,2}$/.exec(sym);
      if (js) return { functionName: js[1] ?? '', url: js[2]!.replace(/^(?!node:|file:)(\/)/, 'file://$1'), lineNumber: 0 };
      return { functionName: sym, url: '', lineNumber: 0 };
    });
    if (stack.length) out.push({ thread: tid === procId ? 'main' : 'other', us: Number(head[3]) / 1000, stack });
  }
  return out;
}

function summarise(path: string, samples: Sample[], per: number | undefined, top: number, folded: string | undefined): void {
  const stages = new Map<string, { main: number; other: number }>();
  const self = new Map<string, number>();
  const foldedCounts = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let mainTotal = 0;
  for (const { thread, us: dt, stack: s } of samples) {
    const stage = stageOf(s);
    if (stage === 'idle') {
      idle += dt;
      continue;
    }
    total += dt;
    if (thread === 'main') mainTotal += dt;
    const st = stages.get(stage) ?? { main: 0, other: 0 };
    st[thread] += dt;
    stages.set(stage, st);
    const k = `${thread === 'main' ? '' : '[thread] '}${short(s[0]!)}`;
    self.set(k, (self.get(k) ?? 0) + dt);
    if (folded) {
      const line = s.map((f) => short(f).replaceAll(';', ',')).reverse().join(';');
      foldedCounts.set(line, (foldedCounts.get(line) ?? 0) + dt);
    }
  }
  console.log(`${path}: ${(total / 1e6).toFixed(2)} s of samples, main thread ${(mainTotal / 1e6).toFixed(2)} s${idle ? ` (plus ${(idle / 1e6).toFixed(2)} s idle)` : ''}${per ? `, ${per} operations` : ''}`);
  console.log(`| stage | main thread | other threads |${per ? ' µs per operation (main + other) |' : ''}`);
  console.log(`|---|---|---|${per ? '---|' : ''}`);
  for (const [stage, t] of [...stages].sort((a, b) => b[1].main + b[1].other - a[1].main - a[1].other)) {
    console.log(`| ${stage} | ${((100 * t.main) / total).toFixed(1)} % | ${((100 * t.other) / total).toFixed(1)} % |${per ? ` ${(t.main / per).toFixed(1)} + ${(t.other / per).toFixed(1)} |` : ''}`);
  }
  console.log(`\ntop ${top} functions by self time:`);
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`);
  if (folded) writeFileSync(folded, [...foldedCounts].map(([k, v]) => `${k} ${Math.round(v)}`).join('\n'));
}

main();
