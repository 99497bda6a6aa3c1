/**
 * The CLI's server client sends its bearer token and its client secret to the server it was pointed at,
 * and nowhere else: a server (or whoever can shape its answers) cannot steer either to another origin.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServerClient } from './client.js';
import { main } from './main.js';
import { CliError } from './output.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Runs the CLI in-process with stdout and stderr captured. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const write = (s: string | Uint8Array) => {
    out += String(s);
    return true;
  };
  const [o, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = write as typeof process.stdout.write;
  process.stderr.write = write as typeof process.stderr.write;
  const before = process.exitCode;
  try {
    return { code: await main(args), out };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    process.exitCode = before;
  }
}

describe('CLI server client: credentials stay with their origin', () => {
  const servers: Server[] = [];
  let vault = '';
  let elsewhere = '';
  const seenElsewhere: Array<{ url?: string; authorization?: string }> = [];
  let page: Handler = (_req, res) => json(res, 200, { value: [] });
  const listen = async (h: Handler) => {
    const s = createServer(h);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  };
  const dataDir = mkdtempSync(join(tmpdir(), 'conclave-cli-client-'));

  before(async () => {
    vault = await listen((req, res) => {
      if (req.url === '/oauth2/token') json(res, 200, { access_token: 'vault-bearer', token_type: 'Bearer', expires_in: 3600 });
      else page(req, res);
    });
    elsewhere = await listen((req, res) => {
      seenElsewhere.push({ url: req.url, authorization: req.headers.authorization });
      json(res, 200, { value: [] });
    });
  });
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  test('key list does not follow a nextLink whose path names another host (//host/…)', async () => {
    const other = new URL(elsewhere).host;
    page = (req, res) =>
      json(res, 200, {
        value: [{ kid: `${vault}/keys/a`, attributes: { enabled: true, updated: 1 } }],
        nextLink: req.url?.startsWith('/keys?') ? `${vault}//${other}/keys?api-version=7.6&$skiptoken=x` : null,
      });
    seenElsewhere.length = 0;
    const r = await cli(['key', 'list', '--url', vault, '--client-id', 'c', '--client-secret', 's', '--data-dir', dataDir, '-o', 'json']);
    assert.deepEqual(seenElsewhere, [], 'the bearer token went to another origin');
    assert.notEqual(r.code, 0, r.out);
  });

  test('key list: a nextLink that is not an absolute URL (relative, malformed, not a string) is a server-answer error (exit 1) naming it, not a bare TypeError', async () => {
    for (const nextLink of ['/keys?api-version=7.6&$skiptoken=x', 'http://[bad', 42]) {
      page = (req, res) => json(res, 200, { value: [{ kid: `${vault}/keys/a`, attributes: { enabled: true, updated: 1 } }], nextLink: req.url?.startsWith('/keys?') ? nextLink : null });
      const r = await cli(['key', 'list', '--url', vault, '--client-id', 'c', '--client-secret', 's', '--data-dir', dataDir, '-o', 'json']);
      // What the CLI wrote last (the captured stream also carries the test runner's own reports).
      const said = /error: [^\n]*\n(hint: [^\n]*\n)?$/.exec(r.out)?.[0] ?? '';
      assert.equal(r.code, 1, `${JSON.stringify(nextLink)}: ${said}`);
      assert.match(said, /^error: .*nextLink/, `${JSON.stringify(nextLink)}: the error names the server's nextLink: ${said}`);
      assert.doesNotMatch(said, /ERR_INVALID_URL|run with --debug/, `${JSON.stringify(nextLink)}: a bare TypeError: ${said}`);
    }
  });
});

describe('CLI server client: a malformed <data-dir>/admin.json', () => {
  const write = (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-cli-admin-json-'));
    writeFileSync(join(dir, 'admin.json'), text, { mode: 0o600 });
    return dir;
  };
  const id = { clientId: 'admin-id', clientSecret: 'admin-secret' };

  test('unparsable JSON, a value that is not an object, a malformed or non-string tokenEndpoint: a CliError naming the file (exit 2)', () => {
    for (const text of ['{"clientId": "admin-id",', 'null', '[]', JSON.stringify({ ...id, tokenEndpoint: 'not a url' }), JSON.stringify({ ...id, tokenEndpoint: 42 }), JSON.stringify({ ...id, clientSecret: 7, tokenEndpoint: 'https://127.0.0.1:8443/oauth2/token' })]) {
      const dir = write(text);
      assert.throws(
        () => createServerClient({ dataDir: dir }, {}),
        (e: unknown) => e instanceof CliError && e.exitCode === 2 && e.message.includes(join(dir, 'admin.json')),
        text,
      );
    }
  });

  test('a well-formed admin.json still gives the URL and the credential', () => {
    const dir = write(JSON.stringify({ ...id, tokenEndpoint: 'https://127.0.0.1:8443/oauth2/token' }));
    assert.equal(createServerClient({ dataDir: dir }, {}).url, 'https://127.0.0.1:8443');
  });
});
