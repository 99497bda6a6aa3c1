import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { PolicyStore } from '../attestation/ports.js';
import type { AttestationService } from '../attestation/service.js';
import type { TokenSigner } from '../attestation/token.js';
import type { CollateralAdmin } from '../collateral/admin.js';
import type { CollateralLookup } from '../collateral/lookup.js';
import type { PlatformService } from '../collateral/platforms.js';
import type { CollateralService } from '../collateral/service.js';
import type { VaultService } from '../vault/service.js';
import type { LogService } from '../log/service.js';
import type { LogSigner } from '../log/tree-head.js';
import type { LogVerification, LogVerificationFailure } from '../log/verify.js';
import type { Config } from '../config/config.js';
import type { Authenticator } from './auth.js';
import type { ConsoleSessions } from './console/sessions.js';

/** The domain services each plugin serves (built in src/compose.ts). */
export interface VaultServices {
  readonly service: VaultService;
  /** The transparency log the vault's audit records go into (docs/audit.md). */
  readonly log: LogServices;
}

/** What one sequenced batch reports (for metrics). */
export interface LogBatchEvent {
  readonly treeSize: number;
  readonly leaves: number;
  readonly latenciesMs: readonly number[];
}

export interface LogServices {
  /** Heads, proofs and entries (GET /log/…). */
  readonly service: LogService;
  /** The log key (GET /log/key). */
  signer(): Promise<LogSigner>;
  /** Recomputes the log from its entries and checks every stored node and signed head. */
  verify(): Promise<LogVerification | LogVerificationFailure>;
  /**
   * Audit records for the admin API: the sequenced entries from index `from`, then (when the page has
   * room) those still waiting for an index (`index: null`), so the newest record is always listed.
   */
  records(from: number, limit: number): Promise<{ index: number | null; leafHash: string; entry: string }[]>;
  /** Sequencer events of this replica, for metrics. */
  onBatch(listener: (b: LogBatchEvent) => void): void;
  onLeadership(listener: (leader: boolean) => void): void;
}

export interface AttestationServices {
  readonly service: AttestationService;
  readonly policies: PolicyStore;
  /** The token-signing identity (`/certs`, policy results). */
  signer(): Promise<TokenSigner>;
  /** Every key `/certs` publishes: the signing identity, and under --simulate the simulated-TEE one. */
  publishedSigners(): Promise<TokenSigner[]>;
}

export interface CollateralServices {
  readonly service: CollateralService;
  readonly lookup: CollateralLookup;
  readonly admin: CollateralAdmin;
  /** PCK certificates by platform, PCCS registration and platform collateral. */
  readonly platforms: PlatformService;
}

export interface Services {
  readonly vault?: VaultServices | undefined;
  readonly attestation?: AttestationServices | undefined;
  readonly collateral?: CollateralServices | undefined;
}

/**
 * What the composition root hands every service plugin: the finished domain services and the few
 * values the HTTP edge needs. Plain values and functions: no container, no module state, no adapters.
 * `baseUrl()` is known only once the server listens (port 0 picks one).
 */
export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly auth: Authenticator;
  /** The services built for `config.services` (src/compose.ts). */
  readonly services: Services;
  /** The public base URL, e.g. https://127.0.0.1:8443 (issuer of our tokens, base of kid URLs). */
  baseUrl(): string;
  /** The clock; tests may inject one. */
  now(): Date;
  /** Readiness checks by name; `/readyz` is 200 only when all pass. */
  readonly readiness: Map<string, () => Promise<void>>;
  /** The bootstrap administrator's client id. */
  adminClientId(): string | undefined;
  /** Where the local CA certificate lives (for clients and the tour). */
  readonly caPath: string;
  /** Web console sign-in codes and sessions (server/console/). */
  readonly consoleSessions: ConsoleSessions;
  /** The console's "Sign in with" the OIDC issuer, when `--oidc-console-client-id` is set. */
  readonly consoleOidc?: ConsoleOidcSignIn | undefined;
}

/** The authorization code flow with PKCE at the external OIDC issuer (built in src/compose.ts). */
export interface ConsoleOidcSignIn {
  readonly issuer: string;
  authorizationUrl(p: { state: string; codeChallenge: string; redirectUri: string }): Promise<string>;
  /** The access token for a code; auth.unauthenticated when the issuer refuses it. */
  redeem(p: { code: string; codeVerifier: string; redirectUri: string }): Promise<string>;
}
