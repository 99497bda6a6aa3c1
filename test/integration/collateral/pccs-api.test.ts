/**
 * The PCCS API as Intel's PCCS defines it (DCAP QuoteGeneration/pccs: routes/index.js, controllers/*,
 * middleware/auth.js and addRequestId.js, constants/pccs_status_code.js) and the PCS routes its tools
 * call (PCS API v4: fmspcs, POST pckcert(s)): status codes, headers, body encodings, error shapes,
 * tokens. The recorded Intel PCS answers under test/vectors are the upstream.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { derToPem } from '../../../src/core/x509.js';
import { readFixture, readFixtureJson, skipWithoutFixtures } from '../../fixtures.js';
import { type PcsStandin, STANDIN_PLATFORMS, pckCertAnswer, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const ADMIN = 'pccs-admin';
const USER = 'pccs-user';
const sha512 = (s: string) => createHash('sha512').update(s).digest('hex');
const ROOT_CDP = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
/** An appraisal policy JWT of the shape Intel's tools produce (header.payload.signature). */
const policyJwt = (classId: string, n = 1) => `${b64url({ alg: 'ES384', typ: 'JWT' })}.${b64url({ policy_payload: JSON.stringify({ id: `policy-${n}`, policy_array: [{ environment: { class_id: classId, description: 'Application TD TCB 1.5' }, reference: { accepted_tcb_status: ['UpToDate'] } }] }) })}.${Buffer.from(`sig${n}`).toString('base64url')}`;
const TDX15 = 'f708b97f-0fb2-4e6b-8b03-8a5bcd1221d3';

