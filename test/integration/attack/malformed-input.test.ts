/**
 * #14 item 6: malformed input gets a typed 400, never a 500, for each input the probe found, and JSON
 * nested deeper than MAX_JSON_DEPTH is refused at the edge (before any handler, or a log line, walks
 * it), whatever the route. The route fuzz (route-fuzz.test.ts) covers the same class over every route.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_JSON_DEPTH } from '../../../src/core/json.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const deepArray = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('malformed input: typed 400s', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await startTestServer({ simulate: true, pccsUserTokenHash: 'b'.repeat(128) });
    auth = { authorization: `Bearer ${await server.adminToken()}` };
  });
  after(() => server?.stop());

  const assert400 = (r: { status: number; text: string }, what: string, message?: RegExp) => {
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
    if (message) assert.match(r.text, message, what);
  };

  test('JSON bodies nested deeper than the limit are refused at the edge on every kind of route', async () => {
    const deep = deepArray(MAX_JSON_DEPTH + 1);
    const routes: [string, string, Record<string, string>][] = [
      ['POST', '/attest/SgxEnclave?api-version=2022-08-01', {}],
      ['POST', '/keys/k/create?api-version=7.4', auth],
      ['PUT', '/admin/vault/authorities', auth],
      ['PUT', '/admin/vault/roleAssignments', auth],
      ['POST', '/admin/clients', auth],
      ['POST', '/sgx/certification/v4/platforms', { 'user-token': 'x' }],
      ['POST', '/no/such/route', {}],
    ];
    for (const [method, url, headers] of routes) {
      for (const body of [deep, deepArray(100_000), `{"a":${deep}}`]) {
        const r = await server.send(method, url, { headers: { ...headers, 'content-type': 'application/json' }, body });
        assert400(r, `${method} ${url}`, new RegExp(`nests deeper than ${MAX_JSON_DEPTH} levels`));
      }
    }
    // At the limit it is parsed (and refused or accepted by the route for what it says, not for its depth).
    const r = await server.send('POST', '/admin/clients', { headers: { ...auth, 'content-type': 'application/json' }, body: `{"displayName":"x","extra":${deepArray(MAX_JSON_DEPTH - 1)}}` });
    assert.doesNotMatch(r.text, /nests deeper/);
  });

  test('runtime data declared JSON that nests without end is a 400', async () => {
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: new TextEncoder().encode(deepArray(20_000)) });
    const body = { ...ev.body, runtimeData: { ...(ev.body as { runtimeData: object }).runtimeData, dataType: 'JSON' } };
    assert400(await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body }), 'runtimeData', /nests deeper/);
  });

  test('a $skiptoken that decodes to a huge, negative, fractional or non-number is a 400', async () => {
    for (const token of [b64('1e300'), b64('99999999999999999999999'), b64('9007199254740993'), b64('-1'), b64('1.5'), b64('x'), '%%%']) {
      for (const path of ['/keys', '/deletedkeys', '/keys/k/versions']) {
        assert400(await server.send('GET', `${path}?api-version=7.4&$skiptoken=${token}`, { headers: auth }), `${path} $skiptoken=${token}`);
      }
    }
  });

  test('a query parameter given twice is a 400 on every family (route fuzz: PCS routes read it as a string and answered 500)', async () => {
    for (const url of [
      '/sgx/certification/v4/qe/identity?update=early&update=standard',
      '/sgx/certification/v4/rootcacrl?encoding=der&encoding=pem',
      '/sgx/certification/v4/pckcrl?ca=platform&ca=processor',
      '/sgx/certification/v4/platforms?source=reg&source=reg',
      '/keys?api-version=7.4&api-version=7.5',
      '/attest/SgxEnclave?api-version=2022-08-01&api-version=2022-08-01',
      '/log/sth?x=1&x=2',
    ]) {
      assert400(await server.send('GET', url, { headers: auth }), url, /given more than once/);
    }
  });

  test('non-numbers and huge numbers in the audit and log queries are 400s', async () => {
    for (const q of ['from=yesterday', 'from=2024-01-01T00:00:00Z', 'from=1e300', 'from=-1', 'limit=abc', 'limit=1e400']) {
      assert400(await server.send('GET', `/admin/vault/audit?${q}`, { headers: auth }), `audit ${q}`);
    }
    for (const q of ['from=x&to=1', 'from=0&to=99999999999999999999']) assert400(await server.send('GET', `/log/proof/consistency?${q}`), `consistency ${q}`);
  });

  test('a policy reset or set whose JWS header is not JSON is a 400', async () => {
    const headers = { ...auth, 'content-type': 'text/plain' };
    for (const jws of [`${b64('not json')}.${b64('{}')}.`, `${b64(deepArray(5000))}.${b64('{}')}.`, `${b64('{"alg":"none"}')}.${b64(deepArray(5000))}.`, `${b64('[1]')}.e30.`]) {
      assert400(await server.send('POST', '/policies/SgxEnclave:reset?api-version=2022-08-01', { headers, body: jws }), `reset ${jws.slice(0, 30)}`);
      assert400(await server.send('PUT', '/policies/SgxEnclave?api-version=2022-08-01', { headers, body: jws }), `set ${jws.slice(0, 30)}`);
    }
  });

  test('sign and verify with an alg that names a member of Object.prototype are 400s on an HMAC-capable oct key', async () => {
    // Attack: the software protector took `alg in HMAC_HASH` for an HMAC algorithm, and `in` reads the
    // prototype chain, so `toString`, `constructor`, `__proto__`, … went to createHmac with a function or an
    // object as the hash name: a TypeError, answered 500. Only an oct key whose key_ops hold sign/verify
    // gets that far (any other key is refused as not oct first).
    const created = await server.send('POST', '/keys/hmac-proto/create?api-version=7.4', { headers: auth, body: { kty: 'oct-HSM', key_size: 256, key_ops: ['sign', 'verify'] } });
    assert.equal(created.status, 200, created.text);
    const value = b64('x'.repeat(32));
    for (const alg of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
      const signed = await server.send('POST', '/keys/hmac-proto/sign?api-version=7.4', { headers: auth, body: { alg, value } });
      assert400(signed, `sign alg ${alg}`);
      assert.equal(signed.json().error.innererror.code, 'key.invalid', `sign alg ${alg}`);
      const verified = await server.send('POST', '/keys/hmac-proto/verify?api-version=7.4', { headers: auth, body: { alg, digest: value, value } });
      assert400(verified, `verify alg ${alg}`);
      assert.equal(verified.json().error.innererror.code, 'key.invalid', `verify alg ${alg}`);
    }
    // The HMAC algorithms themselves still sign with that key (a PKCS#11 token has no HMAC on its AES keys: 400).
    assert.equal((await server.send('POST', '/keys/hmac-proto/sign?api-version=7.4', { headers: auth, body: { alg: 'HS256', value } })).status, process.env.CONCLAVE_TEST_HSM === 'softhsm' ? 400 : 200);
  });

  test('sign and verify with an alg outside the signature algorithms are 400s on RSA and EC keys, and the key protector keeps answering', async () => {
    // On the PKCS#11 protector (the hsm pass), RS256K and PS256K threw a TypeError inside the token session
    // (before 18f97b0), which was taken for a lost device (before eff7914): 503, the token connection dropped,
    // and every caller after it sent through the reconnection backoff. Each refusal here is followed by a
    // valid signature, which must be answered at once.
    const rsa = await server.send('POST', '/keys/alg-rsa/create?api-version=7.4', { headers: auth, body: { kty: 'RSA-HSM', key_size: 2048 } });
    assert.equal(rsa.status, 200, rsa.text);
    const ec = await server.send('POST', '/keys/alg-ec/create?api-version=7.4', { headers: auth, body: { kty: 'EC-HSM', crv: 'P-256' } });
    assert.equal(ec.status, 200, ec.text);
    const value = b64('x'.repeat(32));
    const cases: [string, string, string][] = [
      ['alg-rsa', 'toString', 'RS256'],
      ['alg-rsa', 'RS256K', 'RS256'],
      ['alg-rsa', 'PS256K', 'PS256'],
      ['alg-rsa', 'RStoString', 'RS256'],
      ['alg-ec', 'ES__proto__', 'ES256'],
      ['alg-ec', 'toString', 'ES256'],
      ['alg-ec', 'ES256KK', 'ES256'],
    ];
    for (const [key, alg, good] of cases) {
      for (const [op, body] of [['sign', { alg, value }], ['verify', { alg, digest: value, value }]] as const) {
        const r = await server.send('POST', `/keys/${key}/${op}?api-version=7.4`, { headers: auth, body });
        assert400(r, `${op} ${alg} on ${key}`);
        assert.equal(r.json().error.innererror.code, 'key.invalid', `${op} ${alg} on ${key}`);
        const after = await server.send('POST', `/keys/${key}/sign?api-version=7.4`, { headers: auth, body: { alg: good, value } });
        assert.equal(after.status, 200, `sign ${good} on ${key} after ${op} ${alg}: ${after.status} ${after.text.slice(0, 200)}`);
      }
    }
  });

  test('a NUL character in a key name, a principal id or a client_id is a 4xx on every store', async () => {
    // Attack: PostgreSQL text cannot hold U+0000, so on that store any string reaching a query with one (a key
    // name in the path, a principalId, a display name, and a client_id at the token endpoint, which needs no
    // credential) failed the query with SQLSTATE 22021 and was answered 500 (route fuzz sends NULs in bodies,
    // which the schemas mostly refuse first; SQLite stores them).
    const requests: [string, string, object | undefined][] = [
      ['GET', '/keys/a%00b?api-version=7.4', undefined],
      ['GET', '/keys/a%00b/versions?api-version=7.4', undefined],
      ['GET', '/deletedkeys/a%00b?api-version=7.4', undefined],
      ['POST', '/keys/a%00b/sign?api-version=7.4', { alg: 'ES256', value: b64('x'.repeat(32)) }],
      ['PUT', '/keys/k/providers/Microsoft.Authorization/roleAssignments/11111111-2222-3333-4444-555555555555?api-version=7.4', { properties: { roleDefinitionId: 'Key Vault Reader', principalId: 'a\u0000b' } }],
      ['PUT', '/admin/vault/roleAssignments', { principalId: 'a\u0000b', role: 'Key Vault Reader', scope: '/' }],
      ['POST', '/admin/clients', { displayName: 'a\u0000b' }],
    ];
    for (const [method, url, body] of requests) {
      const r = await server.send(method, url, { headers: auth, ...(body ? { body } : {}) });
      assert.ok(r.status >= 400 ? r.status < 500 : r.status < 300, `${method} ${url}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    const token = await server.send('POST', '/oauth2/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=a%00b&client_secret=x' });
    assert.ok(token.status >= 400 && token.status < 500, `token endpoint: ${token.status} ${token.text}`);
  });

  test('a vault request carrying a NUL leaves its audit record on every store, the NUL kept', async () => {
    // docs/audit.md: every call leaves a record. On PostgreSQL such a request fails its query (22021) and is
    // refused; its record must still be written, and keep the caller's text as sent (an entry is canonical
    // JSON, which writes U+0000 as \u0000, so the entry text PostgreSQL stores holds no NUL), so that a
    // request for `a<NUL>b` never reads as one for `ab`.
    const audit = async (from: number) => {
      const r = await server.send('GET', `/admin/vault/audit?from=${from}&limit=1000`, { headers: auth });
      assert.equal(r.status, 200, r.text);
      return (r.json().value as { index: number; record: Record<string, any> }[]).map((x) => x.record);
    };
    const from = (await audit(0)).length;
    const created = await server.send('POST', '/keys/nul-audit/create?api-version=7.4', { headers: auth, body: { kty: 'EC-HSM', crv: 'P-256' } });
    assert.equal(created.status, 200, created.text);
    const calls: [string, string, object | undefined][] = [
      ['GET', '/keys/a%00b?api-version=7.4', undefined],
      ['GET', '/keys/ab?api-version=7.4', undefined],
      ['POST', '/keys/a%00b/sign?api-version=7.4', { alg: 'ES256', value: b64('x'.repeat(32)) }],
      ['POST', '/keys/nul-audit/sign?api-version=7.4', { alg: 'ES256\u0000', value: b64('x'.repeat(32)) }],
      ['PUT', '/keys/k/providers/Microsoft.Authorization/roleAssignments/21111111-2222-3333-4444-555555555555?api-version=7.4', { properties: { roleDefinitionId: 'Key Vault Reader', principalId: 'nul\u0000principal' } }],
    ];
    const statuses: number[] = [];
    for (const [method, url, body] of calls) statuses.push((await server.send(method, url, { headers: auth, ...(body ? { body } : {}) })).status);
    const records = await audit(from);
    const one = (what: string, pred: (r: Record<string, any>) => boolean) => {
      const found = records.filter(pred);
      assert.equal(found.length, 1, `${what}: ${found.length} records among ${JSON.stringify(records).slice(0, 2000)}`);
      return found[0]!;
    };
    const getNul = one('get a<NUL>b', (r) => r.operation === 'get' && r.key === 'a\u0000b');
    assert.equal(getNul.status, statuses[0]);
    assert.equal(getNul.result, 'failed');
    const getAb = one('get ab', (r) => r.operation === 'get' && r.key === 'ab');
    assert.equal(getAb.status, statuses[1]);
    assert.notEqual(getNul.entryId, getAb.entryId);
    assert.equal(one('sign a<NUL>b', (r) => r.operation === 'sign' && r.key === 'a\u0000b').status, statuses[2]);
    const badAlg = one('sign alg ES256<NUL>', (r) => r.operation === 'sign' && r.key === 'nul-audit' && r.result === 'failed');
    assert.equal(badAlg.status, 400);
    assert.equal(badAlg.message, 'Unsupported signature algorithm ES256\u0000');
    const assignment = one('role assignment for nul<NUL>principal', (r) => r.detail?.principalId === 'nul\u0000principal');
    // SQLite keeps it (201; a success record says 200), PostgreSQL refuses it (400).
    if (statuses[4]! < 300) assert.equal(assignment.result, 'success');
    else assert.equal(assignment.status, statuses[4]);
  });

  test('non-string fields in admin bodies are 400s', async () => {
    for (const v of [{}, [], 1, true, null, ['x']]) {
      assert400(await server.send('POST', '/admin/clients', { headers: auth, body: { displayName: v } }), `displayName ${JSON.stringify(v)}`);
      assert400(await server.send('PUT', '/admin/vault/roleAssignments', { headers: auth, body: { principalId: v, role: 'Key Vault Reader', scope: '/' } }), `principalId ${JSON.stringify(v)}`);
      assert400(await server.send('PUT', '/admin/vault/roleAssignments', { headers: auth, body: { principalId: 'p', role: v, scope: '/' } }), `role ${JSON.stringify(v)}`);
      assert400(await server.send('PUT', '/admin/vault/authorities', { headers: auth, body: { authorities: [v] } }), `authorities [${JSON.stringify(v)}]`);
    }
  });

  test('a platform manifest (or any registration field) that is an object is a 400', async () => {
    const headers = { authorization: auth.authorization! };
    for (const field of ['platform_manifest', 'qe_id', 'pce_id', 'cpu_svn', 'pce_svn', 'enc_ppid']) {
      for (const v of [{ a: 1 }, [1], 12]) {
        const body = { qe_id: '00'.repeat(16), pce_id: '0000', cpu_svn: '00'.repeat(16), pce_svn: '0000', enc_ppid: '00'.repeat(384), [field]: v };
        assert400(await server.send('POST', '/sgx/certification/v4/platforms', { headers, body }), `${field}=${JSON.stringify(v)}`);
      }
    }
  });
});
