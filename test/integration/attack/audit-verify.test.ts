/**
 * #14 item 10: `audit verify` over the admin API must not hold the event loop for the whole log (the
 * probe measured 1.8 s at 100k records). The test asserts ordering, not time: while one verification of
 * a large log is in flight over HTTPS, health checks sent one after another keep being answered, several
 * of them before the verification's answer arrives. A verification that holds the loop from its first
 * page to its last answers every probe sent after it started only after it has finished.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogAppender } from '../../../src/storage/log-store.js';
import { waitSequenced } from '../../helpers/log.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const ENTRIES = 40_000;

describe('audit verify over the admin API', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ logBatchMs: 5 });
    const db = server.ctx.db;
    // Through the audit's own group-commit writer, 2000 appends at a time: a few multi-row INSERTs per
    // round instead of one statement per entry (40,000 round trips to PostgreSQL).
    const appender = createLogAppender(db);
    const chunk = 2000;
    for (let i = 0; i < ENTRIES; i += chunk) {
      await Promise.all(Array.from({ length: chunk }, (_, k) => appender.append(JSON.stringify({ operation: 'probe', key: `k${i + k}`, result: 'success', at: i + k }), 1_700_000_000_000 + i + k)));
    }
    await waitSequenced(db, 120_000);
  });
  after(() => server?.stop());

  test('health checks are answered while a verification of a large log is in flight', async () => {
    const headers = { authorization: `Bearer ${await server.adminToken()}` };
    assert.equal((await server.sendHttps('GET', '/healthz')).status, 200);
    let done = false;
    const verification = server.sendHttps('GET', '/admin/vault/audit/verify', { headers }).finally(() => {
      done = true;
    });
    let answeredDuring = 0;
    while (!done) {
      const h = await server.sendHttps('GET', '/healthz');
      assert.equal(h.status, 200);
      if (!done) answeredDuring++;
    }
    const v = await verification;
    assert.equal(v.status, 200, v.text.slice(0, 300));
    assert.equal(v.json().ok, true, v.text.slice(0, 300));
    assert.ok(v.json().entries >= ENTRIES, v.text.slice(0, 300));
    assert.ok(answeredDuring >= 3, `only ${answeredDuring} health checks were answered while the verification ran`);
  });
});
