import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { AttestationAdministrationClient, AttestationClient } from '@azure/attestation';
import { encodePolicyJws } from '../../../src/attestation/policy/index.js';
import { b64url, sha256, toHex } from '../../../src/core/bytes.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { newPolicySigner } from '../../helpers/policy-signer.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const runtimeJson = new TextEncoder().encode(JSON.stringify({ keys: [{ kty: 'RSA', kid: 'wk', key_ops: ['encrypt'], n: 'AQAB', e: 'AQAB' }] }));

/** A TokenCredential backed by our own token endpoint, as an operator would write one. */
function credentialFor(server: TestServer) {
  return { getToken: async () => ({ token: await server.adminToken(), expiresOnTimestamp: Date.now() + 3_000_000 }) };
}

function decode(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

describe('attestation service: MAA wire compatibility', async () => {
  let server: TestServer;
  let ca: string;
  let client: AttestationClient;
  let admin: AttestationAdministrationClient;
  before(async () => {
    server = await startTestServer({ simulate: true });
    ca = readFileSync(server.caPath, 'utf8');
    client = new AttestationClient(server.url, { tlsOptions: { ca } });
    admin = new AttestationAdministrationClient(server.url, credentialFor(server), { tlsOptions: { ca } });
  });
  after(() => server.stop());

  const sim = () => loadOrCreateSimulatedTee(server.dataDir);

  test('OpenID metadata and signers through @azure/attestation', async () => {
    const meta = (await client.getOpenIdMetadata()) as Record<string, unknown>;
    assert.equal(meta.issuer, server.url);
    assert.equal(meta.jwks_uri, `${server.url}/certs`);
    // Under --simulate: the production signer and the simulate-only one (docs/security.md).
    const signers = await client.getAttestationSigners();
    assert.equal(signers.length, 2);
    for (const s of signers) assert.match(s.certificates[0]!, /BEGIN CERTIFICATE/);
  });

  test('attestSgxEnclave with runtime JSON: the SDK validates the token and reads the claims', async () => {
    const ev = sim().evidence({ tee: 'sgx', runtimeData: runtimeJson, mrenclave: '11'.repeat(32) });
    const quote = Buffer.from(ev.body.quote as string, 'base64url');
    const r = await client.attestSgxEnclave(quote, { runTimeJson: runtimeJson });
    assert.equal(r.body.issuer, server.url);
    assert.equal(r.body.mrEnclave, '11'.repeat(32));
    assert.equal(r.body.verifierType, 'sgx');
    const claims = decode(r.token.serialize());
    assert.equal(claims['x-conclave-simulated'], true);
    assert.equal(claims['x-ms-sgx-is-debuggable'], false);
    assert.deepEqual(claims['x-ms-runtime'].keys[0].kid, 'wk');
    assert.equal(claims['x-ms-sgx-report-data'].slice(0, 64), toHex(sha256(runtimeJson)));
    assert.equal(claims['x-conclave-tcb-status'], 'UpToDate');
    assert.match(claims.jti, /^[0-9a-f]{64}$/);
    assert.equal(claims.exp - claims.iat, 8 * 3600);
    const header = JSON.parse(Buffer.from(r.token.serialize().split('.')[0]!, 'base64url').toString());
    assert.equal(header.alg, 'RS256');
    assert.equal(header.jku, `${server.url}/certs`);
  });

  test('attestOpenEnclave with binary runtime data (OE report header stripped)', async () => {
    const runtime = new TextEncoder().encode('binary runtime data');
    const ev = sim().evidence({ tee: 'sgx', runtimeData: runtime, runtimeDataType: 'Binary' });
    const quote = Buffer.from(ev.body.quote as string, 'base64url');
    const header = Buffer.alloc(16);
    header.writeUInt32LE(1, 0);
    header.writeUInt32LE(2, 4);
    header.writeBigUInt64LE(BigInt(quote.length), 8);
    const r = await client.attestOpenEnclave(Buffer.concat([header, quote]), { runTimeData: runtime });
    assert.equal(decode(r.token.serialize())['x-ms-sgx-ehd'], b64url(runtime));
  });

  test('TDX and SEV-SNP evidence attest over HTTPS with their MAA claims', async () => {
    const tdx = sim().evidence({ tee: 'tdx', runtimeData: runtimeJson, measurement: 'ab'.repeat(48) });
    const t = await server.send('POST', '/attest/TdxVm?api-version=2025-06-01', { body: tdx.body });
    assert.equal(t.status, 200, t.text);
    const tc = decode(t.json().token);
    assert.equal(tc['x-ms-attestation-type'], 'tdxvm');
    assert.equal(tc.tdx_mrtd, 'ab'.repeat(48));
    assert.equal(tc.tdx_td_attributes_debug, false);
    assert.equal(tc.attester_tcb_status, 'UpToDate');
    const snp = sim().evidence({ tee: 'snp', runtimeData: runtimeJson, measurement: 'cd'.repeat(48), initTimeData: new TextEncoder().encode('policy') });
    const s = await server.send('POST', '/attest/SevSnpVM?api-version=2020-10-01', { body: { ...snp.body, nonce: 'n-123' } });
    assert.equal(s.status, 200, s.text);
    const sc = decode(s.json().token);
    assert.equal(sc['x-ms-attestation-type'], 'sevsnpvm');
    assert.equal(sc['x-ms-sevsnpvm-launchmeasurement'], 'cd'.repeat(48));
    assert.equal(sc['x-ms-sevsnpvm-hostdata'], toHex(sha256(new TextEncoder().encode('policy'))));
    assert.equal(sc['x-ms-isolation-tee']['x-ms-attestation-type'], 'sevsnpvm');
    assert.equal(sc.nonce, 'n-123');
    assert.equal(sc['x-conclave-simulated'], true);
  });

  test('runtime data that does not match REPORTDATA is refused', async () => {
    const ev = sim().evidence({ tee: 'sgx', runtimeData: runtimeJson });
    const r = await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', {
      body: { ...ev.body, runtimeData: { data: b64url('{"keys":[]}'), dataType: 'JSON' } },
    });
    assert.equal(r.status, 400);
    assert.equal(r.json().error.code, 'attestation.runtime_data_mismatch');
  });

  test('initTimeData is bound as MAA binds it (SGX CONFIGID with KSS, TDX MRCONFIGID): a mismatch is 400, a match yields x-ms-inittime (#13)', async () => {
    const initJson = new TextEncoder().encode('{"config":"v1"}');
    for (const tee of ['sgx', 'tdx'] as const) {
      const ev = sim().evidence({ tee, runtimeData: runtimeJson, initTimeData: initJson, initTimeDataType: 'JSON' });
      const ok = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(decode(ok.json().token)['x-ms-inittime'], { config: 'v1' }, tee);
      const bad = await server.send('POST', `${ev.path}?api-version=2022-08-01`, { body: { ...ev.body, initTimeData: { data: b64url('{"config":"v2"}'), dataType: 'JSON' } } });
      assert.equal(bad.status, 400, tee);
      assert.equal(bad.json().error.code, 'attestation.init_time_data_mismatch', tee);
      // Evidence without a CONFIGID/MRCONFIGID binds no init-time data: sending some is refused, never echoed.
      const none = sim().evidence({ tee, runtimeData: runtimeJson });
      const unbound = await server.send('POST', `${none.path}?api-version=2022-08-01`, { body: { ...none.body, initTimeData: { data: b64url('{"config":"v1"}'), dataType: 'JSON' } } });
      assert.equal(unbound.status, 400, tee);
      assert.equal(unbound.json().error.code, 'attestation.init_time_data_mismatch', tee);
    }
  });

  test('api-version is required and checked; unknown types are 404', async () => {
    const ev = sim().evidence({ tee: 'sgx', runtimeData: runtimeJson });
    assert.equal((await server.send('POST', '/attest/SgxEnclave', { body: ev.body })).status, 400);
    assert.equal((await server.send('POST', '/attest/SgxEnclave?api-version=1999-01-01', { body: ev.body })).status, 400);
    const unknown = await server.send('POST', '/attest/Teapot?api-version=2020-10-01', { body: ev.body });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error.code, 'attestation.type_unknown');
  });

  test('a truncated quote fails with a typed error', async () => {
    const ev = sim().evidence({ tee: 'sgx', runtimeData: runtimeJson });
    const quote = Buffer.from(ev.body.quote as string, 'base64url').subarray(0, 500);
    const r = await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', { body: { quote: b64url(quote) } });
    assert.equal(r.status, 400);
    assert.equal(r.json().error.code, 'quote.truncated');
  });

  test('getPolicy, setPolicy and resetPolicy through AttestationAdministrationClient', async () => {
    const initial = await admin.getPolicy('SgxEnclave');
    assert.match(initial.body, /authorizationrules/);
    const custom = `version=1.0;
authorizationrules { c:[type=="x-ms-sgx-is-debuggable", value==false] => permit(); };
issuancerules { c:[type=="x-ms-sgx-mrenclave"] => issue(type="custom-enclave", value=c.value); };`;
    const set = await admin.setPolicy('SgxEnclave', custom);
    assert.equal(set.body.policyResolution, 'Updated');
    assert.equal((await admin.getPolicy('SgxEnclave')).body, custom);
    const ev = sim().evidence({ tee: 'sgx', runtimeData: runtimeJson, mrenclave: '22'.repeat(32) });
    const ok = await client.attestSgxEnclave(Buffer.from(ev.body.quote as string, 'base64url'), { runTimeJson: runtimeJson });
    assert.equal(decode(ok.token.serialize())['custom-enclave'], '22'.repeat(32));
    const debug = sim().evidence({ tee: 'sgx', runtimeData: runtimeJson, debug: true });
    const denied = await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', { body: debug.body });
    assert.equal(denied.status, 400);
    assert.equal(denied.json().error.code, 'attestation.policy_denied');
    const reset = await admin.resetPolicy('SgxEnclave');
    assert.equal(reset.body.policyResolution, 'Removed');
    assert.equal((await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', { body: debug.body })).status, 200);
  });

  test('a policy syntax error is refused with line and column', async () => {
    const token = await server.adminToken();
    const r = await server.send('PUT', '/policies/SgxEnclave?api-version=2020-10-01', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: encodePolicyJws('version=1.0;\nauthorizationrules {\n  c:[type=="x-ms-sgx-mrsigner", value=~"ab"] => permit();\n};'),
    });
    assert.equal(r.status, 400);
    assert.equal(r.json().error.code, 'attestation.policy_syntax');
    assert.match(r.json().error.message, /line 3/);
  });

  test('draftPolicyForAttestation evaluates a draft without storing it, yielding an unsigned token', async () => {
    const ev = sim().evidence({ tee: 'sgx', runtimeData: runtimeJson });
    const draft = 'version=1.0; authorizationrules { => deny(); };';
    const r = await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', { body: { ...ev.body, draftPolicyForAttestation: draft } });
    assert.equal(r.status, 400);
    assert.equal(r.json().error.code, 'attestation.policy_denied');
    const permit = await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', {
      body: { ...ev.body, draftPolicyForAttestation: 'version=1.0; authorizationrules { => permit(); };' },
    });
    assert.equal(permit.status, 200);
    assert.equal(JSON.parse(Buffer.from(permit.json().token.split('.')[0], 'base64url').toString()).alg, 'none');
  });

  test('a policy issues claims named like members of Object.prototype, at the top level and inside x-ms-isolation-tee', async () => {
    // Attack (a draft policy needs no credential): the service skipped an issued claim whose type was `in`
    // its own claims, and `in` reads the prototype chain, so a claim named constructor, toString, __proto__,
    // … was dropped from the token without a word, and so was x-ms-isolation-tee.<such a name>.
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    const rules = names.map((n) => `=> issue(type="${n}", value="top-${n}"); => issue(type="x-ms-isolation-tee.${n}", value="tee-${n}");`).join(' ');
    const draft = `version=1.0; authorizationrules { => permit(); }; issuancerules { ${rules} };`;
    const snp = sim().evidence({ tee: 'snp', runtimeData: runtimeJson });
    const r = await server.send('POST', '/attest/SevSnpVM?api-version=2020-10-01', { body: { ...snp.body, draftPolicyForAttestation: draft } });
    assert.equal(r.status, 200, r.text);
    const claims = decode(r.json().token);
    const tee = claims['x-ms-isolation-tee'];
    assert.equal(tee['x-ms-attestation-type'], 'sevsnpvm', 'the nested TEE claims are still there');
    for (const n of names) {
      assert.ok(Object.hasOwn(claims, n), `claim ${n} is missing`);
      assert.equal(claims[n], `top-${n}`, n);
      assert.ok(Object.hasOwn(tee, n), `x-ms-isolation-tee.${n} is missing`);
      assert.equal(tee[n], `tee-${n}`, `x-ms-isolation-tee.${n}`);
    }
    assert.equal(claims['x-ms-attestation-type'], 'sevsnpvm', 'the service claims are not overridable');
  });

  test('policy management needs the administrator', async () => {
    assert.equal((await server.send('GET', '/policies/SgxEnclave?api-version=2020-10-01')).status, 401);
  });

  test('an oversize body is answered with 413', async () => {
    const r = await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', { body: { quote: 'A'.repeat(1_100_000) } });
    assert.equal(r.status, 413);
  });
});

