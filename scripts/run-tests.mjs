#!/usr/bin/env node
// Runs the *.test.ts files under src/ and test/ with node:test, in one or more passes:
//   sqlite    every test file, each test server on SQLite with software keys (the default pass);
//   postgres  test/integration/** but the suites PASSES.postgres.except names (each with why), each test server on
//             a fresh PostgreSQL database (CONCLAVE_TEST_DB=postgres, see test/helpers/server.ts; the server is
//             CONCLAVE_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres);
//   hsm       the vault suites (test/integration/{vault,hsm,e2e} but PASSES.hsm.except, and the attack suites that name
//             the key protector, PASSES.hsm.files) with every test server
//             keeping its keys in a SoftHSM2 token (CONCLAVE_TEST_HSM=softhsm, see test/helpers/softhsm.ts);
//             without SoftHSM the pass is skipped with a message, except under CI=true, where it fails.
//
//   node scripts/run-tests.mjs [--pass=sqlite,postgres,hsm] [--concurrency=N] [<path-substring> ...]
//
// The substrings filter the files of every pass (a pass keeps its own default set when none is given). Node 20
// neither expands globs nor discovers .ts test files, so the list is built here; an empty list is an error,
// never a silent pass.
//
// Speed (README, Development): the TypeScript is transpiled once per run with esbuild (what tsx does in every
// test process, and in its loader thread for every module) into .tmp/tests-<random>/ (same tree, removed
// afterwards), and the test processes run that JavaScript with source maps, so stack traces name the .ts
// lines. The passes run at the same time, each its own node --test, but their test processes share one pool
// of slots (POOL below, or --concurrency / TEST_CONCURRENCY): a test process waits for a slot before it loads
// its files, and a free slot goes to the longest waiting one of any pass (durations of the last run in
// .tmp/test-times-<pass>.json), so the longest files of all passes start first and no pass idles while another
// has work. Every test process of the run shares CONCLAVE_TEST_SHARED_DIR (see test/helpers/server.ts).
// Neighbouring test files share one test process (a batch, see ALONE below for the files that keep their own),
// so start-up is paid per batch.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
process.chdir(root);

// Client wire shapes: the same key operations through the unchanged Azure SDKs once per api-version they send.
// What they test is what each version's requests and answers look like (fields present or refused per version),
// which no store or token changes; every store and key-protector operation they reach is reached in the postgres
// and hsm passes by suites that stay there: vault/sdk and vault/sdk-lifecycle (the JS SDK: RSA, EC and oct keys,
// get, list, update, sign/verify, encrypt/decrypt, wrap/unwrap, backup, delete, recover, purge,
// restore, random bytes, rotation policy, rotate, release), vault/python (the Python SDKs: keys, role definitions
// and assignments, full backup and selective restore, release), vault/lifecycle (names in any case, deleted keys, settings),
// vault/backup and vault/access-control.
const CLIENT_SHAPES = {
  'test/integration/vault/sdk-api-versions.test.ts': 'JS SDK shapes per api-version; its key operations: vault/sdk, vault/sdk-lifecycle, vault/lifecycle',
  'test/integration/vault/python-api-versions.test.ts': 'Python SDK shapes per api-version; its operations: vault/python, vault/sdk, vault/lifecycle, vault/backup, vault/access-control',
};

