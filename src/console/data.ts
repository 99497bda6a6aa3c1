/** What the pages read, each from the API the CLI reads it from, with its wire types. */
import { ApiError, call } from './api.js';

export interface AuditRecord {
  readonly time: string;
  readonly principal: string;
  readonly operation: string;
  readonly key?: string;
  readonly version?: string;
  readonly result: 'success' | 'denied' | 'failed';
  readonly status: number;
  readonly code?: string;
  readonly message?: string;
  readonly detail?: Record<string, unknown>;
}

export interface AuditEntry {
  readonly index: number | null;
  readonly leafHash: string;
  readonly record: AuditRecord;
}

/** The newest audit records (at most `limit`, oldest first): the log's tail, then entries not yet sequenced. */
export async function loadAudit(limit = 1000): Promise<AuditEntry[]> {
  let size = 0;
  try {
    size = (await call<{ treeSize: number }>('GET', '/log/sth')).treeSize;
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'log.unavailable')) throw e;
  }
  const from = Math.max(0, size - limit);
  return (await call<{ value: AuditEntry[] }>('GET', `/admin/vault/audit?from=${from}&limit=${limit}`)).value;
}

export type LogVerification = { ok: true; entries: number; heads: number; treeSize: number; rootHash: string; pending: number; records: number } | { ok: false; code: string; message: string; entries: number; detail?: Record<string, unknown> };

export const verifyAudit = () => call<LogVerification>('GET', '/admin/vault/audit/verify');

export interface CollateralItem {
  readonly key: string;
  readonly kind: string;
  readonly scope: string;
  readonly tcbEvaluationDataNumber: number | null;
  readonly selector: string | null;
  readonly source: string;
  readonly fetchedAt: string;
  readonly ageSeconds: number;
  readonly issueDate: string | null;
  readonly nextUpdate: string | null;
  readonly nextRefresh: string | null;
  readonly stale: boolean;
  readonly lastError?: { at: string; message: string };
}

export interface CollateralStatus {
  readonly mode: string;
  readonly upstreams: Record<string, string | null>;
  readonly items: readonly CollateralItem[];
}

export const loadCollateral = () => call<CollateralStatus>('GET', '/admin/collateral/status');

export interface BaselinePolicy {
  readonly minAgeDays: number;
  readonly pinned: Readonly<Record<string, number>>;
  readonly amdMinimumTcb: Readonly<Record<string, unknown>>;
}

export interface BaselineView {
  readonly policy: BaselinePolicy;
  readonly scopes: readonly { scope: string; available: number[]; served: number | null }[];
}

export interface DryRun {
  readonly current: BaselineView;
  readonly candidate: BaselineView;
  readonly platforms: readonly { tee: string; fmspc: string; lastSeen?: string; current: string; candidate: string; changed: boolean }[];
  readonly changed: number;
}

export const loadBaseline = () => call<BaselineView>('GET', '/admin/collateral/baseline');
export const dryRunBaseline = (policy: BaselinePolicy, days = 90) => call<DryRun>('POST', `/admin/collateral/baseline/dry-run?days=${days}`, policy);

export interface Overview {
  readonly server: {
    version: string;
    publicUrl: string;
    services: string[];
    simulate: boolean;
    isolated: boolean;
    store: string;
    keyProtection: string;
    collateralMode: string;
    oidcIssuer: string | null;
  };
  readonly readiness: readonly { name: string; ok: boolean }[];
  readonly attestations: {
    since: string;
    buckets: { start: string; issued: number; refused: number }[];
    recent: { time: string; type: string; status: number }[];
    totals: { issued: number; refused: number };
  };
}

export const loadOverview = () => call<Overview>('GET', '/console/api/overview');

/** An AKV key bundle (the fields the console shows). */
export interface KeyBundle {
  readonly key: { kid: string; kty: string; n?: string; crv?: string; key_ops?: string[] };
  readonly attributes: { enabled: boolean; exportable?: boolean; created: number; updated: number; recoveryLevel?: string; nbf?: number; exp?: number };
  readonly release_policy?: { contentType?: string; data: string; immutable?: boolean };
  readonly tags?: Record<string, string>;
  readonly managed?: boolean;
}

export interface KeyItem {
  readonly kid: string;
  readonly attributes: KeyBundle['attributes'];
  readonly tags?: Record<string, string>;
}

export interface DeletedKeyItem extends KeyItem {
  readonly recoveryId: string;
  readonly deletedDate: number;
  readonly scheduledPurgeDate: number;
}

export interface RoleAssignment {
  readonly id: string;
  readonly principalId: string;
  readonly roleDefinitionId: string;
  /** The role's name (Key Vault Crypto Service Release User, …). */
  readonly role: string;
  readonly scope: string;
}

export const loadAssignments = () => call<{ value: RoleAssignment[] }>('GET', '/admin/vault/roleAssignments').then((r) => r.value);

/** The last path segment of a key id (the name or the version). */
export const lastSegment = (kid: string) => kid.split('/').filter(Boolean).pop() ?? kid;
