/**
 * MAA's TPM attestation protocol (`POST /attest/Tpm`): the raw rounds, the typed failures, and the
 * unchanged Azure SDK clients (`@azure/attestation` attestTpm, Python azure-security-attestation
 * attest_tpm) driving a fake TPM against Conclave.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AttestationClient } from '@azure/attestation';
import { signJws } from '../../../src/core/jwt.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';
import { derToPem } from '../../../src/core/x509.js';
import { issueCertificate } from '../../../src/evidence/dcap/testing.js';
import { FakeTpm } from '../../../src/evidence/tpm/testing.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { TPM_INIT, type TpmRequestOptions, tpmRequest } from '../../helpers/tpm-client.js';

const PYTHON = '/usr/bin/python3';

function claimsOf(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
}

describe('/attest/Tpm: MAA TPM attestation protocol', () => {
  const now = new Date();
  const root = issueCertificate({ subjectCN: 'Test AIK CA', ca: true, notBefore: new Date(now.getTime() - 86400e3), notAfter: new Date(now.getTime() + 86400e3) });
  const tpm = new FakeTpm().bootLinux(true);
  const aikCert = issueCertificate({ subjectCN: 'AIK', issuer: root, ca: false, notBefore: new Date(now.getTime() - 3600e3), notAfter: new Date(now.getTime() + 86400e3), subjectKey: tpm.akPublic }).der;
  let server: TestServer;
  let auth: Record<string, string>;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-aik-'));
    writeFileSync(join(dir, 'root.pem'), derToPem(root.der));
    server = await startTestServer({ tpmAikRoot: [join(dir, 'root.pem')] });
    auth = { authorization: `Bearer ${await server.adminToken()}` };
  });
  after(() => server.stop());

  async function round(message: string, headers = auth): Promise<{ status: number; json: any; text: string }> {
    const r = await server.send('POST', '/attest/Tpm?api-version=2022-08-01', { headers, body: { data: Buffer.from(message).toString('base64url') } });
    return { status: r.status, text: r.text, json: r.status === 200 ? JSON.parse(Buffer.from(r.json().data, 'base64url').toString('utf8')) : r.json() };
  }

  async function attest(opts: TpmRequestOptions = {}, mutate?: (request: string) => string) {
    const init = await round(JSON.stringify({ payload: JSON.parse(TPM_INIT) }));
    assert.equal(init.status, 200, init.text);
    const request = tpmRequest(tpm, JSON.stringify(init.json.payload), { aikCert, ...opts });
    return round(JSON.stringify({ payload: JSON.parse(mutate ? mutate(request) : request) }));
  }

  test('two rounds: challenge, then a report whose claims say what the TPM proved', async () => {
    const r = await attest({ rpData: 'cnBkYXRh' });
    assert.equal(r.status, 200, r.text);
    const c = claimsOf(r.json.payload.report);
    assert.equal(c['x-ms-attestation-type'], 'tpm');
    assert.equal(c.aikValidated, true);
    assert.equal(c.tpmVersion, 2);
    assert.equal(c.secureBootEnabled, true);
    assert.equal(c.rp_data, 'cnBkYXRh');
    assert.equal(c.cnf.jwk.kty, 'RSA');
    assert.match(c.aikPubHash, /^[A-Za-z0-9+/]{43}=$/);
  });

  test('refusals: unauthenticated, forged context, wrong nonce, flipped PCR or log, uncovered PCRs, unvalidated AIK', async () => {
    assert.equal((await round(TPM_INIT, {})).status, 401);
    const code = async (p: Promise<{ status: number; json: any }>, expected: string) => {
      const r = await p;
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error.code, expected);
    };
    const swapPayload = (request: string, f: (p: any) => void) => {
      const o = JSON.parse(request);
      const [h, p, s] = (o.request as string).split('.');
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8'));
      f(payload);
      return JSON.stringify({ request: `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}` });
    };
    await code(attest({}, (r) => swapPayload(r, (p) => { p.att_data.service_context = p.att_data.service_context.slice(0, -4) + 'AAAA'; })), 'tpm.challenge_invalid');
    await code(attest({ nonceOverride: Buffer.from('old-challenge') }), 'tpm.nonce_mismatch');
    // A changed payload no longer carries request_key's signature.
    await code(attest({}, (r) => swapPayload(r, (p) => { p.att_data.rp_data = 'eA'; })), 'tpm.quote_signature_invalid');
    await code(attest({ pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }), 'attestation.policy_denied');
    await code(attest({ aikCert: new Uint8Array(0) }), 'attestation.policy_denied');
  });

  test('attack: request_key.jwk named twice: the quote binds the first, the request is signed by and the token names the second: refused', async () => {
    // Someone who sees a client's request (within the challenge's 10 minutes) re-sends it with a second
    // "jwk" member holding its own key, signed with that key: the qualifying data was computed over the
    // first member's text, JSON.parse keeps the last, and the token named the attacker's key as the one
    // the TPM vouched for (cnf).
    const init = await round(JSON.stringify({ payload: JSON.parse(TPM_INIT) }));
    assert.equal(init.status, 200, init.text);
    const victim = JSON.parse(tpmRequest(tpm, JSON.stringify(init.json.payload), { aikCert })).request as string;
    const text = Buffer.from(victim.split('.')[1]!, 'base64url').toString('utf8');
    const victimJwk = JSON.stringify(JSON.parse(text).att_data.request_key.jwk);
    const attacker = generateRsaKeyPair(2048);
    const a = attacker.publicKey.export({ format: 'jwk' });
    const attackerJwk = { kty: 'RSA', n: a.n, e: a.e };
    const forged = text.replace(`"request_key":{"jwk":${victimJwk}`, `"request_key":{"jwk":${victimJwk},"jwk":${JSON.stringify(attackerJwk)}`);
    assert.notEqual(forged, text);
    const request = signJws({ alg: 'PS256', typ: 'attReqV2' }, forged, attacker.privateKey);
    const r = await round(JSON.stringify({ payload: { request } }));
    assert.equal(r.status, 400, r.status === 200 ? `token issued for cnf ${JSON.stringify(claimsOf(r.json.payload.report).cnf)}` : r.text);
    assert.equal(r.json.error.code, 'tpm.malformed');
    assert.match(r.json.error.message, /request_key\.jwk/);
  });

  test('@azure/attestation attestTpm drives both rounds against Conclave', async () => {
    const ca = readFileSync(server.caPath, 'utf8');
    // @azure/attestation 1.0.0 drops the client options when a credential is passed (constructor), so the
    // bearer token goes in through the pipeline's own extension point, with the TLS options kept.
    const bearer = { name: 'conclave-bearer', sendRequest: async (req: any, next: any) => {
      req.headers.set('authorization', `Bearer ${await server.adminToken()}`);
      return next(req);
    } };
    const client = new AttestationClient(server.url, { tlsOptions: { ca }, additionalPolicies: [{ policy: bearer, position: 'perCall' }] });
    const first = JSON.parse(await client.attestTpm(JSON.stringify({ payload: { type: 'aikcert' } })));
    assert.ok(first.payload.challenge && first.payload.service_context);
    const second = JSON.parse(await client.attestTpm(JSON.stringify({ payload: JSON.parse(tpmRequest(tpm, JSON.stringify(first.payload), { aikCert })) })));
    assert.equal(claimsOf(second.payload.report).aikValidated, true);
  });

  test('Python azure-security-attestation attest_tpm drives both rounds against Conclave', { skip: existsSync(PYTHON) || process.env.CI === 'true' ? false : 'no /usr/bin/python3 (python3-azure)' }, async () => {
    const script = `
import json, os, sys, time
from azure.core.credentials import AccessToken
from azure.security.attestation import AttestationClient
class Cred:
    def get_token(self, *scopes, **kw):
        return AccessToken(os.environ["TOKEN"], int(time.time()) + 3600)
client = AttestationClient(os.environ["URL"], Cred(), connection_verify=os.environ["CA"])
print(client.attest_tpm(sys.stdin.read()))
`;
    // Asynchronously: the server answers from this process's event loop.
    const py = (message: string) =>
      new Promise<string>((resolve, reject) => {
        const child = execFile(PYTHON, ['-c', script], { env: { ...process.env, URL: server.url, CA: server.caPath, TOKEN: (auth.authorization ?? '').slice(7) }, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
        );
        child.stdin?.end(message);
      });
    const first = JSON.parse(await py(JSON.stringify({ payload: { type: 'aikcert' } })));
    assert.ok(first.payload.challenge);
    const second = JSON.parse(await py(JSON.stringify({ payload: JSON.parse(tpmRequest(tpm, JSON.stringify(first.payload), { aikCert })) })));
    const c = claimsOf(second.payload.report);
    assert.equal(c['x-ms-attestation-type'], 'tpm');
    assert.equal(c.aikValidated, true);
  });
});
