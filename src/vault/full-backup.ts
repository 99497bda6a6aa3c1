/**
 * Full backup and restore (Managed HSM's `POST /backup`, `PUT /restore`, `PUT /keys/{name}/restore`,
 * polled at `GET /backup|restore/{jobId}/pending`; the official KeyVaultBackupClient). A backup is one
 * file in a new folder: every key with all its versions (material still sealed to each version's
 * binding), deletion state and rotation policy, the custom role definitions, the role assignments and
 * the trusted authorities, sealed as a whole under the master key. It restores only into a vault with
 * the same master key (and, for keys in a PKCS#11 token, the same token); any other is refused with
 * `backup.foreign` before anything is written.
 *
 * Jobs run to completion within the request that starts them (bounded by the vault's size) and are
 * recorded, so the status URL answers from any replica; the 202 already carries the final status.
 */
import { randomBytes } from 'node:crypto';
import { fail, isConclaveError } from '../core/errors.js';
import { type ApiVersion, requireFeature } from './api-version.js';
import { type AuditDraft, finish, requireMaterialHeld, type VaultCore } from './core.js';
import type { KeyVersion } from './key.js';
import type { BackupTarget } from './ports.js';
import { checkKeyName } from './key.js';
import type { Principal, RoleAssignment, RoleDefinition } from './roles.js';
import { deserializeRotationPolicy, serializeRotationPolicy } from './rotation.js';
import type { BackupJob, KeySnapshot, VaultSnapshot } from './store.js';
import { b64url } from '../core/bytes.js';

export const FULL_BACKUP_FILE = 'conclave-vault-backup.json';
const FORMAT = 'conclave-vault-backup/1';
const AAD = 'vault-full-backup:v1';
const u = b64url;

interface SealedFile {
  readonly format: string;
  readonly created: string;
  readonly vault: string;
  readonly sealed: string;
}

interface SnapshotWire {
  keys: (Omit<KeySnapshot, 'versions' | 'rotationPolicy'> & { versions: (Omit<KeyVersion, 'handle'> & { handle: string })[]; rotationPolicy?: string })[];
  customRoles: RoleDefinition[];
  assignments: RoleAssignment[];
  authorities: string[];
}

function toWire(s: VaultSnapshot): SnapshotWire {
  return {
    keys: s.keys.map(({ rotationPolicy, versions, ...k }) => ({
      ...k,
      versions: versions.map((v) => ({ ...v, handle: u(v.handle) })),
      ...(rotationPolicy ? { rotationPolicy: serializeRotationPolicy(rotationPolicy) } : {}),
    })),
    customRoles: [...s.customRoles],
    assignments: [...s.assignments],
    authorities: [...s.authorities],
  };
}

