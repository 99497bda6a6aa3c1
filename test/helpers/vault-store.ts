import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Sealer } from '../../src/hsm/master-key.js';
import { createSoftwareKeyProtector } from '../../src/hsm/software.js';
import type { Database } from '../../src/storage/database.js';
import { MIGRATIONS } from '../../src/storage/migrations/index.js';
import { openDatabase } from '../../src/storage/open.js';
import { createVaultStore, type VaultStore } from '../../src/storage/vault-store.js';
import { createVaultService, type VaultService, type VaultServiceDeps } from '../../src/vault/service.js';
import { createTestDatabase } from './postgres.js';

/**
 * Runs `fn` on a vault store with row MACs (under a random key) over a fresh, migrated SQLite file (`path`),
 * then closes the database and removes the file's directory.
 */
export async function withMacVaultStore(fn: (s: { db: Database; path: string; store: VaultStore }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-vs-'));
  const path = join(dir, 'v.db');
  const db = await openDatabase(`sqlite:${path}`);
  const macKey = randomBytes(32);
  const store = createVaultStore(db, (purpose, text) => createHmac('sha256', macKey).update(purpose).update('\0').update(text).digest('hex'));
  try {
    await db.migrate(MIGRATIONS);
    await fn({ db, path, store });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Two replicas' vault stores on one fresh PostgreSQL database, each with its own pool, and a raw client for the test. */
export interface PgReplicas {
  readonly a: Database;
  readonly b: Database;
  readonly storeA: VaultStore;
  readonly storeB: VaultStore;
  /** A connection of the test's own, connected: it holds rows (`SELECT … FOR UPDATE`) so that writers wait. */
  readonly raw: pg.Client;
  /** How many other sessions wait on a lock (row or advisory) now. */
  waiting(): Promise<number>;
  /** Waits until `waiting()` is at least `n`; `what` names the waiters in the failure. */
  waitFor(n: number, what: string): Promise<void>;
}

/** Runs `fn` on two replicas of one fresh, migrated PostgreSQL database, then closes everything and drops it. */
export async function withPgReplicas(fn: (r: PgReplicas) => Promise<void>): Promise<void> {
  const testDb = await createTestDatabase(undefined, { migrated: true });
  const a = await openDatabase(testDb.url, { poolSize: 2 });
  const b = await openDatabase(testDb.url, { poolSize: 2 });
  const raw = new pg.Client({ connectionString: testDb.url });
  try {
    await a.migrate(MIGRATIONS);
    await b.migrate(MIGRATIONS);
    await raw.connect();
    const waiting = async () => (await raw.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type IN ('Lock', 'Advisory') AND pid <> pg_backend_pid()")).rows[0].n as number;
    const waitFor = async (n: number, what: string) => {
      for (let i = 0; (await waiting()) < n; i++) {
        assert.ok(i < 200, `${what} never waited`);
        await sleep(10);
      }
    };
    await fn({ a, b, storeA: createVaultStore(a), storeB: createVaultStore(b), raw, waiting, waitFor });
  } finally {
    await raw.end().catch(() => undefined);
    await a.close();
    await b.close();
    await testDb.drop();
  }
}

/** One database that replicas open, each with its own connection(s); `done` removes it. */
export interface SharedDatabase {
  open(): Promise<Database>;
  done(): Promise<void>;
}

/**
 * The two backends replica races run on: SQLite (one file, a connection per replica) and PostgreSQL (a
 * fresh database, a pool of 4 per replica; skipped as `pgSkip` says).
 */
export function replicaBackends(pgSkip: string | undefined): { name: string; skip: string | undefined; open: () => Promise<SharedDatabase> }[] {
  return [
    {
      name: 'SQLite',
      skip: undefined,
      open: async () => {
        const dir = mkdtempSync(join(tmpdir(), 'conclave-replicas-'));
        return { open: () => openDatabase(`sqlite:${join(dir, 'v.db')}`), done: async () => rmSync(dir, { recursive: true, force: true }) };
      },
    },
    {
      name: 'PostgreSQL',
      skip: pgSkip,
      open: async () => {
        const db = await createTestDatabase(undefined, { migrated: true });
        return { open: () => openDatabase(db.url, { poolSize: 4 }), done: () => db.drop() };
      },
    },
  ];
}

/**
 * A vault service over `store` with software keys under `sealer` and a test's defaults: no authority keys,
 * no release signing, the real clock, https://vault.test, no configured authorities, soft delete for 7 days,
 * errors not logged. `deps` replaces any of them.
 */
export function testVaultService(store: VaultStore, sealer: Sealer, deps: Partial<VaultServiceDeps> = {}): VaultService {
  return createVaultService({
    store,
    protector: createSoftwareKeyProtector(sealer),
    getJwks: async () => ({ keys: [] }),
    releaseKey: async () => {
      throw new Error('no release here');
    },
    sealer,
    now: () => new Date(),
    baseUrl: () => 'https://vault.test',
    trustedAuthorities: [],
    simulate: false,
    softDelete: { recoverableDays: 7, purgeProtection: false },
    logger: { error: () => undefined },
    ...deps,
  });
}