const PASSES = {
  sqlite: { env: {}, files: ['src/', 'test/'] },
  postgres: {
    env: { CONCLAVE_TEST_DB: 'postgres' },
    files: ['test/integration/'],
    // Integration suites the PostgreSQL pass leaves to the sqlite pass, each with what PostgreSQL would add.
    except: {
      // Never on PostgreSQL even in this pass: their servers are `conclave serve` processes or SQLite stores of
      // their own (CONCLAVE_TEST_DB reaches only test/helpers/server.ts), or they start no server at all; a
      // second run would repeat the first exactly.
      'test/integration/readme/tour.test.ts': 'the built binary, `serve --simulate` on SQLite',
      'test/integration/package/pack.test.ts': 'the installed binary, `serve` on SQLite',
      'test/integration/foundation/bin.test.ts': 'the binary, no store',
      'test/integration/foundation/logging.test.ts': 'the logger, no store',
      'test/integration/agent/hostile-callers.test.ts': 'the agent against a spy, no server',
      'test/integration/attack/integrity-log.test.ts': 'its own SQLite store (a flipped bit in a SQLite row)',
      'test/integration/collateral/nvidia-ocsp.test.ts': 'its own SQLite collateral store',
      // Never on the pass's PostgreSQL either: they make their own PostgreSQL databases or clusters (and the
      // SQLite cases beside them) with explicit --db, whatever the pass, so the sqlite pass runs them on
      // PostgreSQL already (without a reachable server they skip there, and fail under CI=true).
      'test/integration/scaleout/crash.test.ts': 'its own SQLite file and PostgreSQL database',
      'test/integration/scaleout/log-failover.test.ts': 'its own PostgreSQL database',
      'test/integration/scaleout/outage.test.ts': 'its own PostgreSQL cluster',
      'test/integration/scaleout/replicas.test.ts': 'its own PostgreSQL database',
      'test/integration/scaleout/stale-sequencer.test.ts': 'its own PostgreSQL database',
      'test/integration/vault/maintenance-replicas.test.ts': 'its own PostgreSQL database',
      'test/integration/vault/release-race.test.ts': 'its own SQLite file and PostgreSQL database',
      'test/integration/vault/role-race.test.ts': 'its own SQLite file and PostgreSQL database',
      'test/integration/vault/purge-race.test.ts': 'its own PostgreSQL database',
      'test/integration/vault/authorities-race.test.ts': 'its own PostgreSQL database',
      'test/integration/collateral/rollback-race.test.ts': 'its own SQLite file and PostgreSQL database',
      'test/integration/attack/store-outage.test.ts': 'its own PostgreSQL cluster',
      // The TEE side: what they test is the client (agent, SDK sources, vTPM device, the console's pages in
      // Chromium); the server answers them as it answers the suites that stay here, which cover the same
      // routes and their storage on PostgreSQL (vault/*, e2e/*, attestation/azure-vtpm*, console/session,
      // console/bodies, console/oidc, log/*, cli/*).
      'test/integration/console/browser.test.ts': 'pages in Chromium; sign-in codes, sessions, keys, audit on PostgreSQL: console/*, vault/*, log/*',
      'test/integration/agent/agent.test.ts': 'the sidecar API; clients, roles and release on PostgreSQL: vault/access-control, vault/release, e2e/skr, cli/*',
      'test/integration/agent/azure-guest.test.ts': 'the guest-side document builder; Azure guest attestation on PostgreSQL: attestation/azure-vtpm*',
      'test/integration/agent/tpm2-tools-replay.test.ts': 'the tpm2-tools device; Azure guest attestation on PostgreSQL: attestation/azure-vtpm*',
      ...CLIENT_SHAPES,
      // The binary's own processes: --help, verify, sim, policy check, token decode, db migrate (its own SQLite
      // data dir), hsm info and `conclave demo` (a temporary server of its own, on SQLite) never see the pass's
      // database; its one test server answers `attest --source sim` (SGX), which attestation/maa, attestation/api-version
      // and e2e/skr send on PostgreSQL here.
      'test/integration/cli/cli.test.ts': 'the binary and its own servers; its one SGX attest on PostgreSQL: attestation/maa, attestation/api-version, e2e/skr',
    },
  },
  hsm: {
    env: { CONCLAVE_TEST_HSM: 'softhsm' },
    files: [
      'test/integration/vault/',
      'test/integration/hsm/',
      'test/integration/e2e/',
      // Attack suites with cases of their own for the PKCS#11 key protector (CONCLAVE_TEST_HSM branches).
      'test/integration/attack/malformed-input.test.ts',
    ],
    // Never on the pass's SoftHSM token: their keys are where they say in every pass (CONCLAVE_TEST_HSM
    // reaches only test servers started without an hsm flag), so the sqlite pass runs them identically.
    except: {
      'test/integration/hsm/hsm.test.ts': 'a SoftHSM token of its own and a software twin, both explicit',
      'test/integration/hsm/release-signing.test.ts': 'a SoftHSM token of its own, explicit',
      'test/integration/hsm/backup-token.test.ts': 'two SoftHSM tokens of its own and no token, explicit',
      'test/integration/vault/maintenance-replicas.test.ts': 'the software key protector, explicit',
      'test/integration/vault/release-race.test.ts': 'the software key protector, explicit',
      'test/integration/vault/role-race.test.ts': 'the software key protector, explicit (no key is used)',
      'test/integration/vault/purge-race.test.ts': 'the store alone, no key protector',
      'test/integration/vault/authorities-race.test.ts': 'the store alone, no key protector',
      ...CLIENT_SHAPES,
    },
  },
};

