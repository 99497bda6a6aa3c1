import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { fail } from '../core/errors.js';

/** The services one `conclave serve` process can run; all three by default. */
export const SERVICES = ['vault', 'attestation', 'collateral'] as const;
export type ServiceName = (typeof SERVICES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

import { COLLATERAL_MODES, type CollateralMode } from '../collateral/ports.js';

export { COLLATERAL_MODES, type CollateralMode };

/** The one typed, validated, frozen configuration object, passed down explicitly. */
export interface Config {
  readonly dataDir: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** `sqlite:<path>` or `postgres://…`. */
  readonly db: string;
  readonly services: readonly ServiceName[];
  /** Trust the simulated TEE root (development only). */
  readonly simulate: boolean;
  readonly logLevel: LogLevel;
  /** Request body size limit in bytes. */
  readonly bodyLimit: number;
  /**
   * The longest a client may take to send a whole request, headers and body (ms); headers, and the TLS
   * handshake, get at most 60 s of it. A client slower than that is disconnected (408), so a trickled
   * request cannot hold a socket indefinitely. A connection on which nothing moves for twice this (a
   * client that stopped reading its answers) is closed too, unless a handler is still at work on it (a
   * long handler, waiting on a slow upstream, is answered however long it takes).
   */
  readonly requestTimeoutMs: number;
  /** Public base URL (token issuer, kid URLs); defaults to https://HOST:PORT as listened. */
  readonly publicUrl: string | undefined;
  /** Attestation token lifetime in seconds (MAA: 8 hours). */
  readonly tokenLifetimeSeconds: number;
  /** PKCS#11 key protection: `pkcs11:module=PATH;token=LABEL;pin-source=file:PATH|env:VAR`. */
  readonly hsm: string | undefined;
  readonly collateralMode: CollateralMode;
  readonly upstreamIntel: string | undefined;
  readonly intelApiKey: string | undefined;
  readonly upstreamAmd: string | undefined;
  /** NVIDIA RIM service (or a compatible mirror) base URL. */
  readonly upstreamNvidiaRim: string | undefined;
  /** NVIDIA OCSP responder URL. */
  readonly upstreamNvidiaOcsp: string | undefined;
  /** PCCS `AdminTokenHash`: SHA-512 (hex) of the token the `admin-token` header carries (docs/collateral.md). */
  readonly pccsAdminTokenHash: string | undefined;
  /** PCCS `UserTokenHash`: SHA-512 (hex) of the token the `user-token` header carries to register platforms. */
  readonly pccsUserTokenHash: string | undefined;
  /** Total deadline of one upstream collateral request, connect to last byte (ms). */
  readonly upstreamTimeoutMs: number;
  /**
   * `azure` (MAA's default): collateral past its nextUpdate is reported in the token's claims; `strict`:
   * attestation refuses it (`collateral.expired` / `crl.expired`, naming the item).
   */
  readonly collateralFreshness: 'azure' | 'strict';
  /**
   * SEV-SNP and the AMD CRL: `if-available` (default) attests without a CRL that cannot be had and says so in
   * the token (`x-conclave-sevsnpvm-crl: unavailable`); `required` refuses such evidence. A CRL that is had is
   * always checked (revoked, expired or badly signed: refused).
   */
  readonly snpCrl: 'if-available' | 'required';
  /** Store connection pool size (PostgreSQL). */
  readonly dbPoolSize: number;
  /** Extra trusted attestation authorities for key release (issuer URLs). */
  readonly trustedAuthorities: readonly string[];
  /** Transparency log: how often the sequencer cuts a batch (ms), the bound on inclusion latency. */
  readonly logBatchMs: number;
  /** Transparency log: the sequencer lease (ms), the longest a dead holder delays sequencing. */
  readonly logLeaseMs: number;
  /** Isolated mode: attestation policies must be signed by a policy-management certificate. */
  readonly isolated: boolean;
  /** PEM files of policy-management certificates registered at every start (isolated mode needs one). */
  readonly policyCertificates: readonly string[];
  /** PEM files of TPM AIK CA roots: an AIK certificate that chains to one is `aikValidated` (`/attest/Tpm`). */
  readonly tpmAikRoots: readonly string[];
  /** External OpenID Connect issuer whose bearer tokens are accepted alongside ours. */
  readonly oidcIssuer: string | undefined;
  /** The `aud` an external token must carry; required with `oidcIssuer`. */
  readonly oidcAudience: string | undefined;
  /** The issuer's JWKS URL; discovered from `<issuer>/.well-known/openid-configuration` when unset. */
  readonly oidcJwksUri: string | undefined;
  /** External `sub` values that are administrators. */
  readonly oidcAdminSubjects: readonly string[];
  /** Vault soft delete: days a deleted key stays recoverable (7–90, AKV's range). */
  readonly recoverableDays: number;
  /** Vault purge protection: a deleted key is purged only at its scheduled purge date. */
  readonly purgeProtection: boolean;
  /** Seconds between runs of the vault's scheduled work (rotation policies, purges); 0 turns the timer off. */
  readonly maintenanceIntervalSeconds: number;
  /** Where the vault's full backups go (`storageResourceUri` file:///… inside it). */
  readonly backupDir: string;
  /** PEM certificate (chain, leaf first) and key of an operator's release-signing identity. */
  readonly releaseCert: string | undefined;
  readonly releaseKey: string | undefined;
  /** PEM file of a private CA trusted for the OIDC issuer's HTTPS only (not for release authorities). */
  readonly oidcCa: string | undefined;
  /** The web console's client id at the OIDC issuer: enables "Sign in with" (authorization code flow with PKCE). */
  readonly oidcConsoleClientId: string | undefined;
  /** The scopes the console asks the issuer for; the access token must carry `oidcAudience`. */
  readonly oidcConsoleScope: string;
}

/** How a key is spelled on the command line, in the environment and in the config file. */
interface Option<K extends keyof Config> {
  readonly key: K;
  readonly flag: string;
  readonly env: string;
  readonly parse: (raw: unknown, where: string) => Config[K];
}

const str =
  (name: string) =>
  (raw: unknown, where: string): string => {
    if (typeof raw !== 'string' || raw.length === 0) throw invalid(where, name, 'must be a non-empty string');
    return raw;
  };
const optStr = (name: string) => (raw: unknown, where: string) => str(name)(raw, where) as string | undefined;

function int(name: string, min: number, max: number) {
  return (raw: unknown, where: string): number => {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw invalid(where, name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    return n;
  };
}

function bool(name: string) {
  return (raw: unknown, where: string): boolean => {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1' || raw === 'yes') return true;
    if (raw === 'false' || raw === '0' || raw === 'no' || raw === '') return false;
    throw invalid(where, name, `must be true or false, got ${JSON.stringify(raw)}`);
  };
}

function oneOf<T extends string>(name: string, values: readonly T[]) {
  return (raw: unknown, where: string): T => {
    if (typeof raw === 'string' && (values as readonly string[]).includes(raw)) return raw as T;
    throw invalid(where, name, `must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  };
}

function url(name: string, schemes: readonly string[]) {
  return (raw: unknown, where: string): string => {
    const s = str(name)(raw, where);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw invalid(where, name, `must be a URL, got ${JSON.stringify(s)}`);
    }
    if (!schemes.includes(u.protocol)) throw invalid(where, name, `must use ${schemes.join(' or ')}, got ${u.protocol}`);
    return s.replace(/\/+$/, '');
  };
}

function list<T extends string>(name: string, item: (raw: unknown, where: string) => T) {
  return (raw: unknown, where: string): T[] => {
    const parts = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
    if (!parts) throw invalid(where, name, 'must be a list or a comma-separated string');
    return parts.map((p) => item(p, where));
  };
}

/** A SHA-512 digest in hex, as PCCS keeps its tokens (lower-cased). */
function sha512Hex(name: string) {
  return (raw: unknown, where: string): string => {
    if (typeof raw !== 'string' || !/^[0-9a-fA-F]{128}$/.test(raw)) throw invalid(where, name, 'must be the SHA-512 of the token, 128 hex characters');
    return raw.toLowerCase();
  };
}

function invalid(where: string, name: string, why: string) {
  return fail('config.invalid', `${name} (${where}) ${why}`, { option: name, source: where });
}

const OPTIONS = [
  { key: 'dataDir', flag: 'dataDir', env: 'CONCLAVE_DATA_DIR', parse: str('data-dir') },
  { key: 'host', flag: 'host', env: 'CONCLAVE_HOST', parse: str('host') },
  { key: 'port', flag: 'port', env: 'CONCLAVE_PORT', parse: int('port', 0, 65535) },
  {
    key: 'db',
    flag: 'db',
    env: 'CONCLAVE_DB',
    parse: (raw: unknown, where: string) => {
      const s = str('db')(raw, where);
      if (!/^sqlite:/.test(s) && !/^postgres(ql)?:\/\//.test(s)) throw invalid(where, 'db', `must be sqlite:PATH or postgres://…, got ${JSON.stringify(s)}`);
      return s;
    },
  },
  { key: 'services', flag: 'services', env: 'CONCLAVE_SERVICES', parse: list('services', oneOf('services', SERVICES)) },
  { key: 'simulate', flag: 'simulate', env: 'CONCLAVE_SIMULATE', parse: bool('simulate') },
  { key: 'logLevel', flag: 'logLevel', env: 'CONCLAVE_LOG_LEVEL', parse: oneOf('log-level', LOG_LEVELS) },
  { key: 'bodyLimit', flag: 'bodyLimit', env: 'CONCLAVE_BODY_LIMIT', parse: int('body-limit', 1024, 64 * 1024 * 1024) },
  { key: 'requestTimeoutMs', flag: 'requestTimeout', env: 'CONCLAVE_REQUEST_TIMEOUT', parse: int('request-timeout', 100, 3_600_000) },
  { key: 'publicUrl', flag: 'publicUrl', env: 'CONCLAVE_PUBLIC_URL', parse: url('public-url', ['https:', 'http:']) },
  { key: 'tokenLifetimeSeconds', flag: 'tokenLifetime', env: 'CONCLAVE_TOKEN_LIFETIME', parse: int('token-lifetime', 60, 30 * 86400) },
  { key: 'hsm', flag: 'hsm', env: 'CONCLAVE_HSM', parse: optStr('hsm') },
  { key: 'collateralMode', flag: 'collateralMode', env: 'CONCLAVE_COLLATERAL_MODE', parse: oneOf('collateral-mode', COLLATERAL_MODES) },
  { key: 'upstreamIntel', flag: 'upstreamIntel', env: 'CONCLAVE_UPSTREAM_INTEL', parse: url('upstream-intel', ['https:', 'http:']) },
  { key: 'intelApiKey', flag: 'intelApiKey', env: 'CONCLAVE_INTEL_API_KEY', parse: optStr('intel-api-key') },
  { key: 'pccsAdminTokenHash', flag: 'pccsAdminTokenHash', env: 'CONCLAVE_PCCS_ADMIN_TOKEN_HASH', parse: sha512Hex('pccs-admin-token-hash') },
  { key: 'pccsUserTokenHash', flag: 'pccsUserTokenHash', env: 'CONCLAVE_PCCS_USER_TOKEN_HASH', parse: sha512Hex('pccs-user-token-hash') },
  { key: 'upstreamAmd', flag: 'upstreamAmd', env: 'CONCLAVE_UPSTREAM_AMD', parse: url('upstream-amd', ['https:', 'http:']) },
  { key: 'upstreamNvidiaRim', flag: 'upstreamNvidiaRim', env: 'CONCLAVE_UPSTREAM_NVIDIA_RIM', parse: url('upstream-nvidia-rim', ['https:', 'http:']) },
  { key: 'upstreamNvidiaOcsp', flag: 'upstreamNvidiaOcsp', env: 'CONCLAVE_UPSTREAM_NVIDIA_OCSP', parse: url('upstream-nvidia-ocsp', ['https:', 'http:']) },
  { key: 'upstreamTimeoutMs', flag: 'upstreamTimeout', env: 'CONCLAVE_UPSTREAM_TIMEOUT', parse: int('upstream-timeout', 100, 300_000) },
  { key: 'collateralFreshness', flag: 'collateralFreshness', env: 'CONCLAVE_COLLATERAL_FRESHNESS', parse: oneOf('collateral-freshness', ['azure', 'strict'] as const) },
  { key: 'snpCrl', flag: 'snpCrl', env: 'CONCLAVE_SNP_CRL', parse: oneOf('snp-crl', ['if-available', 'required'] as const) },
  { key: 'dbPoolSize', flag: 'dbPoolSize', env: 'CONCLAVE_DB_POOL_SIZE', parse: int('db-pool-size', 1, 1000) },
  { key: 'logBatchMs', flag: 'logBatchMs', env: 'CONCLAVE_LOG_BATCH_MS', parse: int('log-batch-ms', 1, 1000) },
  { key: 'logLeaseMs', flag: 'logLeaseMs', env: 'CONCLAVE_LOG_LEASE_MS', parse: int('log-lease-ms', 200, 60_000) },
  { key: 'trustedAuthorities', flag: 'trustedAuthority', env: 'CONCLAVE_TRUSTED_AUTHORITIES', parse: list('trusted-authorities', url('trusted-authorities', ['https:', 'http:'])) },
  { key: 'isolated', flag: 'isolated', env: 'CONCLAVE_ISOLATED', parse: bool('isolated') },
  { key: 'policyCertificates', flag: 'policyCertificate', env: 'CONCLAVE_POLICY_CERTIFICATES', parse: list('policy-certificates', str('policy-certificates')) },
  { key: 'tpmAikRoots', flag: 'tpmAikRoot', env: 'CONCLAVE_TPM_AIK_ROOTS', parse: list('tpm-aik-roots', str('tpm-aik-roots')) },
  { key: 'oidcIssuer', flag: 'oidcIssuer', env: 'CONCLAVE_OIDC_ISSUER', parse: url('oidc-issuer', ['https:']) },
  { key: 'oidcAudience', flag: 'oidcAudience', env: 'CONCLAVE_OIDC_AUDIENCE', parse: optStr('oidc-audience') },
  { key: 'oidcJwksUri', flag: 'oidcJwksUri', env: 'CONCLAVE_OIDC_JWKS_URI', parse: url('oidc-jwks-uri', ['https:']) },
  { key: 'oidcAdminSubjects', flag: 'oidcAdminSubject', env: 'CONCLAVE_OIDC_ADMIN_SUBJECTS', parse: list('oidc-admin-subjects', str('oidc-admin-subjects')) },
  { key: 'recoverableDays', flag: 'recoverableDays', env: 'CONCLAVE_RECOVERABLE_DAYS', parse: int('recoverable-days', 7, 90) },
  { key: 'purgeProtection', flag: 'purgeProtection', env: 'CONCLAVE_PURGE_PROTECTION', parse: bool('purge-protection') },
  { key: 'maintenanceIntervalSeconds', flag: 'maintenanceInterval', env: 'CONCLAVE_MAINTENANCE_INTERVAL', parse: int('maintenance-interval', 0, 86400) },
  { key: 'backupDir', flag: 'backupDir', env: 'CONCLAVE_BACKUP_DIR', parse: str('backup-dir') },
  { key: 'releaseCert', flag: 'releaseCert', env: 'CONCLAVE_RELEASE_CERT', parse: optStr('release-cert') },
  { key: 'releaseKey', flag: 'releaseKey', env: 'CONCLAVE_RELEASE_KEY', parse: optStr('release-key') },
  { key: 'oidcCa', flag: 'oidcCa', env: 'CONCLAVE_OIDC_CA', parse: optStr('oidc-ca') },
  { key: 'oidcConsoleClientId', flag: 'oidcConsoleClientId', env: 'CONCLAVE_OIDC_CONSOLE_CLIENT_ID', parse: optStr('oidc-console-client-id') },
  { key: 'oidcConsoleScope', flag: 'oidcConsoleScope', env: 'CONCLAVE_OIDC_CONSOLE_SCOPE', parse: optStr('oidc-console-scope') },
] as const satisfies readonly Option<keyof Config>[];

/** Config-file keys are the Config property names; kebab-case spellings of them are accepted too. */
function fileKey(key: string): string[] {
  return [key, key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)];
}

export interface ConfigSources {
  /** Parsed command-line flags (commander's camelCase names); undefined = not given. */
  readonly flags?: Readonly<Record<string, unknown>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Path of a JSON or YAML config file (flag `--config` or `CONCLAVE_CONFIG`). */
  readonly configFile?: string | undefined;
}

/**
 * Builds the effective configuration: flag > environment > config file > default.
 * Every value is validated; the first bad one fails with `config.invalid` naming the option and its source.
 */
export function loadConfig(sources: ConfigSources): Config {
  const flags = sources.flags ?? {};
  const env = sources.env ?? {};
  const filePath = (flags.config as string | undefined) ?? sources.configFile ?? env.CONCLAVE_CONFIG;
  const file = filePath ? readConfigFile(filePath) : {};
  const out: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    const fromFlag = flags[o.flag];
    const fromEnv = env[o.env];
    const fileHit = fileKey(o.key).find((k) => k in file);
    if (fromFlag !== undefined) out[o.key] = o.parse(fromFlag, `flag --${o.flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    else if (fromEnv !== undefined && fromEnv !== '') out[o.key] = o.parse(fromEnv, `env ${o.env}`);
    else if (fileHit !== undefined) out[o.key] = o.parse(file[fileHit], `config file ${filePath} key ${fileHit}`);
  }
  for (const k of Object.keys(file)) {
    if (!OPTIONS.some((o) => fileKey(o.key).includes(k))) throw fail('config.invalid', `unknown key "${k}" in config file ${filePath}`, { option: k });
  }
  const dataDir = resolve((out.dataDir as string | undefined) ?? './data');
  const config: Config = {
    dataDir,
    host: (out.host as string | undefined) ?? '127.0.0.1',
    port: (out.port as number | undefined) ?? 8443,
    db: (out.db as string | undefined) ?? `sqlite:${resolve(dataDir, 'conclave.db')}`,
    services: (out.services as ServiceName[] | undefined) ?? [...SERVICES],
    simulate: (out.simulate as boolean | undefined) ?? false,
    logLevel: (out.logLevel as LogLevel | undefined) ?? 'info',
    bodyLimit: (out.bodyLimit as number | undefined) ?? 1024 * 1024,
    requestTimeoutMs: (out.requestTimeoutMs as number | undefined) ?? 300_000,
    publicUrl: out.publicUrl as string | undefined,
    tokenLifetimeSeconds: (out.tokenLifetimeSeconds as number | undefined) ?? 8 * 3600,
    hsm: out.hsm as string | undefined,
    collateralMode: (out.collateralMode as CollateralMode | undefined) ?? 'lazy',
    upstreamIntel: out.upstreamIntel as string | undefined,
    intelApiKey: out.intelApiKey as string | undefined,
    upstreamAmd: out.upstreamAmd as string | undefined,
    upstreamNvidiaRim: out.upstreamNvidiaRim as string | undefined,
    upstreamNvidiaOcsp: out.upstreamNvidiaOcsp as string | undefined,
    pccsAdminTokenHash: out.pccsAdminTokenHash as string | undefined,
    pccsUserTokenHash: out.pccsUserTokenHash as string | undefined,
    upstreamTimeoutMs: (out.upstreamTimeoutMs as number | undefined) ?? 15_000,
    collateralFreshness: (out.collateralFreshness as 'azure' | 'strict' | undefined) ?? 'azure',
    snpCrl: (out.snpCrl as 'if-available' | 'required' | undefined) ?? 'if-available',
    dbPoolSize: (out.dbPoolSize as number | undefined) ?? 10,
    trustedAuthorities: (out.trustedAuthorities as string[] | undefined) ?? [],
    logBatchMs: (out.logBatchMs as number | undefined) ?? 25,
    logLeaseMs: (out.logLeaseMs as number | undefined) ?? 3000,
    isolated: (out.isolated as boolean | undefined) ?? false,
    policyCertificates: (out.policyCertificates as string[] | undefined) ?? [],
    tpmAikRoots: (out.tpmAikRoots as string[] | undefined) ?? [],
    oidcIssuer: out.oidcIssuer as string | undefined,
    oidcAudience: out.oidcAudience as string | undefined,
    oidcJwksUri: out.oidcJwksUri as string | undefined,
    oidcAdminSubjects: (out.oidcAdminSubjects as string[] | undefined) ?? [],
    recoverableDays: (out.recoverableDays as number | undefined) ?? 90,
    purgeProtection: (out.purgeProtection as boolean | undefined) ?? false,
    maintenanceIntervalSeconds: (out.maintenanceIntervalSeconds as number | undefined) ?? 60,
    backupDir: resolve((out.backupDir as string | undefined) ?? resolve(dataDir, 'backups')),
    releaseCert: out.releaseCert as string | undefined,
    releaseKey: out.releaseKey as string | undefined,
    oidcCa: out.oidcCa as string | undefined,
    oidcConsoleClientId: out.oidcConsoleClientId as string | undefined,
    oidcConsoleScope: (out.oidcConsoleScope as string | undefined) ?? 'openid',
  };
  if (config.services.length === 0) throw fail('config.invalid', 'services must name at least one of vault, attestation, collateral');
  if (config.hsm !== undefined && !config.hsm.startsWith('pkcs11:')) {
    throw fail('config.invalid', 'hsm must look like pkcs11:module=PATH;token=LABEL;pin-source=file:PATH|env:VAR', { option: 'hsm' });
  }
  if (config.oidcIssuer !== undefined && config.oidcAudience === undefined) {
    throw fail('config.invalid', 'oidc-audience is required when oidc-issuer is set (external tokens must be meant for this server)', { option: 'oidcAudience' });
  }
  if (config.oidcIssuer === undefined && (config.oidcAudience !== undefined || config.oidcJwksUri !== undefined || config.oidcAdminSubjects.length > 0 || config.oidcCa !== undefined || config.oidcConsoleClientId !== undefined)) {
    throw fail('config.invalid', 'oidc-audience, oidc-jwks-uri, oidc-admin-subject, oidc-ca and oidc-console-client-id need oidc-issuer', { option: 'oidcIssuer' });
  }
  if ((config.releaseCert === undefined) !== (config.releaseKey === undefined)) {
    throw fail('config.invalid', 'release-cert and release-key go together (the operator\'s release-signing certificate and its private key)', { option: config.releaseCert === undefined ? 'releaseCert' : 'releaseKey' });
  }
  if (config.releaseCert !== undefined && config.hsm !== undefined) {
    throw fail('config.invalid', 'release-cert/release-key and hsm are exclusive: with --hsm the release-signing key is made in the token', { option: 'releaseCert' });
  }
  return Object.freeze(config);
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fail('config.invalid', `cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { option: 'config' });
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw fail('config.invalid', `config file ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`, { option: 'config' });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw fail('config.invalid', `config file ${path} must hold an object`, { option: 'config' });
  return parsed as Record<string, unknown>;
}

/** The option table, for docs and `--help` (flag, env var, config key). */
export function describeOptions(): { key: string; flag: string; env: string }[] {
  return OPTIONS.map((o) => ({ key: o.key, flag: `--${o.flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, env: o.env }));
}
