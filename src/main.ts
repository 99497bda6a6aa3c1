import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from './config/config.js';
import { createSealer, loadOrCreateMasterKey } from './hsm/master-key.js';
import { buildApp } from './server/app.js';
import { type ComposedServices, composeServices, consoleOidcOf, externalIssuerOf } from './compose.js';
import { type AdminCredential, createAuthenticator, ensureAdminCredential } from './server/auth.js';
import type { AppContext } from './server/context.js';
import { createMetrics } from './server/metrics.js';
import { type ServiceKey, loadOrCreateServiceKey } from './hsm/service-keys.js';
import { loadOrCreateTls } from './server/tls.js';
import { createClientStore } from './storage/client-store.js';
import { createConsoleStore } from './storage/console-store.js';
import { createConsoleSessions } from './server/console/sessions.js';
import { openDatabase } from './storage/open.js';
import { checkTrustMode, describeStore } from './storage/store-meta.js';
import type { Database } from './storage/database.js';
import { MIGRATIONS } from './storage/migrations/index.js';

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly caPath: string;
  readonly adminPath: string;
  readonly admin: AdminCredential;
  /** What the plugins received, plus the store and the service keys (tests read and tamper with them). */
  readonly ctx: AppContext & ServerInternals;
  /** Graceful stop: no new connections, in-flight requests finish, then the store closes. */
  close(): Promise<void>;
}

/** What the composition root holds besides the plugins' context. */
export interface ServerInternals {
  readonly db: Database;
  serviceKey(name: string, alg: 'RS256' | 'ES256', subject: string, hosts?: readonly string[]): Promise<ServiceKey>;
}

/** Secret-bearing paths that never reach a log line. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["ocp-apim-subscription-key"]',
  'headers.authorization',
  '*.clientSecret',
  '*.client_secret',
  '*.access_token',
  '*.key_hsm',
  '*.privateKey',
  '*.pin',
];

export function createLogger(level: Config['logLevel']): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}

/**
 * The composition root: config → store → key protection → signing identities → services → HTTPS.
 * The only place that wires ports to implementations.
 */
export async function startServer(config: Config, opts: { logger?: Logger; now?: () => Date } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const now = opts.now ?? (() => new Date());
  const tls = await loadOrCreateTls(config.dataDir, config.host);
  const db = await openDatabase(config.db, { poolSize: config.dbPoolSize });
  try {
    await db.migrate(MIGRATIONS);
    await checkTrustMode(db, config.simulate ? 'simulate' : 'real', describeStore(config.db));
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  const clients = createClientStore(db);
  const sealer = createSealer(loadOrCreateMasterKey(join(config.dataDir, 'master.key')));
  let baseUrl = config.publicUrl ?? `https://${config.host}:${config.port}`;
  let adminId: string | undefined;
  const keys = new Map<string, Promise<ServiceKey>>();
  const serviceKey = (name: string, alg: 'RS256' | 'ES256', subject: string, hosts?: readonly string[]) => {
    let k = keys.get(name);
    if (!k) {
      k = loadOrCreateServiceKey(db, sealer, name, alg, subject, now().getTime(), hosts);
      keys.set(name, k);
      k.catch(() => keys.delete(name));
    }
    return k;
  };
  const accessTokenKey = await serviceKey('access-token', 'ES256', 'conclave access tokens');
  const readiness = new Map<string, () => Promise<void>>([['store', () => db.ping()]]);
  if (config.simulate) logger.warn('--simulate: the simulated TEE root is trusted; every token it yields carries x-conclave-simulated=true. Never use this in production.');
  let services: ComposedServices;
  try {
    services = await composeServices({ config, db, sealer, logger, now, baseUrl: () => baseUrl, caPath: tls.caPath, serviceKey, readiness });
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  const consoleSessions = createConsoleSessions({ store: createConsoleStore(db), now });
  const consoleOidc = consoleOidcOf(config, tls.caPath);
  const ctx: AppContext & ServerInternals = {
    config,
    db,
    serviceKey,
    logger,
    metrics: createMetrics(),
    auth: createAuthenticator(clients, accessTokenKey, () => baseUrl, () => adminId, externalIssuerOf(config, tls.caPath, now), (id) => consoleSessions.resolve(id)),
    services,
    baseUrl: () => baseUrl,
    now,
    readiness,
    adminClientId: () => adminId,
    caPath: tls.caPath,
    consoleSessions,
    consoleOidc,
  };
  let app: FastifyInstance | undefined;
  try {
    app = await buildApp(ctx, { https: { key: tls.key, cert: tls.cert }, logger });
    await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    await app?.close().catch(() => undefined);
    consoleOidc?.close();
    await services.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  baseUrl = config.publicUrl ?? `https://${hostForUrl}:${port}`;
  const admin = await ensureAdminCredential(clients, config.dataDir, baseUrl, Math.floor(now().getTime() / 1000));
  adminId = admin.credential.clientId;
  let closing: Promise<void> | undefined;
  return {
    app,
    url: `https://${hostForUrl}:${port}`,
    caPath: tls.caPath,
    adminPath: admin.path,
    admin: admin.credential,
    ctx,
    close() {
      closing ??= (async () => {
        await app.close();
        consoleOidc?.close();
        await services.close();
        await db.close();
      })();
      return closing;
    },
  };
}
