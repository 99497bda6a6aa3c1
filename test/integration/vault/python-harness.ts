/**
 * Running the official Python SDKs (Debian python3-azure, /usr/bin/python3; .ci/run installs it) against
 * Conclave: vaults named `<label>.vault.localtest:<port>` (the SDK's challenge check runs, host and port),
 * a plain-HTTP control endpoint on 127.0.0.1 for what a script cannot do itself (move the injected
 * clock, mint attestation tokens, register clients, start fresh servers), and the script's run with an
 * environment of its own.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir, type TestServer } from '../../helpers/server.js';
import { startVault } from './harness.js';
import { ROOT } from '../../helpers/root.js';

export const PYTHON = '/usr/bin/python3';

/** Why the Python SDKs cannot run here (undefined: they can); under CI=true their absence is an error. */
export function pythonMissing(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import azure.keyvault.keys, azure.keyvault.administration, azure.identity'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const why = `${PYTHON} with python3-azure (azure.keyvault.keys, azure.keyvault.administration, azure.identity) is not installed`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${why}`);
  return why;
}

export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A vault whose public URL is `https://<label>.vault.localtest:<port>` (the local TLS certificate covers it). */
export async function startNamedVault(label: string, opts: { now?: () => Date; dataDir?: string; flags?: Record<string, unknown> } = {}): Promise<{ server: TestServer; url: string }> {
  const port = await freePort();
  const url = `https://${label}.vault.localtest:${port}`;
  const server = await startVault({ ...(opts.now ? { now: opts.now } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), flags: { port, publicUrl: url, ...opts.flags } });
  return { server, url };
}

/** The control endpoint: each path maps to a handler whose result is answered as JSON. */
export async function startControl(handlers: Record<string, (q: URLSearchParams) => Promise<unknown>>): Promise<{ url: string; close(): Promise<void> }> {
  const srv: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://control');
    const handler = handlers[u.pathname];
    if (!handler) {
      res.statusCode = 404;
      res.end('{}');
      return;
    }
    handler(u.searchParams).then(
      (v) => res.end(JSON.stringify(v)),
      (e) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ error: String(e) }));
      },
    );
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

/**
 * Runs a script of clients/ with only the given environment (plus PATH and a scratch HOME) and returns
 * the JSON of its last output line; a failing script fails the test with its stderr.
 */
export async function runPython(script: string, env: Record<string, string>): Promise<any> {
  let out: { stdout: string; stderr: string };
  try {
    out = await promisify(execFile)(PYTHON, [join(ROOT, 'test', 'integration', 'vault', 'clients', script)], {
      env: { PATH: '/usr/bin:/bin', HOME: tempDir('conclave-pyhome-'), ...env },
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    assert.fail(`python failed:\n${err.stderr?.slice(-6000)}\n${err.stdout?.slice(-2000)}`);
  }
  return JSON.parse(out.stdout.trim().split('\n').at(-1)!);
}
