import { type KeyObject, createPublicKey } from 'node:crypto';
import { BoundedMap } from '../../core/bounded-map.js';
import { fail } from '../../core/errors.js';
import { b64url } from '../../core/bytes.js';

/**
 * Public keys imported into node:crypto, keyed by the key bytes themselves. Importing a key costs more
 * than verifying an ECDSA signature with it (OpenSSL 3 decoders), and the same few keys (Intel CAs, TCB
 * signing, a platform's PCK and attestation key) recur in every verification. The cache holds only
 * public key material derived from its key, so a hit can never change a verdict; it is bounded.
 */
const MAX_KEYS = 4096;
const keys = new BoundedMap<string, KeyObject>(MAX_KEYS);

// DER prefix of a SubjectPublicKeyInfo for id-ecPublicKey / prime256v1 with an uncompressed point.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

function remember(id: string, make: () => KeyObject): KeyObject {
  let k = keys.get(id);
  if (!k) {
    k = make();
    keys.set(id, k);
  }
  return k;
}

function p256Jwk(xy: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64url(xy.subarray(0, 32)), y: b64url(xy.subarray(32, 64)) },
    format: 'jwk',
  });
}

/** A P-256 key from its raw x‖y (64 bytes), e.g. the attestation key of a quote. */
export function p256PublicKey(xy: Uint8Array): KeyObject {
  if (xy.byteLength !== 64) throw fail('quote.malformed', 'a P-256 public key is 64 bytes', { size: xy.byteLength });
  return remember(`raw:${Buffer.from(xy.buffer, xy.byteOffset, xy.byteLength).toString('latin1')}`, () => p256Jwk(xy));
}

/** The key of a SubjectPublicKeyInfo; P-256 keys take the (faster) JWK import path. */
export function spkiPublicKey(spki: Uint8Array): KeyObject {
  const b = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  return remember(`spki:${b.toString('latin1')}`, () =>
    b.byteLength === 91 && b.subarray(0, 26).equals(P256_SPKI_PREFIX) && b[26] === 0x04
      ? p256Jwk(spki.subarray(27))
      : createPublicKey({ key: b, format: 'der', type: 'spki' }),
  );
}
