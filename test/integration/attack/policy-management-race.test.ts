/**
 * Attack on isolated-mode policy management (src/server/attestation/plugin.ts, src/attestation/service.ts,
 * src/storage/attestation-store.ts): races between a change and the removal of a policy-management
 * certificate.
 *
 * 1. A policy set or reset, or a certificate add or remove, signed by certificate S was checked against the
 *    registered certificates before, and outside, the store transaction that wrote it. An operator who
 *    removed S (say, a leaked key) and was answered "IsAbsent" could still see a change signed by S land
 *    afterwards: the change had passed its check just before the removal and wrote just after it.
 * 2. Two removals each checked "not the last certificate" before the other's delete committed, so
 *    together they deleted the last two: an isolated instance with no certificate can never be managed
 *    again (locked out).
 *
 * The interleavings are made deterministic through the store: operation A is held right after its n-th
 * read of the certificate table (n = 1, 2, ... for as long as A makes that many reads: a fix may read the
 * table more than once), operation B then runs until it is answered or provably waits for A (SQLite: B
 * made a store call while A's transaction was open, which SQLite serialises; PostgreSQL: a backend of this
 * database waits for a lock), then A goes on. Whatever the interleaving, the outcome must be one of a
 * serial order of A and B in which B's answer comes after everything it saw: a change signed by S is
 * refused when S's removal was answered first, with the error any unknown signer gets, and at least one
 * certificate stays.
 *
 * Requests go through fastify's inject(), which runs the handler in the caller's asynchronous context: that
 * is how the store calls of A and B are told apart.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { after, before, describe, test } from 'node:test';
import { b64url } from '../../../src/core/bytes.js';
import type { Database, Transaction } from '../../../src/storage/database.js';
import type { HttpResponse } from '../../helpers/https.js';
import { injectClient } from '../../helpers/https.js';
import { type PolicySigner, newPolicySigner, policyManagementJws } from '../../helpers/policy-signer.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const API = '?api-version=2022-08-01';
const CERT_READ = /^\s*SELECT\b[\s\S]*\bFROM\s+attestation_policy_certificates\b/i;

const certJws = (signer: PolicySigner, target: PolicySigner) => policyManagementJws(signer, { policyCertificate: { kty: 'RSA', x5c: [Buffer.from(target.certDer).toString('base64')] } });
const policyJws = (signer: PolicySigner, text: string) => policyManagementJws(signer, { AttestationPolicy: b64url(text) });
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

type Who = 'A' | 'B';

/**
 * Wraps the server's store so that A can be held after its n-th read of the certificate table, and tells
 * when B waits for A (see the file comment).
 */
