/**
 * MAA management-plane details the Azure clients rely on: `x-ms-policycertificates-result` on policy
 * certificate add/remove (read by @azure/attestation), an isolated provider keeps at least one
 * management certificate, `GET /policies/{type}` for the Attestation Reader role, and OpenID metadata
 * that names only endpoints Conclave serves.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { AttestationAdministrationClient } from '@azure/attestation';
import { type PolicySigner, newPolicySigner, policyManagementJws } from '../../helpers/policy-signer.js';
import { startTestServer } from '../../helpers/server.js';
import { assignRole, newClient } from '../vault/harness.js';

const PYTHON = '/usr/bin/python3';

function decode(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

/** A certificate-management JWS: payload {"policyCertificate": {kty, x5c}}, signed by `signer` with x5c. */
function managementJws(signer: PolicySigner, target: PolicySigner): string {
  return policyManagementJws(signer, { policyCertificate: { kty: 'RSA', x5c: [Buffer.from(target.certDer).toString('base64')] } });
}

describe('MAA management plane', () => {
  test('policy certificates: the SDK reads x-ms-policycertificates-result; the last one of an isolated provider stays', async () => {
    const first = await newPolicySigner('first');
    const second = await newPolicySigner('second');
    const server = await startTestServer({ isolated: true, policyCertificate: [first.pemPath] });
    try {
      const ca = readFileSync(server.caPath, 'utf8');
      const credential = { getToken: async () => ({ token: await server.adminToken(), expiresOnTimestamp: Date.now() + 3_000_000 }) };
      const admin = new AttestationAdministrationClient(server.url, credential, { tlsOptions: { ca } });
      const toPem = (s: PolicySigner) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(s.certDer).toString('base64')}\n-----END CERTIFICATE-----\n`;
      const firstKey = readFileSync(first.pemPath, 'utf8');
      const signerPem = first.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      const added = await admin.addPolicyManagementCertificate(toPem(second), signerPem, firstKey);
      assert.equal(added.body.certificateResolution, 'IsPresent');
      assert.match(added.body.certificateThumbprint, /^[0-9A-F]{40}$/);
      const removed = await admin.removePolicyManagementCertificate(toPem(second), signerPem, firstKey);
      assert.equal(removed.body.certificateResolution, 'IsAbsent');

      const headers = { authorization: `Bearer ${await server.adminToken()}`, 'content-type': 'text/plain' };
      const last = await server.send('POST', '/certificates:remove?api-version=2022-08-01', { headers, body: managementJws(first, first) });
      assert.equal(last.status, 400);
      assert.equal(last.json().error.code, 'attestation.policy_invalid');
      assert.match(last.json().error.message, /last policy-management certificate/);
      const list = await server.send('GET', '/certificates?api-version=2022-08-01', { headers });
      assert.equal(decode(list.json().token)['x-ms-policy-certificates'].keys.length, 1);
    } finally {
      await server.stop();
    }
  });

  test('Python azure-security-attestation sets and resets a signed policy (isolated mode)', { skip: existsSync(PYTHON) || process.env.CI === 'true' ? false : 'no /usr/bin/python3 (python3-azure)' }, async () => {
    // The Python SDK 1.0 signs with header {"alg": "RSA256", "jwk": {"x5c": [...]}}: x5c inside jwk, not at the
    // top. (Its EC form, alg ECDH256 with a DER signature, fails in the SDK itself with Debian's cryptography,
    // before anything is sent: src/attestation/policy/jws.test.ts checks that form.)
    const rsa = await newPolicySigner('py-rsa');
    const server = await startTestServer({ isolated: true, policyCertificate: [rsa.pemPath] });
    try {
      const script = `
import os, sys, time
from azure.core.credentials import AccessToken
from azure.security.attestation import AttestationAdministrationClient, AttestationType
class Cred:
    def get_token(self, *scopes, **kw):
        return AccessToken(os.environ["TOKEN"], int(time.time()) + 3600)
admin = AttestationAdministrationClient(os.environ["URL"], Cred(), connection_verify=os.environ["CA"])
key, cert = os.environ["KEY"], os.environ["CERT"]
policy = 'version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type=="x-ms-sgx-mrsigner"] => issue(type="signer", value=c.value); };'
result, _ = admin.set_policy(AttestationType.SGX_ENCLAVE, policy, signing_key=key, signing_certificate=cert)
print(result.policy_resolution)
result, _ = admin.reset_policy(AttestationType.SGX_ENCLAVE, signing_key=key, signing_certificate=cert)
print(result.policy_resolution)
`;
      const env = {
        ...process.env,
        URL: server.url,
        CA: server.caPath,
        TOKEN: await server.adminToken(),
        KEY: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
        CERT: readFileSync(rsa.pemPath, 'utf8'),
      };
      const out = await new Promise<string>((resolve, reject) =>
        execFile(PYTHON, ['-c', script], { env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()))),
      );
      assert.deepEqual(out.split('\n'), ['Updated', 'Removed']);
    } finally {
      await server.stop();
    }
  });

  test('GET /policies/{type}: the Attestation Reader role reads, other principals are refused', async () => {
    const server = await startTestServer({});
    try {
      const reader = await newClient(server, 'policy-reader');
      const tokenOf = async (c: { clientId: string; clientSecret: string }) => {
        const r = await server.send('POST', '/oauth2/token', {
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret }).toString(),
        });
        return r.json().access_token as string;
      };
      const get = async () => server.send('GET', '/policies/SevSnpVm?api-version=2022-08-01', { headers: { authorization: `Bearer ${await tokenOf(reader)}` } });
      assert.equal((await get()).status, 403);
      await assignRole(server, reader.clientId, 'Attestation Reader');
      const r = await get();
      assert.equal(r.status, 200, r.text);
      const policy = decode(r.json().token)['x-ms-policy'] as string;
      const text = Buffer.from(JSON.parse(Buffer.from(policy.split('.')[1]!, 'base64url').toString('utf8')).AttestationPolicy, 'base64url').toString('utf8');
      assert.match(text, /azure-compliant-cvm/, 'the default SevSnpVm policy shows when Conclave vouches');
      assert.match(text, /x-conclave-uvm-svn", value>=100\][\s\S]*azure-compliant-uvm/, 'and for confidential containers, with the minimum UVM SVN');
      // Reading is all the role grants.
      const put = await server.send('PUT', '/policies/SevSnpVm?api-version=2022-08-01', { headers: { authorization: `Bearer ${await tokenOf(reader)}`, 'content-type': 'text/plain' }, body: 'eyJhbGciOiJub25lIn0.e30.' });
      assert.equal(put.status, 403);
    } finally {
      await server.stop();
    }
  });

  test('OpenID metadata names only endpoints that answer', async () => {
    const server = await startTestServer({});
    try {
      const meta = (await server.send('GET', '/.well-known/openid-configuration')).json();
      assert.equal(meta.revocation_endpoint, undefined);
      for (const [k, v] of Object.entries(meta)) {
        if (typeof v !== 'string' || !v.startsWith(server.url) || k === 'issuer') continue;
        const r = await server.send('GET', v.slice(server.url.length));
        assert.equal(r.status, 200, `${k} (${v}) answers ${r.status}`);
      }
    } finally {
      await server.stop();
    }
  });
});
