import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { MIGRATIONS } from '../../src/storage/migrations/index.js';
import { openDatabase } from '../../src/storage/open.js';

/**
 * PostgreSQL for tests. The shared server (CONCLAVE_TEST_PG_URL, default the machine's cluster at
 * 127.0.0.1:5432, user postgres, trust auth) hosts a throw-away database per test; tests that must
 * stop and start the server get a private cluster of their own (initdb in a temp dir).
 */
export const PG_ADMIN_URL = process.env.CONCLAVE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const PG_BIN = process.env.CONCLAVE_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

let reachable: Promise<string | undefined> | undefined;

/**
 * `undefined` when the PostgreSQL server answers; otherwise the reason. Under CI=true an unreachable
 * server is an error (the PostgreSQL suites must not pass by skipping); elsewhere it is a skip reason.
 */
export function postgresUnavailable(): Promise<string | undefined> {
  reachable ??= adminQuery(PG_ADMIN_URL, 'SELECT 1').then(
    () => undefined,
    (e: unknown) => {
      const reason = `PostgreSQL at ${redact(PG_ADMIN_URL)} is not reachable (${(e as Error).message}); set CONCLAVE_TEST_PG_URL or start it (pg_ctlcluster 15 main start)`;
      if (process.env.CI === 'true') throw new Error(`CI=true: ${reason}`);
      return reason;
    },
  );
  return reachable;
}

function redact(url: string): string {
  const u = new URL(url);
  u.password = '';
  return u.toString();
}

export interface TestDatabase {
  /** Connection URL of the fresh database. */
  readonly url: string;
  readonly name: string;
  /**
   * Removes the database (forcing out sessions). The DROP runs in the background: it waits on the
   * server's fsyncs for about a second, which the next test need not wait for; the test process does
   * not exit before it is done, and a drop that fails is reported on stderr.
   */
  drop(): Promise<void>;
}

const dropping = new Set<Promise<void>>();

/**
 * The name of a database on the shared server holding exactly the project's migrations (its name is a
 * hash of them: ids, names, SQL), made by the first test process that needs it and kept for later runs.
 * Made under a name of its own and renamed once complete, under an advisory lock, so a process finds it
 * whole or makes it (and then drops the templates of other migrations); no session stays connected to it (CREATE DATABASE … TEMPLATE requires that).
 */
let migratedTemplate: Promise<string> | undefined;

function migrationsTemplate(adminUrl: string): Promise<string> {
  migratedTemplate ??= (async () => {
    const hash = createHash('sha256');
    for (const m of MIGRATIONS) hash.update(`${m.id}\0${m.name}\0${m.sql}\0`);
    const name = `conclave_template_${hash.digest('hex').slice(0, 16)}`;
    const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
    await admin.connect();
    try {
      await admin.query('SELECT pg_advisory_lock(hashtext($1))', ['conclave-test-migrations-template']);
      if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 0) {
        const staging = `${name}_${randomBytes(4).toString('hex')}`;
        await admin.query(`CREATE DATABASE ${staging}`);
        try {
          const db = await openDatabase(withDatabase(adminUrl, staging), { poolSize: 1 });
          try {
            await db.migrate(MIGRATIONS);
          } finally {
            await db.close();
          }
          await admin.query(`ALTER DATABASE ${staging} RENAME TO ${name}`);
          // Templates of other migrations (an older checkout's) are dropped here, so the server keeps one; one
          // that a test process is copying right now stays (DROP without FORCE fails while it is in use).
          const stale = await admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'conclave\\_template\\_%' AND datname <> $1", [name]);
          for (const { datname } of stale.rows as Array<{ datname: string }>) {
            if (/^conclave_template_[0-9a-f]{16}(_[0-9a-f]{8})?$/.test(datname)) await admin.query(`DROP DATABASE IF EXISTS ${datname}`).catch(() => undefined);
          }
        } catch (e) {
          await admin.query(`DROP DATABASE IF EXISTS ${staging} WITH (FORCE)`).catch(() => undefined);
          throw e;
        }
      }
    } finally {
      await admin.end();
    }
    return name;
  })();
  migratedTemplate.catch(() => {
    migratedTemplate = undefined;
  });
  return migratedTemplate;
}

