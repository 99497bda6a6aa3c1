/**
 * The composition root of the services: every adapter (stores, key protection, HTTP clients, upstreams)
 * and every timer is built here, and each domain service receives its ports as parameters. The HTTP
 * plugins (src/server/) get the finished services and only translate the wire.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, type KeyObject, sign as cryptoSign, randomUUID, X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { cachedAmdCrlSource, cachedQuoteCollateralSource, cachedVcekSource } from './attestation/collateral-cache.js';
import type { GpuReferenceSource } from './attestation/gpu.js';
import type { PolicyStore, QuoteCollateralSource, SnpCertificateSource } from './attestation/ports.js';
import { createAttestationService } from './attestation/service.js';
import type { TokenSigner } from './attestation/token.js';
import { createCollateralAdmin } from './collateral/admin.js';
import { type CollateralLookup, createCollateralLookup } from './collateral/lookup.js';
import type { CollateralStore } from './collateral/ports.js';
import { createPlatformService } from './collateral/platforms.js';
import { createCollateralService } from './collateral/service.js';
import { amdCrlFromCache, gpuReferencesFromCache, quoteCollateralFromCache, vcekFromCache } from './collateral/sources.js';
import type { Config } from './config/config.js';
import { loadOrCreateSimulatedTee } from './evidence/simulated/index.js';
import { fail } from './core/errors.js';
import { signAsync } from './core/async-crypto.js';
import { parseCertificate, pemToDer } from './core/x509.js';
import type { Sealer } from './hsm/master-key.js';
import { createPkcs11KeyProtector, routeKeyProtector } from './hsm/pkcs11.js';
import { parsePkcs11Spec } from './hsm/pkcs11-spec.js';
import { type ServiceKey, loadOrCreateTokenServiceKey, verifyPinnedTokenServiceKeys } from './hsm/service-keys.js';
import { createSoftwareKeyProtector } from './hsm/software.js';
import { createPolicyStore } from './storage/attestation-store.js';
import { createCollateralStore } from './storage/collateral-store.js';
import type { Database } from './storage/database.js';
import { createVaultStore } from './storage/vault-store.js';
import { createLogStore, LOG_KEY_NAME } from './storage/log-store.js';
import { createSequencer } from './log/sequencer.js';
import { createLogService } from './log/service.js';
import { type LogSigner, logKeyId } from './log/tree-head.js';
import { type LogVerification, type LogVerificationFailure, verifyLog } from './log/verify.js';
import { createDirectoryBackupTarget } from './storage/backup-directory.js';
import { certificateNamesHost, issueReleaseCertificate, loadOperatorReleaseIdentity, signerFor } from './hsm/release-certificate.js';
import { loadLocalCa } from './server/tls.js';
import { createCollateralUpstream } from './upstream/collateral-upstream.js';
import { createNvidiaRimSource, kdsCrlFetcher, kdsVcekFetcher, pcsQuoteCollateralFetcher } from './upstream/collateral-source.js';
import { createHttpClient } from './upstream/http.js';
import { createJwksFetcher } from './upstream/jwks.js';
import { createOidcSignIn, type OidcSignIn } from './upstream/oidc-sign-in.js';
import { createVaultService, type ReleaseKeySource, type VaultService } from './vault/service.js';
import type { ExternalIssuer } from './server/auth.js';
import type { AttestationServices, CollateralServices, LogBatchEvent, LogServices, Services, VaultServices } from './server/context.js';

/** What the services are built on: the store, the master key, the clock, the service's own identity. */
export interface Foundation {
  readonly config: Config;
  readonly db: Database;
  readonly sealer: Sealer;
  readonly logger: Logger;
  readonly now: () => Date;
  /** The public base URL, known once the server listens. */
  readonly baseUrl: () => string;
  /** The local CA certificate (trusted for our own and operator-configured HTTPS peers). */
  readonly caPath: string;
  /** Loads (or creates once) a named signing identity of the service. */
  serviceKey(name: string, alg: 'RS256' | 'ES256', subject: string, hosts?: readonly string[]): Promise<ServiceKey>;
  /** `/readyz` checks by name; the services add theirs. */
  readonly readiness: Map<string, () => Promise<void>>;
}

