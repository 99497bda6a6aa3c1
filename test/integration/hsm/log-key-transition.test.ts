/**
 * docs/audit.md, GET /admin/vault/audit/verify: a server verifies its log against the log keys it holds,
 * never a certificate row of the store. One data dir, three starts: without --hsm (the software log key,
 * sealed under the master key, signs), then with --hsm (the token's log key signs; the software key, opened
 * from its sealed row, still vouches for the heads from before), then without --hsm again. The first two
 * verify. The third cannot vouch for the token-signed heads (it holds no token; the token key's certificate
 * row is what a store writer could plant): it must say so as a verification failure naming the cause and
 * the ways to verify (a 200 with ok false, log.signature_invalid), not a bare "not a trusted log key".
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { waitSequenced } from '../../helpers/log.js';
import { startTestServer, type TestServer, tempDir } from '../../helpers/server.js';
import { sharedSoftHsm, skipWithoutSoftHsm } from '../../helpers/softhsm.js';

const skip = skipWithoutSoftHsm();

describe('the log verifies across turning --hsm on, and says why it cannot after turning it off', { skip }, () => {
  const dataDir = tempDir();
  let server: TestServer | undefined;
  after(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const run = async (hsm: string | undefined, key: string) => {
    server = await startTestServer({ services: 'vault', hsm, logBatchMs: 5 }, { dataDir });
    const headers = { authorization: `Bearer ${await server.adminToken()}` };
    const created = await server.send('POST', `/keys/${key}/create?api-version=7.4`, { headers, body: { kty: 'EC', crv: 'P-256' } });
    assert.equal(created.status, 200, created.text.slice(0, 300));
    await waitSequenced(server.ctx.db);
    const r = await server.send('GET', '/admin/vault/audit/verify', { headers });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const alg = (JSON.parse((await server.send('GET', '/log/key')).text) as { alg: string }).alg;
    await server.stop();
    server = undefined;
    return { alg, verified: JSON.parse(r.text) as { ok: boolean; code?: string; message?: string; detail?: Record<string, unknown> } };
  };

  test('software, then --hsm, then software again', async () => {
    const token = sharedSoftHsm();
    const soft = await run(undefined, 'before-hsm');
    assert.equal(soft.alg, 'ES256');
    assert.equal(soft.verified.ok, true, JSON.stringify(soft.verified));

    const hsm = await run(token.spec, 'with-hsm');
    assert.equal(hsm.alg, 'RS256');
    assert.equal(hsm.verified.ok, true, `with --hsm the heads signed before the token verify with the sealed software key: ${JSON.stringify(hsm.verified)}`);

    const back = await run(undefined, 'after-hsm');
    assert.equal(back.alg, 'ES256');
    assert.equal(back.verified.ok, false, 'a server without the token cannot vouch for the heads the token signed');
    assert.equal(back.verified.code, 'log.signature_invalid');
    assert.match(back.verified.message ?? '', /HSM token's log key/, back.verified.message);
    assert.match(back.verified.message ?? '', /--hsm/);
    assert.match(back.verified.message ?? '', /--log-key/);
    assert.equal(back.verified.detail?.['reason'], 'hsm_log_key');
  });
});
