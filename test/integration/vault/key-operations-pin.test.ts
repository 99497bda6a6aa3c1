/**
 * Pins (on either key protector) of what a key version refuses to do: disabled, anything; outside its nbf/exp
 * window, all but decrypt, unwrapKey and verify (as AKV); outside its key_ops; with an algorithm that is not
 * its own (curve, family, AES size) or a digest of another length; and verify answers `false`, never `true`
 * or an error, for a malformed signature.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestServer } from '../../helpers/server.js';
import { adminJson, akvCall, startVault } from './harness.js';

let server: TestServer;
const b64 = (n: number, fill = 0) => Buffer.alloc(n, fill).toString('base64url');

async function expect(status: number, code: string | undefined, method: string, path: string, body: unknown): Promise<any> {
  const r = await akvCall(server, method, path, body);
  assert.equal(r.status, status, `${path} ${JSON.stringify(body).slice(0, 120)}: ${JSON.stringify(r.json).slice(0, 300)}`);
  if (code !== undefined) assert.equal(r.json.error.innererror.code, code, path);
  return r.json;
}

describe('key operations refuse what the key version does not allow', () => {
  before(async () => {
    server = await startVault({ flags: { maintenanceInterval: 0 } });
  });
  after(() => server?.stop());

  test('a disabled version refuses every operation (403); outside nbf/exp only decrypt, unwrapKey and verify still work (AKV)', async () => {
    const now = Math.floor(Date.now() / 1000);
    // AKV: "Not-yet-valid and expired keys, outside the nbf / exp window, will work for decrypt, unwrap, and
    // verify operations" (a key tested before it goes live, data made while it was valid recovered after).
    const ops = [
      ['sign', { alg: 'RS256', value: b64(32) }, false],
      ['verify', { alg: 'RS256', digest: b64(32), value: b64(256) }, true],
      ['encrypt', { alg: 'RSA-OAEP-256', value: b64(16) }, false],
      ['decrypt', { alg: 'RSA-OAEP-256' }, true],
      ['wrapKey', { alg: 'RSA-OAEP-256', value: b64(32) }, false],
      ['unwrapKey', { alg: 'RSA-OAEP-256' }, true],
    ] as const;
    for (const [name, attributes] of [['win-disabled', { enabled: false }], ['win-nbf', { nbf: now + 3600 }], ['win-exp', { exp: now + 3600 }]] as const) {
      await expect(200, undefined, 'POST', `/keys/${name}/create`, { kty: 'RSA', key_size: 2048, attributes });
    }
    // A ciphertext made while win-exp was valid, then win-exp expired.
    const made = await expect(200, undefined, 'POST', '/keys/win-exp/encrypt', { alg: 'RSA-OAEP-256', value: b64(16, 7) });
    await expect(200, undefined, 'PATCH', '/keys/win-exp', { attributes: { exp: now - 1 } });
    for (const [name, dateOnly] of [['win-disabled', false], ['win-nbf', true], ['win-exp', true]] as const) {
      for (const [op, body, exempt] of ops) {
        const full = op === 'decrypt' || op === 'unwrapKey' ? { ...body, value: made.value } : body;
        if (dateOnly && exempt) {
          const r = await akvCall(server, 'POST', `/keys/${name}/${op}`, full);
          assert.notEqual(r.status, 403, `${name} ${op}: ${JSON.stringify(r.json)}`);
          if (name === 'win-exp' && op !== 'verify') assert.equal(r.json.value, b64(16, 7), `${name} ${op} recovers the plaintext`);
        } else {
          await expect(403, 'key.operation_not_allowed', 'POST', `/keys/${name}/${op}`, full);
        }
      }
    }
  });

  test('an operation outside key_ops is refused (403): decrypt, encrypt, verify on a sign-only key', async () => {
    await expect(200, undefined, 'POST', '/keys/ops-sign-only/create', { kty: 'RSA', key_size: 2048, key_ops: ['sign'] });
    await expect(200, undefined, 'POST', '/keys/ops-sign-only/sign', { alg: 'RS256', value: b64(32) });
    for (const [op, body] of [
      ['decrypt', { alg: 'RSA-OAEP', value: b64(256) }],
      ['encrypt', { alg: 'RSA-OAEP', value: b64(16) }],
      ['unwrapKey', { alg: 'RSA-OAEP', value: b64(256) }],
      ['verify', { alg: 'RS256', digest: b64(32), value: b64(256) }],
    ] as const) {
      await expect(403, 'key.operation_not_allowed', 'POST', `/keys/ops-sign-only/${op}`, body);
    }
  });

  test("an algorithm that is not the key's, or a digest of another length, is a 400", async () => {
    await expect(200, undefined, 'POST', '/keys/alg-p256/create', { kty: 'EC', crv: 'P-256' });
    await expect(200, undefined, 'POST', '/keys/alg-p384/create', { kty: 'EC', crv: 'P-384' });
    await expect(200, undefined, 'POST', '/keys/alg-rsa/create', { kty: 'RSA', key_size: 2048 });
    await expect(200, undefined, 'POST', '/keys/alg-oct128/create', { kty: 'oct-HSM', key_size: 128 });
    const cases: [string, string, unknown][] = [
      ['alg-p384', 'sign', { alg: 'ES256', value: b64(32) }],
      ['alg-p256', 'sign', { alg: 'ES384', value: b64(48) }],
      ['alg-p256', 'sign', { alg: 'ES256K', value: b64(32) }],
      ['alg-p256', 'sign', { alg: 'RS256', value: b64(32) }],
      ['alg-p256', 'verify', { alg: 'ES384', digest: b64(48), value: b64(96) }],
      // With an empty signature as well: the curve is the key's or the request is refused, before any signature is
      // looked at (462a939 answered false for these on the PKCS#11 protector, where the software one refuses them).
      ['alg-p256', 'verify', { alg: 'ES384', digest: b64(48), value: b64(0) }],
      ['alg-p384', 'verify', { alg: 'ES256', digest: b64(32), value: b64(0) }],
      ['alg-p256', 'verify', { alg: 'ES256K', digest: b64(32), value: b64(0) }],
      ['alg-rsa', 'sign', { alg: 'ES256', value: b64(32) }],
      ['alg-oct128', 'encrypt', { alg: 'RSA-OAEP-256', value: b64(16) }],
      ['alg-oct128', 'wrapKey', { alg: 'A256KW', value: b64(16) }],
      ['alg-oct128', 'wrapKey', { alg: 'A192KW', value: b64(16) }],
      ['alg-oct128', 'encrypt', { alg: 'A256GCM', value: b64(16) }],
      ['alg-rsa', 'encrypt', { alg: 'A128GCM', value: b64(16) }],
    ];
    // Every digest algorithm takes exactly its hash's length: one byte short or long, or another hash's, is refused.
    for (const [alg, len, key] of [['RS256', 32, 'alg-rsa'], ['RS384', 48, 'alg-rsa'], ['RS512', 64, 'alg-rsa'], ['PS256', 32, 'alg-rsa'], ['PS384', 48, 'alg-rsa'], ['PS512', 64, 'alg-rsa'], ['ES256', 32, 'alg-p256'], ['ES384', 48, 'alg-p384']] as const) {
      for (const wrong of [len - 1, len + 1, len === 32 ? 48 : 32, 0]) {
        cases.push([key, 'sign', { alg, value: b64(wrong) }], [key, 'verify', { alg, digest: b64(wrong), value: b64(key === 'alg-rsa' ? 256 : 2 * len) }]);
      }
    }
    for (const [key, op, body] of cases) await expect(400, 'key.invalid', 'POST', `/keys/${key}/${op}`, body);
    // A value that is not base64url is a 400 before any key is used.
    await expect(400, 'request.invalid', 'POST', '/keys/alg-rsa/sign', { alg: 'RS256', value: 'not base64url!' });
    await expect(400, 'request.invalid', 'POST', '/keys/alg-rsa/verify', { alg: 'RS256', digest: b64(32), value: 'a.b' });
  });

  test('verify answers false, never true or an error, for a malformed signature', async () => {
    const digest = (n: number) => b64(n, 7);
    for (const [key, alg, len, sigLen] of [['alg-rsa', 'RS256', 32, 256], ['alg-rsa', 'PS256', 32, 256], ['alg-p256', 'ES256', 32, 64], ['alg-p384', 'ES384', 48, 96]] as const) {
      const good = (await expect(200, undefined, 'POST', `/keys/${key}/sign`, { alg, value: digest(len) })).value as string;
      const raw = Buffer.from(good, 'base64url');
      const flipped = Buffer.from(raw);
      flipped[flipped.length - 1]! ^= 1;
      const malformed = [b64(1, 1), b64(sigLen), b64(sigLen, 0xff), b64(sigLen + 1, 1), raw.subarray(1).toString('base64url'), Buffer.concat([raw, Buffer.of(0)]).toString('base64url'), flipped.toString('base64url')];
      assert.equal((await expect(200, undefined, 'POST', `/keys/${key}/verify`, { alg, digest: digest(len), value: good })).value, true, `${alg}: its own signature`);
      // An empty signature too: the PKCS#11 protector passed it to the token, which refused the call (400 hsm.mechanism_unsupported).
      for (const value of [b64(0), ...malformed]) {
        const r = await expect(200, undefined, 'POST', `/keys/${key}/verify`, { alg, digest: digest(len), value });
        assert.equal(r.value, false, `${alg} ${value.slice(0, 24)}`);
      }
    }
  });

  test('an RSA signature verifies only as the k octets it is (RFC 8017 §8.1.2, §8.2.2 step 1): not without its leading zero octet', async () => {
    // Attack: the software protector read the signature as a number, so one that begins with 0x00 also verified
    // with that octet removed (true for a second encoding of the same signature), where RSASSA-PSS-VERIFY and
    // RSASSA-PKCS1-V1_5-VERIFY answer invalid for any length but k, as a PKCS#11 token does.
    for (const alg of ['RS256', 'PS256', 'RSNULL'] as const) {
      let found: { digest: string; sig: Buffer } | undefined;
      for (let i = 0; i < 4000 && !found; i++) {
        const digest = Buffer.alloc(32);
        digest.writeUInt32BE(i);
        const sig = Buffer.from((await expect(200, undefined, 'POST', '/keys/alg-rsa/sign', { alg, value: digest.toString('base64url') })).value, 'base64url');
        if (sig.length === 256 && sig[0] === 0) found = { digest: digest.toString('base64url'), sig };
      }
      assert.ok(found, `${alg}: a signature beginning with 0x00 within 4000 signatures`);
      const body = (value: Buffer) => ({ alg, digest: found!.digest, value: value.toString('base64url') });
      assert.equal((await expect(200, undefined, 'POST', '/keys/alg-rsa/verify', body(found.sig))).value, true, `${alg}: the signature as made`);
      assert.equal((await expect(200, undefined, 'POST', '/keys/alg-rsa/verify', body(found.sig.subarray(1)))).value, false, `${alg}: without its leading zero octet`);
    }
  });

  test('an unknown signature algorithm name is refused without being written to the audit log or echoed whole', async () => {
    // Attack: sign and verify recorded the caller's alg in the audit record (detail.alg and the message) before
    // checking it, and echoed it: whoever may sign with one key wrote 1.2 MB to the append-only log per request
    // (a 600 kB alg), where an unknown encryption algorithm's name is cut to 64 characters and not recorded.
    const alg = `RS${'9'.repeat(100_000)}`;
    for (const [op, body] of [['sign', { alg, value: b64(32) }], ['verify', { alg, digest: b64(32), value: b64(256) }]] as const) {
      const r = await akvCall(server, 'POST', `/keys/alg-rsa/${op}`, body);
      assert.equal(r.status, 400, op);
      assert.equal(r.json.error.innererror.code, 'key.invalid', op);
      assert.ok(JSON.stringify(r.json).length < 1024, `${op}: the answer holds ${JSON.stringify(r.json).length} characters`);
    }
    const audit = await adminJson(server, 'GET', '/admin/vault/audit?from=1&limit=100000');
    const records = audit.json.value.map((x: { record: any }) => x.record).filter((x: any) => (x.operation === 'sign' || x.operation === 'verify') && x.result === 'failed');
    assert.ok(records.length >= 2);
    for (const rec of records) assert.ok(JSON.stringify(rec).length < 4096, `${rec.operation}: an audit record of ${JSON.stringify(rec).length} characters`);
  });
});