/**
 * Creates `conclave_test_<random>` on the shared server; `drop()` removes it (forcing out sessions).
 * `migrated`: a copy of a database with the project's migrations applied (what a test server would apply
 * first: on PostgreSQL a DDL commit each, about 0.6 s per fresh database, where a copy costs about 0.2 s
 * more than an empty one). Without it the database is empty, for the suites of the migrations and of the
 * start-up on a fresh store.
 */
export async function createTestDatabase(adminUrl = PG_ADMIN_URL, opts: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `conclave_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, opts.migrated ? `CREATE DATABASE ${name} TEMPLATE ${await migrationsTemplate(adminUrl)}` : `CREATE DATABASE ${name}`);
  let dropped = false;
  return {
    name,
    url: withDatabase(adminUrl, name),
    async drop() {
      if (dropped) return;
      dropped = true;
      const d = adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(
        () => undefined,
        (e: unknown) => {
          process.stderr.write(`test database ${name} was not dropped: ${(e as Error).message}\n`);
        },
      );
      dropping.add(d);
      void d.finally(() => dropping.delete(d));
    },
  };
}

const kept = new Map<string, TestDatabase>();

/**
 * The test database of a caller-managed data dir: created on first use and remembered in the data
 * dir, so a server restarted on the same data dir finds the same store (as with its SQLite file).
 * It outlives stop(); all of them are dropped when the test process is about to exit.
 */
export async function testDatabaseFor(dataDir: string): Promise<TestDatabase> {
  const marker = join(dataDir, '.conclave-test-postgres');
  if (existsSync(marker)) {
    const name = readFileSync(marker, 'utf8').trim();
    const known = kept.get(name);
    if (known) return known;
  }
  const t = await createTestDatabase(PG_ADMIN_URL, { migrated: true });
  writeFileSync(marker, `${t.name}\n`);
  if (kept.size === 0) {
    process.once('beforeExit', () => {
      void Promise.allSettled([...kept.values()].map((k) => k.drop()));
    });
  }
  kept.set(t.name, t);
  return t;
}

export interface PrivateCluster {
  /** URL of its `postgres` database (TCP on 127.0.0.1 and a private port). */
  readonly url: string;
  readonly port: number;
  start(): void;
  stop(): void;
  /** Stops it and deletes its directory. */
  destroy(): void;
}

/** `undefined` when a private cluster can be made here (initdb present, root to su to postgres). */
export function privateClusterUnavailable(): string | undefined {
  const r = spawnSync(join(PG_BIN, 'initdb'), ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return `initdb not found in ${PG_BIN} (set CONCLAVE_TEST_PG_BIN)`;
  if (process.getuid?.() !== 0 && process.env.USER !== 'postgres') return 'a private PostgreSQL cluster needs root (su postgres) or the postgres user';
  return undefined;
}

/**
 * initdb + start of a throw-away cluster (about 1 s, toolchain.md §5). Durability is off: the tests
 * that use it exercise availability, not crash recovery of PostgreSQL itself.
 */
export async function startPrivateCluster(): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-pg-'));
  chmodSync(dir, 0o755);
  const asRoot = process.getuid?.() === 0;
  const sh = (cmd: string) => {
    if (asRoot) execFileSync('su', ['postgres', '-c', cmd], { stdio: 'pipe' });
    else execFileSync('sh', ['-c', cmd], { stdio: 'pipe' });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  sh(`${PG_BIN}/initdb -D ${dir}/data -A trust -U postgres --no-sync >/dev/null`);
  const start = () =>
    sh(`${PG_BIN}/pg_ctl -D ${dir}/data -o "-k ${dir} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" -l ${dir}/log -w start >/dev/null`);
  const stop = () => sh(`${PG_BIN}/pg_ctl -D ${dir}/data -m fast -w stop >/dev/null`);
  start();
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start() {
      if (!running) start();
      running = true;
    },
    stop() {
      if (running) stop();
      running = false;
    },
    destroy() {
      try {
        if (running) stop();
      } finally {
        running = false;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}
