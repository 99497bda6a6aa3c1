/**
 * RSA and EC key pairs, for every part of Conclave (production, tests, benchmarks, scripts): nothing else
 * calls node:crypto's generateKeyPairSync or generateKeyPair (test/architecture.test.ts checks).
 *
 * Why: Node 20 can deadlock its main thread, forever, on a key that generateKeyPairSync returned as a
 * KeyObject (verified on v20.20.2, RSA and EC alike; src/core/keygen.test.ts reproduces it). The sync
 * key-generation job keeps a reference to the key it made, and the job's destructor takes that key's
 * mutex. The job is freed by a V8 weak callback, that is during a garbage collection. Exporting the key
 * as a JWK (KeyObject.export({ format: 'jwk' }), the private key, its public half, or a
 * createPublicKey(privateKey) of it: all share the job's key and mutex) holds the mutex while it
 * allocates the JWK's strings; if that allocation triggers the collection that finalizes the job, the
 * thread waits on a mutex it holds itself. gdb: uv_mutex_lock in ~KeyGenJob<KeyPairGenTraits<…>>, under
 * InvokeFirstPassWeakCallbacks, under ExportJWKRsaKey. A server that exports a new key's public JWK (the
 * software key protector) could hang on key creation at random, and a caller allowed to create keys
 * could retry until it did.
 *
 * The fix: the job hands out DER bytes only (PKCS#8, SPKI), and the KeyObjects are parsed from those,
 * so they own a key and mutex the job never touches. Verified under the same stress on v20.20.2: these
 * keys never deadlock, while exporting generateKeyPairSync's own KeyObjects deadlocks at the first full
 * collection. Not affected either (same stress): DER and PEM exports, sign, createPublicKey without export,
 * and keys from the asynchronous generateKeyPair / WebCrypto generateKey, whose job is freed as its
 * callback returns rather than by the garbage collector. The round trip costs a DER encode and parse,
 * microseconds beside the key generation.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

function fromDer({ privateKey, publicKey }: { privateKey: Buffer; publicKey: Buffer }): KeyPair {
  return {
    privateKey: createPrivateKey({ key: privateKey, format: 'der', type: 'pkcs8' }),
    publicKey: createPublicKey({ key: publicKey, format: 'der', type: 'spki' }),
  };
}

/** A fresh RSA key pair of `modulusLength` bits (public exponent 65537 unless given). */
export function generateRsaKeyPair(modulusLength: number, publicExponent?: number): KeyPair {
  return fromDer(
    generateKeyPairSync('rsa', {
      modulusLength,
      ...(publicExponent !== undefined ? { publicExponent } : {}),
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    }),
  );
}

/** A fresh EC key pair on `namedCurve` (any name node:crypto knows: `P-256`, `prime256v1`, `secp384r1`, `secp256k1`…). */
export function generateEcKeyPair(namedCurve: string): KeyPair {
  return fromDer(generateKeyPairSync('ec', { namedCurve, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } }));
}

const DER = { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } } as const;

/**
 * The same key pairs made on the libuv threadpool: a server makes its keys this way, so a large RSA key
 * (hundreds of milliseconds for 4096 bits) does not hold the event loop, and every other request, while
 * it is made.
 */
export function generateKeyPairOffThread(spec: { rsa: number; publicExponent?: number } | { ec: string }): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: Buffer, privateKey: Buffer) => {
      if (err) reject(err);
      else resolve(fromDer({ privateKey, publicKey }));
    };
    if ('rsa' in spec) generateKeyPair('rsa', { modulusLength: spec.rsa, ...(spec.publicExponent !== undefined ? { publicExponent: spec.publicExponent } : {}), ...DER }, done);
    else generateKeyPair('ec', { namedCurve: spec.ec, ...DER }, done);
  });
}
