/**
 * The vault's operations: permission check, store, key protector, release domain, audit — one method
 * per AKV operation, taking the authenticated principal and decoded parameters and returning wire
 * objects. Every call (granted, denied or failed) leaves one audit record.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ConclaveError, fail, isConclaveError } from '../core/errors.js';
import type { AuditRecord } from './audit.js';
import { canonicalJson } from './audit.js';
import {
  applyUpdate,
  attributesWire,
  checkKeyName,
  checkOperationPermitted,
  checkUsable,
  deletedKeyBundle,
  deletedKeyItem,
  type DeletionInfo,
  familyOf,
  keyBundle,
  keyId,
  keyItem,
  type KeyOperation,
  type KeyVersion,
  newAttributes,
  parseCreateParameters,
  parseImportParameters,
  parseUpdateParameters,
  publicKeyWire,
  RECOVERABLE_DAYS,
  releasePolicyWire,
} from './key.js';
import type { CipherRequest, EncryptionAlgorithm, KeyProtector, KeyRef, ProtectedKey, SignatureAlgorithm } from './ports.js';
import {
  buildReleaseResponse,
  DEFAULT_KEY_TRANSFER_ENC,
  evaluateReleasePolicy,
  explainDecision,
  findWrappingKey,
  type GetJwks,
  isKeyTransferEnc,
  type KeyTransferEnc,
  parseReleasePolicy,
  type ReleaseSigner,
  releasePolicyHash,
  verifyTargetToken,
} from './release/index.js';
import { effectiveAssignments, isPermitted, parseRoleName, parseScope, type Permission, type Principal, type RoleAssignment } from './roles.js';
import type { VaultStore } from './store.js';

type AuditDraft = { -readonly [K in keyof Omit<AuditRecord, 'seq' | 'detail'>]: AuditRecord[K] } & { detail: Record<string, unknown> };

const BACKUP_AAD = 'vault-key-backup:v1';
const BACKUP_FORMAT = 'conclave-key-backup/1';

function b64(v: unknown, field: string, required: boolean): Uint8Array | undefined {
  if (v === undefined || v === null) {
    if (required) throw fail('request.invalid', `${field} is required`, { field });
    return undefined;
  }
  if (typeof v !== 'string' || !/^[A-Za-z0-9_\-+/]*={0,2}$/.test(v)) throw fail('request.invalid', `${field} must be base64url`, { field });
  return new Uint8Array(Buffer.from(v, 'base64url'));
}

const u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

function bindingOf(name: string, version: string): string {
  return `vault-key:${name}/${version}`;
}

function refOf(k: KeyVersion): KeyRef {
  return { family: familyOf(k.kty), handle: k.handle, binding: bindingOf(k.name, k.version) };
}

/** Seals whole-key backups under the master key (src/hsm/master-key.ts). */
export interface BackupSealer {
  seal(plaintext: Uint8Array, aad: string): Uint8Array;
  open(sealed: Uint8Array, aad: string): Uint8Array;
}

/** The release-signing identity of one vault host: its certificate and an RS256 signing function. */
export type ReleaseKeySource = (subject: string, host: string) => Promise<{ readonly certDer: Uint8Array; sign(data: Uint8Array): Uint8Array | Promise<Uint8Array> }>;

export interface VaultServiceDeps {
  readonly store: VaultStore;
  readonly protector: KeyProtector;
  readonly getJwks: GetJwks;
  /** The release-signing key: in the PKCS#11 token with --hsm, a software service key otherwise. */
  readonly releaseKey: ReleaseKeySource;
  readonly sealer: BackupSealer;
  /** The clock. */
  readonly now: () => Date;
  /** The vault's public base URL (known once the server listens): kid URLs, the built-in trusted authority. */
  readonly baseUrl: () => string;
  /** Authorities trusted by configuration, besides the vault itself and those the operator stored. */
  readonly trustedAuthorities: readonly string[];
  /** Whether this server runs with --simulate: only then do tokens from simulated evidence release keys. */
  readonly simulate: boolean;
  /** Where a failed audit append of a failed operation is reported (the operation's own error wins). */
  readonly logger: { error(obj: object, msg: string): void };
}

