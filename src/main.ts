import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from './config/config.js';
import { type Sealer, createSealer, loadOrCreateMasterKey, readMasterKey } from './hsm/master-key.js';
import { fail } from './core/errors.js';
import { secureDataDir } from './storage/data-dir.js';
import { buildApp } from './server/app.js';
import { type ComposedServices, composeServices, consoleOidcOf, externalIssuerOf } from './compose.js';
import { type AdminCredential, createAuthenticator, ensureAdminCredential } from './server/auth.js';
import type { AppContext } from './server/context.js';
import { createMetrics } from './server/metrics.js';
import { type ServiceKey, loadOrCreateServiceKey } from './hsm/service-keys.js';
import { loadOrCreateTls } from './server/tls.js';
import { adoptClientRows, createClientStore } from './storage/client-store.js';
import { adoptPolicyRows } from './storage/attestation-store.js';
import { createConsoleStore } from './storage/console-store.js';
import { createConsoleSessions } from './server/console/sessions.js';
import { openDatabase } from './storage/open.js';
import { checkTrustMode, describeStore, readStoreMeta, recordStoreMeta } from './storage/store-meta.js';
import type { Database } from './storage/database.js';
import { MIGRATIONS } from './storage/migrations/index.js';
import { adoptVaultRows } from './storage/vault-store.js';

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
  secureDataDir(config.dataDir);
  const tls = await loadOrCreateTls(config.dataDir, config.host);
  const db = await openDatabase(config.db, { poolSize: config.dbPoolSize });
  let sealer: Sealer;
  try {
    await db.migrate(MIGRATIONS);
    await checkTrustMode(db, config.simulate ? 'simulate' : 'real', describeStore(config.db));
    sealer = await openMasterKey(db, join(config.dataDir, 'master.key'), describeStore(config.db));
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  const rowMac = (purpose: string, text: string) => sealer.mac(purpose, text);
  const clients = createClientStore(db, rowMac);
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
  const consoleSessions = createConsoleSessions({ store: createConsoleStore(db, rowMac), now });
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
  secureDataDir(config.dataDir);
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

/** A value sealed into store_meta under the master key, so a server can tell whether its key is the store's. */
const MASTER_KEY_CHECK = 'master_key_check';
const MASTER_KEY_CHECK_AAD = 'store-meta:master-key-check';
const MASTER_KEY_CHECK_VALUE = 'conclave master key check v1';

/**
 * The master key of this store. A store that holds data sealed under a master key (the check value, or
 * service keys from before it) never gets a new one: a missing file is `store.master_key_missing` and a
 * key that does not open the store's sealed data `store.master_key_mismatch`, both naming the file, and
 * the data dir is left as it was. Only a store without sealed data gets a fresh key.
 */
async function openMasterKey(db: Database, path: string, where: string): Promise<Sealer> {
  const check = await readStoreMeta(db, MASTER_KEY_CHECK);
  const serviceKey = await db.get<{ name: string; sealed_private: Uint8Array }>('SELECT name, sealed_private FROM service_keys ORDER BY name LIMIT 1');
  const existing = readMasterKey(path);
  if (!existing && (check !== undefined || serviceKey !== undefined)) {
    throw fail(
      'store.master_key_missing',
      `the master key ${path} is missing, but the store ${where} holds keys sealed under it. Restore ${path} (32 bytes, mode 0600) from the backup of this data dir, or from the secret the replicas of this store share; a new key would leave every sealed key unreadable, so none was created`,
      { path, store: where },
    );
  }
  const sealer = createSealer(existing ?? loadOrCreateMasterKey(path));
  const opens = (sealed: string | Uint8Array, aad: string) => {
    try {
      sealer.open(typeof sealed === 'string' ? Buffer.from(sealed, 'base64') : new Uint8Array(sealed), aad);
      return true;
    } catch {
      return false;
    }
  };
  const mismatch = () =>
    fail(
      'store.master_key_mismatch',
      `the master key ${path} does not open the data sealed in the store ${where}: it belongs to another store. Restore this store's master key to ${path}`,
      { path, store: where },
    );
  if (check === undefined && serviceKey && !opens(serviceKey.sealed_private, `service-key:${serviceKey.name}`)) throw mismatch();
  // A store from before row MACs gets them now, once: after the check value is recorded, a vault row
  // without its MAC is refused like a changed one (docs/security.md, Guarantees).
  if (check === undefined) {
    await adoptVaultRows(db, (purpose, text) => sealer.mac(purpose, text));
    await adoptClientRows(db, (purpose, text) => sealer.mac(purpose, text));
    await adoptPolicyRows(db, (purpose, text) => sealer.mac(purpose, text));
  }
  const inForce = check ?? (await recordStoreMeta(db, MASTER_KEY_CHECK, Buffer.from(sealer.seal(new TextEncoder().encode(MASTER_KEY_CHECK_VALUE), MASTER_KEY_CHECK_AAD)).toString('base64')));
  if (!opens(inForce, MASTER_KEY_CHECK_AAD)) throw mismatch();
  return sealer;
}
