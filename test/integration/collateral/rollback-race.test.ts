/**
 * Attack on the collateral cache's rollback guard across writers (src/collateral/cache/guard.ts,
 * src/collateral/service.ts, src/storage/collateral-store.ts): a cached CRL, TCB info, identity or OCSP
 * answer may only be replaced by one that is not older, so that a revocation or a TCB recovery cannot be
 * undone. Replica A checks an item against the copy it holds in memory and then writes it; between the
 * two, replica B (or an admin upload, `conclave collateral import`, another process on the SQLite file)
 * stores a newer copy. A's older item must not then replace it: whichever order the two commit in, the
 * stored item never moves backwards, and A gets the outcome its guard gives (`upstream.collateral_rollback`
 * for an upstream answer, `collateral.rollback` for an import), while a client's request that lost the
 * race is answered with the newer stored copy.
 *
 * Real vectors: the PCK Platform CRL of tdx-v5-fmspc90C06F (2026-02-18, 57 revocations) and an older
 * one of the same CA (tdx-v4-azure-trustee, 44 revocations). Each replica has its own store and
 * connection(s) on one database (PostgreSQL; SQLite with two connections to one file); A's store write
 * waits at its entry, the moment between A's check and its write, while B stores the newer CRL.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { main } from '../../../src/cli/main.js';
import { createCollateralAdmin } from '../../../src/collateral/admin.js';
import { encodeBundle } from '../../../src/collateral/cache/bundle.js';
import type { CollateralItem } from '../../../src/collateral/cache/item.js';
import { createCollateralLookup } from '../../../src/collateral/lookup.js';
import type { CollateralStore, CollateralUpstream, UpstreamAnswer } from '../../../src/collateral/ports.js';
import { type CollateralService, createCollateralService } from '../../../src/collateral/service.js';
import { isConclaveError } from '../../../src/core/errors.js';
import { parseCrl } from '../../../src/core/x509.js';
import { createCollateralStore } from '../../../src/storage/collateral-store.js';
import type { Database } from '../../../src/storage/database.js';
import { openDatabase } from '../../../src/storage/open.js';
import { MIGRATIONS } from '../../../src/storage/migrations/index.js';
import { readFixture, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../fixtures.js';
import { createTestDatabase, postgresUnavailable } from '../../helpers/postgres.js';
import { startTestServer, tempDir } from '../../helpers/server.js';
import { signal } from '../../helpers/signal.js';
import { replicaBackends } from '../../helpers/vault-store.js';

const skip = skipWithoutFixtures();
const pgSkip = await postgresUnavailable();
const SCOPE = 'sgx/pckcrl/platform';
const URL_ = 'https://pcs.test/sgx/certification/v4/pckcrl?ca=platform&encoding=der';
const NEWER = readFixture('intel', 'tdx-v5-fmspc90C06F', 'pck_crl.der');
const OLDER = readFixture('intel', 'tdx-v4-azure-trustee', 'pck_crl.der');
const CHAIN = readFixtureText('intel', 'tdx-v5-fmspc90C06F', 'pck_crl_issuer_chain.pem');
const now = () => new Date('2026-02-19T00:00:00Z');

const answer = (der: Buffer): UpstreamAnswer => ({
  url: URL_,
  status: 200,
  headers: { 'content-type': 'application/pkix-crl', 'sgx-pck-crl-issuer-chain': encodeURIComponent(CHAIN) },
  body: new Uint8Array(der),
});

/** An Intel upstream that answers every request with `crl()` (a lagging mirror, say). */
function upstreamAnswering(crl: () => Buffer): CollateralUpstream {
  const none = async (): Promise<UpstreamAnswer> => {
    throw new Error('not asked in this test');
  };
  return {
    hasIntel: true,
    hasAmd: false,
    intelIsPcs: false,
    hasNvidiaRim: false,
    hasNvidiaOcsp: false,
    intel: async () => answer(crl()),
    intelPost: none,
    intelRootCaCrl: none,
    amd: none,
    nvidiaRim: none,
    nvidiaOcsp: none,
    owns: (url) => url.startsWith('https://pcs.test/'),
  };
}