export interface ComposedServices extends Services {
  /** Stops the timers and closes the HTTP clients and the HSM session pool. */
  close(): Promise<void>;
}

/** Collateral timers: replicas poll the store's version every second; the refresh schedule runs every 10 minutes. */
const COLLATERAL_SYNC_MS = 1000;
const COLLATERAL_REFRESH_MS = 10 * 60_000;

/**
 * Builds the configured services (`config.services`) over the foundation. The attestation service reads
 * collateral from the collateral cache in this process when that service runs here, and from the
 * configured upstreams over HTTPS otherwise.
 */
export async function composeServices(f: Foundation): Promise<ComposedServices> {
  const closers: (() => void | Promise<void>)[] = [];
  const runs = (name: Config['services'][number]) => f.config.services.includes(name);
  let collateralStore: CollateralStore | undefined;
  const sightings = () => (collateralStore ??= createCollateralStore(f.db));
  try {
    const collateral = runs('collateral') ? await composeCollateral(f, sightings(), closers) : undefined;
    const attestation = runs('attestation') ? await composeAttestation(f, sightings(), collateral?.lookup, closers) : undefined;
    const vault = runs('vault') ? await composeVault(f, closers) : undefined;
    return {
      vault,
      attestation,
      collateral,
      async close() {
        for (const c of closers.splice(0).reverse()) await c();
      },
    };
  } catch (e) {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    throw e;
  }
}

async function composeCollateral(f: Foundation, store: CollateralStore, closers: (() => void | Promise<void>)[]): Promise<CollateralServices> {
  const http = createHttpClient({ retries: 3, timeoutMs: f.config.upstreamTimeoutMs });
  closers.push(() => http.close());
  const upstream = createCollateralUpstream({
    intel: f.config.upstreamIntel,
    intelApiKey: f.config.intelApiKey,
    amd: f.config.upstreamAmd,
    nvidiaRim: f.config.upstreamNvidiaRim,
    nvidiaOcsp: f.config.upstreamNvidiaOcsp,
    http,
  });
  const service = createCollateralService({ mode: f.config.collateralMode, store, upstream, now: f.now, logger: f.logger.child({ service: 'collateral' }) });
  await service.sync();
  const syncTimer = setInterval(() => service.sync().catch(() => undefined), COLLATERAL_SYNC_MS);
  const refreshTimer = setInterval(() => {
    service.refreshDue(false).catch((e: unknown) => f.logger.warn({ err: e }, 'collateral refresh schedule failed'));
  }, COLLATERAL_REFRESH_MS);
  for (const t of [syncTimer, refreshTimer]) t.unref();
  closers.push(() => {
    clearInterval(syncTimer);
    clearInterval(refreshTimer);
  });
  f.readiness.set('collateral', async () => {
    await store.currentVersion();
  });
  const lookup = createCollateralLookup(service);
  return { service, lookup, admin: createCollateralAdmin(service, f.now), platforms: createPlatformService({ svc: service, now: f.now, miss: lookup.miss }) };
}

