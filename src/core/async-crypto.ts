/**
 * Signatures off the event loop. node:crypto's one-shot `sign` and `verify` run on libuv's threadpool
 * when given a callback (the event loop spends about 15 µs handing the job over instead of the ~300 µs
 * an RSA-2048 signature costs), so a server signing every answer keeps its event loop for I/O and uses
 * every core. The pool has max(4, cores) threads (set at start-up, src/cli/run.ts).
 */
import { type KeyObject, type SignKeyObjectInput, type SignPrivateKeyInput, type VerifyKeyObjectInput, sign, verify } from 'node:crypto';

/** `crypto.sign(algorithm, data, key)` on the threadpool. */
export function signAsync(algorithm: string | null, data: Uint8Array, key: KeyObject | SignKeyObjectInput | SignPrivateKeyInput): Promise<Buffer> {
  return new Promise((resolve, reject) => sign(algorithm, data, key, (err, signature) => (err ? reject(err) : resolve(signature))));
}

/** `crypto.verify(algorithm, data, key, signature)` on the threadpool. */
export function verifyAsync(algorithm: string | null, data: Uint8Array, key: KeyObject | VerifyKeyObjectInput, signature: Uint8Array): Promise<boolean> {
  return new Promise((resolve, reject) => verify(algorithm, data, key, signature, (err, ok) => (err ? reject(err) : resolve(ok))));
}