let passes = ['sqlite'];
let concurrency = process.env.TEST_CONCURRENCY;
const filters = [];
for (const a of process.argv.slice(2)) {
  if (a.startsWith('--pass=')) passes = a.slice('--pass='.length).split(',');
  else if (a.startsWith('--concurrency=')) concurrency = a.slice('--concurrency='.length);
  else if (a.startsWith('--')) {
    console.error(`run-tests: unknown option ${a}`);
    process.exit(2);
  } else filters.push(a);
}
for (const p of passes) {
  if (!(p in PASSES)) {
    console.error(`run-tests: unknown pass ${p} (sqlite, postgres, hsm)`);
    process.exit(2);
  }
}


function walk(dir, out, pred) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out, pred);
    else if (pred(name)) out.push(p);
  }
  return out;
}

function softHsmMissing() {
  const module = process.env.CONCLAVE_TEST_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
  if (!existsSync(module)) return `PKCS#11 module ${module} is not installed`;
  const util = spawnSync('softhsm2-util', ['--version'], { encoding: 'utf8' });
  return util.error || util.status !== 0 ? 'softhsm2-util is not on PATH' : undefined;
}

const testFiles = ['src', 'test'].flatMap((d) => walk(d, [], (n) => n.endsWith('.test.ts'))).sort();
for (const [pass, { except = {} }] of Object.entries(PASSES)) {
  for (const f of Object.keys(except)) {
    if (!testFiles.includes(f)) {
      console.error(`run-tests: PASSES.${pass}.except names ${f}, which is no test file`);
      process.exit(2);
    }
  }
}
/** [pass, source file] */
const jobs = [];
for (const pass of passes) {
  if (pass === 'hsm') {
    const missing = softHsmMissing();
    if (missing) {
      if (process.env.CI === 'true') {
        console.error(`run-tests: hsm pass: ${missing} (CI=true: failing; install softhsm2)`);
        process.exit(1);
      }
      console.warn(`run-tests: hsm pass skipped, ${missing} (apt-get install softhsm2)`);
      continue;
    }
  }
  const mine = testFiles.filter((f) => PASSES[pass].files.some((x) => f.startsWith(x)) && !(f in (PASSES[pass].except ?? {})));
  const chosen = filters.length > 0 ? mine.filter((f) => filters.some((x) => f.includes(x))) : mine;
  for (const f of chosen) jobs.push([pass, f]);
}
if (jobs.length === 0) {
  if (passes.length === 1 && passes[0] === 'hsm' && process.env.CI !== 'true' && softHsmMissing()) process.exit(0);
  console.error('run-tests: no test files found');
  process.exit(1);
}

// Transpile every .ts/.tsx of src/, test/ and scripts/ (a test may import any of them) once. The maps leave out
// the sources (sourcesContent): --enable-source-maps decodes and parses every loaded module's map at load, and a
// stack trace or a failed test's location only needs the mappings (Node reads the .ts line from disk).
mkdirSync('.tmp', { recursive: true });
const out = mkdtempSync('.tmp/tests-');
const cleanup = () => rmSync(out, { recursive: true, force: true });
const sources = ['src', 'test', 'scripts'].flatMap((d) => walk(d, [], (n) => /\.tsx?$/.test(n) && !n.endsWith('.d.ts')));
try {
  await build({ entryPoints: sources, outdir: out, outbase: '.', format: 'esm', platform: 'node', target: 'node20', sourcemap: 'inline', sourcesContent: false, logLevel: 'warning' });
} catch (e) {
  cleanup();
  console.error(`run-tests: transpiling failed: ${e.message}`);
  process.exit(1);
}

// Longest first: the last run's durations (a file never seen runs first, as if it were the slowest).
let times = {};
const timesOf = (pass) => join('.tmp', `test-times-${pass}.json`);
for (const pass of passes) {
  try {
    for (const [f, ms] of Object.entries(JSON.parse(readFileSync(timesOf(pass), 'utf8')))) times[`${pass} ${f}`] = ms;
  } catch {}
}
const compiled = (f) => join(out, f.replace(/\.tsx?$/, '.js'));

