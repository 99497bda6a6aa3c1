/**
 * A request that fails in the middle of a PKCS#11 operation leaves nothing behind on its pooled session:
 * the next request on that session works (one bad request is no denial of service).
 */
import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, publicEncrypt, verify } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { faultingLibrary, initSoftHsm, interceptedLibrary, type SoftHsmToken, skipWithoutSoftHsm } from '../../test/helpers/softhsm.js';
import { fail } from '../core/errors.js';
import { generateRsaKeyPair } from '../core/keygen.js';
import type { PrivateJwk } from '../vault/ports.js';
import { createPkcs11KeyProtector, type Pkcs11KeyProtector } from './pkcs11.js';
import { parsePkcs11Spec } from './pkcs11-spec.js';

const skip = skipWithoutSoftHsm();
let token: SoftHsmToken;
let hsm: Pkcs11KeyProtector;

describe('PKCS#11 sessions after a failed operation (SoftHSM2)', { skip }, () => {
  before(async () => {
    token = initSoftHsm();
    // One session: whatever a request leaves on it, the next request meets.
    hsm = await createPkcs11KeyProtector(parsePkcs11Spec(`${token.spec};sessions=1`));
  });
  after(async () => {
    await hsm?.close();
    token?.remove();
  });

  test('signing with an imported RSA key over 4096 bits does not leave the session with an active operation', async () => {
    const pair = generateRsaKeyPair(4104);
    const big = pair.privateKey.export({ format: 'jwk' }) as PrivateJwk;
    const bigBinding = 'vault-key:big/0123456789abcdef0123456789abcdef';
    const bigKey = await hsm.import({ ...big, kty: 'RSA-HSM' }, bigBinding);
    const ecBinding = 'vault-key:ec/0123456789abcdef0123456789abcdef';
    const ec = await hsm.generate({ family: 'EC', crv: 'P-256' }, ecBinding);
    const digest = createHash('sha256').update('m').digest();
    // A 513-byte signature: the key signs (PUT /keys accepts any RSA size to import).
    const sig = await hsm.sign({ family: 'RSA', handle: bigKey.handle, binding: bigBinding }, 'RS256', digest);
    assert.ok(verify('sha256', Buffer.from('m'), pair.publicKey, sig), 'the RS256 signature of the 4104-bit key verifies');
    // Whatever happened, the one session serves the next request (on main: CKR_OPERATION_ACTIVE, every call after it).
    for (let i = 0; i < 3; i++) assert.equal((await hsm.sign({ family: 'EC', handle: ec.handle, binding: ecBinding }, 'ES256', digest)).length, 64);
  });

  test('a token that fails in the middle of an operation leaves no operation active on the pooled session', async () => {
    let failNext = false;
    const faulty = await createPkcs11KeyProtector(parsePkcs11Spec(`${token.spec};sessions=1`), {
      // After C_EncryptInit succeeded: the token answers an error without finishing (or ending) the operation.
      wrapLibrary: faultingLibrary((prop) => {
        if (prop !== 'C_EncryptAsync' || !failNext) return undefined;
        failNext = false;
        return new Error('CKR_FUNCTION_FAILED');
      }),
    });
    try {
      const binding = 'vault-key:aes/0123456789abcdef0123456789abcdef';
      const pk = await faulty.generate({ family: 'oct', keySize: 256 }, binding);
      const ref = { family: 'oct' as const, handle: pk.handle, binding };
      failNext = true;
      await assert.rejects(faulty.encrypt(ref, { alg: 'A256CBCPAD', value: Buffer.from('x') }), (e: { code?: string }) => e.code === 'key.crypto_failed');
      // On main: CKR_OPERATION_ACTIVE (400 key.crypto_failed) for every later call on that session.
      const out = await faulty.encrypt(ref, { alg: 'A256CBCPAD', value: Buffer.from('x') });
      assert.equal(Buffer.from((await faulty.decrypt(ref, { alg: 'A256CBCPAD', value: out.value, iv: out.iv! })).value).toString(), 'x');
    } finally {
      await faulty.close();
    }
  });

  test('a decrypt request the token refuses for its data (an empty RSA-OAEP ciphertext) does not make the provider believe the token lacks OAEP', async () => {
    const own = await createPkcs11KeyProtector(parsePkcs11Spec(`${token.spec};sessions=1`));
    try {
      const binding = 'vault-key:oaep/0123456789abcdef0123456789abcdef';
      const pk = await own.generate({ family: 'RSA', keySize: 2048, publicExponent: 65537 }, binding, { exportable: true });
      const ref = { family: 'RSA' as const, handle: pk.handle, binding, publicJwk: pk.publicJwk };
      const tee = generateRsaKeyPair(2048);
      assert.ok((await own.releaseWrapped(ref, tee.publicKey, 'CKM_RSA_AES_KEY_WRAP')).length > 0);
      // POST /keys/{name}/decrypt {"alg":"RSA-OAEP","value":""}: the token answers CKR_ARGUMENTS_BAD to the empty input.
      await assert.rejects(own.decrypt(ref, { alg: 'RSA-OAEP', value: new Uint8Array(0) }));
      // On main: OAEP-SHA-1 is then remembered as refused, and every release answers 400 hsm.mechanism_unsupported.
      assert.ok((await own.releaseWrapped(ref, tee.publicKey, 'CKM_RSA_AES_KEY_WRAP')).length > 0);
      assert.equal((await own.info()).oaepHashes.sha1, true);
      const c = publicEncrypt({ key: createPublicKey({ key: { kty: 'RSA', n: pk.publicJwk.n!, e: pk.publicJwk.e! }, format: 'jwk' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from('m'));
      assert.equal(Buffer.from((await own.decrypt(ref, { alg: 'RSA-OAEP', value: c })).value).toString(), 'm');
    } finally {
      await own.close();
    }
  });

  test('a call that fails on our own check after another request dropped the connection opens no session on the dropped connection', async () => {
    // Every session opened and not yet closed, by handle.
    const open = new Set<string>();
    let encrypts = 0;
    let failing = false;
    let reached!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const wrap = interceptedLibrary((name, args, call) => {
      if (name === 'C_EncryptAsync' && failing) {
        encrypts++;
        // The first (request A) waits mid-call, then fails on a check of ours; the second (request B) meets a device failure.
        if (encrypts === 1) {
          reached();
          return gate.then(() => Promise.reject(fail('key.invalid', 'refused by our own check')));
        }
        return Promise.reject(new Error('CKR_DEVICE_ERROR'));
      }
      const out = call();
      if (name === 'C_OpenSession') open.add(Buffer.from(out as Buffer).toString('hex'));
      if (name === 'C_CloseSession') open.delete(Buffer.from(args[0] as Buffer).toString('hex'));
      return out;
    });
    const faulty = await createPkcs11KeyProtector(parsePkcs11Spec(`${token.spec};sessions=2`), { wrapLibrary: wrap });
    try {
      const binding = 'vault-key:drop/0123456789abcdef0123456789abcdef';
      const pk = await faulty.generate({ family: 'oct', keySize: 256 }, binding);
      const ref = { family: 'oct' as const, handle: pk.handle, binding };
      failing = true;
      const a = faulty.encrypt(ref, { alg: 'A256CBCPAD', value: Buffer.from('a') });
      const aRefused = assert.rejects(a, (e: { code?: string }) => e.code === 'key.invalid');
      await atGate;
      // Request B's device failure drops the connection (its sessions, A's among them, are closed).
      await assert.rejects(faulty.encrypt(ref, { alg: 'A256CBCPAD', value: Buffer.from('b') }), (e: { code?: string }) => e.code === 'hsm.unavailable');
      await new Promise((r) => setImmediate(r));
      release();
      await aRefused;
    } finally {
      await faulty.close();
    }
    // On main: A's session is replaced by one opened on the dropped connection, which nothing ever closes.
    assert.equal(open.size, 0, `sessions left open: ${open.size}`);
  });
});