function fromWire(w: SnapshotWire): VaultSnapshot {
  if (!Array.isArray(w.keys) || !Array.isArray(w.customRoles) || !Array.isArray(w.assignments) || !Array.isArray(w.authorities)) {
    throw fail('request.invalid', 'The backup has an unknown format.', { field: 'folder' });
  }
  return {
    keys: w.keys.map((k) => {
      const { rotationPolicy, versions, ...rest } = k;
      return {
        ...rest,
        versions: versions.map((v) => ({ ...v, handle: new Uint8Array(Buffer.from(v.handle, 'base64url')) })),
        ...(rotationPolicy ? { rotationPolicy: deserializeRotationPolicy(rotationPolicy) } : {}),
      };
    }),
    customRoles: w.customRoles,
    assignments: w.assignments,
    authorities: w.authorities,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The most characters of a backup folder name (a location's names are far shorter: eight segments of at most 128
 * characters in a backup directory). The folder goes into the request's audit record, kept for good, before the
 * location reads it, so a longer one is refused first.
 */
const MAX_FOLDER_CHARS = 2048;

/** A backup folder name: a non-empty string of at most {@link MAX_FOLDER_CHARS} characters. */
function folderParameter(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw fail('request.invalid', `${field} is required`, { field });
  if (v.length > MAX_FOLDER_CHARS) throw fail('request.invalid', `${field} must be a folder name of at most ${MAX_FOLDER_CHARS} characters, got ${v.length}`, { field });
  return v;
}

/** SASTokenParameter: `{storageResourceUri, token}` (the token may be empty for a directory). */
function sasParameter(v: unknown, field: string): { uri: string; token: string } {
  if (!isObject(v) || typeof v.storageResourceUri !== 'string' || v.storageResourceUri.length === 0) {
    throw fail('request.invalid', `${field}.storageResourceUri (the backup location) is required`, { field: `${field}.storageResourceUri` });
  }
  const token = v.token ?? '';
  if (typeof token !== 'string') throw fail('request.invalid', `${field}.token must be a string`, { field: `${field}.token` });
  return { uri: v.storageResourceUri, token };
}

/** The wire shape of FullBackupOperation / RestoreOperation / SelectiveKeyRestoreOperation. */
export function jobWire(job: BackupJob): Record<string, unknown> {
  return {
    status: job.status,
    statusDetails: job.statusDetails ?? null,
    error: job.error ? { code: job.error.code, message: job.error.message, innererror: null } : null,
    startTime: job.startTime,
    endTime: job.endTime ?? null,
    jobId: job.jobId,
    ...(job.kind === 'backup' ? { azureStorageBlobContainerUri: job.folderUri ?? null } : {}),
  };
}

export function createFullBackup(core: VaultCore, target: BackupTarget | undefined) {
  const { store, perform, nowSeconds } = core;

  function location(): BackupTarget {
    if (!target) throw fail('request.invalid', 'Full backup is not configured on this server (no backup directory).', { field: 'storageResourceUri' });
    return target;
  }

  /** The folder name Managed HSM uses: `mhsm-{vault}-{yyyyMMddHHmmss}` plus a random part, so two backups in a second differ. */
  function folderName(): string {
    const host = new URL(core.deps.baseUrl()).hostname.split('.')[0]!.replace(/[^0-9A-Za-z-]/g, '-');
    const t = core.deps.now().toISOString().replace(/[-:T]/g, '').slice(0, 14);
    return `mhsm-${host}-${t}${randomBytes(2).toString('hex')}`;
  }

  async function record(job: BackupJob): Promise<BackupJob> {
    await store.putBackupJob(job);
    return job;
  }

  async function readSnapshot(sas: { uri: string; token: string }, folder: string): Promise<VaultSnapshot> {
    const bytes = await location().readFile(sas.uri, sas.token, folder, FULL_BACKUP_FILE);
    let file: SealedFile;
    try {
      file = JSON.parse(Buffer.from(bytes).toString('utf8')) as SealedFile;
    } catch {
      throw fail('request.invalid', `The folder ${folder} holds no Conclave backup.`, { field: 'folder' });
    }
    if (file.format !== FORMAT || typeof file.sealed !== 'string') throw fail('request.invalid', `The folder ${folder} holds a backup of an unknown format.`, { field: 'folder' });
    let plain: Uint8Array;
    try {
      plain = core.deps.sealer.open(new Uint8Array(Buffer.from(file.sealed, 'base64url')), AAD);
    } catch {
      throw fail('backup.foreign', `The backup in ${folder} (made by ${String(file.vault)} on ${String(file.created)}) was sealed under another master key, or is corrupt: it restores only into a vault with the master key that made it.`, {
        field: 'folder',
      });
    }
    return fromWire(JSON.parse(Buffer.from(plain).toString('utf8')) as SnapshotWire);
  }

  /** Runs a restore; a refusal before anything is written becomes the job's error and the request's answer. */
  async function restore(p: Principal, kind: 'restore' | 'selectiveRestore', sas: { uri: string; token: string }, folder: string, onlyKey: string | undefined, draft: AuditDraft): Promise<BackupJob> {
    const started: BackupJob = { jobId: randomBytes(16).toString('hex'), kind, status: 'InProgress', startTime: nowSeconds(), principal: p.id };
    draft.detail.jobId = started.jobId;
    draft.detail.folder = folder;
    try {
      const snapshot = await readSnapshot(sas, folder);
      if (onlyKey !== undefined && !snapshot.keys.some((k) => k.name.toLowerCase() === onlyKey.toLowerCase())) {
        throw fail('key.not_found', `The backup in ${folder} holds no key ${onlyKey}.`, { name: onlyKey });
      }
      for (const k of snapshot.keys) if (onlyKey === undefined || k.name.toLowerCase() === onlyKey.toLowerCase()) await requireMaterialHeld(core.protector, k.versions);
      const r = await store.importVault(snapshot, nowSeconds(), finish({ ...draft, detail: { ...draft.detail, keys: onlyKey ? 1 : snapshot.keys.length } }), onlyKey);
      if (r.conflicts.length > 0) {
        throw fail('key.conflict', `Restore would overwrite what the vault holds: ${r.conflicts.slice(0, 10).join(', ')}${r.conflicts.length > 10 ? ', …' : ''}. Restore into an empty vault, or delete and purge these first.`, {
          conflicts: r.conflicts.slice(0, 100),
        });
      }
      return record({ ...started, status: 'Succeeded', statusDetails: `${r.keys} key(s) restored`, endTime: nowSeconds(), folderUri: `${sas.uri.replace(/\/+$/, '')}/${folder}` });
    } catch (e) {
      if (isConclaveError(e) && e.status < 500) await record({ ...started, status: 'Failed', error: { code: e.code, message: e.message }, endTime: nowSeconds() });
      throw e;
    }
  }

  return {
    async startFullBackup(p: Principal, api: ApiVersion, body: unknown) {
      requireFeature(api, 'mhsm', 'fullBackup');
      return perform(p, 'fullBackup', 'startBackup', {}, async (draft) => {
        const sas = sasParameter(body, 'body');
        const job: BackupJob = { jobId: randomBytes(16).toString('hex'), kind: 'backup', status: 'InProgress', startTime: nowSeconds(), principal: p.id };
        const snapshot = await store.exportVault();
        const file: SealedFile = {
          format: FORMAT,
          created: core.deps.now().toISOString(),
          vault: core.deps.baseUrl(),
          sealed: u(core.deps.sealer.seal(Buffer.from(JSON.stringify(toWire(snapshot)), 'utf8'), AAD)),
        };
        const folderUri = await location().writeFolder(sas.uri, sas.token, folderName(), { [FULL_BACKUP_FILE]: Buffer.from(JSON.stringify(file), 'utf8') });
        Object.assign(draft.detail, { jobId: job.jobId, folder: folderUri, keys: snapshot.keys.length, customRoles: snapshot.customRoles.length, assignments: snapshot.assignments.length });
        return record({ ...job, status: 'Succeeded', statusDetails: `${snapshot.keys.length} key(s) backed up`, endTime: nowSeconds(), folderUri });
      });
    },

    /** Managed HSM's pre-backup check: the location would take a backup; nothing is written or made. */
    async startPreBackup(p: Principal, api: ApiVersion, body: unknown) {
      requireFeature(api, 'preBackup', 'preFullBackup');
      return perform(p, 'preFullBackup', 'startBackup', {}, async (draft) => {
        const sas = sasParameter(body, 'body');
        const job: BackupJob = { jobId: randomBytes(16).toString('hex'), kind: 'backup', status: 'InProgress', startTime: nowSeconds(), principal: p.id };
        draft.detail.jobId = job.jobId;
        await location().checkContainer(sas.uri, sas.token);
        return record({ ...job, status: 'Succeeded', statusDetails: 'A backup can be written to this location.', endTime: nowSeconds() });
      });
    },

    /**
     * Managed HSM's pre-restore check: the folder holds a backup this vault can open (same master key) and
     * none of its keys is in the vault; refused as the restore would be, and nothing is written.
     */
    async startPreRestore(p: Principal, api: ApiVersion, body: unknown) {
      requireFeature(api, 'preBackup', 'preFullRestore');
      return perform(p, 'preFullRestore', 'startRestore', {}, async (draft) => {
        const b = isObject(body) ? body : {};
        const sas = sasParameter(b.sasTokenParameters, 'sasTokenParameters');
        const folder = folderParameter(b.folderToRestore, 'folderToRestore');
        const job: BackupJob = { jobId: randomBytes(16).toString('hex'), kind: 'restore', status: 'InProgress', startTime: nowSeconds(), principal: p.id };
        Object.assign(draft.detail, { jobId: job.jobId, folder });
        const snapshot = await readSnapshot(sas, folder);
        for (const k of snapshot.keys) await requireMaterialHeld(core.protector, k.versions);
        const conflicts: string[] = [];
        for (const k of snapshot.keys) {
          const st = await store.keyState(k.name);
          if (st.state !== 'absent') conflicts.push(st.name);
          if (conflicts.length >= 100) break;
        }
        if (conflicts.length > 0) {
          throw fail('key.conflict', `Restore would overwrite what the vault holds: ${conflicts.slice(0, 10).join(', ')}${conflicts.length > 10 ? ', …' : ''}. Restore into an empty vault, or delete and purge these first.`, { conflicts });
        }
        return record({ ...job, status: 'Succeeded', statusDetails: `${snapshot.keys.length} key(s) can be restored.`, endTime: nowSeconds() });
      });
    },

    async startFullRestore(p: Principal, api: ApiVersion, body: unknown) {
      requireFeature(api, 'mhsm', 'fullRestore');
      return perform(p, 'fullRestore', 'startRestore', {}, async (draft) => {
        const b = isObject(body) ? body : {};
        const sas = sasParameter(b.sasTokenParameters, 'sasTokenParameters');
        return restore(p, 'restore', sas, folderParameter(b.folderToRestore, 'folderToRestore'), undefined, draft);
      }, true);
    },

    async startSelectiveRestore(p: Principal, api: ApiVersion, keyName: string, body: unknown) {
      requireFeature(api, 'mhsm', 'selectiveKeyRestore');
      return perform(p, 'selectiveKeyRestore', 'startRestore', { name: keyName }, async (draft) => {
        checkKeyName(keyName);
        const b = isObject(body) ? body : {};
        const sas = sasParameter(b.sasTokenParameters, 'sasTokenParameters');
        return restore(p, 'selectiveRestore', sas, folderParameter(b.folder, 'folder'), keyName, draft);
      }, true);
    },

    async backupJob(p: Principal, api: ApiVersion, kind: 'backup' | 'restore', jobId: string) {
      requireFeature(api, 'mhsm', kind === 'backup' ? 'fullBackupStatus' : 'restoreStatus');
      return perform(p, kind === 'backup' ? 'fullBackupStatus' : 'restoreStatus', kind === 'backup' ? 'backupStatus' : 'restoreStatus', {}, async () => {
        const job = /^[0-9a-f]{32}$/.test(jobId) ? await store.backupJob(jobId) : undefined;
        if (!job || (kind === 'backup') !== (job.kind === 'backup')) throw fail('request.not_found', `No ${kind} job ${jobId}.`, { jobId });
        return job;
      });
    },
  };
}
