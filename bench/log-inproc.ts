/**
 * The transparency log's write path alone, in one process on a SQLite file: `--c` writers append release-
 * sized entries through the group-commit appender while the sequencer runs its batches every `--batch-ms`,
 * as the server does. Prints CPU per entry (all threads, and the main thread's share: better-sqlite3 is
 * synchronous, so the appends' INSERTs and the batches are event-loop time) and the bytes and write calls
 * the process issued per entry (/proc/self/io: the WAL and checkpoints into the database file). `--root`
 * runs another checkout's compiled store code, so before and after can be compared in alternating runs.
 * `--db postgres://…/postgres`: on a fresh database of that server instead (made and dropped here; the
 * bytes are then the client's, the work in PostgreSQL's own processes is not counted).
 *
 *   node dist/bench/log-inproc.js [--n 20000] [--c 16] [--rounds 3] [--batch-ms 25] [--root DIR] [--db URL]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { generateEcKeyPair } from '../src/core/keygen.js';
import { processCpuSeconds } from './lib/machine.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    c: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    'batch-ms': { type: 'string', default: '25' },
    root: { type: 'string', default: resolve(import.meta.dirname, '../..') },
    db: { type: 'string' },
  },
});
const root = resolve(values.root);
const load = (p: string) => import(pathToFileURL(resolve(root, 'dist', p)).href);
const { openDatabase } = (await load('src/storage/open.js')) as typeof import('../src/storage/open.js');
const { MIGRATIONS } = (await load('src/storage/migrations/index.js')) as typeof import('../src/storage/migrations/index.js');
const { createLogAppender, createLogStore } = (await load('src/storage/log-store.js')) as typeof import('../src/storage/log-store.js');
const { createSequencer } = (await load('src/log/sequencer.js')) as typeof import('../src/log/sequencer.js');
const { logKeyId } = (await load('src/log/tree-head.js')) as typeof import('../src/log/tree-head.js');
const { sign } = await import('node:crypto');

const dir = mkdtempSync(join(tmpdir(), 'conclave-log-bench-'));
const pgName = `conclave_log_bench_${process.pid}`;
const admin = values.db ? await openDatabase(values.db) : undefined;
if (admin) await admin.run(`CREATE DATABASE ${pgName}`);
const db = await openDatabase(values.db ? values.db.replace(/\/[^/]*$/, `/${pgName}`) : `sqlite:${join(dir, 'store.db')}`);
await db.migrate(MIGRATIONS);
const { publicKey, privateKey } = generateEcKeyPair('P-256');
const signer = { keyId: logKeyId(publicKey), publicKey, sign: async (d: Uint8Array) => sign('sha256', d, { key: privateKey, dsaEncoding: 'ieee-p1363' }) };
const seq = createSequencer({ store: createLogStore(db), signer: async () => signer, nowMs: Date.now, holder: 'bench', batchMs: Number(values['batch-ms']), leaseMs: 10_000, maxBatch: 1000 });
let running = true;
const sequencing = (async () => {
  while (running) {
    await seq.tick();
    await new Promise((r) => setTimeout(r, seq.nextDelayMs()));
  }
})();
const appender = createLogAppender(db);
// About the size of a release's audit entry (canonical JSON, 1-2 KB).
const pad = 'x'.repeat(1200);
const entry = (i: number) => JSON.stringify({ operation: 'release', n: i, pad, entryId: `${process.pid}-${i}-${Math.random()}` });

function writes(): { bytes: number; calls: number } {
  const io = readFileSync('/proc/self/io', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? Number.NaN);
  return { bytes: field('wchar'), calls: field('syscw') };
}

async function round(n: number) {
  let left = n;
  const t0 = process.cpuUsage();
  const io0 = writes();
  const main0 = processCpuSeconds(process.pid, process.pid);
  await Promise.all(
    Array.from({ length: Number(values.c) }, async () => {
      while (left-- > 0) await appender.append(entry(left), Date.now());
    }),
  );
  const u = process.cpuUsage(t0);
  const io1 = writes();
  return { all: (u.user + u.system) / n, main: ((processCpuSeconds(process.pid, process.pid) - main0) * 1e6) / n, bytes: (io1.bytes - io0.bytes) / n, calls: (io1.calls - io0.calls) / n };
}

await round(2000);
for (let i = 0; i < Number(values.rounds); i++) {
  const r = await round(Number(values.n));
  console.log(`round ${i + 1}: ${r.all.toFixed(1)} µs CPU per entry, main thread ${r.main.toFixed(1)}; written ${r.bytes.toFixed(0)} B in ${r.calls.toFixed(2)} calls per entry (${root})`);
}
running = false;
await sequencing;
await seq.release();
await db.close();
if (admin) {
  await admin.run(`DROP DATABASE ${pgName}`);
  await admin.close();
}
rmSync(dir, { recursive: true, force: true });
