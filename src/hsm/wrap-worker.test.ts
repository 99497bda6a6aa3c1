import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { type KeyObject, sign, verify } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { KEY_TRANSFER_ENCS, transferBlobAround, transferMaterialOf, unwrapKeyTransfer, unwrapTransferCiphertext, wrapWithNodeCrypto } from '../vault/release/key-transfer.js';
import { signedOnWorkerCount, stopWrapWorker, wrapAndSignOffThread, wrapOffThread, wrapsOnWorker, wrapWorkerKeys, wrapWorkers } from './wrap-worker.js';
import { signerFor } from './release-certificate.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../core/keygen.js';

const wrapping = generateRsaKeyPair(2048);
const material = transferMaterialOf(generateEcKeyPair('P-256').privateKey);
const joined = (p: { wrappedKek: Uint8Array; wrappedKey: Uint8Array }) => Buffer.concat([p.wrappedKek, p.wrappedKey]);

describe('wrapOffThread (the key transfer wrap on the wrap worker)', () => {
  after(() => stopWrapWorker());

  for (const enc of KEY_TRANSFER_ENCS) {
    test(`${enc}: unwraps with the private key to the material, with a fresh KEK each time, as the synchronous wrap does`, async () => {
      const done = wrapsOnWorker();
      const a = await wrapOffThread(material, wrapping.publicKey, enc);
      const b = await wrapOffThread(material, wrapping.publicKey, enc);
      // Both were wrapped on the worker, not by the fallback on this thread.
      assert.equal(wrapsOnWorker(), done + 2);
      const sync = wrapWithNodeCrypto(material, wrapping.publicKey, enc) as { wrappedKek: Uint8Array; wrappedKey: Uint8Array };
      assert.equal(a.wrappedKek.byteLength, 256);
      assert.equal(a.wrappedKey.byteLength, sync.wrappedKey.byteLength);
      assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(a), wrapping.privateKey, enc)), Buffer.from(material));
      assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(b), wrapping.privateKey, enc)), Buffer.from(material));
      assert.notDeepEqual(Buffer.from(a.wrappedKek), Buffer.from(b.wrappedKek));
      assert.notDeepEqual(Buffer.from(a.wrappedKey), Buffer.from(b.wrappedKey));
    });
  }

  test('concurrent wraps each get their own answer; the caller keeps its material', async () => {
    const materials = Array.from({ length: 24 }, (_, i) => new Uint8Array(40 + i).fill(i + 1));
    const before = materials.map((m) => Buffer.from(m));
    const done = wrapsOnWorker();
    const parts = await Promise.all(materials.map((m) => wrapOffThread(m, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256')));
    assert.equal(wrapsOnWorker(), done + materials.length);
    for (const [i, p] of parts.entries()) assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(p), wrapping.privateKey, 'RSA_AES_KEY_WRAP_256')), before[i]);
    for (const [i, m] of materials.entries()) assert.deepEqual(Buffer.from(m), before[i]);
  });

  test('fails as the synchronous wrap does: empty material, and a wrapping key OAEP cannot use', async () => {
    await assert.rejects(wrapOffThread(new Uint8Array(0), wrapping.publicKey, 'RSA_AES_KEY_WRAP_256'), (e) => isConclaveError(e, 'key.invalid'));
    // RSA-1024 with SHA-384 OAEP holds at most 30 bytes: the 32-byte KEK does not fit.
    const small = generateRsaKeyPair(1024).publicKey;
    let expected: unknown;
    try {
      wrapWithNodeCrypto(material, small, 'RSA_AES_KEY_WRAP_384');
    } catch (e) {
      expected = e;
    }
    assert.ok(expected instanceof Error);
    await assert.rejects(wrapOffThread(material, small, 'RSA_AES_KEY_WRAP_384'), (e) => e instanceof Error && e.message === (expected as Error).message);
    // The worker is still serving.
    const ok = await wrapOffThread(material, wrapping.publicKey, 'CKM_RSA_AES_KEY_WRAP');
    assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(ok), wrapping.privateKey, 'CKM_RSA_AES_KEY_WRAP')), Buffer.from(material));
  });

  test('a stopped worker is replaced by the next wrap', async () => {
    await wrapOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256');
    await stopWrapWorker();
    const done = wrapsOnWorker();
    const p = await wrapOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256');
    assert.equal(wrapsOnWorker(), done + 1);
    assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(p), wrapping.privateKey, 'RSA_AES_KEY_WRAP_256')), Buffer.from(material));
  });
});

