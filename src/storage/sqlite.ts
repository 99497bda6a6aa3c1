import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, closeSync, constants, fdatasync, fstatSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { fail } from '../core/errors.js';
import { type Database, type Migration, type SqlExecutor, type Transaction, type TransactionOptions, renderSql, sleep } from './database.js';
import { type Checkpointer, type CheckpointResult, CheckpointerGone, startCheckpointer } from './sqlite-checkpointer.js';

/** How long a statement keeps retrying SQLITE_BUSY from another connection before it gives up. */
const BUSY_GIVE_UP_MS = 15_000;
/**
 * SQLite's own busy handler sleeps inside the synchronous call and so blocks the event loop: keep it
 * short and do the long wait here, asynchronously.
 */
const BUSY_TIMEOUT_MS = 25;

const BUSY = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED']);
/** Result codes that mean the file itself cannot be used (disk, permissions, corruption). */
const UNAVAILABLE = /^SQLITE_(IOERR|CANTOPEN|FULL|READONLY|CORRUPT|NOTADB|PROTOCOL|NOMEM)/;

function primaryCode(e: unknown): string {
  return String((e as { code?: unknown }).code ?? '');
}

function isBusy(e: unknown): boolean {
  return BUSY.has(primaryCode(e).replace(/_(SNAPSHOT|RECOVERY|TIMEOUT|SHAREDCACHE|VTAB)$/, ''));
}

function storeError(e: unknown, path: string): unknown {
  if (UNAVAILABLE.test(primaryCode(e)) || (e instanceof TypeError && /not open/.test(e.message))) {
    return fail('store.unavailable', 'the SQLite store cannot be used', { path }, e);
  }
  return e;
}

export interface SqliteOptions {
  /**
   * Flushes a file to the disk (default: fdatasync(2) on the libuv threadpool). Tests replace it to hold
   * or fail the flush.
   */
  readonly fsync?: (fd: number) => Promise<void>;
  /**
   * The WAL's checkpoints (tests: a shorter cadence and bound; `gate` holds each checkpoint until it resolves;
   * `walCheckMs` how often a flush looks at the WAL file, {@link WAL_CHECK_MS}).
   */
  readonly checkpoint?: { readonly intervalMs?: number; readonly walLimitBytes?: number; readonly gate?: () => Promise<void>; readonly walCheckMs?: number };
}

/**
 * How long after a write the WAL is checkpointed (at most one checkpoint cycle in flight). At ~1,500
 * releases/s the WAL grows by about 10 MiB in this time (SQLite's own threshold is 1,000 pages, ~4 MiB);
 * each cycle ends with a short pause of this connection's statements (below), so not much more often.
 */
const CHECKPOINT_INTERVAL_MS = 500;
/**
 * The WAL file's bound: past it the next checkpoint runs while this connection's statements wait (they
 * cannot add to the WAL meanwhile), and the file is cut back to it when SQLite next starts it over.
 */
const WAL_LIMIT_BYTES = 64 * 1024 * 1024;
/**
 * How often a flush looks at the WAL file itself (fstat): not at every flush, where that syscall cost about
 * 20 µs of CPU per flush on the reference VM (bench/README.md, "Release at c4: batching and wake-ups"); the
 * bound above is soft by this much of writing, and a WAL removed from outside is noticed this much later.
 */
const WAL_CHECK_MS = 20;

/** What the WAL's checkpoints have done so far (tests). */
export interface SqliteCheckpointStats {
  /** Checkpoints the worker thread ran. */
  readonly offThread: number;
  /** Checkpoints that ran while this connection's statements waited (the end of each cycle). */
  readonly paused: number;
  /** Times the worker started the WAL over (so that this connection did not fsync its new header). */
  readonly startedOver: number;
  /** Whether checkpoints fell back to this connection (the worker could not be used). */
  readonly onConnection: boolean;
}

const checkpointStats = new WeakMap<Database, () => SqliteCheckpointStats>();

/** The checkpoint figures of a database opened by {@link openSqlite} (undefined for another). */
export function sqliteCheckpointStats(db: Database): SqliteCheckpointStats | undefined {
  return checkpointStats.get(db)?.();
}

const threadpoolFdatasync = (fd: number) => new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));

/**
 * The database file and its companions are 0600 whatever existed (a file made by `touch` or a restore):
 * SQLite creates the WAL and shared-memory files with the database file's mode, so they follow.
 */