/** Intel's SGX TCB info for FMSPC 00906ED50000 (pcs-responses-teepot): evaluation numbers 17 and 19. */
const FMSPC = '00906ED50000';
const TCB_SCOPE = `sgx/v4/tcb/${FMSPC}`;
const teepot = (f: string) => readFixtureJson<{ issuer_chain: string; tcb_info_json: string }>('intel', 'pcs-responses-teepot', f);
const TCB17 = teepot('sgx_tcb_info_00906ED50000.json');
const TCB19 = teepot('sgx_tcb_info_early.json');
const tcbUrl = (update: 'standard' | 'early') => `https://pcs.test/sgx/certification/v4/tcb?fmspc=${FMSPC}&update=${update}`;
const tcbAnswer = (t: typeof TCB17, update: 'standard' | 'early'): UpstreamAnswer => ({
  url: tcbUrl(update),
  status: 200,
  headers: { 'content-type': 'application/json', 'tcb-info-issuer-chain': encodeURIComponent(t.issuer_chain) },
  body: new Uint8Array(Buffer.from(t.tcb_info_json)),
});
/** A TCB info as an operator's bundle or PCCS upload carries it (admit re-reads the dates from the body). */
const tcbItem = (t: typeof TCB17, n: number, selector: string | null): CollateralItem => ({
  key: `${TCB_SCOPE}#${n}`,
  kind: 'tcb',
  scope: TCB_SCOPE,
  evalNumber: n,
  selector,
  meta: { contentType: 'application/json', issuerChain: t.issuer_chain },
  body: new Uint8Array(Buffer.from(t.tcb_info_json)),
  source: tcbUrl('standard'),
  fetchedAt: now().getTime(),
  issueDate: null,
  nextUpdate: null,
  version: 0,
});

const thisUpdate = (body: Uint8Array) => parseCrl(body).thisUpdate.toISOString();
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'done',
    (e: unknown) => (isConclaveError(e) ? e.code : String(e)),
  );