describe('wrapAndSignOffThread (the wrap and the signature of the document around key_hsm, one job on the wrap worker)', () => {
  after(() => stopWrapWorker());
  const b64u = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
  const header = b64u(JSON.stringify({ alg: 'RS256', kid: 'k' }));
  const document = ['{"nonce":"é \\" \\u2028","key":{"kty":"RSA","key_hsm":"', '"},"after":1}'] as const;
  const signers = { RS256: generateRsaKeyPair(2048), ES256: generateEcKeyPair('P-256'), ES384: generateEcKeyPair('P-384') } as const;

  for (const alg of ['RS256', 'ES256', 'ES384'] as const) {
    for (const enc of KEY_TRANSFER_ENCS) {
      test(`${alg}, ${enc}: the JWS of the document with key_hsm, signed as the main thread's signer signs, key_hsm unwrapping to the material`, async () => {
        const done = signedOnWorkerCount();
        const blob = transferBlobAround({ enc, kid: 'tee "1"' });
        const jws = await wrapAndSignOffThread(material, wrapping.publicKey, enc, { blob, document, header, key: signers[alg].privateKey, alg });
        assert.equal(signedOnWorkerCount(), done + 1, 'made on the worker');
        assert.ok(jws !== undefined);
        const [h, p, s] = jws.split('.') as [string, string, string];
        assert.equal(h, header);
        const text = Buffer.from(p, 'base64url').toString('utf8');
        assert.ok(text.startsWith(document[0]) && text.endsWith(document[1]));
        const keyHsm = text.slice(document[0].length, text.length - document[1].length);
        assert.match(keyHsm, /^[A-Za-z0-9_-]+$/);
        assert.equal(b64u(text), p, 'the payload segment is the base64url of the UTF-8 document');
        // key_hsm: the blob's JSON around the ciphertext, which unwraps to the material.
        const blobText = Buffer.from(keyHsm, 'base64url').toString('utf8');
        assert.ok(blobText.startsWith(blob[0]) && blobText.endsWith(blob[1]));
        assert.deepEqual(Buffer.from(unwrapKeyTransfer(keyHsm, wrapping.privateKey)), Buffer.from(material));
        // The signature: RS256 is deterministic, so byte for byte what signerFor makes here; ECDSA verifies (P1363).
        const input = Buffer.from(`${h}.${p}`, 'ascii');
        if (alg === 'RS256') assert.equal(Buffer.from(signerFor(signers[alg].privateKey, alg)(input)).toString('base64url'), s);
        const hash = alg === 'ES384' ? 'sha384' : 'sha256';
        assert.ok(verify(hash, input, alg === 'RS256' ? signers[alg].publicKey : { key: signers[alg].publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')));
        assert.equal(Buffer.from(s, 'base64url').byteLength, alg === 'RS256' ? 256 : alg === 'ES256' ? 64 : 96);
      });
    }
  }

  test('what the worker cannot do is left to the caller (undefined): a wrapping key OAEP cannot use, a key that cannot sign, empty material; the caller keeps its material', async () => {
    const blob = transferBlobAround({ enc: 'RSA_AES_KEY_WRAP_384' });
    const keep = Buffer.from(material);
    const small = generateRsaKeyPair(1024).publicKey;
    const done = signedOnWorkerCount();
    assert.equal(await wrapAndSignOffThread(material, small, 'RSA_AES_KEY_WRAP_384', { blob, document, header, key: signers.RS256.privateKey, alg: 'RS256' }), undefined);
    // A public key signs nothing (node:crypto refuses it on any thread).
    assert.throws(() => sign('sha256', Buffer.from('x'), signers.RS256.publicKey as never));
    assert.equal(await wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_384', { blob, document, header, key: signers.RS256.publicKey, alg: 'RS256' }), undefined);
    assert.equal(await wrapAndSignOffThread(new Uint8Array(0), wrapping.publicKey, 'RSA_AES_KEY_WRAP_384', { blob, document, header, key: signers.RS256.privateKey, alg: 'RS256' }), undefined);
    assert.equal(signedOnWorkerCount(), done);
    assert.deepEqual(Buffer.from(material), keep);
    // Still serving both kinds of job.
    assert.ok((await wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_384', { blob, document, header, key: signers.ES256.privateKey, alg: 'ES256' })) !== undefined);
    const ok = await wrapOffThread(material, wrapping.publicKey, 'CKM_RSA_AES_KEY_WRAP');
    assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(ok), wrapping.privateKey, 'CKM_RSA_AES_KEY_WRAP')), Buffer.from(material));
  });

  test('concurrent wraps and signed documents each get their own answer', async () => {
    const blob = transferBlobAround({ enc: 'RSA_AES_KEY_WRAP_256' });
    const materials = Array.from({ length: 12 }, (_, i) => new Uint8Array(40 + i).fill(i + 1));
    const answers = await Promise.all(
      materials.map((m, i) =>
        i % 2 === 0
          ? wrapAndSignOffThread(m, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header, key: signers.RS256.privateKey, alg: 'RS256' })
          : wrapOffThread(m, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256'),
      ),
    );
    for (const [i, a] of answers.entries()) {
      if (typeof a === 'string') {
        const text = Buffer.from(a.split('.')[1]!, 'base64url').toString('utf8');
        assert.deepEqual(Buffer.from(unwrapKeyTransfer(text.slice(document[0].length, text.length - document[1].length), wrapping.privateKey)), Buffer.from(materials[i]!));
      } else {
        assert.ok(a !== undefined);
        assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(a), wrapping.privateKey, 'RSA_AES_KEY_WRAP_256')), Buffer.from(materials[i]!));
      }
    }
  });
});