function interleaver(db: Database) {
  const who = new AsyncLocalStorage<Who>();
  const original = { all: db.all, get: db.get, run: db.run, transaction: db.transaction };
  let plan: { nth: number; reads: number; held: ReturnType<typeof deferred<void>>; release: ReturnType<typeof deferred<void>> } | undefined;
  /** A's open transactions, and whether A is held inside one. */
  let aTransactions = 0;
  let heldInTransaction = false;
  let bCalledWhileHeld = deferred();

  const noteCall = () => {
    if (who.getStore() === 'B' && heldInTransaction) bCalledWhileHeld.resolve();
  };
  const afterRead = async (sql: string) => {
    if (!plan || who.getStore() !== 'A' || !CERT_READ.test(sql)) return;
    if (++plan.reads !== plan.nth) return;
    heldInTransaction = aTransactions > 0;
    plan.held.resolve();
    await plan.release.promise;
    heldInTransaction = false;
  };
  const wrapTx = (tx: Transaction): Transaction => ({
    all: async <T>(sql: string, params?: readonly unknown[]) => {
      const r = await tx.all<T>(sql, params);
      await afterRead(sql);
      return r;
    },
    get: async <T>(sql: string, params?: readonly unknown[]) => {
      const r = await tx.get<T>(sql, params);
      await afterRead(sql);
      return r;
    },
    run: (sql, params) => tx.run(sql, params),
    lock: (name) => tx.lock(name),
  });
  const patched = db as { -readonly [K in keyof Database]: Database[K] };
  patched.all = async (sql, params) => {
    noteCall();
    const r = await original.all.call(db, sql, params);
    await afterRead(sql);
    return r as never;
  };
  patched.get = async (sql, params) => {
    noteCall();
    const r = await original.get.call(db, sql, params);
    await afterRead(sql);
    return r as never;
  };
  patched.run = (sql, params) => {
    noteCall();
    return original.run.call(db, sql, params);
  };
  patched.transaction = (fn, opts) => {
    noteCall();
    const inA = who.getStore() === 'A';
    return original.transaction.call(
      db,
      async (tx: Transaction) => {
        if (inA) aTransactions++;
        try {
          return await fn(wrapTx(tx));
        } finally {
          if (inA) aTransactions--;
        }
      },
      opts,
    ) as never;
  };

  /** Resolves once B provably waits for A (it never resolves for a B that does not wait). */
  async function bWaits(done: () => boolean): Promise<void> {
    if (db.dialect === 'sqlite') return bCalledWhileHeld.promise;
    // PostgreSQL: a backend of this database waiting for a lock (A holds it until its transaction ends).
    const sql = 'SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()';
    while (!done()) {
      const row = await original.get.call(db, sql);
      if (Number((row as { n: number }).n) > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return new Promise<void>(() => undefined);
  }

  return {
    /**
     * Runs A, held after its `nth` read of the certificate table; then B, until it is answered or waits for
     * A; then lets A go on. `undefined` when A completed with fewer reads (no such interleaving).
     */
    async run(nth: number, a: () => Promise<HttpResponse>, b: () => Promise<HttpResponse>): Promise<{ a: HttpResponse; b: HttpResponse; bAnsweredFirst: boolean } | undefined> {
      const p = { nth, reads: 0, held: deferred(), release: deferred() };
      plan = p;
      bCalledWhileHeld = deferred();
      try {
        const pa = who.run('A', a);
        if ((await Promise.race([p.held.promise.then(() => 'held' as const), pa.then(() => 'done' as const)])) === 'done') return undefined;
        let bDone = false;
        const pb = who.run('B', b).finally(() => {
          bDone = true;
        });
        const first = await Promise.race([pb.then(() => 'answered' as const), bWaits(() => bDone).then(() => 'waits' as const)]);
        p.release.resolve();
        const [ra, rb] = await Promise.all([pa, pb]);
        return { a: ra, b: rb, bAnsweredFirst: first === 'answered' };
      } finally {
        p.release.resolve();
        plan = undefined;
      }
    },
    restore() {
      Object.assign(patched, original);
    },
  };
}

describe('isolated mode: policy management serialises against certificate removal', { timeout: 180_000 }, () => {
  let server: TestServer;
  let send: ReturnType<typeof injectClient>;
  let headers: Record<string, string>;
  let race: ReturnType<typeof interleaver>;
  let m: PolicySigner; // the operator's certificate (--policy-certificate)
  let s: PolicySigner; // the signer being removed
  let t: PolicySigner; // a third certificate, the target of certificate changes signed by s
  let outsider: PolicySigner; // never registered

  const call = (method: string, path: string, body?: string) => send(method, `${path}${API}`, { headers, ...(body === undefined ? {} : { body }) });
  const registered = async (): Promise<string[]> => {
    const r = await call('GET', '/certificates');
    assert.equal(r.status, 200, r.text);
    return (claimsOf(r.json().token)['x-ms-policy-certificates'].keys as { x5c: string[] }[]).map((k) => k.x5c[0]!);
  };
  const b64 = (x: PolicySigner) => Buffer.from(x.certDer).toString('base64');
  const policyText = async () => {
    const r = await call('GET', '/policies/SgxEnclave');
    assert.equal(r.status, 200, r.text);
    const policy = claimsOf(r.json().token)['x-ms-policy'] as string;
    return Buffer.from(JSON.parse(Buffer.from(policy.split('.')[1]!, 'base64url').toString('utf8')).AttestationPolicy, 'base64url').toString('utf8');
  };
  /** Brings the registered certificates to exactly `want` (changes signed by m, which always stays). */
  const ensure = async (want: PolicySigner[]) => {
    const now = await registered();
    for (const x of want) if (!now.includes(b64(x))) assert.equal((await call('POST', '/certificates:add', certJws(m, x))).status, 200);
    for (const x of [s, t]) if (!want.includes(x) && now.includes(b64(x))) assert.equal((await call('POST', '/certificates:remove', certJws(m, x))).status, 200);
    assert.deepEqual((await registered()).sort(), want.map(b64).sort());
  };
  let n = 0;
  const text = (tag: string) => `version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type="race", value="${tag}-${++n}"); };`;
  const refusal = (r: HttpResponse) => ({ status: r.status, code: r.json().error?.code, message: r.json().error?.message });

  before(async () => {
    [m, s, t, outsider] = await Promise.all(['m', 's', 't', 'outsider'].map((x) => newPolicySigner(`race-${x}`)));
    server = await startTestServer({ isolated: true, policyCertificate: [m.pemPath] });
    send = injectClient(server.app, server.url);
    headers = { authorization: `Bearer ${await server.adminToken()}`, 'content-type': 'text/plain' };
    race = interleaver(server.ctx.db);
  });
  after(async () => {
    race?.restore();
    await server?.stop();
  });

  /**
   * Every interleaving of A (signed by s) with the removal of s (signed by m): when the removal was answered
   * while A was held, A must be refused exactly as an unknown signer is, and must have changed nothing.
   */
  async function againstRemoval(name: string, o: { setUp(): Promise<void>; a(signer: PolicySigner): string; method: string; path: string; changed(): Promise<boolean> }) {
    await o.setUp();
    await ensure([m, s, ...(name === 'remove' ? [t] : [])]);
    const unknown = await call(o.method, o.path, o.a(outsider));
    assert.equal(unknown.status, 400, unknown.text);
    let interleavings = 0;
    for (let nth = 1; ; nth++) {
      await o.setUp();
      await ensure([m, s, ...(name === 'remove' ? [t] : [])]);
      const body = o.a(s);
      const r = await race.run(
        nth,
        () => call(o.method, o.path, body),
        () => call('POST', '/certificates:remove', certJws(m, s)),
      );
      if (!r) break;
      interleavings++;
      const where = `${name}, A held after its certificate read #${nth}`;
      assert.equal(r.b.status, 200, `${where}: the removal of s: ${r.b.text}`);
      assert.ok(!(await registered()).includes(b64(s)), `${where}: s is still registered`);
      if (r.bAnsweredFirst) {
        assert.notEqual(r.a.status, 200, `${where}: a change signed by s landed after the removal of s was answered`);
        assert.deepEqual(refusal(r.a), refusal(unknown), `${where}: refused otherwise than an unknown signer`);
        assert.equal(await o.changed(), false, `${where}: the refused change was written`);
      } else {
        // B waited for A: A's change came first, while s was registered.
        assert.equal(r.a.status, 200, `${where}: ${r.a.text}`);
        assert.equal(await o.changed(), true, where);
      }
    }
    assert.ok(interleavings >= 1, 'A never read the certificate table');
  }

  test('a policy set signed by a certificate whose removal was answered first is refused', async () => {
    let sent = '';
    await againstRemoval('set', {
      setUp: async () => {
        assert.equal((await call('PUT', '/policies/SgxEnclave', policyJws(m, text('m')))).status, 200);
      },
      a: (x) => policyJws(x, (sent = text('s'))),
      method: 'PUT',
      path: '/policies/SgxEnclave',
      changed: async () => (await policyText()) === sent,
    });
  });

  test('a policy reset signed by a certificate whose removal was answered first is refused', async () => {
    let before = '';
    await againstRemoval('reset', {
      setUp: async () => {
        assert.equal((await call('PUT', '/policies/SgxEnclave', policyJws(m, (before = text('m'))))).status, 200);
      },
      a: (x) => policyManagementJws(x, ''),
      method: 'POST',
      path: '/policies/SgxEnclave:reset',
      changed: async () => (await policyText()) !== before,
    });
  });

  test('a certificate addition signed by a certificate whose removal was answered first is refused', async () => {
    await againstRemoval('add', {
      setUp: async () => undefined,
      a: (x) => certJws(x, t),
      method: 'POST',
      path: '/certificates:add',
      changed: async () => (await registered()).includes(b64(t)),
    });
  });

  test('a certificate removal signed by a certificate whose removal was answered first is refused', async () => {
    await againstRemoval('remove', {
      setUp: async () => undefined,
      a: (x) => certJws(x, t),
      method: 'POST',
      path: '/certificates:remove',
      changed: async () => !(await registered()).includes(b64(t)),
    });
  });

  test('two concurrent removals never delete the last certificate', async () => {
    let interleavings = 0;
    for (let nth = 1; ; nth++) {
      await ensure([m, s]);
      // A removes s, B removes m: each alone leaves one certificate, both together none.
      const r = await race.run(
        nth,
        () => call('POST', '/certificates:remove', certJws(m, s)),
        () => call('POST', '/certificates:remove', certJws(m, m)),
      );
      if (!r) break;
      interleavings++;
      const where = `A held after its certificate read #${nth}`;
      const left = await registered();
      assert.ok(left.length >= 1, `${where}: both removals were answered 200 and no policy-management certificate is left (locked out)`);
      const [ok, refused] = r.a.status === 200 ? [r.a, r.b] : [r.b, r.a];
      assert.equal(ok.status, 200, `${where}: ${ok.text}`);
      assert.equal(refused.status, 400, `${where}: ${refused.text}`);
      assert.equal(refused.json().error.code, 'attestation.policy_invalid');
      assert.match(refused.json().error.message, /last policy-management certificate/);
      assert.equal(left.length, 1, where);
      if (!left.includes(b64(m))) {
        // m was removed, so s is the last one: bring m back for the next interleaving, signed by s.
        assert.equal((await call('POST', '/certificates:add', certJws(s, m))).status, 200);
      }
    }
    assert.ok(interleavings >= 1, 'A never read the certificate table');
  });
});
