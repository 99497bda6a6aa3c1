/**
 * The key lifecycle of the AKV keys API: create, import, rotate (and the rotation policy), get, update,
 * list, soft delete, recover, purge, and the single-key backup and restore. One method per operation,
 * each taking the authenticated principal, the request's api-version and decoded parameters, and
 * returning wire objects.
 */
import { randomBytes } from 'node:crypto';
import { fail } from '../core/errors.js';
import { type ApiVersion, requireFeature } from './api-version.js';
import { importByok } from './byok.js';
import { type AuditDraft, bindingOf, finish, keyNotFound, requireMaterialHeld, type VaultCore } from './core.js';
import {
  applyUpdate,
  checkKeyName,
  deletedKeyBundle,
  deletedKeyItem,
  familyOf,
  isKeyExchangeKey,
  keyBundle,
  keyId,
  keyItem,
  type KeyVersion,
  newAttributes,
  parseCreateParameters,
  parseImportParameters,
  parseUpdateParameters,
} from './key.js';
import type { ProtectedKey } from './ports.js';
import type { Principal } from './roles.js';
import { DEFAULT_ROTATION_POLICY, deserializeRotationPolicy, parseRotationPolicy, type RotationPolicy, rotatedExpiry, rotationPolicyWire, serializeRotationPolicy } from './rotation.js';
import { b64url } from '../core/bytes.js';

const BACKUP_AAD = 'vault-key-backup:v1';
const BACKUP_FORMAT = 'conclave-key-backup/1';

export function newVersionId(): string {
  return randomBytes(16).toString('hex');
}

const u = b64url;

/** A version made by rotation: the latest's type, size/curve, key_ops, tags and release policy, new material. */
export async function rotatedVersion(core: VaultCore, cur: KeyVersion, policy: RotationPolicy | undefined): Promise<KeyVersion> {
  const version = newVersionId();
  const family = familyOf(cur.kty);
  const spec =
    family === 'EC' ? { family, crv: cur.crv! } : family === 'RSA' ? { family, keySize: cur.keySize ?? 2048, publicExponent: 65537 } : { family, keySize: cur.keySize ?? 256 };
  const pk = await core.protector.generate(spec, bindingOf(cur.name, version), { exportable: cur.attributes.exportable });
  const now = core.nowSeconds();
  const exp = rotatedExpiry(policy, now);
  return {
    ...cur,
    version,
    publicJwk: pk.publicJwk,
    handle: pk.handle,
    provider: core.protector.provider,
    attributes: { enabled: true, exportable: cur.attributes.exportable, created: now, updated: now, ...(exp !== undefined ? { exp } : {}) },
  };
}

