/**
 * #14 item 11: store corruption is answered with a typed error and a log line naming the object. A
 * flipped bit in a public key row is not served: the answer is `store.integrity` and the server logs an
 * error line that names the key version.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../../src/config/config.js';
import { startServer } from '../../../src/main.js';
import { injectClient } from '../../helpers/https.js';
import { tempDir } from '../../helpers/server.js';

test('a corrupt key row is store.integrity and an error log line names the key version', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  const server = await startServer(loadConfig({ flags: { port: 0, dataDir: tempDir(), services: 'vault' }, env: {} }), { logger: pino({ level: 'info' }, sink) });
  try {
    const send = injectClient(server.app, server.url);
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret }).toString();
    const token = (await send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).json().access_token;
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await send('POST', '/keys/bits/create?api-version=7.4', { headers: auth, body: { kty: 'EC', crv: 'P-256' } })).status, 200);
    const row = await server.ctx.db.get<{ public_jwk: string; version: string }>("SELECT public_jwk, version FROM vault_key_versions WHERE name = 'bits'");
    const jwk = JSON.parse(row!.public_jwk);
    jwk.x = (jwk.x[0] === 'A' ? 'B' : 'A') + jwk.x.slice(1);
    await server.ctx.db.run("UPDATE vault_key_versions SET public_jwk = ? WHERE name = 'bits'", [JSON.stringify(jwk)]);
    const r = await send('GET', '/keys/bits?api-version=7.4', { headers: auth });
    assert.notEqual(r.status, 200);
    assert.equal(r.json().error.innererror.code, 'store.integrity');
    assert.doesNotMatch(r.text, new RegExp(jwk.x), 'the changed key is not served');
    const logged = lines.find((l) => l.code === 'store.integrity');
    assert.ok(logged, `no log line for the corrupt row: ${JSON.stringify(lines.slice(-3))}`);
    assert.ok(Number(logged.level) >= 50, 'logged as an error');
    assert.match(String(logged.msg), new RegExp(`vault key bits version ${row!.version}`));
  } finally {
    await server.close();
  }
});