describe('attestation service: trust and isolation', () => {
  test('simulated evidence is refused without --simulate', async () => {
    const server = await startTestServer({ simulate: false });
    try {
      const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'sgx', runtimeData: runtimeJson });
      const r = await server.send('POST', '/attest/SgxEnclave?api-version=2020-10-01', { body: ev.body });
      assert.equal(r.status, 400);
      assert.equal(r.json().error.code, 'evidence.untrusted_root');
      const snp = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'snp', runtimeData: runtimeJson });
      const s = await server.send('POST', '/attest/SevSnpVm?api-version=2020-10-01', { body: snp.body });
      assert.equal(s.status, 400);
      assert.equal(s.json().error.code, 'snp.chain_invalid');
    } finally {
      await server.stop();
    }
  });

  test('isolated mode refuses unsigned policies and accepts ones signed by a management certificate', async () => {
    const management = await newPolicySigner('management');
    const server = await startTestServer({ isolated: true, policyCertificate: [management.pemPath] });
    try {
      const token = await server.adminToken();
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'text/plain' };
      const text = 'version=1.0; authorizationrules { => permit(); };';
      const unsigned = await server.send('PUT', '/policies/SgxEnclave?api-version=2020-10-01', { headers, body: encodePolicyJws(text) });
      assert.equal(unsigned.status, 400);
      assert.equal(unsigned.json().error.code, 'attestation.policy_invalid');
      // The operator registered a management certificate (--policy-certificate); sign with it.
      const { certDer, privateKey } = management;
      const x5c = [Buffer.from(certDer).toString('base64')];
      const jws = (payload: unknown) => {
        const input = `${b64url(JSON.stringify({ alg: 'RS256', x5c }))}.${b64url(JSON.stringify(payload))}`;
        return `${input}.${b64url(sign('sha256', Buffer.from(input), privateKey))}`;
      };
      const signed = await server.send('PUT', '/policies/SgxEnclave?api-version=2020-10-01', { headers, body: jws({ AttestationPolicy: b64url(text) }) });
      assert.equal(signed.status, 200, signed.text);
      const claims = decode(signed.json().token);
      assert.equal(claims['x-ms-policy-result'], 'Updated');
      assert.equal(claims['x-ms-policy-signer'].x5c[0], x5c[0]);
    } finally {
      await server.stop();
    }
  });
});