for (const backend of replicaBackends(pgSkip)) {
  describe(`collateral rollback guard across replicas (${backend.name}): B stores a newer CRL between A's check and A's write`, { skip: skip || backend.skip }, () => {
    /**
     * Replicas A and B on one database. A's store write waits while `hold` is set, at its entry or, `inside`,
     * in its transaction right after it read the stored items; B stores the newer CRL meanwhile.
     * `upstreamCrl` is what A's upstream answers.
     */
    async function race(run: (r: { a: CollateralService; b: CollateralService; hold: (fn: () => Promise<unknown>, inside?: boolean) => Promise<unknown> }) => Promise<void>, upstreamCrl: Buffer) {
      const shared = await backend.open();
      const dbs: Database[] = [];
      try {
        let held: { inside: boolean; reached: () => void; gate: Promise<void> } | undefined;
        const wait = async (inside: boolean) => {
          const h = held;
          if (h?.inside !== inside) return;
          held = undefined;
          h.reached();
          await h.gate;
        };
        const replica = async (gated: boolean) => {
          const db = await shared.open();
          dbs.push(db);
          await db.migrate(MIGRATIONS);
          const holding: Database = {
            ...db,
            transaction: (fn, opts) =>
              db.transaction(
                (tx) =>
                  fn({
                    ...tx,
                    all: async <T>(sql: string, params?: readonly unknown[]) => {
                      const rows = await tx.all<T>(sql, params);
                      if (/\bFROM\s+collateral_items\b/i.test(sql)) await wait(true);
                      return rows;
                    },
                  }),
                opts,
              ),
          };
          const s = createCollateralStore(gated ? holding : db);
          const store: CollateralStore = gated
            ? {
                ...s,
                put: async (...args) => {
                  await wait(false);
                  return s.put(...args);
                },
              }
            : s;
          const service = createCollateralService({ mode: 'lazy', store, upstream: upstreamAnswering(() => upstreamCrl), now, logger: { warn: () => undefined } });
          await service.sync();
          return { store: s, service };
        };
        const a = await replica(true);
        const b = await replica(false);
        /** PostgreSQL: a backend of this database waits for a lock (A's, held to the end of its transaction); SQLite: B cannot begin its write while A's is open, so a moment suffices. */
        const bDoneOrWaiting = async (stores: Promise<unknown>) => {
          let done = false;
          stores.then(
            () => (done = true),
            () => (done = true),
          );
          if (dbs[0]!.dialect === 'sqlite') return sleep(300);
          const sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type IN ('Lock', 'Advisory') AND pid <> pg_backend_pid()";
          while (!done && Number((await dbs[0]!.get<{ n: number | string }>(sql))!.n) === 0) await sleep(10);
        };
        /**
         * Runs `fn` on A until it is about to write (`inside`: until it read the stored items in its write
         * transaction), lets B store the newer CRL (`inside`: until B is done or waits for A), then lets A go on.
         */
        const hold = async (fn: () => Promise<unknown>, inside = false) => {
          const [reached, fireReached] = signal();
          const [gate, open] = signal();
          held = { inside, reached: fireReached, gate };
          const p = fn();
          p.catch(() => undefined);
          await Promise.race([reached, p]);
          assert.equal(held, undefined, inside ? 'A never read the stored items in its write transaction' : 'A never wrote to the store');
          const stores = b.service.ingest('pckcrl', SCOPE, false, null, answer(NEWER));
          if (inside) await bDoneOrWaiting(stores);
          else await stores;
          open();
          await stores;
          const told = await outcome(p);
          // Whatever A was told, the store holds the newer CRL.
          const stored = (await b.store.itemsSince(0)).find((i) => i.key === SCOPE);
          assert.equal(stored && thisUpdate(stored.body), thisUpdate(NEWER), `the stored Platform CRL moved back from ${thisUpdate(NEWER)} (57 revocations) to ${stored && thisUpdate(stored.body)} (44); A was told: ${told}`);
          return told;
        };
        await run({ a: a.service, b: b.service, hold });
        await a.service.sync();
        assert.equal(thisUpdate(a.service.get(SCOPE)!.body), thisUpdate(NEWER), 'replica A serves the older CRL');
      } finally {
        for (const db of dbs) await db.close();
        await shared.done();
      }
    }

    test('a refresh on A answered with the CRL it holds: upstream.collateral_rollback, the newer CRL stays', () =>
      race(async ({ a, b, hold }) => {
        await b.ingest('pckcrl', SCOPE, false, null, answer(OLDER));
        await a.sync();
        assert.equal(await hold(() => a.refresh(a.get(SCOPE)!, { force: true })), 'upstream.collateral_rollback');
      }, OLDER));

    test("a refresh on A held in its write transaction, after it read the stored CRL: B's write waits for A's, then replaces it", () =>
      race(async ({ a, b, hold }) => {
        await b.ingest('pckcrl', SCOPE, false, null, answer(OLDER));
        await a.sync();
        assert.equal(await hold(() => a.refresh(a.get(SCOPE)!, { force: true }), true), 'done');
      }, OLDER));

    test('an import (bundle, PCCS upload) on A of the older CRL: collateral.rollback, the newer CRL stays', () =>
      race(async ({ a, hold }) => {
        const item: CollateralItem = { key: SCOPE, kind: 'pckcrl', scope: SCOPE, evalNumber: null, selector: null, meta: { contentType: 'application/pkix-crl', issuerChain: CHAIN }, body: new Uint8Array(OLDER), source: URL_, fetchedAt: now().getTime(), issueDate: null, nextUpdate: null, version: 0 };
        assert.equal(await hold(() => createCollateralAdmin(a, now).importBundle(encodeBundle([item], now()))), 'collateral.rollback');
      }, OLDER));

    test("a client's miss on A answered with the older CRL: the client gets the newer one B stored", () =>
      race(async ({ a, hold }) => {
        let served: CollateralItem | undefined;
        const r = await hold(async () => {
          served = await createCollateralLookup(a).pckCrl('platform');
        });
        assert.equal(r, 'done', 'the client was refused');
        assert.equal(thisUpdate(served!.body), thisUpdate(NEWER), 'the client was answered with the older CRL');
      }, OLDER));
  });
}

