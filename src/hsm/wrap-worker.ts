/**
 * The software key transfer wrap off the event loop: the same OpenSSL calls as {@link wrapWithNodeCrypto}
 * (a fresh AES-256 KEK from the CSPRNG, RSA-OAEP of it under the wrapping key, RFC 5649 AES-KWP of the
 * key material under it, through node:crypto), run on a worker thread of the process.
 *
 * Why: OpenSSL 3.0 runs AES-KWP with its table-based AES (no AES-NI for the wrap mode), about 140 µs
 * for an RSA-2048 private key, and node:crypto has no asynchronous form of a cipher or of publicEncrypt,
 * so on the event loop it is about a sixth of a release's event-loop time. Through the worker the event
 * loop pays the message there and back (copying the material into a buffer that is transferred, not
 * copied again, and zeroed by the worker after use; the KEK never leaves the worker, which zeroes it).
 *
 * A release whose response is signed with a node:crypto key is one job ({@link wrapAndSignOffThread}):
 * the wrap, `key_hsm` and the response's signature on the same worker, so the release hands work to
 * another thread and is woken once instead of twice (the signature otherwise goes to libuv's threadpool).
 * Since signatures run here too, up to one worker per core besides the event loop's (2 to 4) is started.
 *
 * The keys (the TEE's wrapping key, the vault's signing key) go to each worker once: a job names a key by
 * an id that stands for one KeyObject (a rotated or re-imported key is another object, so another id), and
 * carries it only where that worker does not hold it yet (a KeyObject cloned into a worker with every job
 * cost the worker a deserialisation and a native key handle made and freed per key per release). A worker
 * holds at most {@link KEYS_PER_WORKER}, and forgets a key the process let go of.
 *
 * Outcomes are the synchronous function's: a failure in the worker (a wrapping key OAEP cannot use, say)
 * is answered by running {@link wrapWithNodeCrypto} on the calling thread, which throws what it always
 * threw; a worker that cannot start, or dies, leaves the wrap to the calling thread as before.
 */
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fail } from '../core/errors.js';
import { OAEP_HASH, wrapWithNodeCrypto } from '../vault/release/key-transfer.js';
import type { KeyTransferEnc, WrappedKeyParts } from '../vault/release/ports.js';

/**
 * How far below the event loop's priority a wrap worker runs (its nice value above the process's, Linux).
 * The event loop is the one thread every release passes through twice (before and after its crypto), and
 * on two cores it shared them evenly with two busy workers: preempted about once per release, it waited
 * 0.25–0.8 ms per release for a core (HTTPS c4, /proc schedstat) while releases queued for it. A lower
 * priority lets the event loop take a core whenever it has work and leaves the workers every cycle it does
 * not use (the scheduler still runs them whenever a core is free), so the crypto fills the gaps instead of
 * delaying everything else. 5 (a third of the event loop's weight), not more: on a host shared with other
 * work the workers still get a fair part of the machine (bench/README.md, helper c4wait).
 */
const WORKER_NICE_STEP = 5;