export function createKeyLifecycle(core: VaultCore) {
  const { store, protector, perform, live, deleted, view, nowSeconds } = core;
  const base = () => core.deps.baseUrl();

  async function addVersion(api: ApiVersion, k: KeyVersion, draft: AuditDraft): Promise<Record<string, unknown>> {
    draft.version = k.version;
    const r = await store.addVersion(k, nowSeconds(), finish(draft));
    if (r === 'deleted') throw fail('key.conflict', `Key ${k.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`, { name: k.name });
    if (r === 'renamed') throw fail('key.conflict', `Key ${k.name} was created concurrently in another letter case; retry.`, { name: k.name });
    return keyBundle(view(api), k);
  }

  /** The name a new version is made under: the stored spelling when the key exists in any case. */
  async function nameFor(name: string): Promise<string> {
    checkKeyName(name);
    const st = await store.keyState(name);
    return st.state === 'absent' ? name : st.name;
  }

  function newKeyVersion(name: string, version: string, params: ReturnType<typeof parseCreateParameters> | ReturnType<typeof parseImportParameters>, pk: ProtectedKey): KeyVersion {
    return {
      name,
      version,
      kty: params.kty,
      ...(pk.keySize !== undefined ? { keySize: pk.keySize } : {}),
      ...(pk.crv ? { crv: pk.crv } : {}),
      keyOps: params.keyOps,
      publicJwk: pk.publicJwk,
      handle: pk.handle,
      provider: protector.provider,
      attributes: newAttributes(params.attributes, nowSeconds()),
      ...(params.tags ? { tags: params.tags } : {}),
      ...(params.releasePolicy ? { releasePolicy: params.releasePolicy } : {}),
    };
  }

  function checkReleaseFields(api: ApiVersion, params: { attributes: { exportable?: boolean }; releasePolicy?: unknown }): void {
    if (params.attributes.exportable !== undefined || params.releasePolicy !== undefined) requireFeature(api, 'release', 'exportable keys with a release policy');
  }

  return {
    // The stored spelling is looked up once the caller may create (or import): a refusal names the key as asked.
    async create(p: Principal, api: ApiVersion, requested: string, body: unknown) {
      return perform(p, 'create', 'create', { name: requested }, async (draft) => {
        const name = await nameFor(requested);
        draft.key = name;
        const params = parseCreateParameters(body);
        checkReleaseFields(api, params);
        const version = newVersionId();
        const pk = await protector.generate(params.spec, bindingOf(name, version), { exportable: params.attributes.exportable === true });
        return addVersion(api, newKeyVersion(name, version, params, pk), draft);
      }, true);
    },

    async import(p: Principal, api: ApiVersion, requested: string, body: unknown) {
      return perform(p, 'import', 'import', { name: requested }, async (draft) => {
        const name = await nameFor(requested);
        draft.key = name;
        const params = parseImportParameters(body);
        checkReleaseFields(api, params);
        // A KEK's private key must never have existed outside the vault (key.ts, isKeyExchangeKey).
        if (isKeyExchangeKey(params)) {
          throw fail('key.invalid', 'A key exchange key (RSA-HSM, key_ops ["import"]) is generated by the vault (create), never imported: its private key would exist outside it.', { field: 'key.key_ops' });
        }
        const version = newVersionId();
        let pk: ProtectedKey;
        if (params.keyHsm !== undefined) {
          draft.detail.byok = true;
          pk = await importByok(core, p, name, version, { ...params, keyHsm: params.keyHsm }, draft);
        } else {
          pk = await protector.import(params.jwk, bindingOf(name, version), { exportable: params.attributes.exportable === true });
        }
        return addVersion(api, newKeyVersion(name, version, params, pk), draft);
      }, true);
    },

    /** On-demand rotation: a new version like the latest; its `exp` from the rotation policy's expiryTime. */
    async rotate(p: Principal, api: ApiVersion, name: string) {
      requireFeature(api, 'rotation', 'rotate');
      return perform(p, 'rotate', 'rotate', { name }, async (draft) => {
        const cur = await live(name, undefined, draft);
        return addVersion(api, await rotatedVersion(core, cur, await store.rotationPolicy(cur.name)), draft);
      }, true);
    },

    async getRotationPolicy(p: Principal, api: ApiVersion, name: string) {
      requireFeature(api, 'rotation', 'getRotationPolicy');
      return perform(p, 'getRotationPolicy', 'read', { name }, async (draft) => {
        const cur = await live(name, undefined, draft);
        const policy = await store.rotationPolicy(cur.name);
        return rotationPolicyWire(keyId(base(), cur.name), policy ?? DEFAULT_ROTATION_POLICY);
      });
    },

    async setRotationPolicy(p: Principal, api: ApiVersion, name: string, body: unknown) {
      requireFeature(api, 'rotation', 'updateRotationPolicy');
      return perform(p, 'updateRotationPolicy', 'write', { name }, async (draft) => {
        const cur = await live(name, undefined, draft);
        const previous = await store.rotationPolicy(cur.name);
        const policy = parseRotationPolicy(body, nowSeconds(), previous?.created);
        draft.detail.policy = JSON.parse(serializeRotationPolicy(policy));
        if (!(await store.setRotationPolicy(cur.name, policy, finish(draft)))) throw keyNotFound(name);
        return rotationPolicyWire(keyId(base(), cur.name), policy);
      }, true);
    },

    async get(p: Principal, api: ApiVersion, name: string, version: string | undefined) {
      return perform(p, 'get', 'read', { name, ...(version ? { version } : {}) }, async (draft) => keyBundle(view(api), await live(name, version, draft)));
    },

    async update(p: Principal, api: ApiVersion, name: string, version: string | undefined, body: unknown) {
      return perform(p, 'update', 'write', { name, ...(version ? { version } : {}) }, async (draft) => {
        const cur = await live(name, version, draft);
        draft.version = cur.version;
        const params = parseUpdateParameters(body, familyOf(cur.kty));
        if (params.releasePolicy !== undefined) requireFeature(api, 'release', 'release_policy');
        const next = await store.updateVersion(cur.name, cur.version, (fresh) => applyUpdate(fresh, params, nowSeconds()), finish(draft));
        if (!next) throw keyNotFound(name, cur.version);
        return keyBundle(view(api), next);
      }, true);
    },

    async list(p: Principal, api: ApiVersion, offset: number, limit: number) {
      return perform(p, 'list', 'read', {}, async () => {
        const page = await store.listKeys(false, offset, limit);
        return { items: page.items.map((i) => keyItem(view(api), i.key, false)), next: page.next };
      });
    },

    async listVersions(p: Principal, api: ApiVersion, name: string, offset: number, limit: number) {
      return perform(p, 'listVersions', 'read', { name }, async (draft) => {
        const cur = await live(name, undefined, draft);
        const page = await store.listVersions(cur.name, offset, limit);
        return { items: page.items.map((k) => keyItem(view(api), k, true)), next: page.next };
      });
    },

    async delete(p: Principal, api: ApiVersion, name: string) {
      return perform(p, 'delete', 'delete', { name }, async (draft) => {
        const key = await live(name, undefined, draft);
        const now = nowSeconds();
        const deletion = { deletedDate: now, scheduledPurgeDate: now + core.deps.softDelete.recoverableDays * 86400 };
        if (!(await store.setDeleted(key.name, deletion, finish(draft)))) throw fail('key.conflict', `Key ${name} is being deleted concurrently`, { name });
        return deletedKeyBundle(view(api), key, deletion);
      }, true);
    },

    async getDeleted(p: Principal, api: ApiVersion, name: string) {
      return perform(p, 'getDeleted', 'readDeleted', { name }, async (draft) => {
        const d = await deleted(name, draft);
        return deletedKeyBundle(view(api), d.key, d.deletion);
      });
    },

    async listDeleted(p: Principal, api: ApiVersion, offset: number, limit: number) {
      return perform(p, 'listDeleted', 'readDeleted', {}, async () => {
        const page = await store.listKeys(true, offset, limit);
        return { items: page.items.map((i) => deletedKeyItem(view(api), i.key, i.deletion!)), next: page.next };
      });
    },

    async recover(p: Principal, api: ApiVersion, name: string) {
      return perform(p, 'recover', 'recover', { name }, async (draft) => {
        const d = await deleted(name, draft);
        if (!(await store.setDeleted(d.key.name, undefined, finish(draft)))) throw fail('key.conflict', `Key ${name} is being recovered concurrently`, { name });
        return keyBundle(view(api), d.key);
      }, true);
    },

    async purge(p: Principal, name: string) {
      return perform(p, 'purge', 'purge', { name }, async (draft) => {
        draft.status = 204; // as the route answers (server/vault/plugin.ts)
        const d = await deleted(name, draft);
        if (core.deps.softDelete.purgeProtection) {
          throw fail('key.operation_not_allowed', `Operation purge is not allowed on key ${d.key.name}: purge protection is enabled for this vault; the key is purged automatically at its scheduled purge date (${new Date(d.deletion.scheduledPurgeDate * 1000).toISOString()}).`, {
            reason: 'purge_protection',
            scheduledPurgeDate: d.deletion.scheduledPurgeDate,
          });
        }
        if (!(await store.purge(d.key.name, finish(draft)))) throw fail('key.not_found', `Deleted Key not found: ${name}`, { name });
      }, true);
    },

    /** The backup blob: every version as stored (material stays sealed to its binding) and the rotation policy, sealed again as a whole. */
    async backup(p: Principal, name: string) {
      return perform(p, 'backup', 'backup', { name }, async (draft) => {
        const latest = await live(name, undefined, draft);
        const versions = await store.allVersions(latest.name);
        const policy = await store.rotationPolicy(latest.name);
        const doc = {
          format: BACKUP_FORMAT,
          name: latest.name,
          latest: latest.version,
          versions: versions.map((v) => ({ ...v, handle: u(v.handle) })),
          ...(policy ? { rotationPolicy: serializeRotationPolicy(policy) } : {}),
        };
        return { value: u(core.deps.sealer.seal(Buffer.from(JSON.stringify(doc), 'utf8'), BACKUP_AAD)) };
      });
    },

    async restore(p: Principal, api: ApiVersion, body: unknown) {
      return perform(p, 'restore', 'restore', {}, async (draft) => {
        const value = (body as { value?: unknown } | undefined)?.value;
        if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+={0,2}$/.test(value)) throw fail('request.invalid', 'value (the backup blob, base64url) is required', { field: 'value' });
        let doc: { format?: string; name?: string; latest?: string; versions?: Array<KeyVersion & { handle: string }>; rotationPolicy?: string };
        try {
          doc = JSON.parse(Buffer.from(core.deps.sealer.open(new Uint8Array(Buffer.from(value, 'base64url')), BACKUP_AAD)).toString('utf8'));
        } catch {
          throw fail('backup.foreign', 'Backup blob is corrupt or was sealed under another master key: it restores only into a vault with the master key that made it.', { field: 'value' });
        }
        if (doc.format !== BACKUP_FORMAT || !doc.name || !doc.latest || !Array.isArray(doc.versions) || doc.versions.length === 0) {
          throw fail('request.invalid', 'Backup blob has an unknown format.', { field: 'value' });
        }
        const versions = doc.versions.map((v) => ({ ...v, handle: new Uint8Array(Buffer.from(v.handle, 'base64url')) }));
        draft.key = doc.name;
        draft.version = doc.latest;
        const policy = doc.rotationPolicy ? deserializeRotationPolicy(doc.rotationPolicy) : undefined;
        await requireMaterialHeld(core.protector, versions);
        if (!(await store.restore(versions, doc.latest, nowSeconds(), finish(draft), policy))) {
          throw fail('key.conflict', `Key ${doc.name} already exists (or is deleted); restore needs a free name.`, { name: doc.name });
        }
        return keyBundle(view(api), versions.find((v) => v.version === doc.latest)!);
      }, true);
    },
  };
}