describe('PCCS API (lazy mode, tokens configured)', { skip }, () => {
  let up: PcsStandin;
  let server: TestServer;
  let clock = new Date('2025-06-20T00:00:00Z');
  before(async () => {
    up = await startPcsStandin('sgx-phala');
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url, upstreamAmd: up.url, pccsAdminTokenHash: sha512(ADMIN), pccsUserTokenHash: sha512(USER) }, { now: () => clock });
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });

  test('Request-ID on every answer, errors and unknown routes included: echoed when sent, else 32 hex', async () => {
    for (const url of ['/sgx/certification/v4/qe/identity', '/sgx/certification/v4/tcb?fmspc=zz', '/sgx/certification/v4/nope', '/tdx/certification/v4/platforms', '/vlek/v1/Nope/crl']) {
      const r = await server.send('GET', url);
      assert.match(String(r.headers['request-id']), /^[0-9a-f]{32}$/, url);
      const echoed = await server.send('GET', url, { headers: { 'Request-ID': 'client-chosen-id-42' } });
      assert.equal(echoed.headers['request-id'], 'client-chosen-id-42', url);
    }
  });

  test('errors: PCCS status and message, Intel Error-Code for 400s, Conclave code alongside, reason in the body', async () => {
    const bad = await server.send('GET', '/sgx/certification/v4/tcb?fmspc=12');
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['error-code'], 'InvalidRequestSyntax');
    assert.equal(bad.headers['error-message'], 'Invalid request parameters.');
    assert.equal(bad.headers['x-conclave-error-code'], 'request.invalid');
    assert.match(bad.text, /fmspc/);
    const unauth = await server.send('GET', '/sgx/certification/v4/platforms');
    assert.equal(unauth.status, 401);
    assert.equal(unauth.headers['error-message'], 'Authentication failed.');
    const missing = await server.send('GET', '/sgx/certification/v4/appraisalpolicy?fmspc=00A067110000');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['error-message'], 'No cache data for this platform.');
  });

  test('crl?uri=: the root CA CDP and PCK CRL URLs answer the cached CRL as DER (QCNL 3.1); other URIs are refused', async () => {
    const root = await server.send('GET', `/sgx/certification/v4/crl?uri=${ROOT_CDP}`);
    assert.equal(root.status, 200);
    assert.equal(root.headers['content-type'], 'application/pkix-crl');
    assert.deepEqual(root.raw, readFixture('intel', 'sgx-v3-phala', 'root_ca_crl.der'));
    const v3 = await server.send('GET', `/sgx/certification/v3/crl?uri=${encodeURIComponent(ROOT_CDP)}`);
    assert.deepEqual(v3.raw, root.raw);
    const pck = await server.send('GET', `/sgx/certification/v4/crl?uri=${encodeURIComponent('https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der')}`);
    assert.deepEqual(pck.raw, readFixture('intel', 'sgx-v3-phala', 'pck_crl.der'));
    const pem = await server.send('GET', `/sgx/certification/v4/crl?uri=${encodeURIComponent('https://api.trustedservices.intel.com/sgx/certification/v3/pckcrl?ca=processor')}`);
    assert.equal(pem.text, derToPem(readFixture('intel', 'sgx-v3-phala', 'pck_crl.der'), 'X509 CRL'));
    for (const uri of ['https://evil.example/IntelSGXRootCA.der', 'http://certificates.trustedservices.intel.com/IntelSGXRootCA.der', 'https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=root', '']) {
      const r = await server.send('GET', `/sgx/certification/v4/crl?uri=${encodeURIComponent(uri)}`);
      assert.equal(r.status, 400, uri);
    }
    assert.equal((await server.send('GET', '/sgx/certification/v4/crl')).status, 400);
    assert.equal((await server.send('GET', `/metadata/THIM/sgx/certification/v4/crl?uri=${ROOT_CDP}`)).status, 400, 'THIM needs Metadata: true');
    const thim = await server.send('GET', `/metadata/THIM/sgx/certification/v4/crl?uri=${ROOT_CDP}`, { headers: { Metadata: 'true' } });
    assert.deepEqual(thim.raw, root.raw);
  });

  test('a CRL past its nextUpdate is still answered, with Warning: 110 (stale)', async () => {
    clock = new Date('2030-01-01T00:00:00Z');
    const r = await server.send('GET', `/sgx/certification/v4/crl?uri=${ROOT_CDP}&stale=1`);
    clock = new Date('2025-06-20T00:00:00Z');
    assert.equal(r.status, 200);
    assert.equal(r.headers.warning, '110 - "Response is Stale"');
  });

  test('appraisalpolicy: PUT with the admin token answers the SHA-384 id; GET serves the FMSPC default; a new default replaces it', async () => {
    const p1 = policyJwt(TDX15, 1);
    const body = { policy: p1, is_default: true, fmspc: '90c06f000000' };
    assert.equal((await server.send('PUT', '/sgx/certification/v4/appraisalpolicy', { body })).status, 401);
    assert.equal((await server.send('PUT', '/sgx/certification/v4/appraisalpolicy', { headers: { 'user-token': USER }, body })).status, 401, 'the user token registers platforms only');
    const put = await server.send('PUT', '/sgx/certification/v4/appraisalpolicy', { headers: { 'admin-token': ADMIN }, body });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.text, createHash('sha384').update(p1).digest('hex'));
    const got = await server.send('GET', '/sgx/certification/v4/appraisalpolicy?fmspc=90C06F000000');
    assert.equal(got.status, 200);
    assert.equal(got.text, p1);
    const p2 = policyJwt(TDX15, 2);
    assert.equal((await server.send('PUT', '/sgx/certification/v4/appraisalpolicy', { headers: { 'admin-token': ADMIN }, body: { ...body, policy: p2 } })).status, 200);
    const p3 = policyJwt(TDX15, 3);
    assert.equal((await server.send('PUT', '/sgx/certification/v4/appraisalpolicy', { headers: { authorization: `Bearer ${await server.adminToken()}` }, body: { ...body, policy: p3, is_default: false } })).status, 200);
    assert.equal((await server.send('GET', '/sgx/certification/v4/appraisalpolicy?fmspc=90C06F000000')).text, p2);
    for (const b of [{ ...body, policy: 'not-a-jwt' }, { ...body, policy: policyJwt('00000000-0000-0000-0000-000000000000') }, { ...body, fmspc: '12' }, { ...body, is_default: 'yes' }]) {
      const r = await server.send('PUT', '/sgx/certification/v4/appraisalpolicy', { headers: { 'admin-token': ADMIN }, body: b });
      assert.equal(r.status, 400, JSON.stringify(b).slice(0, 80));
    }
    // Attack: a class_id naming a member of Object.prototype (lower-cased, as class ids are compared) was
    // found by `id in CLASS_TYPES` on the prototype chain and taken for a platform policy of that "type".
    for (const classId of ['constructor', '__proto__', 'CONSTRUCTOR', 'hasownproperty']) {
      const r = await server.send('PUT', '/sgx/certification/v4/appraisalpolicy', { headers: { 'admin-token': ADMIN }, body: { ...body, policy: policyJwt(classId, 9) } });
      assert.equal(r.status, 400, `class_id ${classId}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.match(r.text, new RegExp(`unknown policy class_id ${classId.toLowerCase()}`), classId);
    }
    assert.equal((await server.send('GET', '/sgx/certification/v4/appraisalpolicy?fmspc=90C06F000000')).text, p2, 'the default is unchanged');
    assert.equal((await server.send('GET', '/sgx/certification/v4/appraisalpolicy?fmspc=XYZ')).status, 400);
  });

  test('POST platforms: 200 "Operation successful." with the user token (PCCS SHA-512 semantics); 401 without; body and ?update checked', async () => {
    const p = STANDIN_PLATFORMS[0];
    const body = { qe_id: p.qeId, pce_id: '0000', cpu_svn: '0B0B0202FF0100000000000000000000', pce_svn: '0D00', enc_ppid: p.encPpid };
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms', { body })).status, 401);
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': `${USER}x` }, body })).status, 401);
    const ok = await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': USER }, body });
    assert.equal(ok.status, 200);
    assert.equal(ok.text, 'Operation successful.');
    assert.equal((await server.send('POST', '/sgx/certification/v3/platforms?update=EARLY', { headers: { 'admin-token': ADMIN }, body })).status, 200, 'v3 and the admin token too');
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms?update=sometimes', { headers: { 'user-token': USER }, body })).status, 400);
    const { enc_ppid: _, ...noPpid } = body;
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': USER }, body: noPpid })).status, 400, 'no manifest: enc_ppid required');
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': USER }, body: { qe_id: p.qeId, pce_id: '0000', platform_manifest: p.manifest } })).status, 200, 'a manifest alone is enough');
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': USER }, body: { ...body, pce_id: '00000' } })).status, 400);
    assert.equal((await server.send('POST', '/metadata/THIM/sgx/certification/v4/platforms', { headers: { 'user-token': USER, Metadata: 'true' }, body })).status, 404, 'not on the THIM prefix');
  });

  test('GET platforms needs the admin token (not the user token); source is reg, reg_na or [FMSPC,…]', async () => {
    assert.equal((await server.send('GET', '/sgx/certification/v4/platforms', { headers: { 'user-token': USER } })).status, 401);
    const reg = await server.send('GET', '/sgx/certification/v4/platforms', { headers: { 'admin-token': ADMIN } });
    assert.equal(reg.status, 200);
    assert.equal(reg.headers['platform-count'], '0', 'lazy mode queues nothing');
    await server.send('GET', `/sgx/certification/v4/pckcert?qeid=${STANDIN_PLATFORMS[0].qeId}&encrypted_ppid=${'0'.repeat(768)}&cpusvn=0B0B0202FF0100000000000000000000&pcesvn=0D00&pceid=0000`);
    const cached = await server.send('GET', '/sgx/certification/v4/platforms?source=[00A067110000]', { headers: { 'admin-token': ADMIN } });
    assert.equal(cached.status, 200);
    assert.ok(cached.json().some((x: { qe_id: string; enc_ppid: string }) => x.qe_id === STANDIN_PLATFORMS[0].qeId));
    assert.equal((await server.send('GET', '/sgx/certification/v4/platforms?source=[]', { headers: { 'admin-token': ADMIN } })).status, 200);
    assert.equal((await server.send('GET', '/sgx/certification/v4/platforms?source=[0011]', { headers: { 'admin-token': ADMIN } })).status, 400);
    assert.equal((await server.send('GET', '/sgx/certification/v4/platforms?source=everything', { headers: { 'admin-token': ADMIN } })).status, 400);
  });

  test('GET/POST refresh (admin token): collateral, or type=certs for the PCK certificates of cached platforms', async () => {
    assert.equal((await server.send('POST', '/sgx/certification/v4/refresh')).status, 401);
    const before = up.count('/qe/identity');
    const r = await server.send('POST', '/sgx/certification/v4/refresh', { headers: { 'admin-token': ADMIN } });
    assert.equal(r.status, 200, r.text);
    assert.ok(up.count('/qe/identity') > before, 'the identities were fetched again');
    const pckFetches = () => up.requests.filter((q) => /\/pckcert(\?|$)/.test(q)).length;
    const n = pckFetches();
    const certs = await server.send('GET', '/sgx/certification/v4/refresh?type=certs&fmspc=00A067110000', { headers: { 'admin-token': ADMIN } });
    assert.equal(certs.status, 200, certs.text);
    assert.ok(pckFetches() > n, 'the certificates were fetched again');
    assert.ok(!up.requests.some((q) => q.includes(`encrypted_ppid=${'0'.repeat(768)}`)));
    assert.equal((await server.send('GET', '/sgx/certification/v4/refresh?type=everything', { headers: { 'admin-token': ADMIN } })).status, 400);
  });

  test('fmspcs (PCS v4): the upstream list, JSON', async () => {
    const r = await server.send('GET', '/sgx/certification/v4/fmspcs?platform=all');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.ok((r.json() as { fmspc: string; platform: string }[]).some((e) => e.fmspc === '00A067110000' && e.platform === 'E3'));
    assert.equal((await server.send('GET', '/sgx/certification/v4/fmspcs?platform=E7')).status, 400);
  });

  test('POST pckcert / pckcerts with a platform manifest go to the upstream as PCS JSON and come back verified', async () => {
    const p = STANDIN_PLATFORMS[1];
    const one = await server.send('POST', '/sgx/certification/v4/pckcert', { body: { platformManifest: p.manifest, cpusvn: '0B0B0202FF0100000000000000000000', pcesvn: '0D00', pceid: '0000' } });
    assert.equal(one.status, 200, one.text);
    assert.equal(one.headers['content-type'], 'application/x-pem-file');
    assert.equal(one.text, String(pckCertAnswer([...p.quote]).body));
    assert.equal(one.headers['sgx-tcbm'], '0B0B0202FF01000000000000000000000D00');
    assert.ok(up.requests.includes('POST /sgx/certification/v4/pckcert'));
    const many = await server.send('POST', '/sgx/certification/v4/pckcerts', { body: { platformManifest: p.manifest, pceid: '0000' } });
    assert.equal(many.status, 200, many.text);
    assert.equal(many.headers['content-type'], 'application/json');
    assert.equal(decodeURIComponent(many.json()[0].cert), String(pckCertAnswer([...p.quote]).body));
    const bad = await server.send('POST', '/sgx/certification/v4/pckcerts', { body: { platformManifest: 'not hex', pceid: '0000' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['error-code'], 'InvalidPlatformManifest');
    const unknown = await server.send('POST', '/sgx/certification/v4/pckcerts', { body: { platformManifest: 'C3'.repeat(64), pceid: '0000' } });
    assert.equal(unknown.status, 404);
  });

  test('AMD KDS VLEK CRL route: an upstream answer that does not verify against the ARK is refused, not cached', async () => {
    up.inject('/vlek/v1/Milan/crl', [{ status: 200, headers: { 'content-type': 'application/pkix-crl' }, body: Buffer.from('not a crl') }]);
    const r = await server.send('GET', '/vlek/v1/Milan/crl');
    assert.equal(r.status, 503);
    assert.equal((await server.send('GET', '/vlek/v1/Nope/crl')).status, 404);
  });
});

describe('PCCS API (offline mode)', { skip }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ services: 'collateral', collateralMode: 'offline', pccsAdminTokenHash: sha512(ADMIN) });
  });
  after(async () => server?.stop());

  test('refresh is refused (503): an offline cache is fed by uploads; unknown platforms are 461; fmspcs lists cached TCB infos', async () => {
    assert.equal((await server.send('POST', '/sgx/certification/v4/refresh', { headers: { 'admin-token': ADMIN } })).status, 503);
    const r = await server.send('GET', `/sgx/certification/v4/pckcert?qeid=AA&encrypted_ppid=${'0'.repeat(768)}&cpusvn=0B0B0202FF0100000000000000000000&pcesvn=0D00&pceid=0000`);
    assert.equal(r.status, 461);
    assert.equal(r.headers['error-message'], 'The platform was not found in the cache.');
    const f = await server.send('GET', '/sgx/certification/v4/fmspcs');
    assert.equal(f.status, 200);
    assert.deepEqual(f.json(), []);
    assert.equal((await server.send('GET', '/vlek/v1/Milan/crl')).status, 404);
    assert.ok(readFixtureJson('intel', 'sgx-v3-phala', 'expected.json'));
  });

  test('without a user-token hash configured, registration needs the admin token or bearer', async () => {
    const body = { qe_id: 'AA', pce_id: '0000', cpu_svn: '0B0B0202FF0100000000000000000000', pce_svn: '0D00', enc_ppid: 'A1'.repeat(384) };
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'user-token': USER }, body })).status, 401);
    assert.equal((await server.send('POST', '/sgx/certification/v4/platforms', { headers: { 'admin-token': ADMIN }, body })).status, 200);
  });
});
