/**
 * #14 item 2: isolated mode cannot be lifted without a management key. Every isolated-mode policy
 * operation (set, reset, certificate add and remove) needs a JWS whose signature verifies with a
 * registered policy-management certificate.
 */
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { b64url } from '../../../src/core/bytes.js';
import { type PolicySigner, newPolicySigner, policyManagementJws } from '../../helpers/policy-signer.js';
import { type TestServer, startTestServer, tempDir } from '../../helpers/server.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

type Signer = PolicySigner;
const newSigner = newPolicySigner;

const x5cOf = (s: Signer) => [Buffer.from(s.certDer).toString('base64')];

/** The key of the forged signatures: a key pair of no signer's certificate (one per file: RSA-2048 costs about 0.15 s of CPU). */
let forger: KeyObject | undefined;

/** A compact JWS (payload as given: '' for a reset, as the Azure SDK sends it) signed by `s`, or with a forged signature. */
function jws(s: Signer, payload: unknown, opts: { forge?: boolean; signer?: Signer } = {}): string {
  return policyManagementJws(s, payload, opts.forge ? (forger ??= generateRsaKeyPair(2048).privateKey) : (opts.signer ?? s).privateKey);
}

const TEXT = 'version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type="isolated", value=true); };';

describe('isolated mode: every policy operation needs a registered management key', () => {
  let server: TestServer;
  let management: Signer;
  let outsider: Signer;
  let headers: Record<string, string>;

  const send = (method: string, path: string, body: string) => server.send(method, `${path}?api-version=2022-08-01`, { headers, body });
  const policyText = async () => {
    const r = await server.send('GET', '/policies/SgxEnclave?api-version=2022-08-01', { headers });
    const claims = JSON.parse(Buffer.from(r.json().token.split('.')[1], 'base64url').toString());
    return Buffer.from(JSON.parse(Buffer.from(claims['x-ms-policy'].split('.')[1], 'base64url').toString()).AttestationPolicy, 'base64url').toString();
  };

  before(async () => {
    management = await newSigner('management');
    outsider = await newSigner('outsider');
    server = await startTestServer({ isolated: true, policyCertificate: [management.pemPath] });
    headers = { authorization: `Bearer ${await server.adminToken()}`, 'content-type': 'text/plain' };
    const set = await send('PUT', '/policies/SgxEnclave', jws(management, { AttestationPolicy: b64url(TEXT) }));
    assert.equal(set.status, 200, set.text);
  });
  after(() => server?.stop());

  test('a reset naming a registered certificate but with a forged signature is refused, and the policy stays', async () => {
    const r = await send('POST', '/policies/SgxEnclave:reset', jws(management, '', { forge: true }));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json().error.code, 'attestation.policy_invalid');
    assert.equal(await policyText(), TEXT);
  });

  test('a reset signed by an unregistered certificate, an unsigned reset and a reset with a non-JSON header are refused', async () => {
    for (const body of [jws(outsider, ''), 'eyJhbGciOiJub25lIn0..', `${b64url('not json')}..`, 'x']) {
      const r = await send('POST', '/policies/SgxEnclave:reset', body);
      assert.equal(r.status, 400, `${body.slice(0, 40)}: ${r.text}`);
      assert.equal(r.json().error.code, 'attestation.policy_invalid');
    }
    assert.equal(await policyText(), TEXT);
  });

  test('a signed policy (as GET /policies serves it) or a signed certificate change replayed as a reset is refused, and the policy stays', async () => {
    // Attack: a reset's JWS signs no payload, and the reset took any signed JWS. GET /policies hands every
    // administrator (and Attestation Reader) the stored policy's JWS, signed by the management key, so an
    // administrator without that key reset an isolated provider's policy to the default by posting it back
    // to :reset (likewise a certificate add or remove JWS seen once). A reset is the JWS with no payload.
    const r = await server.send('GET', '/policies/SgxEnclave?api-version=2022-08-01', { headers });
    const served = JSON.parse(Buffer.from(r.json().token.split('.')[1], 'base64url').toString())['x-ms-policy'] as string;
    const certChange = jws(management, { policyCertificate: { kty: 'RSA', x5c: x5cOf(management) } });
    for (const body of [served, certChange]) {
      const reset = await send('POST', '/policies/SgxEnclave:reset', body);
      assert.equal(reset.status, 400, `${body.slice(0, 40)}: ${reset.text}`);
      assert.equal(reset.json().error.code, 'attestation.policy_invalid');
      assert.match(reset.json().error.message, /payload/);
    }
    assert.equal(await policyText(), TEXT);
  });

  test('a set with a forged signature over a registered x5c is refused', async () => {
    const r = await send('PUT', '/policies/SgxEnclave', jws(management, { AttestationPolicy: b64url('version=1.0; authorizationrules { => permit(); };') }, { forge: true }));
    assert.equal(r.status, 400, r.text);
    assert.equal(await policyText(), TEXT);
  });

  test('certificates: add and remove need a signature by a registered certificate (no self-signed bootstrap)', async () => {
    const body = (s: Signer, target: Signer, opts: { forge?: boolean } = {}) => jws(s, { policyCertificate: { kty: 'RSA', x5c: x5cOf(target) } }, opts);
    for (const b of [body(outsider, outsider), body(management, outsider, { forge: true })]) {
      const r = await send('POST', '/certificates:add', b);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().error.code, 'attestation.policy_invalid');
    }
    const removeForged = await send('POST', '/certificates:remove', body(management, management, { forge: true }));
    assert.equal(removeForged.status, 400, removeForged.text);
    // The registered key can add the outsider; then the outsider can reset.
    assert.equal((await send('POST', '/certificates:add', body(management, outsider))).status, 200);
    const reset = await send('POST', '/policies/SgxEnclave:reset', jws(outsider, ''));
    assert.equal(reset.status, 200, reset.text);
    assert.notEqual(await policyText(), TEXT);
  });
});