for (const backend of replicaBackends(pgSkip)) {
  describe(`collateral rollback guard across replicas (${backend.name}): TCB info versions under the standard and early tags`, { skip: skip || backend.skip }, () => {
    /**
     * Replicas A and B on one database. `beforeA(fn)`: B's `fn` runs when A's next store write begins, after
     * A checked its item against its memory; `stored()`: the TCB info versions stored, as number → tags.
     */
    async function replicas(run: (r: { a: CollateralService; b: CollateralService; beforeA: (fn: () => Promise<unknown>) => void; stored: () => Promise<Record<number, string | null>> }) => Promise<void>) {
      const shared = await backend.open();
      const dbs: Database[] = [];
      try {
        let before: (() => Promise<unknown>) | undefined;
        const replica = async (gated: boolean) => {
          const db = await shared.open();
          dbs.push(db);
          await db.migrate(MIGRATIONS);
          const s = createCollateralStore(db);
          const store: CollateralStore = gated
            ? {
                ...s,
                put: async (...args) => {
                  const fn = before;
                  before = undefined;
                  await fn?.();
                  return s.put(...args);
                },
              }
            : s;
          const service = createCollateralService({ mode: 'lazy', store, upstream: upstreamAnswering(() => OLDER), now, logger: { warn: () => undefined } });
          await service.sync();
          return { store: s, service };
        };
        const a = await replica(true);
        const b = await replica(false);
        const stored = async () => Object.fromEntries((await b.store.itemsSince(0)).filter((i) => i.scope === TCB_SCOPE).map((i) => [i.evalNumber!, i.selector]));
        await run({ a: a.service, b: b.service, beforeA: (fn) => void (before = fn), stored });
      } finally {
        for (const db of dbs) await db.close();
        await shared.done();
      }
    }

    test('an answer on A to update=standard below the number B stored as standard meanwhile: upstream.collateral_rollback, 17 is not stored as standard', () =>
      replicas(async ({ a, b, beforeA, stored }) => {
        beforeA(() => b.ingest('tcb', TCB_SCOPE, true, 'standard', tcbAnswer(TCB19, 'standard')));
        assert.equal(await outcome(a.ingest('tcb', TCB_SCOPE, true, 'standard', tcbAnswer(TCB17, 'standard'))), 'upstream.collateral_rollback');
        assert.deepEqual(await stored(), { 19: 'standard' });
      }));

    test('an import on A of 17 tagged standard while B stores 19 as standard: collateral.rollback, nothing stored', () =>
      replicas(async ({ a, b, beforeA, stored }) => {
        beforeA(() => b.ingest('tcb', TCB_SCOPE, true, 'standard', tcbAnswer(TCB19, 'standard')));
        assert.equal(await outcome(a.importItems([tcbItem(TCB17, 17, 'standard')])), 'collateral.rollback');
        assert.deepEqual(await stored(), { 19: 'standard' });
      }));

    test("A stores 19 as Intel's standard answer after B stored it as the early one: it keeps both tags, and 19 still answers early", () =>
      replicas(async ({ a, b, beforeA, stored }) => {
        beforeA(() => b.ingest('tcb', TCB_SCOPE, true, 'early', tcbAnswer(TCB19, 'early')));
        assert.equal(await outcome(a.ingest('tcb', TCB_SCOPE, true, 'standard', tcbAnswer(TCB19, 'standard'))), 'done');
        assert.deepEqual(await stored(), { 19: 'early,standard' });
        await b.sync();
        assert.equal(b.pick(TCB_SCOPE, 'sgx', FMSPC, { type: 'early' })?.evalNumber, 19, 'the early answer was lost');
      }));

    test("an answer to update=early below the number stored as Intel's standard one (a replayed early answer): upstream.collateral_rollback on the replica that holds 19 and on one that has not seen it, and early clients are not served 17", () =>
      replicas(async ({ a, b, beforeA, stored }) => {
        await b.ingest('tcb', TCB_SCOPE, true, 'standard', tcbAnswer(TCB19, 'standard'));
        // B holds 19 in memory: its own check.
        assert.equal(await outcome(b.ingest('tcb', TCB_SCOPE, true, 'early', tcbAnswer(TCB17, 'early'))), 'upstream.collateral_rollback');
        // A has not seen 19: the check against the stored rows.
        beforeA(async () => undefined);
        assert.equal(await outcome(a.ingest('tcb', TCB_SCOPE, true, 'early', tcbAnswer(TCB17, 'early'))), 'upstream.collateral_rollback');
        // An import tagged early the same.
        assert.equal(await outcome(b.importItems([tcbItem(TCB17, 17, 'early')])), 'collateral.rollback');
        assert.deepEqual(await stored(), { 19: 'standard' });
        await a.sync();
        assert.notEqual(a.pick(TCB_SCOPE, 'sgx', FMSPC, { type: 'early' })?.evalNumber, 17, 'update=early is answered with 17 while 19 is the standard');
      }));

    test('an import of two versions both tagged standard, the newer first (an export of a cache Intel moved from 17 to 19): each is checked against the store, not its sibling, and both are stored', () =>
      replicas(async ({ a, stored }) => {
        assert.equal(await a.importItems([tcbItem(TCB19, 19, 'standard'), tcbItem(TCB17, 17, 'standard')]), 2);
        assert.deepEqual(await stored(), { 17: 'standard', 19: 'standard' });
      }));
  });
}

