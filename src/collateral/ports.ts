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

/** How the cache fills: on a miss (`lazy`), on an operator's request only, or never (`offline`). */
export const COLLATERAL_MODES = ['lazy', 'request', 'offline'] as const;
export type CollateralMode = (typeof COLLATERAL_MODES)[number];

/** The collateral repository over the store port (SQLite or PostgreSQL, same SQL). */
export interface CollateralStore extends PlatformSightings {
  /** The store-wide change counter; a replica reloads items when it moves. */
  currentVersion(): Promise<number>;
  itemsSince(version: number): Promise<CollateralItem[]>;
  /** Writes items in one transaction (all or nothing); returns the new version. */
  put(items: readonly Omit<CollateralItem, 'version'>[]): Promise<number>;
  getSetting<T>(name: string): Promise<T | undefined>;
  putSetting(name: string, value: unknown, at: Date): Promise<void>;
  platforms(seenSince: Date): Promise<PlatformSeen[]>;
  registerPlatform(r: Registration, at: Date): Promise<void>;
  registrations(): Promise<(Registration & { state: string; createdAt: number })[]>;
  setRegistrationState(qeId: string, pceId: string, state: string): Promise<void>;
  /**
   * Runs `fn` holding a store-wide lock named `name` (PostgreSQL: a transaction-scoped advisory lock,
   * so replicas queue on it; SQLite: one process owns the file, so in-process coalescing suffices).
   */
  withFetchLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** A PCCS platform registration (PCKIDRetrievalTool's POST /platforms body). */
export interface Registration {
  readonly qeId: string;
  readonly pceId: string;
  readonly cpuSvn?: string | undefined;
  readonly pceSvn?: string | undefined;
  readonly encPpid?: string | undefined;
  readonly platformManifest?: string | undefined;
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
  /** GET `{intel}/{tee}/certification/{version}/{path}?{query}`; 404 → collateral.not_found. */
  intel(tee: 'sgx' | 'tdx', version: 'v3' | 'v4', path: string, query: Record<string, string>): Promise<UpstreamAnswer>;
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
