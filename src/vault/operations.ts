/**
 * The key operations of the AKV keys API that use key material: encrypt/decrypt/wrapKey/unwrapKey,
 * sign/verify, random bytes, and Secure Key Release (skr-maa-protocol.md §1.5, §2.3). The material stays
 * behind the KeyProtector port.
 */
import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { fail } from '../core/errors.js';
import { type ApiVersion, requireFeature } from './api-version.js';
import { canonicalJson } from './audit.js';
import { auditedText, finish, keyNotFound, refOf, type VaultCore } from './core.js';
import { attributesWire, checkOperationPermitted, checkUsable, familyOf, type KeyOperation, type KeyVersion, keyId, publicKeyWire, releasePolicyWire } from './key.js';
import { type CipherRequest, type EmbeddingDocument, ENCRYPTION_ALGORITHMS, type EncryptionAlgorithm, SIGNATURE_ALGORITHMS, type SignatureAlgorithm } from './ports.js';
import {
  authoritiesMatch,
  buildReleaseResponse,
  type CompactJws,
  compileReleasePolicy,
  DEFAULT_KEY_TRANSFER_ENC,
  decideRelease,
  encodedHeader,
  explainDecision,
  isKeyTransferEnc,
  type KeyTransferEnc,
  type ReleaseAnswer,
  type ReleaseRequestInput,
  type ReleaseSigner,
  releaseKeyAround,
  releasePayloadAroundKey,
  verifyTargetToken,
  wrappingKeyOf,
} from './release/index.js';
import type { Principal } from './roles.js';
import type { TargetToken, TraceNode } from './release/index.js';
import { b64url } from '../core/bytes.js';
import type { Verified } from '../core/verified.js';

function b64(v: unknown, field: string, required: boolean): Uint8Array | undefined {
  if (v === undefined || v === null) {
    if (required) throw fail('request.invalid', `${field} is required`, { field });
    return undefined;
  }
  if (typeof v !== 'string' || !/^[A-Za-z0-9_\-+/]*={0,2}$/.test(v)) throw fail('request.invalid', `${field} must be base64url`, { field });
  return new Uint8Array(Buffer.from(v, 'base64url'));
}

const u = b64url;
/** A release decided again, under the release policy in force when its record committed (confirmRelease). */
interface Redecision {
  readonly policyHash: string;
  readonly trace: unknown;
}
/** A denied release records the token's claims up to this size (canonical JSON characters). */
const MAX_AUDITED_CLAIMS_CHARS = 32 * 1024;
/** A release record's trace keeps each claim's and condition's value up to this size (JSON characters), and its explanation up to 4 times that. */
const MAX_AUDITED_CLAIM_VALUE_CHARS = 1024;

/** A trace node's value whose JSON is longer than {@link MAX_AUDITED_CLAIM_VALUE_CHARS}: that JSON cut, its length noted; otherwise undefined (kept as it is). */
function cutValue(v: unknown): string | undefined {
  const json = v === undefined ? undefined : JSON.stringify(v);
  return json !== undefined && json.length > MAX_AUDITED_CLAIM_VALUE_CHARS ? auditedText(json, MAX_AUDITED_CLAIM_VALUE_CHARS) : undefined;
}

/**
 * A decision's trace as a release record keeps it: a TEE chooses some of its claims (x-ms-runtime is the workload's
 * own JSON), and a release policy has no size but the body's, so an actual or expected value whose JSON is longer
 * than {@link MAX_AUDITED_CLAIM_VALUE_CHARS} is kept as that JSON cut, its length noted, as the claims themselves are
 * kept only up to {@link MAX_AUDITED_CLAIMS_CHARS} (the policy is named whole by its hash).
 */
function auditedTrace(node: TraceNode): TraceNode {
  const actual = cutValue(node.actual);
  const expected = cutValue(node.expected);
  return {
    ...node,
    ...(actual !== undefined ? { actual } : {}),
    ...(expected !== undefined ? { expected } : {}),
    ...(node.children ? { children: node.children.map(auditedTrace) } : {}),
  };
}