// Several test files per test process: each process pays Node's start-up and the loading of the module graph
// (fastify, @peculiar/x509, pino, the server: about 1 s of CPU with source maps, measured in the README), which
// was about half the CPU of a run when every file had its own. A batch is an entry module importing its files
// one after another in one node:test process: their top-level tests run one at a time in file order, each
// reported under its own .ts file (node:test names the file that called test()), so durations and failures stay
// per file (scripts/test-reporter.mjs; a batch that crashes is named with its files). Files in one process share
// process-wide state, so a file runs alone when its source shows any of ALONE: top-level hooks (they would
// apply to the other files' tests), writes to process.env or process-wide listeners and settings, node:test
// mocks outside a test context, or the SoftHSM helper (one PKCS#11 token directory and PIN variable per process).
// A batch holds neighbouring files (path order, so the same files meet in every run) up to BATCH_MS of their
// last recorded durations and BATCH_FILES files; CONCLAVE_TEST_BATCH_S=0 gives every file its own process.
const ALONE = [
  [/^(before|after|beforeEach|afterEach)\(/m, 'top-level hook'],
  [/process\.env(\.\w+|\[[^\]]+\])\s*(=(?!=)|\+\+|--|\+=)|delete\s+process\.env|Object\.assign\(\s*process\.env/, 'writes process.env'],
  [/process\.(on|once|addListener|prependListener|prependOnceListener|chdir|exit|exitCode|umask|setUncaughtExceptionCaptureCallback|setSourceMapsEnabled)\b/, 'process-wide state'],
  [/setGlobalDispatcher|globalThis\.\w+\s*=(?!=)|^\s*mock\.|\bmock\.timers/m, 'global state'],
  [/helpers\/softhsm/, 'SoftHSM token per process'],
];
const BATCH_MS = Number(process.env.CONCLAVE_TEST_BATCH_S ?? 40) * 1000;
const BATCH_FILES = 16;
const UNKNOWN_MS = 5000;
const aloneWhy = new Map();
for (const [, f] of jobs) {
  if (aloneWhy.has(f)) continue;
  const src = readFileSync(f, 'utf8');
  aloneWhy.set(f, ALONE.find(([re]) => re.test(src))?.[1]);
}
/**
 * The test processes of a pass, longest first: [{ entry: the file node --test runs, files: its .ts files, ms: their
 * recorded test time (a file never seen counts as the longest) }]. node --test starts its files in the order of
 * their paths, whatever the order of its arguments, so an entry's name carries its rank (<pass>-001.mjs is the
 * longest).
 */
function units(pass, files) {
  const took = (f) => times[`${pass} ${f}`] ?? UNKNOWN_MS;
  const recorded = (members) => members.reduce((sum, f) => Math.min(Number.MAX_SAFE_INTEGER, sum + (times[`${pass} ${f}`] ?? Number.MAX_SAFE_INTEGER)), 0);
  const list = [];
  let batch = [];
  let ms = 0;
  const close = () => {
    if (batch.length > 0) list.push(batch);
    batch = [];
    ms = 0;
  };
  for (const f of [...files].sort()) {
    if (BATCH_MS <= 0 || aloneWhy.get(f) !== undefined) {
      list.push([f]);
      continue;
    }
    if (batch.length > 0 && (ms + took(f) > BATCH_MS || batch.length >= BATCH_FILES)) close();
    batch.push(f);
    ms += took(f);
  }
  close();
  mkdirSync(join(out, 'batches'), { recursive: true });
  // Every test process runs an entry module (one file or a batch): it takes a slot of the pool first (see the
  // scheduler below), then imports its files.
  const ranked = list.map((members) => ({ members, ms: recorded(members) })).sort((a, b) => b.ms - a.ms || (a.members[0] < b.members[0] ? -1 : 1));
  return ranked.map(({ members, ms }, i) => {
    const entry = join(out, 'batches', `${pass}-${String(i + 1).padStart(3, '0')}.mjs`);
    const body = [
      `// scripts/run-tests.mjs: ${members.length} test file${members.length === 1 ? '' : 's'} in one process (${pass} pass)`,
      "import { writeFileSync } from 'node:fs';",
      "import { connect } from 'node:net';",
      "import { after, test } from 'node:test';",
      '// A process that exits (process.exit(0) from code under test) before its tests ended fails: node --test would',
      '// read the 0 as a pass, and the tests not yet run or ended as nothing. `after` on the root runs once every',
      '// test of the process ended.',
      'let ended = false;',
      'after(() => {',
      '  ended = true;',
      '});',
      '// Reached only by a process that ends normally: without it, the reporter says the batch was killed.',
      "process.once('exit', (code) => {",
      '  if (!ended && !code) {',
      "    process.stderr.write('run-tests: this test process exited before its tests ended (process.exit?)\\n');",
      '    process.exitCode = 1;',
      '  }',
      `  writeFileSync(${JSON.stringify(`${entry}.exit`)}, String(process.exitCode ?? code));`,
      '});',
      '// A slot of the run\'s pool: granted when the runner answers, given back when this process ends (its socket',
      '// closes with it; unref, so the socket never keeps the process alive).',
      'await new Promise((granted, refused) => {',
      `  const slot = connect(process.env.CONCLAVE_TEST_SLOTS, () => slot.write(${JSON.stringify(`${relative(root, entry)}\n`)}));`,
      "  slot.once('data', () => granted(slot.unref()));",
      "  slot.once('error', (e) => refused(new Error(`run-tests: no slot from the runner: ${e.message}`)));",
      '});',
      `for (const [js, ts] of ${JSON.stringify(members.map((m) => [`./${relative(dirname(entry), compiled(m))}`, m]))}) {`,
      '  try {',
      '    await import(js);',
      '  } catch (e) {',
      '    test(`${ts}: failed to load`, () => {',
      '      throw e;',
      '    });',
      '  }',
      '}',
      '',
    ];
    writeFileSync(entry, body.join('\n'));
    return { entry, files: members, ms };
  });
}

// Scratch space the test processes of this run share (test/helpers/server.ts keeps the simulated TEE's vendor
// keys there, made once per run instead of once per test process).
const shared = join(out, 'shared');
mkdirSync(shared);

// The pool: POOL test processes of any pass load and run their files at once; the others wait (a process that
// waits has started Node and nothing more). Each pass is its own node --test with POOL + 1 processes at a time,
// in its longest-first order, so its longest remaining unit is always among the waiting ones, and a free slot
// goes to the longest waiting unit of all passes. Longest: the recorded test time of its files; the passes'
// processes spend part of it waiting on PostgreSQL, child processes and sockets, hence twice the cores.
const POOL = Number(concurrency ?? Math.max(2, availableParallelism()) * 2 + 1);
if (!(POOL >= 1)) {
  cleanup();
  console.error(`run-tests: --concurrency must be a positive number, not ${concurrency}`);
  process.exit(2);
}
const started = Date.now();
const chosenPasses = [...new Set(jobs.map(([p]) => p))];
/** entry (relative to the root) -> { pass, files, ms: its recorded test time, for the order } */
const unitOf = new Map();
const plan = chosenPasses.map((pass) => {
  const files = jobs.filter(([p]) => p === pass).map(([, f]) => f);
  const list = units(pass, files);
  for (const u of list) unitOf.set(relative(root, u.entry), { pass, files: u.files, ms: u.ms });
  return { pass, files, list };
});

// The slot server: a test process connects, names its entry and waits for one byte. A slot comes back when its
// socket closes (the process ended, however it ended); a process that closes while waiting leaves the queue.
// .tmp/test-schedule.json records when each unit got its slot and gave it back (seconds since the start).
// (A socket's path has at most 107 bytes: a deep checkout gets one under the system's temporary folder.)
const slotsPath = resolve(out, 'slots.sock').length < 100 ? resolve(out, 'slots.sock') : join(mkdtempSync(join(tmpdir(), 'conclave-slots-')), 's');
if (!slotsPath.startsWith(resolve(out))) process.once('exit', () => rmSync(dirname(slotsPath), { recursive: true, force: true }));
let free = POOL;
const waiting = [];
const schedule = [];
const since = () => Math.round((Date.now() - started) / 100) / 10;
function grant() {
  while (free > 0 && waiting.length > 0) {
    let best = 0;
    for (let i = 1; i < waiting.length; i++) if (waiting[i].ms > waiting[best].ms || (waiting[i].ms === waiting[best].ms && waiting[i].entry < waiting[best].entry)) best = i;
    const [w] = waiting.splice(best, 1);
    free--;
    w.row.slot = since();
    w.holding = true;
    w.socket.write('1');
  }
}
const slots = createServer((socket) => {
  let line = '';
  const w = { socket, ms: 0, entry: '', holding: false, row: undefined };
  socket.setEncoding('utf8');
  socket.on('data', (d) => {
    if (w.row) return;
    line += d;
    if (!line.includes('\n')) return;
    w.entry = line.slice(0, line.indexOf('\n'));
    const u = unitOf.get(w.entry);
    w.ms = u?.ms ?? Number.MAX_SAFE_INTEGER;
    w.row = { entry: w.entry, pass: u?.pass, files: u?.files, recorded_s: u && u.ms < Number.MAX_SAFE_INTEGER ? u.ms / 1000 : null, asked: since() };
    schedule.push(w.row);
    waiting.push(w);
    grant();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    if (w.holding) {
      w.holding = false;
      w.row.done = since();
      free++;
    } else if (waiting.includes(w)) waiting.splice(waiting.indexOf(w), 1);
    grant();
  });
});
await new Promise((listening, failed) => {
  slots.once('error', failed);
  slots.listen(slotsPath, listening);
});

// One node --test per pass, all at once; the first pass reports live, the others into files printed when they
// are done.
const children = [];
/** batch entry (relative) -> its .ts files, for scripts/test-reporter.mjs */
const batches = Object.fromEntries([...unitOf].map(([entry, u]) => [entry, u.files]));
const batchesFile = join(out, 'batches.json');
writeFileSync(batchesFile, JSON.stringify(batches));
const results = plan.map(({ pass, files, list }, i) => {
  const log = i === 0 ? undefined : join(out, `${pass}.log`);
  const args = [
    '--enable-source-maps',
    '--test',
    `--test-concurrency=${POOL + 1}`,
    '--test-reporter=spec',
    `--test-reporter-destination=${log ?? 'stdout'}`,
    `--test-reporter=${join(import.meta.dirname, 'test-reporter.mjs')}`,
    `--test-reporter-destination=${log ? `${log}.summary` : 'stderr'}`,
    ...list.map((u) => u.entry),
  ];
  const env = {
    ...process.env,
    ...PASSES[pass].env,
    CONCLAVE_LOG_LEVEL: process.env.CONCLAVE_LOG_LEVEL ?? 'silent',
    CONCLAVE_TEST_PASS: pass,
    CONCLAVE_TEST_TIMES: timesOf(pass),
    CONCLAVE_TEST_SHARED_DIR: shared,
    CONCLAVE_TEST_BATCHES: batchesFile,
    CONCLAVE_TEST_SLOTS: slotsPath,
  };
  const child = spawn(process.execPath, args, { stdio: 'inherit', env });
  children.push(child);
  return new Promise((done) =>
    child.on('exit', (code, signal) => {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      done({ pass, files: files.length, processes: list.length, code: code ?? 1, signal, log, seconds });
    }),
  );
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => children.forEach((c) => c.kill(sig)));
const done = await Promise.all(results);
slots.close();
try {
  writeFileSync(join('.tmp', 'test-schedule.json'), `{"pool": ${POOL}, "rows": [\n${schedule.map((r) => JSON.stringify(r)).join(',\n')}\n]}\n`);
} catch {}
for (const r of done) {
  if (r.log) {
    console.log(`\n── ${r.pass} pass ──`);
    for (const f of [r.log, `${r.log}.summary`]) {
      try {
        process.stdout.write(readFileSync(f, 'utf8'));
      } catch {}
    }
  }
}
cleanup();
for (const r of done) console.error(`run-tests: ${r.pass} pass: ${r.files} files in ${r.processes} processes, ${r.code === 0 ? 'passed' : `FAILED (${r.signal ?? `exit ${r.code}`})`}, done after ${r.seconds} s`);
console.error(`run-tests: ${POOL} test processes at a time across the passes (.tmp/test-schedule.json: when each got its slot)`);
process.exit(done.every((r) => r.code === 0) ? 0 : 1);