describe('isolated mode with no management certificate', () => {
  test('refuses to start: the certificate must come from the operator, not from a bearer token', async () => {
    await assert.rejects(startTestServer({ isolated: true }), (e: { code?: string; message?: string }) => e.code === 'config.invalid' && /policy-certificate/.test(e.message ?? ''));
  });
});

describe('a data dir that ran outside isolated mode first', () => {
  test('a bearer token alone cannot register the first management certificate, so none carries over into isolated mode', async () => {
    // Attack: outside isolated mode the first certificate could sign its own addition, so an administrator
    // (a bearer token, nothing more) registered a key of their own; when the operator later restarted the
    // same store with --isolated --policy-certificate <theirs>, that key was still registered and signed
    // policies, and isolated mode was only as strong as the administrator credential after all.
    const dataDir = tempDir();
    const own = await newSigner('administrator-own');
    const operator = await newSigner('operator');
    const aad = await startTestServer({}, { dataDir, keepDataDir: true });
    try {
      const headers = { authorization: `Bearer ${await aad.adminToken()}`, 'content-type': 'text/plain' };
      const add = await aad.send('POST', '/certificates:add?api-version=2022-08-01', { headers, body: jws(own, { policyCertificate: { kty: 'RSA', x5c: x5cOf(own) } }) });
      assert.equal(add.status, 400, add.text);
      assert.equal(add.json().error.code, 'attestation.policy_invalid');
    } finally {
      await aad.stop();
    }
    const isolated = await startTestServer({ isolated: true, policyCertificate: [operator.pemPath] }, { dataDir, keepDataDir: true });
    try {
      const headers = { authorization: `Bearer ${await isolated.adminToken()}`, 'content-type': 'text/plain' };
      const text = 'version=1.0; authorizationrules { => permit(); };';
      const set = await isolated.send('PUT', '/policies/SgxEnclave?api-version=2022-08-01', { headers, body: jws(own, { AttestationPolicy: b64url(text) }) });
      assert.equal(set.status, 400, set.text);
      assert.equal(set.json().error.code, 'attestation.policy_invalid');
      // The operator's certificate signs, as ever.
      assert.equal((await isolated.send('PUT', '/policies/SgxEnclave?api-version=2022-08-01', { headers, body: jws(operator, { AttestationPolicy: b64url(text) }) })).status, 200);
    } finally {
      await isolated.stop();
    }
  });

  test('with an operator certificate registered, an add or remove signed by an unregistered key is refused outside isolated mode too', async () => {
    // A check only of an empty store (the case above) passes an administrator's own key once the operator's is
    // registered (--policy-certificate outside isolated mode), and that key carries over into isolated mode the same way.
    const own = await newSigner('administrator-own');
    const operator = await newSigner('operator');
    const aad = await startTestServer({ policyCertificate: [operator.pemPath] });
    try {
      const headers = { authorization: `Bearer ${await aad.adminToken()}`, 'content-type': 'text/plain' };
      const post = (action: string, signer: Signer, target: Signer) =>
        aad.send('POST', `/certificates:${action}?api-version=2022-08-01`, { headers, body: jws(signer, { policyCertificate: { kty: 'RSA', x5c: x5cOf(target) } }) });
      for (const r of [await post('add', own, own), await post('remove', own, operator)]) {
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json().error.code, 'attestation.policy_invalid');
      }
      const listed = async () => (await aad.send('GET', '/certificates?api-version=2022-08-01', { headers })).json().token.split('.')[1];
      assert.deepEqual(JSON.parse(Buffer.from(await listed(), 'base64url').toString())['x-ms-policy-certificates'].keys.map((k: { x5c: string[] }) => k.x5c[0]), x5cOf(operator));
      // The operator's certificate signs an add and a remove, as MAA's certificate management flow does.
      const add = await post('add', operator, own);
      assert.equal(add.status, 200, add.text);
      assert.equal(JSON.parse(Buffer.from(add.json().token.split('.')[1], 'base64url').toString())['x-ms-policycertificates-result'], 'IsPresent');
      const remove = await post('remove', operator, own);
      assert.equal(remove.status, 200, remove.text);
      assert.equal(JSON.parse(Buffer.from(remove.json().token.split('.')[1], 'base64url').toString())['x-ms-policycertificates-result'], 'IsAbsent');
    } finally {
      await aad.stop();
    }
  });
});
