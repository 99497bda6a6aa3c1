import type { PlatformSeen } from './baseline.js';
import type { CollateralItem } from './cache/item.js';

/**
 * What other services tell the collateral service. The attestation service calls
 * `recordPlatformSeen` after it verified a DCAP quote (FMSPC + PCK TCB + TEE_TCB_SVN), so that a baseline
 * dry run knows which platforms a move would affect. The SQL
 * implementation is src/storage/collateral-store.ts.
 */
export interface PlatformSightings {
  recordPlatformSeen(platform: PlatformSeen, source: 'attestation' | 'registration', at: Date): Promise<void>;
}

/** See {@link CollateralStore.put}. */
export type CollateralWriteGuard = (item: Omit<CollateralItem, 'version'>, stored: readonly CollateralItem[]) => Omit<CollateralItem, 'version'>;

/** How the cache fills: on a miss (`lazy`), on an operator's request only, or never (`offline`). */
export const COLLATERAL_MODES = ['lazy', 'request', 'offline'] as const;
export type CollateralMode = (typeof COLLATERAL_MODES)[number];

/** The collateral repository over the store port (SQLite or PostgreSQL, same SQL). */
export interface CollateralStore extends PlatformSightings {
  /** The store-wide change counter; a replica reloads items when it moves. */
  currentVersion(): Promise<number>;
  itemsSince(version: number): Promise<CollateralItem[]>;
  /**
   * Writes items in one transaction (all or nothing); returns the new version. `guard` runs in that
   * transaction, for every item before any is written, with the items stored under the item's scope (its
   * own key among them) as they are then: writers of collateral are serialised there, so nothing another
   * replica or process stores can land between the check and the write. It throws to refuse the whole
   * write, or returns the item to write.
   */
  put(items: readonly Omit<CollateralItem, 'version'>[], guard: CollateralWriteGuard): Promise<number>;
  getSetting<T>(name: string): Promise<T | undefined>;
  putSetting(name: string, value: unknown, at: Date): Promise<void>;
  platforms(seenSince: Date): Promise<PlatformSeen[]>;
  /** Adds or replaces the registration of a platform (QE ID + PCE ID) in `state`. */
  registerPlatform(r: Registration, at: Date, state?: RegistrationState): Promise<void>;
  registrations(state?: RegistrationState): Promise<StoredRegistration[]>;
  registration(qeId: string, pceId: string): Promise<StoredRegistration | undefined>;
  /** Returns the registrations in `state` and moves them to `next`, in one transaction (PCCS GET platforms drains its queue). */
  takeRegistrations(state: RegistrationState, next: RegistrationState): Promise<StoredRegistration[]>;
  setRegistrationState(qeId: string, pceId: string, state: RegistrationState): Promise<void>;
  /**
   * Runs `fn` holding a store-wide lock named `name` (PostgreSQL: a transaction-scoped advisory lock,
   * so replicas queue on it; SQLite: one process owns the file, so in-process coalescing suffices).
   */
  withFetchLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * Where a registration stands: `new` waits for an administrator (offline mode; PCCSAdminTool `get`),
 * `not_available` has no PCK certificate at PCS yet (`get -s reg_na`), `delivered` was handed out,
 * `registered` is known for lazy fetches, `cached` had its certificates fetched, `failed` could not be.
 */
export type RegistrationState = 'new' | 'not_available' | 'delivered' | 'registered' | 'cached' | 'failed';

/** A PCCS platform registration (PCKIDRetrievalTool's POST /platforms body). */
export interface Registration {
  readonly qeId: string;
  readonly pceId: string;
  readonly cpuSvn?: string | undefined;
  readonly pceSvn?: string | undefined;
  readonly encPpid?: string | undefined;
  readonly platformManifest?: string | undefined;
}

export interface StoredRegistration extends Registration {
  readonly state: string;
  readonly createdAt: number;
}

/** One upstream HTTP answer, as the cache stores it (headers lowercased). */
export interface UpstreamAnswer {
  readonly url: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * The upstreams of the collateral service (src/upstream/collateral-upstream.ts): Intel PCS (or any PCCS,
 * THIM or another Conclave, which speak the same paths), AMD KDS, and NVIDIA's RIM service and OCSP responder.
 */
export interface CollateralUpstream {
  readonly hasIntel: boolean;
  readonly hasAmd: boolean;
  /**
   * The Intel upstream is Intel's PCS itself (QCNL's test: the host is under trustedservices.intel.com),
   * which knows platforms only by encrypted PPID or platform manifest; a PCCS, THIM or Conclave also
   * answers by QE ID.
   */
  readonly intelIsPcs: boolean;
  /** GET `{intel}/{tee}/certification/{version}/{path}?{query}`; 404 → collateral.not_found. */
  intel(tee: 'sgx' | 'tdx', version: 'v3' | 'v4', path: string, query: Record<string, string>): Promise<UpstreamAnswer>;
  /** POST `{intel}/{tee}/certification/{version}/{path}` with a JSON body (PCS `pckcert`/`pckcerts` by platform manifest). */
  intelPost(tee: 'sgx' | 'tdx', version: 'v3' | 'v4', path: string, body: Readonly<Record<string, string>>): Promise<UpstreamAnswer>;
  /** The Intel SGX Root CA CRL: from a PCCS-like upstream's `rootcacrl`, or Intel's certificate site. */
  intelRootCaCrl(): Promise<UpstreamAnswer>;
  /** GET `{amd}{path}` (path begins with /vcek/ or /vlek/). */
  amd(path: string): Promise<UpstreamAnswer>;
  readonly hasNvidiaRim: boolean;
  readonly hasNvidiaOcsp: boolean;
  /** GET `{nvidiaRim}/v1/rim/{id}` (NVIDIA's RIM service or a mirror); 404 → collateral.not_found. */
  nvidiaRim(id: string): Promise<UpstreamAnswer>;
  /** POST an OCSP request (DER) to the NVIDIA OCSP responder. */
  nvidiaOcsp(request: Uint8Array): Promise<UpstreamAnswer>;
  /** Whether a URL belongs to a configured upstream (refresh replays stored sources only there). */
  owns(url: string): boolean;
}
