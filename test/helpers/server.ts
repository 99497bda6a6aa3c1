import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Config, loadConfig } from '../../src/config/config.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { type HttpResponse, httpsClient } from './https.js';

export interface TestServer extends RunningServer {
  readonly dataDir: string;
  readonly send: ReturnType<typeof httpsClient>;
  /** An access token for the bootstrap administrator. */
  adminToken(): Promise<string>;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'conclave-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Starts the real server (HTTPS, port 0, SQLite in a temp dir unless `db` is given). */
export async function startTestServer(flags: Record<string, unknown> = {}, opts: { dataDir?: string; keepDataDir?: boolean; now?: () => Date } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const config: Config = loadConfig({ flags: { port: 0, logLevel: 'silent', ...flags, dataDir }, env: {} });
  const server = await startServer(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...(opts.now ? { now: opts.now } : {}) });
  const send = httpsClient(server.url, server.caPath);
  let token: string | undefined;
  return {
    ...server,
    dataDir,
    send,
    async adminToken() {
      if (token) return token;
      const r: HttpResponse = await send('POST', '/oauth2/token', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: server.admin.clientId, client_secret: server.admin.clientSecret }).toString(),
      });
      if (r.status !== 200) throw new Error(`admin token: ${r.status} ${r.text}`);
      token = r.json().access_token as string;
      return token;
    },
    async stop() {
      await server.close();
      if (!opts.keepDataDir && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