describe('the keys a wrap worker holds (sent once per worker, named by id after that)', () => {
  const b64u = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
  const header = b64u(JSON.stringify({ alg: 'RS256' }));
  const document = ['{"key_hsm":"', '"}'] as const;
  const blob = transferBlobAround({ enc: 'RSA_AES_KEY_WRAP_256' });
  let size = 0;
  before(async () => {
    size = wrapWorkers().max;
    await stopWrapWorker();
    // One worker: every job below goes to the same one, so each key after the first use is named by id only.
    wrapWorkers(1);
  });
  after(async () => {
    wrapWorkers(size);
    await stopWrapWorker();
  });

  /** The JWS's signature checked against `right` (it must verify) and `wrong` (it must not); key_hsm against `unwrapWith`. */
  function check(jws: string | undefined, right: KeyObject, wrong: KeyObject, unwrapWith: KeyObject, hash = 'sha256', dsa = false): void {
    assert.ok(jws !== undefined, 'made on the worker');
    const [h, p, s] = jws.split('.') as [string, string, string];
    const input = Buffer.from(`${h}.${p}`, 'ascii');
    const sig = Buffer.from(s, 'base64url');
    const as = (key: KeyObject) => (dsa ? { key, dsaEncoding: 'ieee-p1363' as const } : key);
    assert.ok(verify(hash, input, as(right), sig), 'signed with the key the job named');
    assert.ok(!verify(hash, input, as(wrong), sig), 'not with the key an earlier job named');
    const text = Buffer.from(p, 'base64url').toString('utf8');
    assert.deepEqual(Buffer.from(unwrapKeyTransfer(text.slice(document[0].length, text.length - document[1].length), unwrapWith)), Buffer.from(material));
  }

  test('a job signs and wraps with the keys it names, never with the ones an earlier job on the same worker named (rotated signing key, another TEE)', async () => {
    const a = generateRsaKeyPair(2048);
    const b = generateRsaKeyPair(2048);
    const tee = generateRsaKeyPair(2048);
    const job = (signer: KeyObject, to: KeyObject) => wrapAndSignOffThread(material, to, 'RSA_AES_KEY_WRAP_256', { blob, document, header, key: signer, alg: 'RS256' });
    const done = signedOnWorkerCount();
    check(await job(a.privateKey, wrapping.publicKey), a.publicKey, b.publicKey, wrapping.privateKey);
    // The signing key rotates (another KeyObject): the next job signs with the new one, the wrap's key still held.
    check(await job(b.privateKey, wrapping.publicKey), b.publicKey, a.publicKey, wrapping.privateKey);
    // Another TEE's key: its wrap unwraps with that TEE's private key only.
    check(await job(b.privateKey, tee.publicKey), b.publicKey, a.publicKey, tee.privateKey);
    const toTee = Buffer.from((await job(b.privateKey, tee.publicKey))!.split('.')[1]!, 'base64url').toString('utf8');
    assert.throws(() => unwrapKeyTransfer(toTee.slice(document[0].length, -document[1].length), wrapping.privateKey), 'not to the first TEE\'s key');
    // Back to the first keys, both held by the worker by now and named by id only.
    check(await job(a.privateKey, wrapping.publicKey), a.publicKey, b.publicKey, wrapping.privateKey);
    // Interleaved in flight: each answer is its own job's.
    const keys = [a, b, a, b, b, a];
    const answers = await Promise.all(keys.map((k, i) => job(k.privateKey, i % 2 === 0 ? wrapping.publicKey : tee.publicKey)));
    for (const [i, jws] of answers.entries()) check(jws, keys[i]!.publicKey, (keys[i] === a ? b : a).publicKey, i % 2 === 0 ? wrapping.privateKey : tee.privateKey);
    assert.equal(signedOnWorkerCount(), done + 11);
    assert.equal(wrapWorkers().running, 1);
    assert.deepEqual(wrapWorkerKeys(), [4]);
  });

  test('a job that fails in the worker still leaves it the keys it carried: the next job naming them by id is done there', async () => {
    const signer = generateRsaKeyPair(2048);
    // RSA-1024 with SHA-384 OAEP cannot carry the KEK: the wrap fails before anything is signed.
    const small = generateRsaKeyPair(1024).publicKey;
    const done = signedOnWorkerCount();
    assert.equal(await wrapAndSignOffThread(material, small, 'RSA_AES_KEY_WRAP_384', { blob, document, header, key: signer.privateKey, alg: 'RS256' }), undefined);
    check(await wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header, key: signer.privateKey, alg: 'RS256' }), signer.publicKey, wrapping.publicKey, wrapping.privateKey);
    assert.equal(signedOnWorkerCount(), done + 1);
  });

  test('a worker holds at most 32 keys, forgetting the least recently used: more keys than that in turn, each job still signs with its own', async () => {
    const signers = Array.from({ length: 40 }, () => generateEcKeyPair('P-256'));
    const es = { ...JSON.parse(Buffer.from(header, 'base64url').toString()), alg: 'ES256' };
    const esHeader = b64u(JSON.stringify(es));
    const done = signedOnWorkerCount();
    for (let round = 0; round < 2; round++) {
      for (const [i, k] of signers.entries()) {
        const jws = await wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header: esHeader, key: k.privateKey, alg: 'ES256' });
        check(jws, k.publicKey, signers[(i + 1) % signers.length]!.publicKey, wrapping.privateKey, 'sha256', true);
        assert.ok(wrapWorkerKeys()[0]! <= 32);
      }
    }
    assert.equal(signedOnWorkerCount(), done + 80);
    assert.deepEqual(wrapWorkerKeys(), [32]);
  });

  test('attack: keys forgotten (least recently used) and collected while jobs naming them are in flight: every job still signs and wraps with its own keys', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const es = b64u(JSON.stringify({ alg: 'ES256' }));
    const tees = [wrapping, generateRsaKeyPair(2048)];
    const done = signedOnWorkerCount();
    // 45 signers, all posted at once to one worker: the first ones are forgotten (and the first sent again at
    // the end) while their jobs still wait; keys dropped by the caller are collected while theirs are in flight.
    const signers = Array.from({ length: 45 }, () => generateEcKeyPair('P-256'));
    const order = [...signers.keys(), 0, 1, 44];
    const jobs = order.map((i) => wrapAndSignOffThread(material, tees[i % 2]!.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header: es, key: signers[i]!.privateKey, alg: 'ES256' }));
    // Throwaway keys whose only reference is their job: collected (and forgotten) while the others wait.
    const dropped = Array.from({ length: 5 }, () => wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header: es, key: generateEcKeyPair('P-256').privateKey, alg: 'ES256' }));
    gc();
    const answers = await Promise.all(jobs);
    for (const [n, i] of order.entries()) check(answers[n], signers[i]!.publicKey, signers[(i + 1) % signers.length]!.publicKey, tees[i % 2]!.privateKey, 'sha256', true);
    for (const jws of await Promise.all(dropped)) assert.ok(jws !== undefined);
    assert.equal(signedOnWorkerCount(), done + order.length + dropped.length);
    assert.ok(wrapWorkerKeys()[0]! <= 32);
  });

  test('a replaced worker is sent the keys again', async () => {
    const signer = generateRsaKeyPair(2048);
    check(await wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header, key: signer.privateKey, alg: 'RS256' }), signer.publicKey, wrapping.publicKey, wrapping.privateKey);
    await stopWrapWorker();
    const done = signedOnWorkerCount();
    check(await wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header, key: signer.privateKey, alg: 'RS256' }), signer.publicKey, wrapping.publicKey, wrapping.privateKey);
    assert.equal(signedOnWorkerCount(), done + 1);
    assert.deepEqual(wrapWorkerKeys(), [2]);
  });

  test('a key the process lets go of (a rotated signing key collected) is forgotten by the worker too', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await stopWrapWorker();
    await (async () => {
      const signer = generateEcKeyPair('P-256');
      const es = b64u(JSON.stringify({ alg: 'ES256' }));
      assert.ok((await wrapAndSignOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256', { blob, document, header: es, key: signer.privateKey, alg: 'ES256' })) !== undefined);
    })();
    assert.deepEqual(wrapWorkerKeys(), [2]);
    for (let i = 0; i < 100 && wrapWorkerKeys()[0] !== 1; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(wrapWorkerKeys(), [1], 'only the wrapping key (still referenced here) is held');
  });
});

