/**
 * The api-versions of the AKV / Managed HSM data plane that the official SDKs send, and what each one
 * has. Python azure-keyvault-keys 4.8 sends 2016-10-01, 7.0–7.3 and 7.4-preview.1 (its default);
 * @azure/keyvault-keys 4.10 sends 7.2–7.6 and 2025-07-01 (its default); the SKR sidecar 7.3-preview /
 * 7.4; azure-keyvault-administration 7.2, 7.3, 7.4-preview.1 (swagger folders, skr-maa-protocol.md §2.1).
 *
 * A request in a version is held to that version: an operation the version does not have is refused
 * (400 BadParameter, as AKV answers an unknown route of a version), and response members the version
 * does not define are left out, so an old client never meets a field it cannot parse. Request members a
 * newer version added are never required of an older one.
 */
import { fail } from '../core/errors.js';

export type ApiFeature =
  /** `recoverableDays` in key attributes (7.1). */
  | 'recoverableDays'
  /** Managed HSM: oct keys, `/rng`, role-based access control, full backup/restore (7.2). */
  | 'mhsm'
  /** Secure Key Release: `exportable`, `release_policy`, `/release`; rotation and rotation policies (7.3). */
  | 'release'
  | 'rotation'
  /** Managed HSM account settings, `GET /settings`, `GET`/`PATCH /settings/{name}` (7.4-preview.1). */
  | 'settings'
  /** `hsmPlatform` in key attributes (7.5). */
  | 'hsmPlatform'
  /** Managed HSM: `POST /prebackup`, `PUT /prerestore` checks (7.5). */
  | 'preBackup'
  /** `GET /keys/{name}/{version}/attestation` and `attributes.attestation` (7.6-preview.2). */
  | 'attestation';

/** Oldest first; every version has the features of those before it. */
const VERSIONS: readonly (readonly [string, readonly ApiFeature[]])[] = [
  ['2016-10-01', []],
  ['7.0', []],
  ['7.1', ['recoverableDays']],
  ['7.2', ['mhsm']],
  ['7.3-preview', ['release', 'rotation']],
  ['7.3', []],
  ['7.4-preview.1', ['settings']],
  ['7.4', []],
  ['7.5-preview.1', ['hsmPlatform', 'preBackup']],
  ['7.5', []],
  ['7.6-preview.1', []],
  ['7.6-preview.2', ['attestation']],
  ['7.6', []],
  ['2025-06-01', []],
  ['2025-07-01', []],
];

export const API_VERSIONS: readonly string[] = VERSIONS.map(([v]) => v);
export const LATEST_API_VERSION = '2025-07-01';

const FEATURES = new Map<string, ReadonlySet<ApiFeature>>();
{
  const acc: ApiFeature[] = [];
  for (const [v, added] of VERSIONS) {
    acc.push(...added);
    FEATURES.set(v, new Set(acc));
  }
}

/** A checked api-version and what it has. */
export interface ApiVersion {
  readonly value: string;
  has(feature: ApiFeature): boolean;
}

export function checkApiVersion(v: string | null | undefined): ApiVersion {
  const features = v ? FEATURES.get(v) : undefined;
  if (!v || !features) {
    throw fail('request.invalid', `The specified version (${v ?? ''}) is not recognized. Consider using the latest supported version (${LATEST_API_VERSION}).`, { apiVersion: v ?? null });
  }
  return { value: v, has: (f) => features.has(f) };
}

/** The newest version: what internal callers (CLI, admin API, background jobs) speak. */
export const LATEST: ApiVersion = checkApiVersion(LATEST_API_VERSION);

/** Refuses an operation the request's version does not have. */
export function requireFeature(v: ApiVersion, feature: ApiFeature, operation: string): void {
  if (!v.has(feature)) throw fail('request.invalid', `The operation ${operation} is not available in api-version ${v.value}.`, { apiVersion: v.value, operation });
}