export function createVaultService(deps: VaultServiceDeps) {
  const { store, protector, getJwks, releaseKey } = deps;
  const ctx = { now: deps.now, baseUrl: deps.baseUrl, sealer: deps.sealer, logger: deps.logger, config: { trustedAuthorities: deps.trustedAuthorities } };
  const nowSeconds = () => Math.floor(ctx.now().getTime() / 1000);
  const base = () => ctx.baseUrl();
  let signer: Promise<ReleaseSigner> | undefined;

  function releaseSigner(): Promise<ReleaseSigner> {
    // The certificate names the vault host (SAN), so a client can check that the release was signed
    // for the vault it asked; one key per host, as a vault answering under two names has two identities.
    const host = new URL(ctx.baseUrl()).hostname.replace(/^\[|\]$/g, '');
    const subject = `${ctx.baseUrl()} key release`;
    signer ??= releaseKey(subject, host).then((k) => ({ sign: (data: Uint8Array) => k.sign(data), certificateChainDer: [k.certDer] }));
    signer.catch(() => {
      signer = undefined;
    });
    return signer;
  }

  async function authorize(p: Principal, permission: Permission, keyName: string | undefined): Promise<void> {
    const assignments = effectiveAssignments(await store.assignmentsOf(p.id), p.isAdmin);
    if (!isPermitted(assignments, permission, keyName)) {
      const hint = permission === 'release' ? ' Release requires the Key Vault Crypto Service Release User role (also for administrators).' : '';
      throw fail('auth.forbidden', `Caller ${p.displayName} (${p.id}) is not authorized to perform action '${permission}' on ${keyName ? `key ${keyName}` : 'this vault'}.${hint}`, { permission, scope: keyName ? `/keys/${keyName}` : '/' });
    }
  }

  /**
   * Runs one audited operation. `selfAudited`: the operation appends its success record inside its own
   * transaction (mutations); otherwise success is appended after it returns.
   */
  async function perform<T>(
    p: Principal,
    operation: string,
    permission: Permission | undefined,
    key: { name?: string; version?: string },
    fn: (draft: AuditDraft) => Promise<T>,
    selfAudited = false,
  ): Promise<T> {
    const draft: AuditDraft = {
      time: ctx.now().toISOString(),
      principal: p.id,
      operation,
      ...(key.name !== undefined ? { key: key.name } : {}),
      ...(key.version !== undefined ? { version: key.version } : {}),
      result: 'success',
      status: 200,
      detail: {},
    };
    let result: T;
    try {
      if (permission) await authorize(p, permission, key.name);
      result = await fn(draft);
    } catch (e) {
      const err = isConclaveError(e) ? e : new ConclaveError('internal', 'internal error', undefined, { cause: e });
      const denied = err.status === 401 || err.status === 403;
      await store
        .audit({ ...draft, result: denied ? 'denied' : 'failed', status: err.status, code: err.code, message: err.message, ...(Object.keys(draft.detail).length ? { detail: draft.detail } : {}) })
        .catch((ae) => ctx.logger.error({ err: ae }, 'audit append failed'));
      throw e;
    }
    if (!selfAudited) await store.audit(finish(draft));
    return result;
  }

  function finish(draft: AuditDraft): Omit<AuditRecord, 'seq'> {
    const { detail, ...rest } = draft;
    return Object.keys(detail).length ? { ...rest, detail } : rest;
  }

  async function live(name: string, version?: string): Promise<KeyVersion> {
    const st = await store.keyState(name);
    const k = st.state === 'live' ? await store.getVersion(name, version) : undefined;
    if (!k) {
      throw fail('key.not_found', `A key with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`, { name, ...(version ? { version } : {}) });
    }
    return k;
  }

  async function deleted(name: string): Promise<{ key: KeyVersion; deletion: DeletionInfo }> {
    const st = await store.keyState(name);
    const key = st.state === 'deleted' ? await store.getVersion(name, undefined) : undefined;
    if (st.state !== 'deleted' || !key) throw fail('key.not_found', `Deleted Key not found: ${name}`, { name });
    return { key, deletion: st.deletion };
  }

  async function addVersion(k: KeyVersion, draft: AuditDraft): Promise<Record<string, unknown>> {
    draft.version = k.version;
    const r = await store.addVersion(k, nowSeconds(), finish(draft));
    if (r === 'deleted') throw fail('key.conflict', `Key ${k.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`, { name: k.name });
    return keyBundle(base(), k);
  }

  function newVersionId(): string {
    return randomBytes(16).toString('hex');
  }

  /** The first record of a key version made by create or import, from its parameters and the protector's answer. */
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

  return {
    async create(p: Principal, name: string, body: unknown) {
      checkKeyName(name);
      return perform(p, 'create', 'create', { name }, async (draft) => {
        const params = parseCreateParameters(body);
        const version = newVersionId();
        const pk = await protector.generate(params.spec, bindingOf(name, version), { exportable: params.attributes.exportable === true });
        const key = newKeyVersion(name, version, params, pk);
        return addVersion(key, draft);
      }, true);
    },

    async import(p: Principal, name: string, body: unknown) {
      checkKeyName(name);
      return perform(p, 'import', 'import', { name }, async (draft) => {
        const params = parseImportParameters(body);
        const version = newVersionId();
        const pk = await protector.import(params.jwk, bindingOf(name, version), { exportable: params.attributes.exportable === true });
        const key = newKeyVersion(name, version, params, pk);
        return addVersion(key, draft);
      }, true);
    },

    /** Rotation: a new version with the latest version's type, size/curve, key_ops, tags and policy. */
    async rotate(p: Principal, name: string) {
      return perform(p, 'rotate', 'rotate', { name }, async (draft) => {
        const cur = await live(name);
        const version = newVersionId();
        const family = familyOf(cur.kty);
        const spec =
          family === 'EC'
            ? { family, crv: cur.crv! }
            : family === 'RSA'
              ? { family, keySize: cur.keySize ?? 2048, publicExponent: 65537 }
              : { family, keySize: cur.keySize ?? 256 };
        const pk = await protector.generate(spec, bindingOf(name, version), { exportable: cur.attributes.exportable });
        const now = nowSeconds();
        const key: KeyVersion = {
          ...cur,
          version,
          publicJwk: pk.publicJwk,
          handle: pk.handle,
          provider: protector.provider,
          attributes: { enabled: true, exportable: cur.attributes.exportable, created: now, updated: now },
        };
        return addVersion(key, draft);
      }, true);
    },

    async get(p: Principal, name: string, version: string | undefined) {
      return perform(p, 'get', 'read', { name, ...(version ? { version } : {}) }, async () => keyBundle(base(), await live(name, version)));
    },

    async update(p: Principal, name: string, version: string | undefined, body: unknown) {
      return perform(p, 'update', 'update', { name, ...(version ? { version } : {}) }, async (draft) => {
        const cur = await live(name, version);
        draft.version = cur.version;
        const params = parseUpdateParameters(body, familyOf(cur.kty));
        const next = await store.updateVersion(cur.name, cur.version, (fresh) => applyUpdate(fresh, params, nowSeconds()), finish(draft));
        if (!next) throw fail('key.not_found', `A key with (name/id) ${name}/${cur.version} was not found in this key vault.`, { name, version: cur.version });
        return keyBundle(base(), next);
      }, true);
    },

    async list(p: Principal, offset: number, limit: number) {
      return perform(p, 'list', 'read', {}, async () => {
        const page = await store.listKeys(false, offset, limit);
        return { items: page.items.map((i) => keyItem(base(), i.key, false)), next: page.next };
      });
    },

    async listVersions(p: Principal, name: string, offset: number, limit: number) {
      return perform(p, 'listVersions', 'read', { name }, async () => {
        await live(name);
        const page = await store.listVersions(name, offset, limit);
        return { items: page.items.map((k) => keyItem(base(), k, true)), next: page.next };
      });
    },

    async delete(p: Principal, name: string) {
      return perform(p, 'delete', 'delete', { name }, async (draft) => {
        const key = await live(name);
        const now = nowSeconds();
        const deletion = { deletedDate: now, scheduledPurgeDate: now + RECOVERABLE_DAYS * 86400 };
        if (!(await store.setDeleted(name, deletion, finish(draft)))) throw fail('key.conflict', `Key ${name} is being deleted concurrently`, { name });
        return deletedKeyBundle(base(), key, deletion);
      }, true);
    },

    async getDeleted(p: Principal, name: string) {
      return perform(p, 'getDeleted', 'read', { name }, async () => {
        const d = await deleted(name);
        return deletedKeyBundle(base(), d.key, d.deletion);
      });
    },

    async listDeleted(p: Principal, offset: number, limit: number) {
      return perform(p, 'listDeleted', 'read', {}, async () => {
        const page = await store.listKeys(true, offset, limit);
        return { items: page.items.map((i) => deletedKeyItem(base(), i.key, i.deletion!)), next: page.next };
      });
    },

    async recover(p: Principal, name: string) {
      return perform(p, 'recover', 'recover', { name }, async (draft) => {
        const d = await deleted(name);
        if (!(await store.setDeleted(name, undefined, finish(draft)))) throw fail('key.conflict', `Key ${name} is being recovered concurrently`, { name });
        return keyBundle(base(), d.key);
      }, true);
    },

    async purge(p: Principal, name: string) {
      return perform(p, 'purge', 'purge', { name }, async (draft) => {
        await deleted(name);
        if (!(await store.purge(name, finish(draft)))) throw fail('key.not_found', `Deleted Key not found: ${name}`, { name });
      }, true);
    },

    /** The backup blob: every version as stored (material stays sealed to its binding), sealed again as a whole. */
    async backup(p: Principal, name: string) {
      return perform(p, 'backup', 'backup', { name }, async () => {
        const latest = await live(name);
        const versions = await store.allVersions(name);
        const doc = {
          format: BACKUP_FORMAT,
          name,
          latest: latest.version,
          versions: versions.map((v) => ({ ...v, handle: u(v.handle) })),
        };
        return { value: u(ctx.sealer.seal(Buffer.from(JSON.stringify(doc), 'utf8'), BACKUP_AAD)) };
      });
    },

    async restore(p: Principal, body: unknown) {
      return perform(p, 'restore', 'restore', {}, async (draft) => {
        const value = b64((body as { value?: unknown } | undefined)?.value, 'value', true)!;
        let doc: { format?: string; name?: string; latest?: string; versions?: Array<KeyVersion & { handle: string }> };
        try {
          doc = JSON.parse(Buffer.from(ctx.sealer.open(value, BACKUP_AAD)).toString('utf8'));
        } catch {
          throw fail('request.invalid', 'Backup blob is corrupt or was not made by this vault (master key).', { field: 'value' });
        }
        if (doc.format !== BACKUP_FORMAT || !doc.name || !doc.latest || !Array.isArray(doc.versions) || doc.versions.length === 0) {
          throw fail('request.invalid', 'Backup blob has an unknown format.', { field: 'value' });
        }
        const versions = doc.versions.map((v) => ({ ...v, handle: new Uint8Array(Buffer.from(v.handle, 'base64url')) }));
        draft.key = doc.name;
        draft.version = doc.latest;
        if (!(await store.restore(versions, doc.latest, nowSeconds(), finish(draft)))) {
          throw fail('key.conflict', `Key ${doc.name} already exists (or is deleted); restore needs a free name.`, { name: doc.name });
        }
        return keyBundle(base(), versions.find((v) => v.version === doc.latest)!);
      }, true);
    },

    async cipher(p: Principal, name: string, version: string | undefined, op: 'encrypt' | 'decrypt' | 'wrapKey' | 'unwrapKey', body: unknown) {
      return perform(p, op, 'crypto', { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.alg !== 'string') throw fail('request.invalid', 'alg is required', { field: 'alg' });
        const key = await live(name, version);
        draft.version = key.version;
        checkUsable(key, op, nowSeconds());
        checkOperationPermitted(key, op as KeyOperation);
        const iv = b64(b.iv, 'iv', false);
        const aad = b64(b.aad, 'aad', false);
        const tag = b64(b.tag, 'tag', false);
        const req: CipherRequest = { alg: b.alg as EncryptionAlgorithm, value: b64(b.value, 'value', true)!, ...(iv ? { iv } : {}), ...(aad ? { aad } : {}), ...(tag ? { tag } : {}) };
        draft.detail.alg = b.alg;
        if ((op === 'wrapKey' || op === 'unwrapKey') && /GCM|CBC/.test(b.alg)) throw fail('key.invalid', `Algorithm ${b.alg} is not a key-wrap algorithm`, { field: 'alg' });
        if ((op === 'encrypt' || op === 'decrypt') && /KW$/.test(b.alg)) throw fail('key.invalid', `Algorithm ${b.alg} is for wrapKey/unwrapKey only`, { field: 'alg' });
        const r = op === 'encrypt' || op === 'wrapKey' ? await protector.encrypt(refOf(key), req) : await protector.decrypt(refOf(key), req);
        return {
          kid: keyId(base(), key.name, key.version),
          value: u(r.value),
          ...(r.iv ? { iv: u(r.iv) } : {}),
          ...(r.tag ? { tag: u(r.tag) } : {}),
          ...(r.aad ? { aad: u(r.aad) } : {}),
        };
      });
    },

    async sign(p: Principal, name: string, version: string | undefined, body: unknown) {
      return perform(p, 'sign', 'crypto', { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.alg !== 'string') throw fail('request.invalid', 'alg is required', { field: 'alg' });
        const key = await live(name, version);
        draft.version = key.version;
        draft.detail.alg = b.alg;
        checkUsable(key, 'sign', nowSeconds());
        checkOperationPermitted(key, 'sign');
        const sig = await protector.sign(refOf(key), b.alg as SignatureAlgorithm, b64(b.value, 'value', true)!);
        return { kid: keyId(base(), key.name, key.version), value: u(sig) };
      });
    },

    async verify(p: Principal, name: string, version: string | undefined, body: unknown) {
      return perform(p, 'verify', 'crypto', { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.alg !== 'string') throw fail('request.invalid', 'alg is required', { field: 'alg' });
        const key = await live(name, version);
        draft.version = key.version;
        draft.detail.alg = b.alg;
        checkUsable(key, 'verify', nowSeconds());
        checkOperationPermitted(key, 'verify');
        const ok = await protector.verify(refOf(key), b.alg as SignatureAlgorithm, b64(b.digest, 'digest', true)!, b64(b.value, 'value', true)!);
        return { value: ok };
      });
    },

    async random(p: Principal, body: unknown) {
      return perform(p, 'rng', 'rng', {}, async () => {
        const count = (body as { count?: unknown } | undefined)?.count;
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 128) throw fail('request.invalid', 'count must be an integer from 1 to 128', { field: 'count' });
        return { value: u(randomBytes(count)) };
      });
    },

    /** Secure Key Release (skr-maa-protocol.md §1.5, §2.3). */
    async release(p: Principal, name: string, version: string | undefined, body: unknown, apiVersion: string) {
      return perform(p, 'release', 'release', { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.target !== 'string' || b.target.length === 0) throw fail('request.invalid', 'target (the attestation token) is required', { field: 'target' });
        if (b.nonce !== undefined && b.nonce !== null && typeof b.nonce !== 'string') throw fail('request.invalid', 'nonce must be a string', { field: 'nonce' });
        if (b.enc !== undefined && b.enc !== null && !isKeyTransferEnc(b.enc)) throw fail('request.invalid', `enc must be one of CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384`, { field: 'enc' });
        const enc: KeyTransferEnc = (b.enc as KeyTransferEnc | undefined) ?? DEFAULT_KEY_TRANSFER_ENC;
        const key = await live(name, version);
        draft.version = key.version;
        const at = ctx.now();
        checkUsable(key, 'release', Math.floor(at.getTime() / 1000));
        if (!key.attributes.exportable || !key.releasePolicy) throw fail('release.not_exportable', `Key ${name} is not exportable and cannot be released.`, { name });
        const trusted = [ctx.baseUrl(), ...ctx.config.trustedAuthorities, ...(await store.authorities())];
        const token = await verifyTargetToken(b.target, { trustedAuthorities: trusted, getJwks, at });
        // Simulated and real trust never mix: whoever signed it, a token that says it comes from a
        // simulated TEE releases nothing on a server that does not itself run with --simulate.
        if (token.claims['x-conclave-simulated'] !== undefined && !deps.simulate) {
          throw fail('release.token_invalid', 'target attestation token rejected: it comes from simulated evidence (x-conclave-simulated), which this vault does not trust because it runs without --simulate', { reason: 'simulated', issuer: token.issuer });
        }
        draft.detail.issuer = token.issuer;
        if (typeof token.claims.jti === 'string') draft.detail.jti = token.claims.jti;
        draft.detail.claimsSha256 = createHash('sha256').update(canonicalJson(token.claims)).digest('hex');
        const policy = parseReleasePolicy(key.releasePolicy.json);
        draft.detail.policyHash = releasePolicyHash(policy);
        const decision = evaluateReleasePolicy(policy, token.claims, token.issuer);
        draft.detail.trace = decision.trace;
        if (!decision.released) {
          const explanation = explainDecision(decision);
          draft.detail.explanation = explanation;
          throw fail('release.policy_unsatisfied', `Target environment attestation statement does not satisfy the key release policy: ${explanation}`, { failures: decision.failures });
        }
        const wrapping = findWrappingKey(token.claims);
        const keyHsm = await protector.releaseWrapped(refOf(key), wrapping.key, enc, wrapping.kid !== undefined ? { kid: wrapping.kid } : {});
        const requested = keyId(base(), name, version);
        const jwk = { ...publicKeyWire(base(), key), key_hsm: keyHsm } as { kid: string; kty: string; key_hsm: string };
        const value = await buildReleaseResponse(
          {
            apiVersion,
            enc,
            kid: requested,
            ...(typeof b.nonce === 'string' ? { nonce: b.nonce } : {}),
            keyJwk: jwk,
            attributes: { ...attributesWire(key.attributes), ...(familyOf(key.kty) === 'RSA' && key.keySize ? { key_size: key.keySize } : {}) },
            releasePolicy: releasePolicyWire(key.releasePolicy),
          },
          await releaseSigner(),
        );
        draft.detail.enc = enc;
        return { value };
      });
    },

    // ── administration (bootstrap administrator only) ──
    async listAssignments() {
      return store.listAssignments();
    },
    async assign(p: Principal, body: unknown): Promise<RoleAssignment> {
      const b = (body ?? {}) as Record<string, unknown>;
      if (typeof b.principalId !== 'string' || b.principalId.length === 0) throw fail('request.invalid', 'principalId is required', { field: 'principalId' });
      const role = parseRoleName(b.role);
      const scope = parseScope(b.scope);
      const a: RoleAssignment = { id: randomUUID(), principalId: b.principalId, role, scope, createdAt: nowSeconds() };
      return store.addAssignment(a, { time: ctx.now().toISOString(), principal: p.id, operation: 'roleAssign', result: 'success', status: 200, detail: { principalId: a.principalId, role, scope } });
    },
    async unassign(p: Principal, id: string): Promise<void> {
      if (!(await store.removeAssignment(id, { time: ctx.now().toISOString(), principal: p.id, operation: 'roleRemove', result: 'success', status: 204, detail: { id } }))) {
        throw fail('request.not_found', `no role assignment ${id}`);
      }
    },
    async authorities() {
      return { authorities: await store.authorities(), builtin: [ctx.baseUrl(), ...ctx.config.trustedAuthorities] };
    },
    async setAuthorities(p: Principal, body: unknown) {
      const list = (body as { authorities?: unknown } | undefined)?.authorities;
      if (!Array.isArray(list)) throw fail('request.invalid', 'authorities must be an array of https URLs', { field: 'authorities' });
      for (const a of list) {
        let ok = false;
        try {
          ok = typeof a === 'string' && new URL(a).protocol === 'https:';
        } catch {
          ok = false;
        }
        if (!ok) throw fail('request.invalid', `authority ${JSON.stringify(a)} is not an https URL`, { field: 'authorities' });
      }
      const clean = (list as string[]).map((a) => a.replace(/\/+$/, ''));
      await store.setAuthorities(clean, nowSeconds(), { time: ctx.now().toISOString(), principal: p.id, operation: 'setAuthorities', result: 'success', status: 200, detail: { authorities: clean } });
      return this.authorities();
    },
  };
}

export type VaultService = ReturnType<typeof createVaultService>;
