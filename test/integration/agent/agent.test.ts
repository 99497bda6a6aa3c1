import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { attestAndRelease, decodeToken, getAccessToken, simSource } from '../../../src/sdk/index.js';
import { generateEcKeyPair } from '../../../src/core/keygen.js';
import { conclave } from '../../helpers/cli.js';
import { httpsClient } from '../../helpers/https.js';
import { type TestServer, startTestServer, tempDir } from '../../helpers/server.js';
import { type AgentProcess, agentCall, createReleasableKey, runCli, spawnAgent } from './helpers.js';

describe('conclave agent (SKR sidecar API) and SDK against a simulated server', () => {
  let server: TestServer;
  let agent: AgentProcess;
  let hostPort: string;
  let publicKey: Record<string, unknown>;

  let credentialFile: string;
  before(async () => {
    server = await startTestServer({ simulate: true });
    hostPort = new URL(server.url).host;
    publicKey = await createReleasableKey(server, 'skr-test');
    // The documented least-privilege set-up: a client of its own holding only the release role on the key.
    credentialFile = join(tempDir(), 'agent-client.json');
    const admin = ['--url', server.url, '--data-dir', server.dataDir, '--ca', server.caPath];
    const created = await conclave(['client', 'create', 'skr-agent', '--out', credentialFile, ...admin, '--output', 'json']);
    assert.equal(created.code, 0, created.stderr);
    const { clientId } = JSON.parse(created.stdout) as { clientId: string };
    const role = await conclave(['role', 'assign', '--principal', clientId, '--role', 'Key Vault Crypto Service Release User', '--scope', '/keys/skr-test', ...admin, '--output', 'json']);
    assert.equal(role.code, 0, role.stderr);
    agent = await spawnAgent([
      '--source',
      'sim',
      '--data-dir',
      server.dataDir,
      '--ca',
      server.caPath,
      '--release-trust',
      server.caPath,
      '--attestation-url',
      server.url,
      '--vault-url',
      server.url,
      '--credential-file',
      credentialFile,
    ]);
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
  });

  test("the credential file is the client's own, written 0600", () => {
    assert.equal(statSync(credentialFile).mode & 0o777, 0o600);
    const c = JSON.parse(readFileSync(credentialFile, 'utf8')) as Record<string, string>;
    assert.equal(c.tokenEndpoint, `${server.url}/oauth2/token`);
    assert.notEqual(c.clientId, server.admin.clientId);
  });

  test('start-up refusals: a self-signed release signer without --ca, plain-http endpoints', async () => {
    const base = ['agent', '--port', '0', '--source', 'sim', '--data-dir', server.dataDir];
    const noCa = await runCli([...base, '--allow-self-signed-release-cert', '--attestation-url', server.url]);
    assert.equal(noCa.code, 2, noCa.stderr);
    assert.match(noCa.stderr, /requires --ca/);
    const http = await runCli([...base, '--ca', server.caPath, '--attestation-url', `http://${hostPort}`]);
    assert.equal(http.code, 2, http.stderr);
    assert.match(http.stderr, /https/);
  });

  // One agent process for both (each agent start costs seconds of CPU): guarded by a token file, and given
  // everything a release needs but a credential.
  test("--auth-token-file: a fresh 0600 token per start, required on every request; without a credential flag the agent does not take the data dir's admin.json", async () => {
    const file = join(tempDir(), 'agent.token');
    const guarded = await spawnAgent(['--source', 'sim', '--data-dir', server.dataDir, '--ca', server.caPath, '--release-trust', server.caPath, '--attestation-url', server.url, '--vault-url', server.url, '--auth-token-file', file]);
    try {
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const token = readFileSync(file, 'utf8').trim();
      const authorization = `Bearer ${token}`;
      assert.equal((await agentCall(guarded.url, 'GET', '/status')).status, 401);
      assert.equal((await agentCall(guarded.url, 'GET', '/status', undefined, { authorization })).status, 200);
      assert.equal((await agentCall(guarded.url, 'POST', '/key/release', { kid: 'skr-test' })).status, 401);
      const r = await agentCall(guarded.url, 'POST', '/key/release', { kid: 'skr-test' }, { authorization });
      assert.equal(r.status, 403);
      assert.match(r.json.error as string, /no access token/);
    } finally {
      await guarded.stop();
    }
  });

  test('GET /status', async () => {
    assert.deepEqual(await agentCall(agent.url, 'GET', '/status'), { status: 200, json: { message: 'Status OK' } });
  });

  test('POST /key/release exactly as the sidecar README calls it releases the key', async () => {
    const r = await agentCall(agent.url, 'POST', '/key/release', { maa_endpoint: hostPort, akv_endpoint: hostPort, kid: 'skr-test' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(typeof r.json.key, 'string', 'key is a JWK as a JSON string');
    const jwk = JSON.parse(r.json.key as string) as Record<string, unknown>;
    assert.equal(jwk.kty, 'RSA');
    assert.equal(jwk.n, publicKey.n, 'the released key is the vault key');
    assert.equal(typeof jwk.d, 'string');
  });

  test('--require-inclusion: the key leaves the agent only with its release proven in the log under the pinned --log-key', async () => {
    const logKey = join(tempDir(), 'log-key.pem');
    writeFileSync(logKey, (await httpsClient(server.url, server.caPath)('GET', '/log/key')).json().publicKey as string);
    const otherKey = join(tempDir(), 'other-log-key.pem');
    writeFileSync(otherKey, generateEcKeyPair('P-256').publicKey.export({ format: 'pem', type: 'spki' }) as string);
    const common = ['--source', 'sim', '--data-dir', server.dataDir, '--ca', server.caPath, '--release-trust', server.caPath, '--attestation-url', server.url, '--vault-url', server.url, '--credential-file', credentialFile];
    const pinned = await spawnAgent([...common, '--require-inclusion', '--log-key', logKey]);
    const wrong = await spawnAgent([...common, '--require-inclusion', '--log-key', otherKey]);
    try {
      const ok = await agentCall(pinned.url, 'POST', '/key/release', { kid: 'skr-test' });
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      assert.equal((JSON.parse(ok.json.key as string) as { n?: string }).n, publicKey.n);
      // Heads signed by another key than the pinned one: no key leaves, and the answer says why.
      const refused = await agentCall(wrong.url, 'POST', '/key/release', { kid: 'skr-test' });
      assert.equal(refused.status, 403);
      assert.match(String(refused.json.error), /\(log\.[a-z_]+\)/);
      assert.equal(refused.json.key, undefined);
    } finally {
      await pinned.stop();
      await wrong.stop();
    }
    const noKeyFile = await runCli(['agent', '--port', '0', ...common, '--require-inclusion', '--log-key', join(tempDir(), 'missing.pem')]);
    assert.equal(noKeyFile.code, 2, noKeyFile.stderr);
  });

  test("POST /key/release with the caller's own access_token (a client's JWT: RFC 6750 characters) releases the key", async () => {
    const token = await getAccessToken(JSON.parse(readFileSync(credentialFile, 'utf8')), readFileSync(server.caPath, 'utf8'));
    const r = await agentCall(agent.url, 'POST', '/key/release', { maa_endpoint: hostPort, akv_endpoint: hostPort, kid: 'skr-test', access_token: token });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal((JSON.parse(r.json.key as string) as Record<string, unknown>).n, publicKey.n);
  });

  test('POST /attest/maa returns a token binding the runtime data', async () => {
    const runtime = { nonce: 'abc' };
    const r = await agentCall(agent.url, 'POST', '/attest/maa', { maa_endpoint: `https://${hostPort}`, runtime_data: Buffer.from(JSON.stringify(runtime)).toString('base64') });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const claims = decodeToken(r.json.token as string).claims;
    assert.deepEqual(claims['x-ms-runtime'], runtime);
  });

  test('POST /attest/raw returns a hex SNP report over SHA-256(runtime_data)', async () => {
    const r = await agentCall(agent.url, 'POST', '/attest/raw', { runtime_data: Buffer.from('hello').toString('base64') });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const report = Buffer.from(r.json.report as string, 'hex');
    assert.equal(report.byteLength, 1184);
    assert.equal(report.subarray(0x50, 0x70).toString('hex'), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  });

  test('POST /attest/combined returns the sidecar combined_report JSON string', async () => {
    const r = await agentCall(agent.url, 'POST', '/attest/combined', { runtime_data: Buffer.from('hello').toString('base64') });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const c = JSON.parse(r.json.combined_report as string) as Record<string, string>;
    assert.deepEqual(Object.keys(c), ['endorsed_tcb', 'endorsements', 'evidence', 'uvm_endorsements']);
    assert.match(c.endorsed_tcb!, /^[0-9a-f]{16}$/);
    assert.equal(Buffer.from(c.evidence!, 'base64').byteLength, 1184);
  });

  test('sidecar error shapes: missing field → 400 {error}, unknown key → 403 {error}', async () => {
    const bad = await agentCall(agent.url, 'POST', '/key/release', { akv_endpoint: hostPort });
    assert.equal(bad.status, 400);
    assert.equal(typeof bad.json.error, 'string');
    const missing = await agentCall(agent.url, 'POST', '/key/release', { maa_endpoint: hostPort, akv_endpoint: hostPort, kid: 'no-such-key' });
    assert.equal(missing.status, 403);
    assert.match(missing.json.error as string, /404|KeyNotFound|not found|not authorized/i);
    const b64 = await agentCall(agent.url, 'POST', '/attest/raw', { runtime_data: 'not base64!' });
    assert.equal(b64.status, 400);
  });

  test('SDK attestAndRelease in-process releases the same key', async () => {
    const admin = JSON.parse(readFileSync(server.adminPath, 'utf8'));
    const released = await attestAndRelease({
      attestationUrl: server.url,
      vaultUrl: server.url,
      keyName: 'skr-test',
      source: simSource({ dataDir: server.dataDir, tee: 'snp' }),
      credential: admin,
      ca: readFileSync(server.caPath),
      trustStore: readFileSync(server.caPath, 'utf8'),
    });
    assert.equal(released.jwk.n, publicKey.n);
    assert.equal(released.keyObject.asymmetricKeyType, 'rsa');
    const claims = decodeToken(released.token).claims as { 'x-ms-runtime': { keys: Array<Record<string, unknown>> } };
    const wrappingKey = claims['x-ms-runtime'].keys[0]!;
    assert.deepEqual(Object.keys(wrappingKey), ['e', 'key_ops', 'kid', 'kty', 'n'], 'runtime data as the sidecar writes it');
    assert.equal('d' in wrappingKey, false);
  });

  test('conclave attest --source sim, then token verify: 0 for the token, 1 when tampered', async () => {
    const a = await conclave(['attest', '--url', server.url, '--source', 'sim', '--tee', 'snp', '--data-dir', server.dataDir, '--ca', server.caPath, '--output', 'json']);
    assert.equal(a.code, 0, a.stderr);
    const token = JSON.parse(a.stdout).token as string;
    // The simulated TEE's token is refused unless the caller opts in (as a vault without --simulate refuses it).
    const sim = await conclave(['token', 'verify', token, '--issuer', server.url, '--ca', server.caPath, '--output', 'json']);
    assert.equal(sim.code, 1, sim.stdout + sim.stderr);
    assert.equal(JSON.parse(sim.stdout).code, 'sdk.token_invalid');
    assert.match(JSON.parse(sim.stdout).reason, /simulated/);
    const ok = await conclave(['token', 'verify', token, '--issuer', server.url, '--ca', server.caPath, '--allow-simulated', '--output', 'json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).valid, true);
    const [h, p, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8'));
    claims['x-ms-attestation-type'] = 'sgx';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    const bad = await conclave(['token', 'verify', forged, '--issuer', server.url, '--ca', server.caPath, '--allow-simulated', '--output', 'json']);
    assert.equal(bad.code, 1);
    assert.equal(JSON.parse(bad.stdout).code, 'sdk.token_invalid');
  });
});
