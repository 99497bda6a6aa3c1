/**
 * SQLite's WAL checkpoints on a worker thread: a second connection to the same database file, owned by
 * one worker of the process, runs `PRAGMA wal_checkpoint(...)` when asked. A checkpoint copies the WAL's
 * pages into the database file and fsyncs both; on the connection that commits (the event loop's) it
 * would stall every request for that long, so the main connection runs with `wal_autocheckpoint = 0` and
 * asks here instead (src/storage/sqlite.ts decides when, and what bounds the WAL).
 *
 * The worker answers one request at a time, in order. A failed checkpoint is answered with SQLite's error
 * code and message; a worker that cannot start or dies fails every request waiting for it with
 * {@link CheckpointerGone} (the caller then checkpoints on its own connection again).
 *
 * Starting the WAL over: once every frame was copied, the next write transaction (of any connection)
 * writes the WAL from its beginning again, under a new header that SQLite fsyncs first (so that no frame of
 * the new log can be taken for one of the old after a power loss). Left to the event loop's connection that
 * is one more fsync on the event loop per checkpoint; START_OVER makes that write here instead, right after
 * a checkpoint that copied everything: it rewrites the database header's user_version with the value it
 * holds (a change of nothing that is still a write transaction), which needs no table. The caller runs it
 * while its own connection is idle; the commit is made durable by the caller's next flush of the WAL.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * PASSIVE: copy what can be copied without waiting. TRUNCATE: everything, then empty the WAL file. START_OVER:
 * PASSIVE and, when it copied every frame, start the WAL over here (see {@link startCheckpointer}).
 */
export type CheckpointMode = 'PASSIVE' | 'TRUNCATE' | 'START_OVER';

/** `PRAGMA wal_checkpoint`'s answer: whether it was kept from finishing, the WAL's frames, those copied. */
export interface CheckpointResult {
  readonly busy: boolean;
  readonly log: number;
  readonly checkpointed: number;
  /** START_OVER: whether the worker's write started the WAL over. */
  readonly startedOver: boolean;
}

/** A checkpoint SQLite refused or failed (its result code, e.g. SQLITE_IOERR_FSYNC). */
export class CheckpointError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** The worker is gone (it could not start or open the file, or it exited): nothing was checkpointed by it. */
export class CheckpointerGone extends Error {}

export interface Checkpointer {
  checkpoint(mode: CheckpointMode): Promise<CheckpointResult>;
  /** A last checkpoint (TRUNCATE: the WAL emptied), then the worker's connection closed and the worker ended. */
  close(): Promise<void>;
  /** Checkpoints the worker ran (tests). */
  readonly done: number;
}

/** Plain JavaScript (no TypeScript loader in the worker); better-sqlite3 from the path the caller resolved. */
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Sqlite = require(workerData.module);
let db;
let openError;
try {
  db = new Sqlite(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = ' + Number(workerData.busyTimeoutMs));
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('synchronous = NORMAL');
  // This connection starts the WAL over (START_OVER): it is the one that cuts the file back to the bound then.
  db.pragma('journal_size_limit = ' + Number(workerData.walLimitBytes));
  if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') throw new Error('the database is not in WAL mode');
} catch (e) {
  openError = e;
}
const MODES = new Set(['PASSIVE', 'TRUNCATE', 'START_OVER']);
const checkpoint = (mode) => {
  if (!MODES.has(mode)) throw new Error('unknown checkpoint mode');
  const r = db.pragma('wal_checkpoint(' + (mode === 'START_OVER' ? 'PASSIVE' : mode) + ')')[0];
  const result = { busy: r.busy !== 0, log: r.log, checkpointed: r.checkpointed, startedOver: false };
  if (mode === 'START_OVER' && !result.busy && r.log > 0 && r.checkpointed === r.log) {
    // Read and written in one write transaction: nothing can change it in between.
    db.transaction(() => db.pragma('user_version = ' + Number(db.pragma('user_version', { simple: true })))).immediate();
    result.startedOver = true;
  }
  return result;
};
parentPort.on('message', (m) => {
  if (openError) {
    parentPort.postMessage({ id: m.id, gone: String(openError.message) });
    if (m.close) parentPort.close();
    return;
  }
  let answer;
  try {
    answer = { id: m.id, result: checkpoint(m.mode) };
  } catch (e) {
    answer = { id: m.id, error: { code: String(e.code || 'SQLITE_ERROR'), message: String(e.message) } };
  }
  if (m.close) {
    try {
      db.close();
    } catch (e) {
      answer = answer.error ? answer : { id: m.id, error: { code: String(e.code || 'SQLITE_ERROR'), message: String(e.message) } };
    }
  }
  parentPort.postMessage(answer);
  if (m.close) parentPort.close();
});
`;

interface Answer {
  readonly id: number;
  readonly result?: CheckpointResult;
  readonly error?: { code: string; message: string };
  readonly gone?: string;
}

/** Starts the worker for the database file at `path` (already open, in WAL mode, on the calling thread). */
export function startCheckpointer(path: string, opts: { busyTimeoutMs: number; walLimitBytes: number }): Checkpointer {
  const pending = new Map<number, { resolve(r: CheckpointResult): void; reject(e: unknown): void }>();
  let nextId = 1;
  let done = 0;
  let gone: Error | undefined;
  let closing: Promise<void> | undefined;
  let thread: Worker | undefined;
  const abandon = (e: Error) => {
    gone ??= e;
    const waiting = [...pending.values()];
    pending.clear();
    for (const w of waiting) w.reject(gone);
  };
  try {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    thread = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: true, stderr: true, workerData: { module, path, busyTimeoutMs: opts.busyTimeoutMs, walLimitBytes: opts.walLimitBytes } });
  } catch (e) {
    gone = new CheckpointerGone(`the checkpoint worker could not start: ${(e as Error).message}`);
  }
  const t = thread;
  if (t) {
    t.on('message', (m: Answer) => {
      const w = pending.get(m.id);
      if (!w) return;
      pending.delete(m.id);
      if (pending.size === 0 && !closing) t.unref();
      if (m.result) {
        done++;
        w.resolve(m.result);
      } else if (m.error) w.reject(new CheckpointError(m.error.code, m.error.message));
      else {
        const e = new CheckpointerGone(`the checkpoint worker cannot use the database: ${m.gone ?? 'no answer'}`);
        w.reject(e);
        abandon(e);
      }
    });
    t.on('error', (e) => abandon(new CheckpointerGone(`the checkpoint worker failed: ${e.message}`)));
    t.on('exit', () => abandon(new CheckpointerGone('the checkpoint worker exited')));
    // The worker keeps the process alive only while a checkpoint waits for it.
    t.unref();
  }
  const ask = (mode: CheckpointMode, close: boolean): Promise<CheckpointResult> =>
    new Promise<CheckpointResult>((resolve, reject) => {
      if (gone || !t) return reject(gone);
      const id = nextId++;
      pending.set(id, { resolve, reject });
      if (pending.size === 1) t.ref();
      t.postMessage({ id, mode, close });
    });
  return {
    checkpoint: (mode) => ask(mode, false),
    close() {
      closing ??= (async () => {
        if (!t || gone) return;
        // Kept referenced until it has exited: the caller waits for its connection to close.
        t.ref();
        const ended = new Promise<void>((resolve) => t.once('exit', () => resolve()));
        try {
          await ask('TRUNCATE', true);
        } finally {
          await ended;
        }
      })();
      return closing;
    },
    get done() {
      return done;
    },
  };
}