async function composeAttestation(f: Foundation, sightings: CollateralStore, local: CollateralLookup | undefined, closers: (() => void | Promise<void>)[]): Promise<AttestationServices> {
  const signerOf = (name: string, subject: () => string) => async (): Promise<TokenSigner> => {
    const k = await f.serviceKey(name, 'RS256', subject());
    return { kid: k.kid, privateKey: k.privateKey, certDer: k.certDer };
  };
  const signer = signerOf('attestation-signing', () => f.baseUrl());
  // Tokens from simulated evidence get a signing key of their own, which exists only under --simulate:
  // a server without the flag never creates, publishes or trusts it (docs/security.md).
  const simulatedSigner = f.config.simulate ? signerOf('attestation-signing-simulated', () => `${f.baseUrl()} simulated TEE tokens, development only`) : undefined;
  const publishedSigners = async () => (simulatedSigner ? [await signer(), await simulatedSigner()] : [await signer()]);
  const policies = createPolicyStore(f.db, f.now, (purpose, text) => f.sealer.mac(purpose, text));
  const nowMs = () => Date.now();
  const serverMs = () => f.now().getTime();
  let collateral: QuoteCollateralSource;
  let snpCertificates: SnpCertificateSource;
  let gpuReferences: GpuReferenceSource;
  const warn = (msg: string, fields: Record<string, unknown>) => f.logger.warn(fields, msg);
  if (local) {
    const quotes = cachedQuoteCollateralSource((req) => quoteCollateralFromCache(local, req, f.now), nowMs, warn, serverMs);
    const vceks = cachedVcekSource((req) => vcekFromCache(local, req, f.now), serverMs);
    const crls = cachedAmdCrlSource((req) => amdCrlFromCache(local, req, f.now), serverMs, warn);
    // The in-memory copies follow the cache at once: a refresh here, or items another replica stored.
    local.service.onChange(() => {
      quotes.clear();
      vceks.clear();
      crls.clear();
    });
    collateral = quotes;
    snpCertificates = { getVcek: (req) => vceks.getVcek(req), getCrl: (req) => crls.getCrl(req) };
    gpuReferences = gpuReferencesFromCache(local, f.now);
  } else {
    const http = createHttpClient({ ca: readFileSync(f.caPath), retries: 1 });
    closers.push(() => http.close());
    collateral = cachedQuoteCollateralSource(pcsQuoteCollateralFetcher(() => f.config.upstreamIntel, http), nowMs, warn, serverMs);
    const vceks = cachedVcekSource(kdsVcekFetcher(() => f.config.upstreamAmd, f.caPath), serverMs);
    const crls = cachedAmdCrlSource(kdsCrlFetcher(() => f.config.upstreamAmd, f.caPath), serverMs, warn);
    snpCertificates = { getVcek: (req) => vceks.getVcek(req), getCrl: (req) => crls.getCrl(req) };
    gpuReferences = createNvidiaRimSource(() => f.config.upstreamNvidiaRim, http);
  }
  const service = createAttestationService({
    tpmAikRoots: f.config.tpmAikRoots.flatMap((path) => {
      try {
        return pemToDer(readFileSync(path, 'utf8'));
      } catch (e) {
        throw fail('config.invalid', `tpm-aik-root ${path} is not a readable PEM certificate file`, { option: 'tpmAikRoots' }, e);
      }
    }),
    collateral,
    freshness: f.config.collateralFreshness,
    gpuReferences,
    snpCertificates,
    snpCrl: f.config.snpCrl,
    policies,
    signer,
    ...(simulatedSigner ? { simulatedSigner } : {}),
    issuer: f.baseUrl,
    now: f.now,
    cacheClockMs: () => performance.now(),
    tokenLifetimeSeconds: f.config.tokenLifetimeSeconds,
    simulated: f.config.simulate ? loadOrCreateSimulatedTee(f.config.dataDir) : undefined,
    // Platforms seen feed the collateral service's baseline dry run; recording never delays or fails attestation.
    onPlatformSeen: (p, at) => {
      sightings.recordPlatformSeen(p, 'attestation', at).catch((e: unknown) => f.logger.warn({ err: e }, 'could not record the platform seen'));
    },
  });
  await registerPolicyCertificates(f.config, policies);
  f.readiness.set('attestation-signing-key', async () => void (await signer()));
  return { service, policies, signer, publishedSigners };
}

/**
 * Registers the operator's policy-management certificates (`--policy-certificate`). Isolated mode needs
 * at least one: the first management key must come from whoever runs the server, never from a bearer
 * token, or isolation would be only as strong as the administrator credential.
 */
async function registerPolicyCertificates(config: Config, policies: PolicyStore): Promise<void> {
  for (const path of config.policyCertificates) {
    let ders: Uint8Array[];
    try {
      ders = pemToDer(readFileSync(path, 'latin1'));
      if (ders.length === 0) throw new Error('no PEM certificate');
      for (const der of ders) parseCertificate(der);
    } catch (e) {
      throw fail('config.invalid', `policy-certificate ${path} is not a readable PEM certificate file`, { option: 'policyCertificates' }, e);
    }
    for (const der of ders) await policies.addCertificate(der);
  }
  if (config.isolated && (await policies.listCertificates()).length === 0) {
    throw fail('config.invalid', 'isolated mode needs at least one policy-management certificate: pass --policy-certificate <pem-file>', { option: 'policyCertificates' });
  }
}

/**
 * Keys under the master key (software), or with `--hsm pkcs11:…` new keys in the token while keys made
 * before stay with the software provider; the release-signing key then lives in the token too (docs/hsm.md).
 */
