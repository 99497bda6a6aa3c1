import { createHash } from 'node:crypto';
import type { GpuEvidenceCollector } from './sources/nvidia-gpu.js';
import { attest } from './attest.js';
import type { Credential } from './credential.js';
import type { KeyObject } from 'node:crypto';
import { fail } from '../core/errors.js';
import type { CaInput } from './http.js';
import { checkReleaseEntry, type LogInclusion, verifyLogInclusion } from './log.js';
import { type ReleaseEnc, type ReleaseTrustOptions, type ReleasedKey, releaseKey } from './release.js';
import type { EvidenceSource, Tee } from './sources/types.js';
import { generateRsaKeyPair } from '../core/keygen.js';

/**
 * The runtime data of a release: `{"keys":[{"e","key_ops":["encrypt"],"kid","kty":"RSA","n"}]}` with
 * members in the order the SKR sidecar's JSON encoder writes them and kid = RFC 7638 thumbprint
 * (sidecar `pkg/common/crypto.go GenerateJWKSet`).
 */
export function wrappingJwks(publicJwk: { n: string; e: string }): { kid: string; json: string } {
  const kid = createHash('sha256').update(JSON.stringify({ e: publicJwk.e, kty: 'RSA', n: publicJwk.n })).digest('base64url');
  return { kid, json: JSON.stringify({ keys: [{ e: publicJwk.e, key_ops: ['encrypt'], kid, kty: 'RSA', n: publicJwk.n }] }) };
}

export interface AttestAndReleaseOptions extends ReleaseTrustOptions {
  readonly attestationUrl: string;
  readonly vaultUrl: string;
  readonly keyName: string;
  readonly version?: string;
  readonly source: EvidenceSource;
  readonly credential: Credential;
  readonly tee?: Tee;
  /** Composite CPU + GPU attestation: the host's GPUs (see {@link attest}). */
  readonly gpus?: GpuEvidenceCollector;
  readonly ca?: CaInput;
  readonly nonce?: string;
  readonly enc?: ReleaseEnc;
  /**
   * Hand out the key only once the release is proven to be in the vault's transparency log: its entry
   * names this key and token, and its inclusion proof verifies against a tree head signed by the log key
   * (docs/audit.md). Fails with `log.*` codes otherwise.
   */
  readonly requireInclusion?: boolean;
  /** The log key heads must be signed by (PEM or KeyObject); fetched from GET /log/key when unset. */
  readonly logKey?: string | KeyObject;
  /** How long to wait for the release to be sequenced (default 5000 ms). */
  readonly inclusionTimeoutMs?: number;
}

export interface AttestAndReleaseResult extends ReleasedKey {
  /** The attestation token that was presented to the vault. */
  readonly token: string;
  /** With `requireInclusion`: the verified inclusion of the release (keep `sth` to check the log grows consistently). */
  readonly inclusion?: LogInclusion;
}

/**
 * Secure key release end to end: a fresh RSA-2048 wrapping key per call (its private half never leaves
 * this function), its JWKS as runtime data, attestation, release, unwrap.
 */
export async function attestAndRelease(opts: AttestAndReleaseOptions): Promise<AttestAndReleaseResult> {
  const { privateKey, publicKey } = generateRsaKeyPair(2048);
  const pub = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
  const runtimeData = new Uint8Array(Buffer.from(wrappingJwks(pub).json, 'utf8'));
  // The workload key travels in runtime data (x-ms-runtime): the hardware evidence flow, not guest attestation.
  const token = await attest({
    azureGuest: false,
    attestationUrl: opts.attestationUrl,
    source: opts.source,
    runtimeData,
    runtimeDataType: 'JSON',
    ...(opts.tee ? { tee: opts.tee } : {}),
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    ...(opts.gpus ? { gpus: opts.gpus } : {}),
  });
  const released = await releaseKey({
    vaultUrl: opts.vaultUrl,
    keyName: opts.keyName,
    ...(opts.version ? { version: opts.version } : {}),
    token,
    credential: opts.credential,
    privateKey,
    ...(opts.trustStore !== undefined ? { trustStore: opts.trustStore } : {}),
    ...(opts.allowSelfSignedReleaseCert !== undefined ? { allowSelfSignedReleaseCert: opts.allowSelfSignedReleaseCert } : {}),
    ...(opts.at ? { at: opts.at } : {}),
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}),
    ...(opts.enc ? { enc: opts.enc } : {}),
  });
  if (!opts.requireInclusion) return { ...released, token };
  if (!released.log) throw fail('log.proof_invalid', 'the vault returned no transparency-log entry for the release', { keyName: opts.keyName });
  const version = released.jwk.kid?.split('/').at(-1);
  checkReleaseEntry(released.log, { keyName: opts.keyName, ...(version ? { version } : {}), token });
  const inclusion = await verifyLogInclusion(released.log.leafHash, {
    vaultUrl: opts.vaultUrl,
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    ...(opts.logKey !== undefined ? { logKey: opts.logKey } : {}),
    ...(opts.inclusionTimeoutMs !== undefined ? { timeoutMs: opts.inclusionTimeoutMs } : {}),
  });
  return { ...released, token, inclusion };
}
