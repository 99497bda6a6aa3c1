/**
 * The software key transfer wrap off the event loop: the same OpenSSL calls as {@link wrapWithNodeCrypto}
 * (a fresh AES-256 KEK from the CSPRNG, RSA-OAEP of it under the wrapping key, RFC 5649 AES-KWP of the
 * key material under it, through node:crypto), run on one worker thread of the process.
 *
 * Why: OpenSSL 3.0 runs AES-KWP with its table-based AES (no AES-NI for the wrap mode), about 140 µs
 * for an RSA-2048 private key, and node:crypto has no asynchronous form of a cipher or of publicEncrypt,
 * so on the event loop it is about a sixth of a release's event-loop time. Through the worker the event
 * loop pays the message there and back (copying the material into a buffer that is transferred, not
 * copied again, and zeroed by the worker after use; the KEK never leaves the worker, which zeroes it).
 *
 * Outcomes are the synchronous function's: a failure in the worker (a wrapping key OAEP cannot use, say)
 * is answered by running {@link wrapWithNodeCrypto} on the calling thread, which throws what it always
 * threw; a worker that cannot start, or dies, leaves the wrap to the calling thread as before.
 */
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { fail } from '../core/errors.js';
import { OAEP_HASH, wrapWithNodeCrypto } from '../vault/release/key-transfer.js';
import type { KeyTransferEnc, WrappedKeyParts } from '../vault/release/ports.js';

/** Plain JavaScript, node built-ins only, so it runs without the TypeScript loader. */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { constants, createCipheriv, publicEncrypt, randomBytes } = require('node:crypto');
const KWP_AIV = Buffer.from('A65959A6', 'hex');
parentPort.on('message', (m) => {
  const material = new Uint8Array(m.material);
  const kek = randomBytes(32);
  try {
    const wrappedKek = publicEncrypt({ key: m.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: m.hash }, kek);
    const cipher = createCipheriv('id-aes256-wrap-pad', kek, KWP_AIV);
    const head = cipher.update(material);
    const tail = cipher.final();
    const out = new Uint8Array(wrappedKek.length + head.length + tail.length);
    out.set(wrappedKek, 0);
    out.set(head, wrappedKek.length);
    out.set(tail, wrappedKek.length + head.length);
    parentPort.postMessage({ id: m.id, out: out.buffer, kekLength: wrappedKek.length }, [out.buffer]);
  } catch {
    parentPort.postMessage({ id: m.id, failed: true });
  } finally {
    kek.fill(0);
    material.fill(0);
  }
});
`;

/** A running worker and the wraps waiting for it (id → resolve: parts, or undefined for "run it here"). */
interface WrapWorker {
  readonly thread: Worker;
  readonly pending: Map<number, (parts: WrappedKeyParts | undefined) => void>;
}

let current: WrapWorker | undefined;
/** Set when a worker could not be started: every wrap then runs on the calling thread. */
let unavailable = false;
let nextId = 0;
/** Wraps the worker answered (tests: that the wrap did leave the calling thread). */
let wrappedOnWorker = 0;

/** Answers every wrap waiting for `w` with "run it here": the worker is gone. */
function abandon(w: WrapWorker): void {
  if (current === w) current = undefined;
  const waiting = [...w.pending.values()];
  w.pending.clear();
  for (const resolve of waiting) resolve(undefined);
}

function start(): WrapWorker | undefined {
  if (current) return current;
  if (unavailable) return undefined;
  let thread: Worker;
  try {
    // No loader flags (the source is plain JavaScript); its stdout and stderr are its own, unused.
    thread = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: true, stderr: true });
  } catch {
    unavailable = true;
    return undefined;
  }
  const w: WrapWorker = { thread, pending: new Map() };
  thread.on('message', (m: { id: number; out?: ArrayBuffer; kekLength?: number; failed?: true }) => {
    const resolve = w.pending.get(m.id);
    if (!resolve) return;
    w.pending.delete(m.id);
    if (w.pending.size === 0) thread.unref();
    if (m.failed || !m.out || m.kekLength === undefined) return resolve(undefined);
    const out = new Uint8Array(m.out);
    wrappedOnWorker++;
    resolve({ wrappedKek: out.subarray(0, m.kekLength), wrappedKey: out.subarray(m.kekLength) });
  });
  thread.on('error', () => abandon(w));
  thread.on('exit', () => abandon(w));
  // The worker keeps the process alive only while a wrap waits for it.
  thread.unref();
  current = w;
  return w;
}

/**
 * {@link wrapWithNodeCrypto} on the wrap worker: the same parts (a fresh KEK each call), the same
 * errors. `material` is copied, never retained; the caller still zeroes its own copy.
 */
export async function wrapOffThread(material: Uint8Array, wrappingKey: KeyObject, enc: KeyTransferEnc): Promise<WrappedKeyParts> {
  if (material.byteLength === 0) throw fail('key.invalid', 'empty key material cannot be transferred');
  const w = start();
  let parts: WrappedKeyParts | undefined;
  if (w) {
    const copy = new Uint8Array(material);
    const id = nextId++;
    parts = await new Promise<WrappedKeyParts | undefined>((resolve) => {
      w.pending.set(id, resolve);
      if (w.pending.size === 1) w.thread.ref();
      try {
        w.thread.postMessage({ id, material: copy.buffer, key: wrappingKey, hash: OAEP_HASH[enc] }, [copy.buffer]);
      } catch {
        w.pending.delete(id);
        copy.fill(0);
        resolve(undefined);
      }
    });
  }
  // Not wrapped there (no worker, or the wrap failed in it): here, with this thread's outcome.
  return parts ?? (wrapWithNodeCrypto(material, wrappingKey, enc) as WrappedKeyParts);
}

/** How many wraps the worker has answered in this process (tests). */
export function wrapsOnWorker(): number {
  return wrappedOnWorker;
}

/** Stops the wrap worker (tests); the next wrap starts another. */
export async function stopWrapWorker(): Promise<void> {
  const w = current;
  if (!w) return;
  abandon(w);
  await w.thread.terminate();
}