async function composeVault(f: Foundation, closers: (() => void | Promise<void>)[]): Promise<VaultServices> {
  const software = createSoftwareKeyProtector(f.sealer);
  let protector = software;
  let releaseKey: VaultReleaseKey = (subject, host) =>
    f.serviceKey(`release-signing:${host}`, 'RS256', subject, [host]).then((sk) => ({
      sign: (data: Uint8Array) => signAsync('sha256', data, sk.privateKey),
      // RS256 (what sign does), so the wrap worker can sign a software key's release in the job of its wrap.
      privateKey: sk.privateKey,
      certDer: sk.certDer,
      publicKey: sk.publicKey,
    }));
  let logSigner = softwareLogKey(f);
  if (f.config.hsm !== undefined) {
    const hsm = await createPkcs11KeyProtector(parsePkcs11Spec(f.config.hsm), { logger: f.logger });
    // A pinned service key that is gone from the token or could have left it: refuse to start.
    try {
      await verifyPinnedTokenServiceKeys(f.db, hsm);
    } catch (e) {
      await hsm.close();
      throw e;
    }
    closers.push(() => hsm.close());
    f.readiness.set('hsm', () => hsm.check());
    protector = routeKeyProtector(hsm, software);
    releaseKey = (subject, host) => loadOrCreateTokenServiceKey(f.db, hsm, `release-signing:${host}`, subject, f.now().getTime(), [host]);
    // The log key in the token too (RSA-2048, PKCS#1 v1.5 SHA-256: the token's service-key mechanism).
    logSigner = async () => {
      const k = await loadOrCreateTokenServiceKey(f.db, hsm, LOG_KEY_NAME, `${f.baseUrl()} transparency log`, f.now().getTime());
      return { keyId: logKeyId(k.publicKey), publicKey: k.publicKey, sign: (data) => k.sign(data) };
    };
  }
  const service = createVaultService({
    store: createVaultStore(f.db, (purpose, text) => f.sealer.mac(purpose, text)),
    protector,
    releaseKey: releaseIdentity(f, releaseKey),
    getJwks: createJwksFetcher({ caPath: f.caPath, now: f.now }),
    sealer: f.sealer,
    now: f.now,
    baseUrl: f.baseUrl,
    trustedAuthorities: f.config.trustedAuthorities,
    simulate: f.config.simulate,
    softDelete: { recoverableDays: f.config.recoverableDays, purgeProtection: f.config.purgeProtection },
    backupTarget: createDirectoryBackupTarget(f.config.backupDir),
    logger: f.logger,
  });
  scheduleMaintenance(f, service, closers);
  return { service, log: composeLog(f, logSigner, closers) };
}

/** The log key as a software service key (ECDSA P-256), sealed under the master key in the store. */
function softwareLogKey(f: Foundation): () => Promise<LogSigner> {
  return async () => {
    const k = await f.serviceKey(LOG_KEY_NAME, 'ES256', `${f.baseUrl()} transparency log`);
    return { keyId: logKeyId(k.publicKey), publicKey: k.publicKey, sign: async (data) => cryptoSign('sha256', data, { key: k.privateKey, dsaEncoding: 'ieee-p1363' }) };
  };
}

/** Most entries in one batch: a backlog (a migrated chain, a burst) is worked off batch after batch. */
const LOG_MAX_BATCH = 2000;

/**
 * The transparency log (docs/audit.md): its store, the read service, and this replica's sequencer,
 * which competes for the cluster's one lease and, holding it, indexes the entries every replica writes.
 */