const ENCRYPTION_NAMES = new Set<string>(ENCRYPTION_ALGORITHMS);
const SIGNATURE_NAMES = new Set<string>(SIGNATURE_ALGORITHMS);

/**
 * A sign/verify alg, checked by name before it is recorded: the caller's string goes into the audit record
 * (append-only) and the answer, so an unknown one is cut to 64 characters there, as an encryption algorithm is.
 */
function signatureAlg(alg: string): SignatureAlgorithm {
  if (!SIGNATURE_NAMES.has(alg)) throw fail('key.invalid', `Unsupported signature algorithm ${alg.slice(0, 64)}`, { field: 'alg' });
  return alg as SignatureAlgorithm;
}
/** Key-wrap algorithms: for wrapKey/unwrapKey only (AES KW of JWA, and the PKCS#11 names Managed HSM accepts). */
const isWrapAlgorithm = (alg: string) => /KW$/.test(alg) || alg.startsWith('CKM_AES_KEY_WRAP');

export function createKeyOperations(core: VaultCore) {
  const { store, protector, perform, live, nowSeconds } = core;
  const { deps } = core;
  const base = () => deps.baseUrl();
  let signer: Promise<ReleaseSigner> | undefined;
  /** The signer once made (the release that finds it signs in the wrap's job, below). */
  let signerMade: ReleaseSigner | undefined;

  function releaseSigner(): Promise<ReleaseSigner> {
    // Remembered once made: every release asks for it, and nothing below depends on the request.
    if (signer !== undefined) return signer;
    // The certificate names the vault host (SAN), so a client can check that the release was signed
    // for the vault it asked; one key per host, as a vault answering under two names has two identities.
    const host = new URL(deps.baseUrl()).hostname.replace(/^\[|\]$/g, '');
    const subject = `${deps.baseUrl()} key release`;
    const made = deps.releaseKey(subject, host).then(
      (k): ReleaseSigner => ({ sign: (data: Uint8Array) => k.sign(data), certificateChainDer: k.chainDer ?? [k.certDer], ...(k.alg ? { alg: k.alg } : {}), ...(k.privateKey ? { privateKey: k.privateKey } : {}) }),
    );
    signer = made;
    made.then(
      (s) => {
        if (signer === made) signerMade = s;
      },
      // A signer that could not be made is asked for again by the next release.
      () => {
        if (signer === made) signer = undefined;
      },
    );
    return made;
  }

  /** The key bundle of a release (attributes with key_size for RSA, public JWK, policy) as {@link buildReleaseResponse} takes it. */
  function releasedKeyOf(key: KeyVersion, api: ApiVersion) {
    const view = core.view(api);
    return {
      attributes: { ...attributesWire(view, key.attributes, key.provider), ...(familyOf(key.kty) === 'RSA' && key.keySize ? { key_size: key.keySize } : {}) },
      keyJwk: publicKeyWire(view.baseUrl, key) as { kid: string; kty: string },
      releasePolicy: releasePolicyWire(key.releasePolicy!),
    };
  }

  /**
   * The payload text of a release after its request, around key_hsm, per key version as the store hands
   * it out (deep-frozen, and the same object while its row stands still; a changed row is another object)
   * and per view (base URL, API version, soft-delete settings): the same text releasedKeyOf gives, made
   * once instead of on every release.
   */
  const keyTexts = new WeakMap<KeyVersion, { readonly view: string; readonly around: readonly [string, string] }>();

  function keyTextOf(key: KeyVersion, api: ApiVersion): readonly [string, string] {
    const v = core.view(api);
    const view = `${v.baseUrl}\n${api.value}\n${v.recoverableDays}\n${v.purgeProtection}`;
    const known = keyTexts.get(key);
    if (known !== undefined && known.view === view) return known.around;
    const around = releaseKeyAround(releasedKeyOf(key, api));
    if (Object.isFrozen(key)) keyTexts.set(key, { view, around });
    return around;
  }

  /**
   * A software key's wrap and the response signature in one job (KeyProtector.releaseWrappedSigned), once
   * the signer is made and its key is a node:crypto key; undefined where not, and the caller wraps and
   * signs apart (as it does for the first release, whose record must come before the signer is made).
   */
  function wrapAndSign(
    key: KeyVersion,
    api: ApiVersion,
    wrappingKey: KeyObject,
    enc: KeyTransferEnc,
    wrapOpts: { kid?: string },
    request: ReleaseRequestInput,
  ): Promise<string | undefined> | undefined {
    const s = signerMade;
    if (s?.privateKey === undefined || protector.releaseWrappedSigned === undefined) return undefined;
    let document: EmbeddingDocument;
    try {
      document = { header: encodedHeader(s), around: releasePayloadAroundKey(request, keyTextOf(key, api)), key: s.privateKey, alg: s.alg ?? 'RS256' };
    } catch {
      // (An empty certificate chain, say): the steps apart fail as they always did.
      return undefined;
    }
    return protector.releaseWrappedSigned(refOf(key), wrappingKey, enc, wrapOpts, document);
  }

  /**
   * The terms a release was decided by, read again once its record committed (the release's commit
   * point): the caller's role, the key version live, usable and exportable under the same release
   * policy, the token's authority still trusted. Its first reads and its decision take a while (the
   * authority's JWKS may be fetched), and another request or replica may revoke any of these in that
   * time and be told it is done; a read that starts after the record committed sees every change
   * committed before it, so a release whose terms were revoked before it committed sends nothing.
   */
  async function confirmRelease(p: Principal, asked: string, key: KeyVersion, token: Verified<TargetToken>): Promise<Redecision | undefined> {
    const builtIn = [deps.baseUrl(), ...deps.trustedAuthorities].some((a) => authoritiesMatch(a, token.authority));
    const [, fresh, stored] = await Promise.all([core.authorize(p, 'release', asked), store.liveVersion(key.name, key.version), builtIn ? undefined : store.authorities()]);
    if (!fresh) throw keyNotFound(asked, key.version);
    checkUsable(fresh, 'release', nowSeconds());
    if (!fresh.attributes.exportable || !fresh.releasePolicy) throw fail('release.not_exportable', `Key ${fresh.name} is not exportable and cannot be released.`, { name: fresh.name });
    let redecision: Redecision | undefined;
    if (fresh.releasePolicy.json !== key.releasePolicy?.json) {
      // The policy changed meanwhile: the one in force now decides too (a change that still admits this
      // token, as most edits do, leaves the release alone, and its own record names that policy).
      const compiled = compileReleasePolicy(fresh.releasePolicy.json);
      const decision = decideRelease(compiled.policy, token);
      if (!decision.released) {
        throw fail('release.policy_unsatisfied', `Target environment attestation statement does not satisfy the key release policy, which changed while this release was decided: ${explainDecision(decision)}`, { failures: decision.failures });
      }
      redecision = { policyHash: compiled.hash, trace: auditedTrace(decision.trace) };
    }
    if (stored !== undefined && !stored.some((a) => authoritiesMatch(a, token.authority))) {
      throw fail('release.token_invalid', `target attestation token rejected: its authority ${token.authority} is no longer trusted`, { reason: 'untrusted_issuer', issuer: token.issuer });
    }
    return redecision;
  }

  return {
    async cipher(p: Principal, name: string, version: string | undefined, op: 'encrypt' | 'decrypt' | 'wrapKey' | 'unwrapKey', body: unknown) {
      return perform(p, op, op, { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.alg !== 'string') throw fail('request.invalid', 'alg is required', { field: 'alg' });
        const key = await live(name, version, draft);
        draft.version = key.version;
        if (!ENCRYPTION_NAMES.has(b.alg)) throw fail('key.invalid', `Unknown encryption algorithm ${JSON.stringify(b.alg.slice(0, 64))}`, { field: 'alg' });
        checkUsable(key, op, nowSeconds());
        checkOperationPermitted(key, op as KeyOperation);
        const iv = b64(b.iv, 'iv', false);
        const aad = b64(b.aad, 'aad', false);
        const tag = b64(b.tag, 'tag', false);
        const req: CipherRequest = { alg: b.alg as EncryptionAlgorithm, value: b64(b.value, 'value', true)!, ...(iv ? { iv } : {}), ...(aad ? { aad } : {}), ...(tag ? { tag } : {}) };
        draft.detail.alg = b.alg;
        if ((op === 'wrapKey' || op === 'unwrapKey') && /GCM|CBC/.test(b.alg)) throw fail('key.invalid', `Algorithm ${b.alg} is not a key-wrap algorithm`, { field: 'alg' });
        if ((op === 'encrypt' || op === 'decrypt') && isWrapAlgorithm(b.alg)) throw fail('key.invalid', `Algorithm ${b.alg} is for wrapKey/unwrapKey only`, { field: 'alg' });
        // GCM's nonce is the service's (NIST SP 800-38D §8): an encrypt under a caller's iv, reused, returns the
        // keystream of another ciphertext under that iv, so anyone allowed encrypt could read every A*GCM plaintext.
        // Only the whole 128-bit tag the service returns authenticates (a truncated one would be checked as far as it goes).
        if (op === 'decrypt' && b.alg.endsWith('GCM') && tag && tag.length !== 16) throw fail('key.invalid', `${b.alg} decryption needs the 16-byte authentication tag`, { field: 'tag' });
        if (op === 'encrypt' && b.alg.endsWith('GCM') && iv) throw fail('key.invalid', `${b.alg} encryption takes no iv: the service chooses a fresh one and returns it`, { field: 'iv' });
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
      return perform(p, 'sign', 'sign', { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.alg !== 'string') throw fail('request.invalid', 'alg is required', { field: 'alg' });
        const key = await live(name, version, draft);
        draft.version = key.version;
        const alg = signatureAlg(b.alg);
        draft.detail.alg = alg;
        checkUsable(key, 'sign', nowSeconds());
        checkOperationPermitted(key, 'sign');
        const sig = await protector.sign(refOf(key), alg, b64(b.value, 'value', true)!);
        return { kid: keyId(base(), key.name, key.version), value: u(sig) };
      });
    },

    async verify(p: Principal, name: string, version: string | undefined, body: unknown) {
      return perform(p, 'verify', 'verify', { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.alg !== 'string') throw fail('request.invalid', 'alg is required', { field: 'alg' });
        const key = await live(name, version, draft);
        draft.version = key.version;
        const alg = signatureAlg(b.alg);
        draft.detail.alg = alg;
        checkUsable(key, 'verify', nowSeconds());
        checkOperationPermitted(key, 'verify');
        const ok = await protector.verify(refOf(key), alg, b64(b.digest, 'digest', true)!, b64(b.value, 'value', true)!);
        return { value: ok };
      });
    },

    async random(p: Principal, api: ApiVersion, body: unknown) {
      requireFeature(api, 'mhsm', 'getRandomBytes');
      return perform(p, 'rng', 'rng', {}, async () => {
        const count = (body as { count?: unknown } | undefined)?.count;
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 128) throw fail('request.invalid', 'count must be an integer from 1 to 128', { field: 'count' });
        return { value: u(randomBytes(count)) };
      });
    },

    /** Secure Key Release (skr-maa-protocol.md §1.5, §2.3). */
    async release(p: Principal, api: ApiVersion, name: string, version: string | undefined, body: unknown) {
      requireFeature(api, 'release', 'release');
      return perform(p, 'release', 'release', { name, ...(version ? { version } : {}) }, async (draft) => {
        const b = (body ?? {}) as Record<string, unknown>;
        if (typeof b.target !== 'string' || b.target.length === 0) throw fail('request.invalid', 'target (the attestation token) is required', { field: 'target' });
        if (b.nonce !== undefined && b.nonce !== null && typeof b.nonce !== 'string') throw fail('request.invalid', 'nonce must be a string', { field: 'nonce' });
        if (b.enc !== undefined && b.enc !== null && !isKeyTransferEnc(b.enc)) throw fail('request.invalid', 'enc must be one of CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384', { field: 'enc' });
        const enc: KeyTransferEnc = (b.enc as KeyTransferEnc | undefined) ?? DEFAULT_KEY_TRANSFER_ENC;
        const key = await live(name, version, draft);
        draft.version = key.version;
        const at = deps.now();
        checkUsable(key, 'release', Math.floor(at.getTime() / 1000));
        if (!key.attributes.exportable || !key.releasePolicy) throw fail('release.not_exportable', `Key ${key.name} is not exportable and cannot be released.`, { name: key.name });
        const trusted = [deps.baseUrl(), ...deps.trustedAuthorities, ...(await store.authorities())];
        const token = await verifyTargetToken(b.target, { trustedAuthorities: trusted, getJwks: deps.getJwks, at });
        // Simulated and real trust never mix: whoever signed it, a token that says it comes from a
        // simulated TEE releases nothing on a server that does not itself run with --simulate.
        if (token.claims['x-conclave-simulated'] !== undefined && !deps.simulate) {
          throw fail('release.token_invalid', 'target attestation token rejected: it comes from simulated evidence (x-conclave-simulated), which this vault does not trust because it runs without --simulate', { reason: 'simulated', issuer: token.issuer });
        }
        draft.detail.issuer = token.issuer;
        if (typeof token.claims.jti === 'string') draft.detail.jti = token.claims.jti;
        const claimsJson = canonicalJson(token.claims);
        draft.detail.claimsSha256 = createHash('sha256').update(claimsJson).digest('hex');
        const { policy, hash } = compileReleasePolicy(key.releasePolicy.json);
        draft.detail.policyHash = hash;
        const decision = decideRelease(policy, token);
        draft.detail.trace = auditedTrace(decision.trace);
        if (!decision.released) {
          const explanation = explainDecision(decision);
          draft.detail.explanation = auditedText(explanation, 4 * MAX_AUDITED_CLAIM_VALUE_CHARS);
          // The token's claims, so whoever reads the denial (conclave audit, the console) sees what the TEE presented;
          // they are the TEE's own statements (no secret), kept only up to a size a log entry should carry.
          if (claimsJson.length <= MAX_AUDITED_CLAIMS_CHARS) draft.detail.claims = token.claims;
          else draft.detail.claimsOmitted = { chars: claimsJson.length };
          throw fail('release.policy_unsatisfied', `Target environment attestation statement does not satisfy the key release policy: ${explanation}`, { failures: decision.failures });
        }
        const wrapping = wrappingKeyOf(token);
        const wrapOpts = wrapping.kid !== undefined ? { kid: wrapping.kid } : {};
        const wrap = () => protector.releaseWrapped(refOf(key), wrapping.key, enc, wrapOpts);
        // A PKCS#11 token may refuse the requested enc (hsm.mechanism_unsupported, a 400 the caller can act
        // on): such a key is wrapped before its record is written, so a refused release leaves no success
        // record. The software provider's wrap fails only on a fault of this server (sealed bytes that do
        // not open), so a software key is wrapped while its record is committed (below).
        let keyHsm = key.provider === 'software' ? undefined : await wrap();
        // A software key's wrap is handed to the wrap worker first, so OAEP and AES-KWP run there while this
        // thread writes the record below (its canonical JSON, leaf hash and INSERT), not after it. Its
        // outcome is awaited only after the record was queued, so a failed wrap still leaves the record
        // and the failure record naming it, as before.
        const request: ReleaseRequestInput = { apiVersion: api.value, enc, kid: keyId(base(), name, version), ...(typeof b.nonce === 'string' ? { nonce: b.nonce } : {}) };
        // Where the signer's key is a node:crypto key (not a token's), the wrap worker signs the response in
        // the wrap's job (one hand-over and one wake-up of this thread instead of two of each); the same
        // JWS bytes the steps below make (release-jws.ts). Where it cannot, the steps below run as they are.
        const signedJob = keyHsm === undefined ? wrapAndSign(key, api, wrapping.key, enc, wrapOpts, request) : undefined;
        const wrapJob = keyHsm === undefined && signedJob === undefined ? wrap() : undefined;
        // Handled now (awaited below): a failed wrap must not count as unhandled while the record is written.
        wrapJob?.catch(() => undefined);
        signedJob?.catch(() => undefined);
        draft.detail.enc = enc;
        // The success record is stored before the key leaves; its leaf hash goes back with the key so the
        // TEE can fetch (and check) its inclusion proof (docs/audit.md). Everything it records is known once
        // the policy released and the wrapping key was chosen, so its group commit and flush start now and
        // run while the key is wrapped (wrap worker) and the response signed (threadpool): the answer waits
        // for all of them, so the record is durable before the key leaves, and the waits overlap instead of
        // adding up (the flush, ≈ 3–4 ms on the reference VM, is the longest).
        const logged = store.audit(finish(draft));
        // Handled now (awaited below): a failed append must not count as unhandled while the key is wrapped and signed.
        logged.catch(() => undefined);
        // Once the record committed, its terms are read again (while the key is wrapped and the answer signed).
        const confirmed = logged.then(() => confirmRelease(p, name, key, token));
        confirmed.catch(() => undefined);
        let value: CompactJws | undefined;
        let wrapped = keyHsm !== undefined;
        try {
          // The wrap worker's JWS, or (no worker, or it failed there) the wrap and the signature apart.
          value = signedJob === undefined ? undefined : ((await signedJob) as CompactJws | undefined);
          if (value === undefined) {
            keyHsm ??= await (wrapJob ?? wrap());
            wrapped = true;
            const released = releasedKeyOf(key, api);
            value = await buildReleaseResponse({ ...request, ...released, keyJwk: { ...released.keyJwk, key_hsm: keyHsm } }, await releaseSigner());
          }
        } catch (e) {
          // The key did not leave, but its success record may be stored already: the failure record that
          // perform() appends names it, so the log tells both.
          const stored = await logged.then(
            (l) => l.leafHash,
            () => undefined,
          );
          if (stored !== undefined) draft.detail.notSent = { leafHash: stored, reason: `${wrapped ? 'the response signature' : 'the key wrap'} failed after the release record was stored; the key was not sent` };
          throw e;
        }
        const log = await logged;
        let redecision: Redecision | undefined;
        try {
          redecision = await confirmed;
        } catch (e) {
          draft.detail.notSent = { leafHash: log.leafHash, reason: 'the release was revoked (its role, key, release policy or authority) before its record committed; the key was not sent' };
          throw e;
        }
        if (redecision !== undefined) {
          // Its success record names the policy it was first decided by, which was no longer in force when
          // it committed: a record of its own, naming that one, names the policy in force that admitted it,
          // stored before the key leaves (a release policy is no secret; its hash and trace are recorded).
          try {
            await store.audit({
              time: deps.now().toISOString(),
              principal: p.id,
              operation: 'releaseRedecided',
              key: key.name,
              version: key.version,
              result: 'success',
              status: 200,
              detail: {
                redecided: { leafHash: log.leafHash, reason: 'the release policy changed while this release was decided; the policy in force when its record committed decided again and admitted it' },
                policyHash: redecision.policyHash,
                trace: redecision.trace,
              },
            });
          } catch (e) {
            draft.detail.notSent = { leafHash: log.leafHash, reason: 'the record of its decision under the changed release policy could not be stored; the key was not sent' };
            throw e;
          }
        }
        const answer: ReleaseAnswer = { value, 'x-conclave-log': { leafHash: log.leafHash, entry: log.entry } };
        return answer;
      }, true);
    },
  };
}