function privateFiles(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600));
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      if ((statSync(p).mode & 0o777) !== 0o600) chmodSync(p, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

/**
 * SQLite through better-sqlite3: WAL, one writer. better-sqlite3 is synchronous, so a transaction is
 * serialised through a promise chain: async domain code inside `transaction()` never interleaves with
 * another transaction's statements on the shared connection, and statements issued outside it wait
 * until it ends (they would otherwise read its uncommitted writes or land inside it).
 *
 * Another process on the same file (a restarted server whose predecessor is still exiting, the
 * `db migrate` CLI) shows up as SQLITE_BUSY; statements that did not start a change are retried with
 * back-off for up to {@link BUSY_GIVE_UP_MS}, then fail with `store.unavailable`.
 *
 * Durability: a transaction resolves only once its commit is on the disk. SQLite runs with
 * `synchronous = NORMAL` (a commit writes its WAL frames but does not flush them, so the event loop never
 * waits for the disk), and {@link durable} then flushes the WAL file with fdatasync on the threadpool;
 * commits that end while a flush is in flight share the next one (group commit at the file level). A
 * checkpoint flushes the WAL and the database itself, as SQLite always does. A failed flush leaves the
 * page cache in doubt, so it fails every later commit too (`store.unavailable`) until the process restarts.
 *
 * Checkpoints: SQLite's automatic checkpoint would run inside whichever commit crosses its threshold, on
 * the event loop (copying the WAL's pages into the database file and fsyncing both: milliseconds). It is
 * off on this connection (`wal_autocheckpoint = 0`); a second connection on a worker thread
 * (./sqlite-checkpointer.ts) checkpoints {@link CHECKPOINT_INTERVAL_MS} after a write, PASSIVE (this
 * connection goes on writing). SQLite starts the WAL over only once every frame in it was copied, which
 * under a steady write load a passive checkpoint never quite reaches, so each cycle ends with a second one
 * while this connection's statements wait (asynchronously: the event loop goes on), copying only what was
 * added meanwhile, after which the worker also starts the WAL over (START_OVER: the new header's fsync is
 * its, not the event loop's). Past {@link WAL_LIMIT_BYTES} the whole checkpoint runs paused, and
 * `journal_size_limit` cuts the file back when it starts over. A checkpoint that fails (not busy) fails
 * every later commit (`store.unavailable`), as a failed flush does; a worker that cannot be used hands the
 * checkpoints back to this connection (SQLite's own, 1,000 pages). `close()` runs a last checkpoint on the
 * worker and closes its connection before this one, which then removes the WAL.
 */
export function openSqlite(path: string, opts: SqliteOptions = {}): Database {
  let db: BetterSqlite3.Database;
  try {
    if (path !== ':memory:') privateFiles(path);
    db = new BetterSqlite3(path);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    retrySync(() => db.pragma('journal_mode = WAL'));
    db.pragma('foreign_keys = ON');
  } catch (e) {
    throw fail('store.unavailable', `cannot open SQLite database ${path}`, { path }, e);
  }
  // Without WAL (an in-memory database, a file system without shared memory) SQLite flushes at each commit itself.
  const wal = path !== ':memory:' && String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal';
  db.pragma(`synchronous = ${wal ? 'NORMAL' : 'FULL'}`);
  const walLimit = opts.checkpoint?.walLimitBytes ?? WAL_LIMIT_BYTES;
  if (wal) {
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`journal_size_limit = ${walLimit}`);
  }
  const flush = opts.fsync ?? threadpoolFdatasync;
  let walFd: number | undefined;
  /** When the WAL file was last looked at (Date.now()), see {@link WAL_CHECK_MS}. */
  let walChecked = 0;
  const walCheckMs = opts.checkpoint?.walCheckMs ?? WAL_CHECK_MS;
  let dirSynced = false;
  let flushFailed: unknown;
  /**
   * The WAL file (open while the connection is: SQLite removes it only when the last connection closes, and
   * this one holds the database file's shared lock until it closes). Looked at (its size against the bound,
   * and that it is still the file under the WAL's name) at most once per {@link WAL_CHECK_MS}. A WAL removed
   * from outside, which loses what it held whatever this does, fails the store at the first flush after
   * that look, at most that much later, and so does another file put under its name (a second process
   * opening the store creates one): SQLite goes on writing the file it opened, so flushing the one under
   * the name, or the removed one, makes nothing durable where a restart finds it. Never reopened by name.
   * The bound is judged on that look only, never on a size read earlier (the worker may have cut the file
   * back since: a stale size would make every flush ask for another paused checkpoint).
   */
  const walFile = (): number => {
    const now = Date.now();
    if (walFd === undefined) {
      const fd = openSync(`${path}-wal`, 'r');
      walFd = fd;
      walChecked = now;
      if (fstatSync(fd).size > walLimit) overLimit();
      return fd;
    }
    if (now - walChecked < walCheckMs && now >= walChecked) return walFd;
    const st = fstatSync(walFd);
    const named = statSync(`${path}-wal`);
    walChecked = now;
    if (st.nlink === 0 || named.ino !== st.ino || named.dev !== st.dev) throw new Error('the WAL file was removed or replaced while the store was open');
    if (st.size > walLimit) overLimit();
    return walFd;
  };
  const flushOnce = async (): Promise<void> => {
    if (flushFailed) throw flushFailed;
    if (checkpointFailed) throw checkpointFailed;
    try {
      const fd = walFile();
      if (!dirSynced) {
        // The WAL file's directory entry, once per file.
        const dir = openSync(dirname(path), 'r');
        try {
          await flush(dir);
        } finally {
          closeSync(dir);
        }
        dirSynced = true;
      }
      await flush(fd);
    } catch (e) {
      flushFailed = fail('store.unavailable', 'the SQLite store could not flush its write-ahead log to the disk; restart the server', { path }, e);
      throw flushFailed;
    }
  };
  let flushing: Promise<void> | undefined;
  let nextFlush: Promise<void> | undefined;
  /** Resolves once everything committed before the call is on the disk. */
  const durable = (): Promise<void> => {
    if (!wal) return Promise.resolve();
    if (!flushing) {
      flushing = flushOnce().finally(() => {
        flushing = undefined;
      });
      return flushing;
    }
    // The flush in flight may have started before this commit: wait for the one after it (shared by all who wait now).
    nextFlush ??= flushing
      .catch(() => undefined)
      .then(() => {
        nextFlush = undefined;
        return durable();
      });
    return nextFlush;
  };

  // Checkpoints (see the function's comment). `ckpt` is started at the first checkpoint.
  const interval = opts.checkpoint?.intervalMs ?? CHECKPOINT_INTERVAL_MS;
  const gate = opts.checkpoint?.gate;
  let ckpt: Checkpointer | undefined;
  /** Checkpoints run by this connection again (the worker could not be used). */
  let onConnection = !wal;
  let checkpointFailed: unknown;
  let pausedCount = 0;
  let startedOver = 0;
  let dirty = false;
  let urgent = false;
  let cycleTimer: NodeJS.Timeout | undefined;
  let cycle: Promise<void> | undefined;
  /** A checkpoint on the worker; a worker that cannot be used hands checkpoints back to this connection. */
  const offThread = async (mode: 'PASSIVE' | 'START_OVER' = 'PASSIVE'): Promise<CheckpointResult | undefined> => {
    if (onConnection || closed) return undefined;
    ckpt ??= startCheckpointer(path, { busyTimeoutMs: 100, walLimitBytes: walLimit });
    try {
      await gate?.();
      const r = await ckpt.checkpoint(mode);
      if (r.startedOver) startedOver++;
      return r;
    } catch (e) {
      if (e instanceof CheckpointerGone) {
        onConnection = true;
        if (db.open) db.pragma('wal_autocheckpoint = 1000');
        return undefined;
      }
      if (isBusy(e)) return undefined;
      checkpointFailed ??= fail('store.unavailable', 'the SQLite store could not checkpoint its write-ahead log into the database file; restart the server', { path }, e);
      throw checkpointFailed;
    }
  };
  /** Runs `fn` while this connection's statements and transactions wait (the chain, as a transaction would). */
  const paused = <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    const next = chain
      .catch(() => undefined)
      .then(async () => {
        if (closed) return undefined;
        open = Symbol('checkpoint');
        try {
          pausedCount++;
          return await fn();
        } finally {
          open = undefined;
        }
      });
    chain = next;
    return next;
  };
  const runCycle = (): void => {
    cycleTimer = undefined;
    if (cycle || closed || onConnection) return;
    dirty = false;
    const pauseFirst = urgent;
    urgent = false;
    cycle = (async () => {
      // The bulk passive while this connection goes on (unless past the bound), then, paused, what it wrote
      // meanwhile (the checkpoint's own figures cannot tell: they count the frames of the WAL as it found
      // it), and the WAL started over by the worker.
      if (!pauseFirst) await offThread();
      await paused(() => offThread('START_OVER'));
    })()
      .catch(() => undefined) // kept in checkpointFailed: the next commit fails with it
      .finally(() => {
        cycle = undefined;
        if ((dirty || urgent) && !closed) schedule(urgent ? 0 : interval);
      });
  };
  const schedule = (ms: number): void => {
    if (cycle || closed || onConnection) return;
    if (cycleTimer && ms > 0) return;
    if (cycleTimer) clearTimeout(cycleTimer);
    cycleTimer = setTimeout(runCycle, ms);
    cycleTimer.unref();
  };
  /** A write statement is about to run. */
  const noteWrite = (): void => {
    dirty = true;
    if (!cycleTimer && !cycle && !onConnection) schedule(interval);
  };
  /** The WAL file is past its bound: the next checkpoint runs paused, now. */
  const overLimit = (): void => {
    if (onConnection) return;
    urgent = true;
    schedule(0);
  };

  const stmts = new Map<string, BetterSqlite3.Statement>();
  /**
   * What each write statement changes (by its text, once): the table of a plain INSERT / UPDATE / DELETE,
   * or null (anything: a statement with a WITH clause, any other form). Read-only statements are absent.
   */
  const writes = new Map<string, string | null>();
  const prep = (sql: string) => {
    let s = stmts.get(sql);
    if (!s) {
      s = db.prepare(sql);
      stmts.set(sql, s);
      if (s.reader) s.safeIntegers(true);
      if (!s.readonly) writes.set(sql, WRITE_TARGET.exec(sql)?.[1]?.toLowerCase() ?? null);
    }
    return s;
  };
  /**
   * The watchers of {@link Database.changeCounter}: each counts this connection's writes but to the tables it
   * ignores. `dirty`: the open transaction wrote what it watches, uncommitted; until it ends every call of
   * the counter gives a new count, so that nothing read meanwhile (inside it: its uncommitted writes) is
   * served from memory, to it or to a caller outside it, and its end moves the counter once more.
   */
  const watchers: { readonly ignored: ReadonlySet<string>; count: number; dirty: boolean }[] = [];
  /** Counts a statement about to run (before it runs: one that then fails counts too). */
  const wrote = (sql: string) => {
    if (!writes.has(sql)) return;
    noteWrite();
    if (watchers.length === 0) return;
    const table = writes.get(sql);
    for (const w of watchers) {
      if (table !== null && table !== undefined && w.ignored.has(table)) continue;
      w.count++;
      if (open !== undefined) w.dirty = true;
    }
  };
  /**
   * Runs a statement; one that failed with SQLITE_BUSY changed nothing, so it is retried with back-off.
   * The first try runs at once (no async frame of its own: a key release issues several statements).
   * `turn` is asked before each try after a back-off, right before it runs (undefined: run now; a promise:
   * wait for it and ask again): a transaction of this process may have opened (or, for a transaction's own
   * statement, ended) while the statement slept, and a retry run then would land inside another
   * transaction on the shared connection (acknowledged before anything is committed, and undone by that
   * transaction's rollback).
   */
  const busyRetry = <T>(op: () => T, turn?: () => Promise<unknown> | undefined): Promise<T> => {
    try {
      return Promise.resolve(op());
    } catch (e) {
      if (!isBusy(e)) return Promise.reject(storeError(e, path));
      return retryBusy(op, turn);
    }
  };
  const retryBusy = async <T>(op: () => T, turn?: () => Promise<unknown> | undefined): Promise<T> => {
    const started = Date.now();
    for (let i = 0; ; i++) {
      try {
        if (i > 0 && turn) for (let wait = turn(); wait; wait = turn()) await wait;
        return op();
      } catch (e) {
        if (!isBusy(e)) throw storeError(e, path);
        if (Date.now() - started > BUSY_GIVE_UP_MS) throw fail('store.unavailable', 'the SQLite store stayed locked by another process', { path, waitedMs: Date.now() - started }, e);
        await sleep(Math.min(200, 5 * 2 ** i) * (0.5 + Math.random()));
      }
    }
  };
  /** The statements of one caller: `turn` as for {@link busyRetry}. */
  const executor = (turn: () => Promise<unknown> | undefined): SqlExecutor => ({
    all<T>(sql: string, params?: readonly unknown[]) {
      return busyRetry(() => {
        const s = prep(sql);
        wrote(sql);
        return s.all(...toSqlite(params)).map(fromSqlite) as T[];
      }, turn);
    },
    get<T>(sql: string, params?: readonly unknown[]) {
      return busyRetry(() => {
        const s = prep(sql);
        wrote(sql);
        const row = s.get(...toSqlite(params));
        return (row === undefined ? undefined : fromSqlite(row)) as T | undefined;
      }, turn);
    },
    run(sql: string, params?: readonly unknown[]) {
      return busyRetry(() => {
        const s = prep(sql);
        wrote(sql);
        // A RETURNING statement is a "reader" to better-sqlite3; run() still executes it.
        return { changes: s.run(...toSqlite(params)).changes };
      }, turn);
    },
  });
  let chain: Promise<unknown> = Promise.resolve();
  /** The open transaction's token and executor. */
  let open: symbol | undefined;
  let openTx: Transaction | undefined;
  /**
   * The open transaction's asynchronous context (the join guard). An enabled AsyncLocalStorage hooks every
   * promise the process makes (Node 20), so it is followed only while a joinable transaction is open:
   * disabled when the transaction ends, enabled again by the next one's run(). A continuation left from an
   * ended transaction carries that transaction's token, never the open one's, so it cannot join it.
   */
  const scope = new AsyncLocalStorage<symbol>();
  /** Outside the open transaction, wait until no transaction is open; inside it, go straight on. */
  const outside = async () => {
    while (open && scope.getStore() !== open) await chain.catch(() => undefined);
  };
  /** Whether a statement from here must wait for a transaction (one is open, and this is not inside it). */
  const mustWait = () => open !== undefined && scope.getStore() !== open;
  /** A statement's turn outside the open transaction (for {@link busyRetry}): undefined, or wait and ask again. */
  const outsideTurn = () => (mustWait() ? outside() : undefined);
  /** The database's own statements (outside a transaction, or joining the open one from inside its body). */
  const exec = executor(outsideTurn);
  const ended = () => Promise.reject(fail('internal', 'a SQLite transaction handle was used after its transaction ended', { path }));
  /** One transaction's executor: its statements run only while that transaction is the open one. */
  const txHandle = (token: symbol): Transaction => {
    const own = executor(() => (open === token ? undefined : ended()));
    return {
      all: (sql, params) => (open === token ? own.all(sql, params) : ended()),
      get: (sql, params) => (open === token ? own.get(sql, params) : ended()),
      run: (sql, params) => (open === token ? own.run(sql, params) : ended()),
      lock: async () => (open === token ? undefined : ended()),
    };
  };
  let closed = false;
  const database: Database = {
    dialect: 'sqlite',
    // With no transaction open a statement runs at once (better-sqlite3 is synchronous: nothing can
    // interleave with it); otherwise it waits for the transaction, unless it is part of it.
    // A statement that waited is asked again when its turn comes (database.*, not exec.*): the next
    // transaction may have opened between the wait's end and that turn, and a statement run then would be
    // part of it (acknowledged, then rolled back with it, or committed only with it).
    all(sql, params) {
      return mustWait() ? outside().then(() => database.all(sql, params)) : exec.all(sql, params);
    },
    get(sql, params) {
      return mustWait() ? outside().then(() => database.get(sql, params)) : exec.get(sql, params);
    },
    run(sql, params) {
      return mustWait() ? outside().then(() => database.run(sql, params)) : exec.run(sql, params);
    },
    transaction<T>(fn: (tx: Transaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      // A transaction opened from inside another one joins it: SQLite has one connection and one writer.
      if (open && openTx && scope.getStore() === open) return fn(openTx);
      const joinable = opts.joinable !== false;
      const next = chain
        .catch(() => undefined)
        .then(async () => {
          if (closed) throw fail('store.unavailable', 'the SQLite store is closed', { path });
          const token = Symbol('tx');
          const tx = txHandle(token);
          // Marked open before BEGIN so that no statement from outside slips in between.
          open = token;
          openTx = tx;
          try {
            await busyRetry(() => prep('BEGIN IMMEDIATE').run());
            const r = await (joinable ? scope.run(token, () => fn(tx)) : fn(tx));
            await busyRetry(() => prep('COMMIT').run());
            // Its frames reach the WAL at the commit: a checkpoint begun since its statements missed them.
            noteWrite();
            return r;
          } catch (e) {
            // A read made inside it (a call that joined it) saw its writes, which the rollback undoes: for the
            // change counter's watchers that is a change (a remembered grant or key must not outlive it).
            for (const w of watchers) w.count++;
            try {
              if (db.open && db.inTransaction) prep('ROLLBACK').run();
            } catch {
              // A failed ROLLBACK leaves nothing committed; the body's error is the one to report.
            }
            throw storeError(e, path);
          } finally {
            open = undefined;
            openTx = undefined;
            scope.disable();
            for (const w of watchers) {
              if (!w.dirty) continue;
              w.dirty = false;
              w.count++;
            }
          }
        });
      chain = next;
      // The next transaction may start now; this one answers once its commit is on the disk.
      return next.then(async (r) => {
        await durable();
        return r;
      });
    },
    durable,
    changeCounter(ignoredTables: readonly string[]) {
      const w = { ignored: new Set(ignoredTables.map((t) => t.toLowerCase())), count: 0, dirty: false };
      watchers.push(w);
      const dataVersion = db.prepare('PRAGMA data_version').pluck();
      let seen: unknown;
      return () => {
        try {
          const v = dataVersion.get();
          if (v !== seen) {
            seen = v;
            w.count++;
          }
        } catch {
          // Unknown (a closed or failing store): a new count, so that the caller reads, and meets the error.
          seen = undefined;
          w.count++;
        }
        if (w.dirty) w.count++;
        return w.count;
      };
    },
    async migrate(migrations: readonly Migration[]) {
      // Checked again after each wait, right before the statement: a transaction may open in between.
      while (mustWait()) await outside();
      await busyRetry(() => db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)'), outsideTurn);
      let applied = 0;
      for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
        // Checked inside the write lock: another process may have applied it since we looked.
        const did = await database.transaction(async () => {
          if (db.prepare('SELECT 1 FROM schema_migrations WHERE id = ?').get(m.id)) return false;
          for (const w of watchers) {
            w.count++;
            w.dirty = true;
          }
          db.exec(renderSql(m.sql, 'sqlite'));
          db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(m.id, m.name, new Date().toISOString());
          noteWrite();
          return true;
        });
        if (did) applied++;
      }
      return applied;
    },
    async ping() {
      while (mustWait()) await outside();
      try {
        db.prepare('SELECT 1').get();
      } catch (e) {
        throw fail('store.unavailable', 'the SQLite store cannot be used', { path }, e);
      }
    },
    async close() {
      closed = true;
      if (cycleTimer) clearTimeout(cycleTimer);
      cycleTimer = undefined;
      await chain.catch(() => undefined);
      scope.disable();
      await flushing?.catch(() => undefined);
      await cycle;
      // The worker's last checkpoint empties the WAL, and its connection closes first: this one, the last,
      // then removes the WAL (a failed last checkpoint is run again by SQLite as this connection closes).
      await ckpt?.close().catch(() => undefined);
      if (walFd !== undefined) closeSync(walFd);
      walFd = undefined;
      if (db.open) db.close();
    },
  };
  checkpointStats.set(database, () => ({ offThread: ckpt?.done ?? 0, paused: pausedCount, startedOver, onConnection }));
  return database;
}

/** The table of a plain INSERT, REPLACE, UPDATE or DELETE statement. */
const WRITE_TARGET = /^\s*(?:INSERT(?:\s+OR\s+[a-z]+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+[a-z]+)?|DELETE\s+FROM)\s+([a-z_][a-z0-9_]*)[\s(]/i;

function retrySync<T>(op: () => T): T {
  const until = Date.now() + BUSY_GIVE_UP_MS;
  for (;;) {
    try {
      return op();
    } catch (e) {
      if (!isBusy(e) || Date.now() > until) throw e;
    }
  }
}

function toSqlite(params: readonly unknown[] | undefined): unknown[] {
  return (params ?? []).map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
}

/** Integers are read as bigint (exact) and narrowed to number where that is exact too, as on PostgreSQL. */
function fromSqlite(row: unknown): unknown {
  const r = row as Record<string, unknown>;
  for (const k in r) {
    const v = r[k];
    if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) r[k] = Number(v);
  }
  return r;
}
