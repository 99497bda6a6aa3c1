import { cpSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Config, loadConfig } from '../../src/config/config.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { type HttpResponse, httpsClient, injectClient } from './https.js';
import { sharedSoftHsm } from './softhsm.js';
import { type TestDatabase, createTestDatabase, testDatabaseFor } from './postgres.js';

export interface TestServer extends RunningServer {
  readonly dataDir: string;
  /** Requests through fastify's inject(): the whole server but no TLS or socket (route tests). */
  readonly send: ReturnType<typeof httpsClient>;
  /** Requests over HTTPS to the listening server (end-to-end suites). */
  readonly sendHttps: ReturnType<typeof httpsClient>;
  /** An access token for the bootstrap administrator. */
  adminToken(): Promise<string>;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'conclave-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The simulated TEE's vendor hierarchy (`<data-dir>/simulated`: fake Intel, AMD and NVIDIA roots) of the
 * first --simulate server, copied into the fresh data dirs of the next ones: making it costs RSA and P-384
 * key generation (about a fifth of the CPU time of the integration suites when every test process made its
 * own), and no test depends on two data dirs having different fake roots. The first is kept for this test
 * process and, when scripts/run-tests.mjs names a scratch folder for the run (CONCLAVE_TEST_SHARED_DIR),
 * published there for every later test process of the run. Tests of the generation itself call
 * loadOrCreateSimulatedTee on an empty folder, which this never touches.
 */
let simulatedTemplate: string | undefined;

function sharedTemplate(): string | undefined {
  const shared = process.env.CONCLAVE_TEST_SHARED_DIR;
  const published = shared ? join(shared, 'simulated') : undefined;
  return published && existsSync(join(published, 'vendor.json')) && existsSync(join(published, 'gpus.json')) ? published : undefined;
}

/** Copies the simulated hierarchy into a data dir that has none (a no-op before the first one exists). */
export function seedSimulatedTee(dataDir: string): void {
  simulatedTemplate ??= sharedTemplate();
  const target = join(dataDir, 'simulated');
  if (simulatedTemplate && !existsSync(target)) cpSync(simulatedTemplate, target, { recursive: true });
}

function keepSimulatedTee(dataDir: string): void {
  const source = join(dataDir, 'simulated');
  if (simulatedTemplate || !existsSync(source)) return;
  const copy = join(tempDir('conclave-test-sim-'), 'simulated');
  cpSync(source, copy, { recursive: true });
  simulatedTemplate = copy;
  const shared = process.env.CONCLAVE_TEST_SHARED_DIR;
  if (shared && !existsSync(join(shared, 'simulated'))) {
    // Complete or absent: copied beside it, then renamed (a concurrent publisher's rename wins, this one is dropped).
    const staging = join(shared, `simulated.${process.pid}.tmp`);
    try {
      cpSync(source, staging, { recursive: true });
      renameSync(staging, join(shared, 'simulated'));
    } catch {
      rmSync(staging, { recursive: true, force: true });
    }
  }
}

/**
 * Starts the real server (HTTPS, port 0, SQLite in a temp dir unless `db` is given). With
 * CONCLAVE_TEST_DB=postgres and no `db` flag, each server gets a fresh PostgreSQL database
 * (test/helpers/postgres.ts), dropped by stop().
 */
export async function startTestServer(flags: Record<string, unknown> = {}, opts: { dataDir?: string; keepDataDir?: boolean; now?: () => Date } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const onPostgres = process.env.CONCLAVE_TEST_DB === 'postgres' && flags.db === undefined;
  // A caller-managed data dir may be restarted on: it keeps its database across stop() (see testDatabaseFor).
  const keptDb: TestDatabase | undefined = onPostgres && opts.dataDir ? await testDatabaseFor(opts.dataDir) : undefined;
  const pgDb: TestDatabase | undefined = onPostgres && !opts.dataDir ? await createTestDatabase(undefined, { migrated: true }) : undefined;
  let server: RunningServer;
  try {
    // CONCLAVE_TEST_HSM=softhsm: keys go into one SoftHSM token per process (scripts/test-hsm.mjs, docs/hsm.md).
    const hsm = process.env.CONCLAVE_TEST_HSM === 'softhsm' && !('hsm' in flags) ? { hsm: `${sharedSoftHsm().spec};release-sha2=hybrid` } : {};
    const config: Config = loadConfig({ flags: { port: 0, logLevel: 'silent', ...hsm, ...flags, ...(pgDb || keptDb ? { db: (pgDb ?? keptDb)?.url } : {}), dataDir }, env: {} });
    if (config.simulate) seedSimulatedTee(dataDir);
    server = await startServer(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...(opts.now ? { now: opts.now } : {}) });
    if (config.simulate) keepSimulatedTee(dataDir);
  } catch (e) {
    await pgDb?.drop().catch(() => undefined);
    throw e;
  }
  const sendHttps = httpsClient(server.url, server.caPath);
  const send = process.env.CONCLAVE_TEST_TRANSPORT === 'https' ? sendHttps : injectClient(server.app, server.url);
  let token: string | undefined;
  return {
    ...server,
    dataDir,
    send,
    sendHttps,
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
      await pgDb?.drop();
      if (!opts.keepDataDir && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