function composeLog(f: Foundation, loadSigner: () => Promise<LogSigner>, closers: (() => void | Promise<void>)[]): LogServices {
  const store = createLogStore(f.db);
  let signer: Promise<LogSigner> | undefined;
  const logSigner = () => {
    signer ??= loadSigner();
    signer.catch(() => {
      signer = undefined;
    });
    return signer;
  };
  /**
   * The log keys this server vouches for when it verifies its own log: its signer's and, with --hsm, the
   * software log key that signed the heads from before the token, opened from its sealed row. Never a
   * certificate row alone (storedLogKeys, the CLI's default, which says so): whoever can write the store
   * can replace or add those, then re-sign a rewritten log with a key of its own.
   */
  const vouchedLogKeys = async (): Promise<KeyObject[]> => {
    const keys = [(await logSigner()).publicKey];
    if (f.config.hsm === undefined) return keys;
    const row = await f.db.get<{ sealed_private: Uint8Array }>('SELECT sealed_private FROM service_keys WHERE name = ?', [LOG_KEY_NAME]);
    if (row && row.sealed_private.length > 0) {
      const pkcs8 = Buffer.from(f.sealer.open(new Uint8Array(row.sealed_private), `service-key:${LOG_KEY_NAME}`));
      keys.push(createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })));
    }
    return keys;
  };
  /**
   * Without --hsm, heads signed by the token's log key (the store ran with --hsm before, or a replica with
   * it shares the store) cannot be vouched for: say so. The certificate row only names the key here; the
   * verdict stays a failure whatever it holds.
   */
  const explained = async (result: LogVerification | LogVerificationFailure): Promise<LogVerification | LogVerificationFailure> => {
    if (result.ok || f.config.hsm !== undefined || result.code !== 'log.signature_invalid' || typeof result.detail?.['keyId'] !== 'string') return result;
    const row = await f.db.get<{ cert_der: Uint8Array }>('SELECT cert_der FROM service_keys WHERE name = ?', [`pkcs11:${LOG_KEY_NAME}`]);
    let tokenKeyId: string | undefined;
    try {
      tokenKeyId = row ? logKeyId(new X509Certificate(Buffer.from(row.cert_der)).publicKey) : undefined;
    } catch {
      tokenKeyId = undefined;
    }
    if (tokenKeyId !== result.detail['keyId']) return result;
    return {
      ...result,
      message: `${result.message}: it is the HSM token's log key as the store's pkcs11:${LOG_KEY_NAME} row names it, which this server, started without --hsm, does not hold and cannot vouch for. Verify on a server started with --hsm on that token, or with \`conclave audit verify --log-key\` and each log key recorded when the log used it`,
      detail: { ...result.detail, reason: 'hsm_log_key' },
    };
  };
  const batchListeners: ((b: LogBatchEvent) => void)[] = [];
  const leaderListeners: ((leader: boolean) => void)[] = [];
  const logger = f.logger.child({ service: 'log' });
  const sequencer = createSequencer({
    store,
    signer: logSigner,
    nowMs: () => f.now().getTime(),
    holder: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
    batchMs: f.config.logBatchMs,
    leaseMs: f.config.logLeaseMs,
    maxBatch: LOG_MAX_BATCH,
    onBatch: (b) => {
      for (const l of batchListeners) l(b);
    },
    onLeadership: (leader) => {
      logger.info(leader ? 'log sequencer: this replica holds the lease' : 'log sequencer: lease lost or given up');
      for (const l of leaderListeners) l(leader);
    },
  });
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  const next = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sequencer
        .tick()
        .catch((e: unknown) => logger.warn({ err: e }, 'log sequencer round failed; retrying'))
        .finally(() => {
          running = undefined;
          next(sequencer.nextDelayMs());
        });
    }, ms);
    timer.unref();
  };
  next(0);
  closers.push(async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
    await sequencer.release().catch((e: unknown) => logger.warn({ err: e }, 'could not give the log sequencer lease up'));
  });
  return {
    service: createLogService(store),
    signer: logSigner,
    verify: async () => explained(await verifyLog(store, await vouchedLogKeys())),
    async records(from, limit) {
      // Pending first: an entry sequenced between the two reads then shows up once, with its index.
      const pending = await store.pendingLeaves(limit);
      const sequenced = (await store.leaves(from, limit)).map((l) => ({ index: l.index as number | null, leafHash: l.leafHash.toString('hex'), entry: l.entry }));
      const seen = new Set(sequenced.map((l) => l.leafHash));
      const waiting = pending.filter((l) => !seen.has(l.leafHash.toString('hex'))).map((l) => ({ index: null, leafHash: l.leafHash.toString('hex'), entry: l.entry }));
      return [...sequenced, ...waiting].slice(0, limit);
    },
    onBatch: (l) => void batchListeners.push(l),
    onLeadership: (l) => void leaderListeners.push(l),
  };
}