/** The older Platform CRL as a bundle or upload item. */
const olderCrlItem = (): CollateralItem => ({ key: SCOPE, kind: 'pckcrl', scope: SCOPE, evalNumber: null, selector: null, meta: { contentType: 'application/pkix-crl', issuerChain: CHAIN }, body: new Uint8Array(OLDER), source: URL_, fetchedAt: now().getTime(), issueDate: null, nextUpdate: null, version: 0 });

/** B: a replica of its own on `db`, storing the newer Platform CRL. */
const storeNewer = (db: Database) => createCollateralService({ mode: 'lazy', store: createCollateralStore(db), upstream: upstreamAnswering(() => NEWER), now, logger: { warn: () => undefined } }).ingest('pckcrl', SCOPE, false, null, answer(NEWER));
const storedCrl = async (db: Database) => (await createCollateralStore(db).itemsSince(0)).find((i) => i.key === SCOPE);

describe('the import routes go through the guard in the write transaction: an older CRL uploaded while another replica stores the newer one', { skip }, () => {
  test('PCCSAdminTool PUT /sgx/certification/v4/platformcollateral: 409 collateral.rollback, the newer CRL stays', async () => {
    const ADMIN = 'rollback-race-admin';
    const server = await startTestServer({ services: 'collateral', collateralMode: 'offline', pccsAdminTokenHash: createHash('sha512').update(ADMIN).digest('hex') }, { now });
    const db = await openDatabase(server.ctx.config.db);
    try {
      // The server's write waits at its entry, past the check against its memory, while B stores the newer CRL.
      const store = server.ctx.services.collateral!.service.store as { put: CollateralStore['put'] };
      const put = store.put;
      store.put = async (...args) => {
        await storeNewer(db);
        return put(...args);
      };
      const body = { platforms: [], collaterals: { version: 4, pck_certs: [], tcbinfos: [], certificates: {}, pckcacrl: { platformCrl: OLDER.toString('hex') } } };
      const r = await server.send('PUT', '/sgx/certification/v4/platformcollateral', { headers: { 'content-type': 'application/json', 'admin-token': ADMIN }, body: JSON.stringify(body) });
      const stored = await storedCrl(db);
      assert.equal(stored && thisUpdate(stored.body), thisUpdate(NEWER), `the upload (${r.status}) moved the stored Platform CRL back to ${stored && thisUpdate(stored.body)}`);
      assert.equal(r.status, 409, r.text);
      assert.match(r.text, /older than the cached copy/);
    } finally {
      await db.close();
      await server.stop();
    }
  });

  test('conclave collateral import (PostgreSQL, the newer CRL committed while the import waits for the collateral lock): exit 1, nothing imported, the newer CRL stays', { skip: pgSkip }, async () => {
    const pg = await createTestDatabase(undefined, { migrated: true });
    const dir = tempDir();
    const db = await openDatabase(pg.url, { poolSize: 2 });
    const watcher = await openDatabase(pg.url, { poolSize: 1 });
    try {
      const file = join(dir, 'bundle.json');
      writeFileSync(file, encodeBundle([olderCrlItem()], now()));
      let cli: Promise<number> | undefined;
      await db.transaction(async (tx) => {
        // B holds the lock every writer of collateral takes and stores the newer CRL (not yet committed): the
        // import reads the store without it, passes its check, and waits for the lock to write.
        await tx.lock('collateral');
        await storeNewer(db);
        let settled = false;
        cli = main(['collateral', 'import', file, '--data-dir', dir, '--db', pg.url]).finally(() => (settled = true));
        cli.catch(() => undefined);
        const waiting = "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type IN ('Lock', 'Advisory') AND pid <> pg_backend_pid()";
        // Watched from another connection: inside a transaction pg_stat_activity answers its first snapshot again.
        while (!settled && Number((await watcher.get<{ n: number | string }>(waiting))!.n) === 0) await sleep(10);
      });
      const rc = await cli!;
      const stored = await storedCrl(db);
      assert.equal(stored && thisUpdate(stored.body), thisUpdate(NEWER), `the import (exit ${rc}) moved the stored Platform CRL back to ${stored && thisUpdate(stored.body)}`);
      assert.equal(rc, 1);
    } finally {
      await db.close();
      await watcher.close();
      await pg.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('migration 101 indexes collateral_items by scope, the read the guard makes in every write transaction, on a database that predates it', { skip }, () => {
  const existing: { name: string; skip: string | undefined; open: () => Promise<{ db: Database; done: () => Promise<void> }> }[] = [
    {
      name: 'SQLite',
      skip: undefined,
      open: async () => {
        const dir = mkdtempSync(join(tmpdir(), 'conclave-m101-'));
        const db = await openDatabase(`sqlite:${join(dir, 'c.db')}`);
        return {
          db,
          done: async () => {
            await db.close();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      },
    },
    {
      name: 'PostgreSQL',
      skip: pgSkip,
      open: async () => {
        const pg = await createTestDatabase();
        const db = await openDatabase(pg.url, { poolSize: 2 });
        return {
          db,
          done: async () => {
            await db.close();
            await pg.drop();
          },
        };
      },
    },
  ];
  for (const backend of existing) {
    test(backend.name, { skip: backend.skip }, async () => {
      const { db, done } = await backend.open();
      try {
        await db.migrate(MIGRATIONS.filter((m) => m.id !== 101));
        const before = createCollateralService({ mode: 'lazy', store: createCollateralStore(db), upstream: upstreamAnswering(() => NEWER), now, logger: { warn: () => undefined } });
        await before.ingest('pckcrl', SCOPE, false, null, answer(NEWER));
        assert.equal(await db.migrate(MIGRATIONS), 1);
        const indexes =
          db.dialect === 'sqlite'
            ? await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'collateral_items'")
            : await db.all<{ name: string }>("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'collateral_items'");
        assert.ok(
          indexes.some((i) => i.name === 'collateral_items_scope'),
          `indexes of collateral_items: ${indexes.map((i) => i.name).join(', ')}`,
        );
        // The item stored before the migration is what the guard reads: an older CRL is still refused.
        const after = createCollateralService({ mode: 'lazy', store: createCollateralStore(db), upstream: upstreamAnswering(() => OLDER), now, logger: { warn: () => undefined } });
        assert.equal(await outcome(after.importItems([olderCrlItem()])), 'collateral.rollback');
      } finally {
        await done();
      }
    });
  }
});
