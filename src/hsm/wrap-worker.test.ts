import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { KEY_TRANSFER_ENCS, transferMaterialOf, unwrapTransferCiphertext, wrapWithNodeCrypto } from '../vault/release/key-transfer.js';
import { stopWrapWorker, wrapOffThread, wrapsOnWorker } from './wrap-worker.js';
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