test('wrap workers: one per core besides the event loop (2 to 4), another started only while every running one has a job waiting', async () => {
  const size = wrapWorkers().max;
  try {
    assert.equal(size, Math.max(2, Math.min(4, availableParallelism() - 1)));
    await stopWrapWorker();
    wrapWorkers(3);
    // One job at a time: one worker does them all.
    for (let i = 0; i < 3; i++) await wrapOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256');
    assert.equal(wrapWorkers().running, 1);
    const materials = Array.from({ length: 12 }, (_, i) => new Uint8Array(40 + i).fill(i + 1));
    const parts = await Promise.all(materials.map((m) => wrapOffThread(m, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256')));
    assert.equal(wrapWorkers().running, 3, 'jobs waiting on every worker: up to the most that may run');
    for (const [i, p] of parts.entries()) assert.deepEqual(Buffer.from(unwrapTransferCiphertext(joined(p), wrapping.privateKey, 'RSA_AES_KEY_WRAP_256')), Buffer.from(materials[i]!));
    await stopWrapWorker();
    assert.equal(wrapWorkers().running, 0);
  } finally {
    wrapWorkers(size);
    await stopWrapWorker();
  }
});

/** A thread's nice value (Linux: /proc/self/task/TID/stat, the 19th field). */
function niceOf(tid: number | string): number {
  const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]);
}

test('wrap workers run below the event loop\'s priority (Linux: a nice value 5 above the process\'s)', { skip: process.platform !== 'linux' || niceOf(process.pid) > 14 }, async () => {
  try {
    await stopWrapWorker();
    const before = new Set(readdirSync('/proc/self/task'));
    // Two jobs at once: two workers.
    await Promise.all([wrapOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256'), wrapOffThread(material, wrapping.publicKey, 'RSA_AES_KEY_WRAP_256')]);
    assert.equal(wrapWorkers().running, 2);
    const main = niceOf(process.pid);
    const started = readdirSync('/proc/self/task').filter((t) => !before.has(t));
    const lowered = started.filter((t) => niceOf(t) === main + 5);
    // Each worker's own thread (a worker also starts helper threads, which keep the process's value).
    assert.equal(lowered.length, 2, `threads started: ${started.map((t) => `${t}:${niceOf(t)}`).join(' ')}; the event loop's nice ${main}`);
    // Nothing else changed: this thread and the rest of the process keep theirs.
    for (const t of readdirSync('/proc/self/task')) if (!lowered.includes(t)) assert.equal(niceOf(t), main);
  } finally {
    await stopWrapWorker();
  }
});