/** Plain JavaScript, node built-ins only, so it runs without the TypeScript loader. */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { constants, createCipheriv, publicEncrypt, randomBytes, sign } = require('node:crypto');
// Below the event loop's priority (WORKER_NICE_STEP, see there); Linux, where a thread has its own nice
// value and /proc/thread-self names it. Elsewhere, or where it is refused, the worker runs as it is.
try {
  const { getPriority, setPriority } = require('node:os');
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.min(19, getPriority(tid) + ${WORKER_NICE_STEP}));
} catch {}
const KWP_AIV = Buffer.from('A65959A6', 'hex');
// The keys this worker was sent, by the id the event loop gave them (one id per KeyObject, never reused):
// a job names its keys by id and carries a key only the first time this worker gets it (see keyFor there).
const keys = new Map();
// The RSA-OAEP KEK and the AES-KWP of the material: [wrappedKek, head, tail].
function wrap(m, material, kek) {
  const key = keys.get(m.wrapKeyId);
  if (key === undefined) throw new Error('unknown wrapping key');
  const wrappedKek = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: m.hash }, kek);
  const cipher = createCipheriv('id-aes256-wrap-pad', kek, KWP_AIV);
  return [wrappedKek, cipher.update(material), cipher.final()];
}
// A signed document that embeds key_hsm (m.signed): the transfer blob's JSON is written around the
// ciphertext's base64url, the document's around key_hsm; the JWS signs header.base64url(document).
function signed(s, parts) {
  const key = keys.get(s.keyId);
  if (key === undefined) throw new Error('unknown signing key');
  const keyHsm = Buffer.from(s.blob[0] + Buffer.concat(parts).toString('base64url') + s.blob[1], 'utf8').toString('base64url');
  const input = s.header + '.' + Buffer.from(s.document[0] + keyHsm + s.document[1], 'utf8').toString('base64url');
  const signature = sign(s.hash, Buffer.from(input, 'ascii'), s.dsaEncoding === undefined ? key : { key, dsaEncoding: s.dsaEncoding });
  return input + '.' + signature.toString('base64url');
}
// A job (Job there): its keys by id, each with the key itself or null where this worker holds it already,
// and the ids to forget first; id -1 only forgets keys.
parentPort.on('message', (m) => {
  if (m.forget !== null) for (const id of m.forget) keys.delete(id);
  if (m.id < 0) return;
  // Held before anything can fail: the event loop counts them held once the job is posted.
  if (m.wrapKey !== null) keys.set(m.wrapKeyId, m.wrapKey);
  if (m.signed !== undefined && m.signed.key !== null) keys.set(m.signed.keyId, m.signed.key);
  const material = new Uint8Array(m.material);
  const kek = randomBytes(32);
  try {
    const parts = wrap(m, material, kek);
    if (m.signed !== undefined) {
      parentPort.postMessage({ id: m.id, jws: signed(m.signed, parts) });
      return;
    }
    const [wrappedKek, head, tail] = parts;
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

/**
 * A job as the worker gets it: each key by its id ({@link keyIdOf}), with the KeyObject itself or null where
 * that worker holds it already; `forget`, the ids it drops first (or null).
 */
interface Job {
  readonly id: number;
  readonly material: ArrayBuffer;
  readonly hash: string;
  readonly wrapKeyId: number;
  readonly wrapKey: KeyObject | null;
  readonly forget: readonly number[] | null;
  readonly signed?: Omit<SignedDocumentJob, 'key'> & { readonly keyId: number; readonly key: KeyObject | null };
}

/** A message that only makes a worker forget keys (a key the process let go of). */
interface Forget {
  readonly id: -1;
  readonly forget: readonly number[];
}

/** What the worker answers: the wrapped parts, or the signed document's JWS. */
interface Answer {
  readonly id: number;
  readonly out?: ArrayBuffer;
  readonly kekLength?: number;
  readonly jws?: string;
  readonly failed?: true;
}

/**
 * A running worker, the jobs waiting for it (id → resolve: its answer, or undefined for "run it here") and
 * the ids of the keys it holds (oldest first), which a job names without sending the key again.
 */
interface WrapWorker {
  readonly thread: Worker;
  readonly pending: Map<number, (answer: Answer | undefined) => void>;
  readonly held: Set<number>;
}

/**
 * The keys a worker holds at most; the oldest is forgotten (by the job that sends the next) past this. A
 * release names two (the TEE's wrapping key, cached per modulus in key-transfer.ts, and the vault's signing
 * key), so this holds many TEEs' keys at once without keeping every key a long-running process has seen.
 */
const KEYS_PER_WORKER = 32;

/**
 * The id of each KeyObject sent to a worker: one per object, from a counter, never reused, so an id names
 * one key for as long as the process runs (a KeyObject's key cannot change; a rotated or re-imported key
 * is another object, so another id), and a worker never signs or wraps with a key other than the one the
 * job was given. Weak: a key the process lets go of is forgotten here and then by the workers (below).
 */
const keyIds = new WeakMap<KeyObject, number>();
let nextKeyId = 0;
/** A key the process let go of (a signing key rotated away, a TEE's key dropped from its cache) is forgotten by the workers too. */
const released = new FinalizationRegistry<number>((keyId) => {
  for (const w of workers) {
    if (!w.held.delete(keyId)) continue;
    try {
      w.thread.postMessage({ id: -1, forget: [keyId] } satisfies Forget);
    } catch {
      // A worker that cannot be posted to is going away, and its keys with it.
    }
  }
});

function keyIdOf(key: KeyObject): number {
  let id = keyIds.get(key);
  if (id === undefined) {
    id = nextKeyId++;
    keyIds.set(key, id);
    released.register(key, id);
  }
  return id;
}

/**
 * The running workers, at most {@link WORKERS}: one per core besides the event loop's, at least two and
 * at most four. The release's signature runs here too (≈ 0.45 ms of crypto per release with the wrap), so
 * one thread would cap the process near one core's worth of releases and, on a busy machine, get only one
 * thread's share of the cores while it queues every release (measured: c16 over HTTPS at load 6–10, one
 * worker 0.34x against 0.47x before this change; two workers 0.48x against 0.40x in the same rounds);
 * before, the signature ran on the libuv threadpool beside the one wrap worker.
 */
const workers: WrapWorker[] = [];
let WORKERS = Math.max(2, Math.min(4, availableParallelism() - 1));
/** Set when a worker could not be started: every wrap then runs on the calling thread. */
let unavailable = false;
let nextId = 0;
/** Wraps the worker answered (tests: that the wrap did leave the calling thread). */
let wrappedOnWorker = 0;
/** Wrapped and signed documents the worker answered (tests). */
let signedOnWorker = 0;

/** Answers every job waiting for `w` with "run it here": the worker is gone. */
function abandon(w: WrapWorker): void {
  const at = workers.indexOf(w);
  if (at >= 0) workers.splice(at, 1);
  const waiting = [...w.pending.values()];
  w.pending.clear();
  for (const resolve of waiting) resolve(undefined);
}

/** The worker with the fewest jobs waiting, another one started while all have some and fewer than WORKERS run. */
function start(): WrapWorker | undefined {
  let least: WrapWorker | undefined;
  for (const w of workers) if (least === undefined || w.pending.size < least.pending.size) least = w;
  if (least !== undefined && (least.pending.size === 0 || workers.length >= WORKERS)) return least;
  if (unavailable) return least;
  let thread: Worker;
  try {
    // No loader flags (the source is plain JavaScript); its stdout and stderr are its own, unused.
    thread = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: true, stderr: true });
  } catch {
    unavailable = true;
    return least;
  }
  const w: WrapWorker = { thread, pending: new Map(), held: new Set() };
  thread.on('message', (m: Answer) => {
    const resolve = w.pending.get(m.id);
    if (!resolve) return;
    w.pending.delete(m.id);
    if (w.pending.size === 0) thread.unref();
    resolve(m.failed ? undefined : m);
  });
  thread.on('error', () => abandon(w));
  thread.on('exit', () => abandon(w));
  // The worker keeps the process alive only while a job waits for it.
  thread.unref();
  workers.push(w);
  return w;
}

/**
 * A key as a job names it to `w`: its id, and the key itself unless `w` holds it already; `used` collects
 * the job's key ids (marked held, as the most recently used, once the job was posted).
 */
function keyFor(w: WrapWorker, key: KeyObject, used: number[]): [number, KeyObject | null] {
  const id = keyIdOf(key);
  used.push(id);
  return [id, w.held.has(id) ? null : key];
}

/**
 * Posts one job (the material copied into a buffer that is transferred, and zeroed by the worker) and
 * waits for its answer; undefined where the worker could not do it (none, a failure in it, or gone).
 */
function post(material: Uint8Array, wrappingKey: KeyObject, enc: KeyTransferEnc, signed?: SignedDocumentJob): Promise<Answer | undefined> | undefined {
  const w = start();
  if (!w) return undefined;
  const used: number[] = [];
  const [wrapId, wrapKey] = keyFor(w, wrappingKey, used);
  let signedJob: Job['signed'];
  if (signed !== undefined) {
    const [keyId, key] = keyFor(w, signed.key, used);
    signedJob = { ...signed, keyId, key };
  }
  // Room for the keys this job gives the worker: it forgets the least recently used (never one this job
  // names) first, in the same message, so after every job posted before it, which may still name them.
  const forget: number[] = [];
  let over = w.held.size + used.filter((k) => !w.held.has(k)).length - KEYS_PER_WORKER;
  for (const old of w.held) {
    if (over <= 0) break;
    if (used.includes(old)) continue;
    forget.push(old);
    over--;
  }
  const copy = new Uint8Array(material);
  const id = nextId++;
  const job: Job = { id, material: copy.buffer, hash: OAEP_HASH[enc], wrapKeyId: wrapId, wrapKey, forget: forget.length > 0 ? forget : null, ...(signedJob === undefined ? {} : { signed: signedJob }) };
  return new Promise<Answer | undefined>((resolve) => {
    w.pending.set(id, resolve);
    if (w.pending.size === 1) w.thread.ref();
    try {
      w.thread.postMessage(job, [copy.buffer]);
    } catch {
      w.pending.delete(id);
      copy.fill(0);
      resolve(undefined);
      return;
    }
    for (const old of forget) w.held.delete(old);
    for (const k of used) {
      w.held.delete(k);
      w.held.add(k);
    }
  });
}

/**
 * {@link wrapWithNodeCrypto} on the wrap worker: the same parts (a fresh KEK each call), the same
 * errors. `material` is copied, never retained; the caller still zeroes its own copy.
 */
export async function wrapOffThread(material: Uint8Array, wrappingKey: KeyObject, enc: KeyTransferEnc): Promise<WrappedKeyParts> {
  if (material.byteLength === 0) throw fail('key.invalid', 'empty key material cannot be transferred');
  const m = await post(material, wrappingKey, enc);
  if (m?.out !== undefined && m.kekLength !== undefined) {
    const out = new Uint8Array(m.out);
    wrappedOnWorker++;
    return { wrappedKek: out.subarray(0, m.kekLength), wrappedKey: out.subarray(m.kekLength) };
  }
  // Not wrapped there (no worker, or the wrap failed in it): here, with this thread's outcome.
  return wrapWithNodeCrypto(material, wrappingKey, enc) as WrappedKeyParts;
}

/** The signed document of {@link wrapAndSignOffThread}, as the worker takes it. */
interface SignedDocumentJob {
  readonly blob: readonly [string, string];
  readonly document: readonly [string, string];
  readonly header: string;
  readonly key: KeyObject;
  readonly hash: 'sha256' | 'sha384';
  readonly dsaEncoding?: 'ieee-p1363';
}

/**
 * The release's two jobs off the event loop as one (one hand-over to another thread and one wake-up of
 * this one instead of two of each): the wrap of {@link wrapOffThread}, `key_hsm` written as
 * `blob[0] + base64url(wrappedKek ‖ wrappedKey) + blob[1]` in base64url, then a compact JWS of
 * `document[0] + key_hsm + document[1]` under the encoded protected header `header`, signed with `key`
 * (`alg` as in JWA: RS256 is RSASSA-PKCS1-v1_5 SHA-256, ES256/ES384 ECDSA in the IEEE P1363 encoding),
 * node:crypto's one-shot sign, as the caller's own signer would. Resolves undefined where the worker did
 * not produce it (no worker, or the wrap or the signature failed in it): the caller then wraps and signs
 * as it would without this, with those outcomes. `material` is copied, never retained.
 */
export async function wrapAndSignOffThread(
  material: Uint8Array,
  wrappingKey: KeyObject,
  enc: KeyTransferEnc,
  signed: { readonly blob: readonly [string, string]; readonly document: readonly [string, string]; readonly header: string; readonly key: KeyObject; readonly alg: 'RS256' | 'ES256' | 'ES384' },
): Promise<string | undefined> {
  if (material.byteLength === 0) return undefined;
  const job: SignedDocumentJob = {
    blob: signed.blob,
    document: signed.document,
    header: signed.header,
    key: signed.key,
    hash: signed.alg === 'ES384' ? 'sha384' : 'sha256',
    ...(signed.alg === 'RS256' ? {} : { dsaEncoding: 'ieee-p1363' as const }),
  };
  const m = await post(material, wrappingKey, enc, job);
  if (m?.jws === undefined) return undefined;
  signedOnWorker++;
  return m.jws;
}

/** How many wraps the worker has answered in this process (tests). */
export function wrapsOnWorker(): number {
  return wrappedOnWorker;
}

/** How many wrapped and signed documents the worker has answered in this process (tests). */
export function signedOnWorkerCount(): number {
  return signedOnWorker;
}

/** The keys each running worker holds, by count (tests). */
export function wrapWorkerKeys(): number[] {
  return workers.map((w) => w.held.size);
}

/** How many wrap workers run now, and (tests) the most that may run: `max` sets it (1 to 16). */
export function wrapWorkers(max?: number): { running: number; max: number } {
  if (max !== undefined) {
    if (!Number.isInteger(max) || max < 1 || max > 16) throw new RangeError('the wrap workers number 1 to 16');
    WORKERS = max;
  }
  return { running: workers.length, max: WORKERS };
}

/** Stops the wrap workers (tests); the next wrap starts another. */
export async function stopWrapWorker(): Promise<void> {
  const running = [...workers];
  for (const w of running) abandon(w);
  await Promise.all(running.map((w) => w.thread.terminate()));
}
