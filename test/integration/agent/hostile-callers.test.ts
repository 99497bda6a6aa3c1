/**
 * The agent against hostile callers (issue #23 items 1 and 3): a request naming a foreign endpoint, a
 * cross-site browser POST, a DNS-rebinding Host — each refused with nothing sent anywhere. The agent's
 * configured attestation service, vault and token endpoint are a spy on 127.0.0.1 that counts every
 * connection; a control request shows that an accepted request does reach it.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { type Server, type Socket, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningAgent, parseKid, startAgent } from '../../../src/agent/server.js';
import { simSource } from '../../../src/sdk/index.js';
import { tempDir } from '../../helpers/server.js';

interface Spy {
  readonly url: string;
  connections(): number;
  close(): Promise<void>;
}

/** A TCP listener that counts connections and closes them: whatever the agent sends, it sends here. */
async function startSpy(): Promise<Spy> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => n,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A raw HTTP request with exactly the headers given (a browser's, or a rebinding page's). */
function raw(agent: RunningAgent, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: agent.port, path, method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)), ...headers }, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') });
        assert.equal(res.headers['access-control-allow-origin'], undefined, 'no CORS header');
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One simulated TEE for both agents (the first evidence makes its vendor hierarchy there, RSA and EC keys; the second agent loads it). */
const simDir = tempDir();

