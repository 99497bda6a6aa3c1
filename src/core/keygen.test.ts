/**
 * Key pairs from src/core/keygen.ts: the Node 20 self-deadlock it exists for (see its header) reproduced
 * in a child process, and the keys it returns.
 *
 * The child generates keys with the helper and exports each as a JWK many times over, the way the
 * software key protector reads a new key's public JWK. It runs with `--gc-global` (every collection is a
 * full mark-compact, the only kind that finalizes Node's dead key-generation job; scavenges keep it) and a
 * 1 MB new space, so the first collection after each key comes within a few rounds and, the exports being
 * nearly all that is allocated, almost always inside one of them. A child that has not finished in
 * HANG_MS is blocked on that deadlock (it needs well under a second of CPU when it works): killed, failed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { constants, createPublicKey, privateDecrypt, publicEncrypt, sign, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { generateEcKeyPair, generateKeyPairOffThread, generateRsaKeyPair } from './keygen.js';

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const HELPER = new URL(FROM_SOURCE ? './keygen.ts' : './keygen.js', import.meta.url).href;
const HANG_MS = 20_000;
const ROUNDS = 40;
const EXPORTS = 150;

/** Runs `generate` (source of a call on the helper's exports) ROUNDS times in a GC-stressed child; what it printed last and how it ended. */
function stress(generate: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; last: string }> {
  const script = `
    import { createPublicKey } from 'node:crypto';
    import { constants, PerformanceObserver } from 'node:perf_hooks';
    const { generateRsaKeyPair, generateEcKeyPair } = await import(${JSON.stringify(HELPER)});
    let full = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) full++; }).observe({ entryTypes: ['gc'] });
    for (let round = 0; round < ${ROUNDS}; round++) {
      const { privateKey, publicKey } = ${generate};
      process.stdout.write('round ' + round + '\\n');
      for (let i = 0; i < ${EXPORTS}; i++) {
        privateKey.export({ format: 'jwk' });
        publicKey.export({ format: 'jwk' });
        createPublicKey(privateKey).export({ format: 'jwk' });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    process.stdout.write('done ' + full + '\\n');`;
  const args = [...(FROM_SOURCE ? ['--import', 'tsx'] : []), '--gc-global', '--max-semi-space-size=1', '--input-type=module', '--eval', script];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], timeout: HANG_MS, killSignal: 'SIGKILL' });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, last: out.trim().split('\n').at(-1) ?? '' }));
  });
}

describe('key pairs survive a collection of their generation job while being exported (Node 20 deadlock)', () => {
  for (const [name, generate] of [
    ['RSA (512-bit, for speed)', 'generateRsaKeyPair(512)'],
    ['EC P-256', "generateEcKeyPair('P-256')"],
  ] as const) {
    test(name, async () => {
      const r = await stress(generate);
      assert.equal(r.signal, null, `the child was killed after ${HANG_MS / 1000} s at "${r.last}": the key export deadlocked`);
      assert.equal(r.code, 0);
      const [done, collections] = r.last.split(' ');
      assert.equal(done, 'done');
      // The stress has to stress: full collections while keys were exported (about one per 1 MB allocated).
      assert.ok(Number(collections) >= 5, `${collections} full collections`);
    });
  }
});

describe('the keys', () => {
  test('RSA: the modulus length and public exponent asked for, a private key and its own public key', () => {
    for (const [bits, e] of [[1024, undefined], [1025, 3]] as const) {
      const { privateKey, publicKey } = generateRsaKeyPair(bits, e);
      assert.equal(privateKey.type, 'private');
      assert.equal(publicKey.type, 'public');
      assert.equal(privateKey.asymmetricKeyType, 'rsa');
      assert.equal(privateKey.asymmetricKeyDetails!.modulusLength, bits);
      assert.equal(publicKey.asymmetricKeyDetails!.publicExponent, BigInt(e ?? 65537));
      const secret = Buffer.from('the key is its own');
      assert.deepEqual(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, secret)), secret);
      assert.deepEqual(createPublicKey(privateKey).export({ format: 'jwk' }), publicKey.export({ format: 'jwk' }));
    }
  });

  test('EC: the curve asked for, by either of its names, a private key and its own public key', () => {
    for (const [name, crv] of [['P-256', 'P-256'], ['prime256v1', 'P-256'], ['secp384r1', 'P-384'], ['P-521', 'P-521'], ['secp256k1', 'secp256k1']]) {
      const { privateKey, publicKey } = generateEcKeyPair(name);
      assert.equal(privateKey.type, 'private');
      assert.equal(publicKey.type, 'public');
      assert.equal(publicKey.export({ format: 'jwk' }).crv, crv, name);
      const message = Buffer.from(name);
      assert.ok(verify('sha256', message, publicKey, sign('sha256', message, privateKey)), name);
      assert.deepEqual(createPublicKey(privateKey).export({ format: 'jwk' }), publicKey.export({ format: 'jwk' }));
    }
    assert.throws(() => generateEcKeyPair('P-255'));
  });

  test('two calls, two different keys', () => {
    const a = generateEcKeyPair('P-256').publicKey.export({ format: 'jwk' });
    const b = generateEcKeyPair('P-256').publicKey.export({ format: 'jwk' });
    assert.notDeepEqual(a, b);
  });
});

describe('generateKeyPairOffThread', () => {
  test('RSA and EC pairs as the synchronous ones give them, made while the event loop goes on', async () => {
    const order: string[] = [];
    const made = generateKeyPairOffThread({ rsa: 2048 }).then((pair) => {
      order.push('made');
      return pair;
    });
    // Made on the calling thread, the key would be done (its promise settled) before this callback runs.
    setImmediate(() => order.push('event loop'));
    const { privateKey, publicKey } = await made;
    assert.deepEqual(order, ['event loop', 'made']);
    assert.equal(privateKey.asymmetricKeyDetails!.modulusLength, 2048);
    assert.deepEqual(createPublicKey(privateKey).export({ format: 'jwk' }), publicKey.export({ format: 'jwk' }));
    const e3 = await generateKeyPairOffThread({ rsa: 1024, publicExponent: 3 });
    assert.equal(e3.publicKey.asymmetricKeyDetails!.publicExponent, 3n);
    const ec = await generateKeyPairOffThread({ ec: 'secp384r1' });
    assert.equal(ec.publicKey.export({ format: 'jwk' }).crv, 'P-384');
    await assert.rejects(generateKeyPairOffThread({ ec: 'P-255' }));
  });
});
