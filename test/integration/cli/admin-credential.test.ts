/**
 * `<data-dir>/admin.json` holds the administrator's client secret for the server that wrote it. The CLI
 * sends it only there (its recorded origin, or a loopback address: replicas of one data dir on one
 * machine each rewrite the file with their own address); pointed with --url or CONCLAVE_URL at any other
 * server it sends nothing and asks for a credential of that server's (exit 2).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServerClient } from '../../../src/cli/client.js';
import { CliError } from '../../../src/cli/output.js';
import { conclave } from '../../helpers/cli.js';

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

describe('CLI server client: the admin secret of <data-dir>/admin.json goes only to its own server', () => {
  const servers: Server[] = [];
  let own = '';
  let ownPort = 0;
  let other = '';
  const tokenForms: Record<'own' | 'other', string[]> = { own: [], other: [] };
  const dataDir = mkdtempSync(join(tmpdir(), 'conclave-cli-admin-'));
  const forms = (name: 'own' | 'other') => tokenForms[name].map((f) => Object.fromEntries(new URLSearchParams(f)));

  before(async () => {
    // One self-signed TLS identity for both servers, trusted as the data dir's tls/ca.pem.
    const tls = join(dataDir, 'tls');
    mkdirSync(tls);
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=test', '-addext', 'subjectAltName=IP:0.0.0.0,IP:127.0.0.1,DNS:localhost', '-keyout', join(tls, 'server.key'), '-out', join(tls, 'ca.pem')],
      { stdio: 'pipe' },
    );
    const identity = { key: readFileSync(join(tls, 'server.key')), cert: readFileSync(join(tls, 'ca.pem')) };
    const listen = async (name: 'own' | 'other') => {
      const s = createServer(identity, (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString('utf8')));
        req.on('end', () => {
          if (req.url === '/oauth2/token') {
            tokenForms[name].push(body);
            json(res, 200, { access_token: `${name}-bearer`, token_type: 'Bearer', expires_in: 3600 });
          } else json(res, 200, { value: [] });
        });
      });
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return (s.address() as AddressInfo).port;
    };
    ownPort = await listen('own');
    own = `https://127.0.0.1:${ownPort}`;
    // Another server, named by an address that is neither admin.json's origin nor a loopback name (0.0.0.0
    // reaches this machine's listeners on Linux): it stands for --url https://elsewhere.
    other = `https://0.0.0.0:${await listen('other')}`;
    writeFileSync(join(dataDir, 'admin.json'), `${JSON.stringify({ clientId: 'admin-id', clientSecret: 'admin-secret', tokenEndpoint: `${own}/oauth2/token` })}\n`, { mode: 0o600 });
  });
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  test('--url naming another server: admin.json is not used, nothing is sent, exit 2', async () => {
    tokenForms.other = [];
    const r = await conclave(['key', 'list', '--url', other, '--data-dir', dataDir, '-o', 'json']);
    assert.deepEqual(forms('other'), [], 'the admin secret of admin.json went to another server');
    assert.equal(r.code, 2, r.stderr);
    const viaEnv = await conclave(['key', 'list', '--data-dir', dataDir, '-o', 'json'], { env: { CONCLAVE_URL: other } });
    assert.deepEqual(forms('other'), [], 'CONCLAVE_URL: the admin secret of admin.json went to another server');
    assert.equal(viaEnv.code, 2, viaEnv.stderr);
  });

  test('another origin is refused when the client is made, before anything is sent (a CliError, exit 2)', () => {
    for (const url of ['https://elsewhere.example', `https://elsewhere.example:${ownPort}`, `https://127.0.0.1.example:${ownPort}`, other]) {
      assert.throws(
        () => createServerClient({ dataDir }, { CONCLAVE_URL: url }),
        (e: unknown) => e instanceof CliError && e.exitCode === 2,
        url,
      );
    }
    // A credential given explicitly goes wherever it is pointed; admin.json's is not used for it.
    assert.doesNotThrow(() => createServerClient({ dataDir }, { CONCLAVE_URL: 'https://elsewhere.example', CONCLAVE_CLIENT_ID: 'c', CONCLAVE_CLIENT_SECRET: 's' }));
  });

  test('another server with an explicit credential gets that credential, never the admin secret', async () => {
    tokenForms.other = [];
    const r = await conclave(['key', 'list', '--url', other, '--client-id', 'c', '--client-secret', 's', '--data-dir', dataDir, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      forms('other').map((f) => [f.client_id, f.client_secret]),
      [['c', 's']],
    );
  });

  test("admin.json's own server (no --url, or its origin) and a loopback replica still use it", async () => {
    tokenForms.own = [];
    for (const url of [undefined, own, `${own}/`, `https://localhost:${ownPort}`]) {
      const r = await conclave(['key', 'list', ...(url ? ['--url', url] : []), '--data-dir', dataDir, '-o', 'json']);
      assert.equal(r.code, 0, `${url}: ${r.stderr}`);
    }
    assert.deepEqual(
      forms('own').map((f) => f.client_secret),
      ['admin-secret', 'admin-secret', 'admin-secret', 'admin-secret'],
    );
  });
});