describe('agent against hostile callers: nothing is sent anywhere', () => {
  let configured: Spy;
  let foreign: Spy;
  let agent: RunningAgent;
  let host: string;
  const release = JSON.stringify({ kid: 'app-key' });

  before(async () => {
    configured = await startSpy();
    foreign = await startSpy();
    agent = await startAgent({
      source: simSource({ dataDir: simDir, tee: 'snp' }),
      port: 0,
      attestationUrl: configured.url,
      vaultUrl: configured.url,
      credential: { clientId: 'release-only', clientSecret: 'secret', tokenEndpoint: `${configured.url}/oauth2/token` },
    });
    host = `127.0.0.1:${agent.port}`;
  });
  after(async () => {
    await agent?.close();
    await configured?.close();
    await foreign?.close();
  });

  test('a cross-site text/plain POST (no preflight) is refused', async () => {
    const r = await raw(agent, '/key/release', { host, 'content-type': 'text/plain;charset=UTF-8', origin: 'https://evil.example' }, release);
    assert.ok(r.status === 403 || r.status === 415, `status ${r.status}`);
    const plain = await raw(agent, '/key/release', { host, 'content-type': 'text/plain' }, release);
    assert.equal(plain.status, 415, 'text/plain is refused even without Origin');
    assert.equal(configured.connections(), 0);
  });

  test('a request with an Origin header is refused, JSON or not', async () => {
    const r = await raw(agent, '/key/release', { host, 'content-type': 'application/json', origin: `http://${host}` }, release);
    assert.equal(r.status, 403);
    assert.equal(configured.connections(), 0);
  });

  test('a DNS-rebinding Host is refused', async () => {
    for (const h of [`attacker.example:${agent.port}`, '127.0.0.1', `127.0.0.1:${agent.port + 1}`, `localtest.me:${agent.port}`]) {
      const r = await raw(agent, '/key/release', { host: h, 'content-type': 'application/json' }, release);
      assert.equal(r.status, 403, `Host ${h}`);
    }
    assert.equal(configured.connections(), 0);
  });

  test('a request naming a foreign attestation service or vault is refused before anything is sent', async () => {
    const hostPort = new URL(foreign.url).host;
    for (const body of [
      { maa_endpoint: hostPort, kid: 'app-key' },
      { akv_endpoint: hostPort, kid: 'app-key' },
      { kid: `${foreign.url}/keys/app-key` },
      { kid: `http://${new URL(configured.url).host}/keys/app-key` },
      { akv_endpoint: `http://${new URL(configured.url).host}`, kid: 'app-key' },
    ]) {
      const r = await raw(agent, '/key/release', { host, 'content-type': 'application/json' }, JSON.stringify(body));
      assert.equal(r.status, 403, `${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
    }
    const maa = await raw(agent, '/attest/maa', { host, 'content-type': 'application/json' }, JSON.stringify({ maa_endpoint: hostPort, runtime_data: 'aGk=' }));
    assert.equal(maa.status, 403);
    assert.equal(foreign.connections(), 0, 'nothing reached the foreign endpoint');
    assert.equal(configured.connections(), 0);
  });

  test('a kid with a malformed % escape or an invalid URL is 400 request.invalid, nothing sent (was an untyped URIError/TypeError)', async () => {
    for (const kid of [`${configured.url}/keys/app%E0%A4%A`, `${configured.url}/keys/app-key/%zz`, `${configured.url}/keys/%`, 'https://exa mple/keys/app-key']) {
      assert.throws(() => parseKid(kid, undefined), (e: { code?: string }) => e.code === 'request.invalid', kid);
      const r = await raw(agent, '/key/release', { host, 'content-type': 'application/json' }, JSON.stringify({ kid }));
      assert.equal(r.status, 400, `${kid}: ${JSON.stringify(r.json)}`);
    }
    assert.equal(configured.connections(), 0);
  });

  test('a kid whose name or version is no Key Vault key name (dot segments, a space, a non-ASCII character, 128 characters, a version not 32 hex digits) is 400 naming kid, nothing sent: no attestation spent, and .. cannot climb out of a vault endpoint\'s path', async () => {
    const bad = ['..', '../..', 'app-key/..', '.', 'app key', 'é', 'a'.repeat(128), 'app-key/not-a-version', `${configured.url}/keys/%2e%2e/%2e%2e`, `${configured.url}/keys/app-key/..`];
    for (const kid of bad) {
      const r = await raw(agent, '/key/release', { host, 'content-type': 'application/json' }, JSON.stringify({ kid }));
      assert.equal(r.status, 400, `${kid}: ${JSON.stringify(r.json).slice(0, 300)}`);
      assert.match(String(r.json.error), /^invalid request format: .*kid/, kid);
      assert.throws(() => parseKid(kid, kid.startsWith('https:') ? undefined : `${configured.url}/vault`), (e: { code?: string }) => e.code === 'request.invalid', kid);
    }
    assert.equal(configured.connections(), 0, 'nothing was sent: no attestation for a release that cannot be asked');
    // Key Vault's own names and versions still parse.
    assert.deepEqual(parseKid('App-Key-1/0123456789abcdef0123456789ABCDEF', configured.url), { vaultUrl: configured.url, keyName: 'App-Key-1', version: '0123456789abcdef0123456789ABCDEF' });
    assert.deepEqual(parseKid(`${configured.url}/keys/app-key`, undefined), { vaultUrl: configured.url, keyName: 'app-key' });
  });

  test('an access_token that is no bearer token (control characters, a space, over 16 KiB) is 400 request.invalid, nothing sent (was: an attestation first, then an untyped 403 from the HTTP client)', async () => {
    for (const token of ['eyJ.a.b\r\nX-Injected: 1', 'eyJ.a.b extra', 'é', 'a'.repeat(16 * 1024 + 1)]) {
      const r = await raw(agent, '/key/release', { host, 'content-type': 'application/json' }, JSON.stringify({ kid: 'app-key', access_token: token }));
      assert.equal(r.status, 400, `${JSON.stringify(token.slice(0, 20))}: ${JSON.stringify(r.json).slice(0, 300)}`);
      assert.match(String(r.json.error), /^invalid request format: .*access_token/);
    }
    assert.equal(configured.connections(), 0, 'nothing was sent: no attestation for a release that cannot be asked');
  });

  test('control: an accepted request reaches the configured endpoints (the spy works)', async () => {
    const r = await raw(agent, '/key/release', { host: `localhost:${agent.port}`, 'content-type': 'application/json; charset=utf-8' }, release);
    assert.equal(r.status, 403, 'the spy answers nothing usable');
    assert.ok(configured.connections() >= 1);
    assert.equal(foreign.connections(), 0);
  });
});

describe('agent with a per-start token', () => {
  test('requests without the token are refused; with it they are served', async () => {
    const agent = await startAgent({ source: simSource({ dataDir: simDir, tee: 'snp' }), port: 0, authToken: 'per-start-secret' });
    try {
      const host = `127.0.0.1:${agent.port}`;
      const body = JSON.stringify({ runtime_data: Buffer.from('hi').toString('base64') });
      assert.equal((await raw(agent, '/attest/raw', { host, 'content-type': 'application/json' }, body)).status, 401);
      assert.equal((await raw(agent, '/attest/raw', { host, 'content-type': 'application/json', authorization: 'Bearer wrong' }, body)).status, 401);
      assert.equal((await raw(agent, '/attest/raw', { host, 'content-type': 'application/json', authorization: 'Bearer per-start-secret' }, body)).status, 200);
    } finally {
      await agent.close();
    }
  });
});
