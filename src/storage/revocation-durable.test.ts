/**
 * Attack on the SQLite store's durability (synchronous = NORMAL, src/storage/sqlite.ts): a commit is on the
 * disk only once the WAL is flushed, which transactions and the log appender wait for. A few revocations are
 * single autocommitted statements that did not wait: a policy-management certificate removed (the signer
 * may no longer change attestation policies), a console session signed out, a one-time sign-in code spent.
 * Each was answered while its commit sat unflushed in the page cache; a power loss or OS crash then brought
 * the certificate, the session or the code back, after the operator had been told it was gone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createPolicyStore } from './attestation-store.js';
import { createConsoleStore } from './console-store.js';
import { MIGRATIONS } from './migrations/index.js';
import { openSqlite } from './sqlite.js';

/** A store whose WAL flushes can be held: while `hold` is set, each flush waits until released. */
async function withHeldFlushes(fn: (s: { db: ReturnType<typeof openSqlite>; hold(): void; flushed(): number; release(): void }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-durable-'));
  let holding = false;
  let flushes = 0;
  const waiting: (() => void)[] = [];
  const db = openSqlite(join(dir, 'store.db'), {
    fsync: () => {
      if (!holding) return Promise.resolve();
      return new Promise<void>((resolve) =>
        waiting.push(() => {
          flushes++;
          resolve();
        }),
      );
    },
  });
  try {
    await db.migrate(MIGRATIONS);
    await fn({
      db,
      hold: () => {
        holding = true;
        flushes = 0;
      },
      flushed: () => flushes,
      release: () => {
        holding = false;
        for (const w of waiting.splice(0)) w();
      },
    });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether `p` settles within a few turns of the event loop. */
async function settlesSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  return settled;
}

describe('SQLite: a revocation is answered only once it is on the disk', () => {
  test('a policy-management certificate removed', async () => {
    await withHeldFlushes(async ({ db, hold, flushed, release }) => {
      const policies = createPolicyStore(db, () => new Date(0));
      const der = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]);
      assert.equal(await policies.addCertificate(der), true);
      hold();
      const removed = policies.removeCertificate(der);
      assert.equal(await settlesSoon(removed), false, 'the removal was answered before its commit was flushed');
      release();
      assert.equal(await removed, true);
      assert.ok(flushed() >= 1);
    });
  });

  test('a console session signed out, and a one-time sign-in code spent', async () => {
    await withHeldFlushes(async ({ db, hold, flushed, release }) => {
      const store = createConsoleStore(db);
      const principal = { kind: 'client' as const, id: 'c1' };
      await store.addSession('s'.repeat(64), { principal, method: 'client', createdMs: 1, expiresMs: 10_000, seenMs: 1 });
      await store.addCode('c'.repeat(64), principal, 1, Date.now() + 60_000);
      hold();
      const signedOut = store.removeSession('s'.repeat(64));
      assert.equal(await settlesSoon(signedOut), false, 'the sign-out was answered before its commit was flushed');
      release();
      await signedOut;
      assert.ok(flushed() >= 1);
      hold();
      const redeemed = store.redeemCode('c'.repeat(64), Date.now());
      assert.equal(await settlesSoon(redeemed), false, 'the spent code was honoured before its spending was flushed');
      release();
      assert.equal((await redeemed).status, 'ok');
      assert.ok(flushed() >= 1);
    });
  });
});
