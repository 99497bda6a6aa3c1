/**
 * Signature checks of a synchronous verifier, run either at once or on the libuv threadpool. A verifier
 * written against {@link SignatureCheck} checks each signature where its check order puts it; run under
 * {@link checkSignaturesOffLoop}, every other check runs first with the signatures pending (in parallel on
 * the threadpool), and the outcome is the synchronous one: the first failing check in the verifier's
 * order, a signature that fails before a failing check being the one named.
 */
import { type KeyObject, type VerifyKeyObjectInput, verify as cryptoVerify } from 'node:crypto';
import type { ConclaveError } from './errors.js';

export interface SignatureJob {
  /** The digest (`sha256`, `sha384`), as node:crypto's `verify` takes it. */
  readonly algorithm: string;
  readonly data: Uint8Array;
  readonly key: KeyObject | VerifyKeyObjectInput;
  readonly signature: Uint8Array;
  /** The error the verifier throws when this signature does not verify. */
  readonly fails: () => ConclaveError;
}

/** Checks one signature: throws `job.fails()` when it does not verify (at once, or once it is known). */
export type SignatureCheck = (job: SignatureJob) => void;

function verifiesNow(job: SignatureJob): boolean {
  try {
    return cryptoVerify(job.algorithm, job.data, job.key, job.signature);
  } catch {
    return false;
  }
}

/** Checks each signature when the verifier reaches it, on the calling thread. */
export const checkSignatureNow: SignatureCheck = (job) => {
  if (!verifiesNow(job)) throw job.fails();
};

function verifiesOnPool(job: SignatureJob): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      // node:crypto copies `data` and `signature` for the threadpool job.
      cryptoVerify(job.algorithm, job.data, job.key, job.signature, (err, ok) => resolve(!err && ok === true));
    } catch {
      resolve(false);
    }
  });
}

/**
 * Runs `verifier` (synchronous) with its signature checks handed to the threadpool, then awaits them:
 * resolves with the verifier's result when every signature verifies, else rejects with the error of the
 * first check in the verifier's order that failed (a signature, or the check it threw at).
 */
export async function checkSignaturesOffLoop<T>(verifier: (check: SignatureCheck) => T): Promise<T> {
  const pending: { ok: Promise<boolean>; fails: () => ConclaveError }[] = [];
  let result: T | undefined;
  let threw = false;
  let failure: unknown;
  try {
    result = verifier((job) => {
      pending.push({ ok: verifiesOnPool(job), fails: job.fails });
    });
  } catch (e) {
    threw = true;
    failure = e;
  }
  const oks = await Promise.all(pending.map((p) => p.ok));
  const bad = oks.indexOf(false);
  if (bad >= 0) throw pending[bad]!.fails();
  if (threw) throw failure;
  return result as T;
}