/**
 * The release-signing identity (docs/vault.md "Secure Key Release"): the operator's certificate and key
 * (`--release-cert`/`--release-key`) when given; otherwise the vault's key (software, or in the PKCS#11
 * token with --hsm) with a certificate the local CA issues for the vault host, so a TEE that trusts that CA
 * verifies releases as the SKR sidecar does. A data dir from before the CA's key was kept signs with the
 * key's self-signed certificate, and says so in the log.
 */
type VaultReleaseKey = (subject: string, host: string) => Promise<{ certDer: Uint8Array; publicKey: KeyObject; sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>; privateKey?: KeyObject }>;

function releaseIdentity(f: Foundation, vaultKey: VaultReleaseKey): ReleaseKeySource {
  if (f.config.releaseCert !== undefined && f.config.releaseKey !== undefined) {
    const op = loadOperatorReleaseIdentity(f.config.releaseCert, f.config.releaseKey);
    const sign = signerFor(op.privateKey, op.alg);
    return async (_subject, host) => {
      if (!certificateNamesHost(op.chainDer[0]!, host)) {
        throw fail('config.invalid', `the release certificate ${f.config.releaseCert} does not name the vault host ${host} in its subjectAltName`, { option: 'releaseCert', host });
      }
      return { certDer: op.chainDer[0]!, chainDer: op.chainDer, alg: op.alg, sign, privateKey: op.privateKey };
    };
  }
  const ca = loadLocalCa(f.config.dataDir);
  if (!ca) f.logger.warn('tls/ca.key is missing (a data dir from an older release): release responses are signed with a self-signed certificate; see docs/vault.md to have the local CA issue it');
  return async (subject, host) => {
    const k = await vaultKey(subject, host);
    const offThread = k.privateKey !== undefined ? { privateKey: k.privateKey } : {};
    if (!ca) return { certDer: k.certDer, sign: (data) => k.sign(data), ...offThread };
    const issued = await issueReleaseCertificate(ca, k.publicKey, subject, host, f.now().getTime());
    return { certDer: issued.certDer, chainDer: issued.chainDer, sign: (data) => k.sign(data), ...offThread };
  };
}

/**
 * The vault's scheduled work on a timer (`--maintenance-interval`, 0 = off). Every replica runs it;
 * the store decides each action exactly once. Runs never overlap within a process.
 */
function scheduleMaintenance(f: Foundation, service: VaultService, closers: (() => void | Promise<void>)[]): void {
  const seconds = f.config.maintenanceIntervalSeconds;
  if (seconds === 0) return;
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    running ??= service
      .runMaintenance()
      .catch((e) => f.logger.error({ err: e }, 'vault maintenance failed'))
      .finally(() => {
        running = undefined;
      });
  }, seconds * 1000);
  timer.unref();
  closers.push(async () => {
    clearInterval(timer);
    await running;
  });
}

/** The operator-configured external OIDC issuer, if any, with a JWKS fetcher that trusts the system CAs plus `caPath`. */
/** The console's "Sign in with" the OIDC issuer (`--oidc-console-client-id`), trusting what the JWKS fetch trusts. */
export function consoleOidcOf(config: Config, caPath: string): OidcSignIn | undefined {
  if (config.oidcIssuer === undefined || config.oidcConsoleClientId === undefined) return undefined;
  const ca = [caPath, config.oidcCa].filter((p): p is string => p !== undefined).map((p) => readFileSync(p, 'utf8'));
  return createOidcSignIn({ issuer: config.oidcIssuer, clientId: config.oidcConsoleClientId, scope: config.oidcConsoleScope, ca: ca.join('\n') });
}

export function externalIssuerOf(config: Config, caPath: string, now: () => Date): ExternalIssuer | undefined {
  if (config.oidcIssuer === undefined || config.oidcAudience === undefined) return undefined;
  return {
    issuer: config.oidcIssuer,
    audience: config.oidcAudience,
    adminSubjects: config.oidcAdminSubjects,
    getJwks: createJwksFetcher({
      caPath,
      now,
      ...(config.oidcJwksUri !== undefined ? { jwksUri: config.oidcJwksUri } : {}),
      // A private CA for the OIDC issuer only: the release authorities' fetcher never loads it.
      ...(config.oidcCa !== undefined ? { extraCaPath: config.oidcCa } : {}),
    }),
  };
}
