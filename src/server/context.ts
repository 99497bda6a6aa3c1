import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import type { Sealer } from '../hsm/master-key.js';
import type { Database } from '../storage/database.js';
import type { Authenticator } from './auth.js';
import type { ServiceKey } from '../hsm/service-keys.js';

/**
 * What the composition root hands every service plugin. Plain values and functions: no container,
 * no module state. `baseUrl()` is known only once the server listens (port 0 picks one).
 */
export interface AppContext {
  readonly config: Config;
  readonly db: Database;
  readonly sealer: Sealer;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly auth: Authenticator;
  /** The public base URL, e.g. https://127.0.0.1:8443 (issuer of our tokens, base of kid URLs). */
  baseUrl(): string;
  /** The clock; tests may inject one. */
  now(): Date;
  /** Loads (or creates once) a named signing identity of the service. */
  serviceKey(name: string, alg: 'RS256' | 'ES256', subject: string, hosts?: readonly string[]): Promise<ServiceKey>;
  /** Readiness checks by name; `/readyz` is 200 only when all pass. Services add theirs. */
  readonly readiness: Map<string, () => Promise<void>>;
  /** The bootstrap administrator's client id. */
  adminClientId(): string | undefined;
  /** Where the local CA certificate lives (for clients and the tour). */
  readonly caPath: string;
}
