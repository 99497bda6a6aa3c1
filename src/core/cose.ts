/**
 * COSE_Sign1 (RFC 9052 §4.2): `[protected: bstr .cbor header_map, unprotected: header_map, payload: bstr,
 * signature: bstr]`, optionally under CBOR tag 18. CBOR is decoded by cborg in its strict mode (minimal
 * encodings, no duplicate map keys, no indefinite lengths, no undefined), with a size bound; the
 * signature is checked with node:crypto over the Sig_structure (§4.4)
 * `["Signature1", protected, external_aad, payload]`.
 *
 * Algorithms (RFC 9053 §2, RFC 8230): ES256/384/512 (r‖s), PS256/384/512 (salt = hash length),
 * RS256/384/512. Anything else is `cose.unsupported`.
 */
import { constants, type KeyObject, verify as cryptoVerify } from 'node:crypto';
import { decode, encode } from 'cborg';
import { fail } from './errors.js';

/** Header labels used here (IANA COSE Header Parameters). */
export const COSE_HEADER = { alg: 1, contentType: 3, x5chain: 33, cwtClaims: 15 } as const;

const MAX_COSE_BYTES = 256 * 1024;

/** A decoded header map: integer and text labels as the message wrote them. */
export type CoseHeaders = ReadonlyMap<number | string, unknown>;

export interface CoseSign1 {
  /** The protected header bytes exactly as signed. */
  readonly protectedBytes: Uint8Array;
  readonly protectedHeaders: CoseHeaders;
  readonly unprotectedHeaders: CoseHeaders;
  /** The payload (a detached payload is refused). */
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

interface AlgSpec {
  readonly name: string;
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly kind: 'ecdsa' | 'rsa-pss' | 'rsa-pkcs1';
  readonly curve?: string;
}

const ALGS: ReadonlyMap<number, AlgSpec> = new Map([
  [-7, { name: 'ES256', hash: 'sha256', kind: 'ecdsa', curve: 'prime256v1' }],
  [-35, { name: 'ES384', hash: 'sha384', kind: 'ecdsa', curve: 'secp384r1' }],
  [-36, { name: 'ES512', hash: 'sha512', kind: 'ecdsa', curve: 'secp521r1' }],
  [-37, { name: 'PS256', hash: 'sha256', kind: 'rsa-pss' }],
  [-38, { name: 'PS384', hash: 'sha384', kind: 'rsa-pss' }],
  [-39, { name: 'PS512', hash: 'sha512', kind: 'rsa-pss' }],
  [-257, { name: 'RS256', hash: 'sha256', kind: 'rsa-pkcs1' }],
  [-258, { name: 'RS384', hash: 'sha384', kind: 'rsa-pkcs1' }],
  [-259, { name: 'RS512', hash: 'sha512', kind: 'rsa-pkcs1' }],
]);

const HASH_LENGTH = { sha256: 32, sha384: 48, sha512: 64 } as const;

/**
 * Tags a header may carry: 1 (epoch time, e.g. a `signingtime` header) is kept as its number. Any
 * other tag is refused by cborg.
 */
const HEADER_TAGS: ((d: () => unknown) => unknown)[] = [];
HEADER_TAGS[1] = (d) => {
  const v = d();
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error('tag 1 (epoch time) must hold a number');
  return v;
};

const STRICT = { strict: true, rejectDuplicateMapKeys: true, allowIndefinite: false, allowUndefined: false, useMaps: true } as const;

function cbor(bytes: Uint8Array, what: string, tags?: ((d: () => unknown) => unknown)[]): unknown {
  try {
    return decode(bytes, { ...STRICT, ...(tags ? { tags } : {}) });
  } catch (e) {
    throw fail('cose.malformed', `${what} is not well-formed CBOR: ${(e as Error).message.replace(/^CBOR decode error: /, '')}`);
  }
}

function headerMap(v: unknown, what: string): CoseHeaders {
  if (!(v instanceof Map)) throw fail('cose.malformed', `${what} is not a CBOR map`);
  for (const k of v.keys()) {
    if (typeof k !== 'number' && typeof k !== 'string') throw fail('cose.malformed', `${what} has a label that is neither an integer nor text`);
  }
  return v as CoseHeaders;
}

/** Decodes a COSE_Sign1 message (tagged 18 or untagged). */
export function decodeCoseSign1(bytes: Uint8Array): CoseSign1 {
  if (bytes.byteLength > MAX_COSE_BYTES) throw fail('cose.malformed', `the COSE_Sign1 message is larger than ${MAX_COSE_BYTES} bytes`, { size: bytes.byteLength, max: MAX_COSE_BYTES });
  const tags: ((d: () => unknown) => unknown)[] = [];
  let tagged = false;
  tags[18] = (d) => {
    tagged = true;
    return d();
  };
  const v = cbor(bytes, 'the COSE_Sign1 message', tags);
  if (!Array.isArray(v) || v.length !== 4) throw fail('cose.malformed', `the COSE_Sign1 message is not a four-element array${tagged ? '' : ' (nor tag 18)'}`);
  const [p, u, payload, signature] = v as unknown[];
  if (!(p instanceof Uint8Array)) throw fail('cose.malformed', 'the COSE_Sign1 protected header is not a byte string');
  if (payload === null) throw fail('cose.malformed', 'the COSE_Sign1 payload is detached; an attached payload is required');
  if (!(payload instanceof Uint8Array)) throw fail('cose.malformed', 'the COSE_Sign1 payload is not a byte string');
  if (!(signature instanceof Uint8Array)) throw fail('cose.malformed', 'the COSE_Sign1 signature is not a byte string');
  const protectedHeaders = p.byteLength === 0 ? new Map() : headerMap(cbor(p, 'the COSE_Sign1 protected header', HEADER_TAGS), 'the protected header');
  const unprotectedHeaders = headerMap(u, 'the unprotected header');
  return { protectedBytes: p, protectedHeaders, unprotectedHeaders, payload, signature };
}

/** The algorithm of the protected header (RFC 9052 §3.1: `alg` must be protected when signed over). */
export function coseAlgorithm(msg: CoseSign1): AlgSpec {
  const alg = msg.protectedHeaders.get(COSE_HEADER.alg);
  if (typeof alg !== 'number') throw fail('cose.malformed', 'the COSE_Sign1 protected header names no algorithm (label 1)');
  const spec = ALGS.get(alg);
  if (!spec) throw fail('cose.unsupported', `COSE algorithm ${alg} is not supported (ES256/384/512, PS256/384/512, RS256/384/512 are)`, { alg });
  return spec;
}

/** The Sig_structure bytes for a COSE_Sign1 with empty external AAD (RFC 9052 §4.4). */
export function sigStructure(msg: CoseSign1, externalAad: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encode(['Signature1', msg.protectedBytes, externalAad, msg.payload]);
}

/** Verifies the signature with `key`; a failure is `cose.signature_invalid`, a key of the wrong type `cose.unsupported`. */
export function verifyCoseSign1(msg: CoseSign1, key: KeyObject): void {
  const alg = coseAlgorithm(msg);
  const type = key.asymmetricKeyType;
  if (alg.kind === 'ecdsa') {
    if (type !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== alg.curve) {
      throw fail('cose.unsupported', `${alg.name} needs an EC key on ${alg.curve}; the signer's key is ${type ?? '?'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}`.trim(), { alg: alg.name });
    }
  } else if (type !== 'rsa' && !(alg.kind === 'rsa-pss' && type === 'rsa-pss')) {
    throw fail('cose.unsupported', `${alg.name} needs an RSA key; the signer's key is ${type ?? '?'}`, { alg: alg.name });
  }
  const data = sigStructure(msg);
  let ok = false;
  try {
    ok =
      alg.kind === 'ecdsa'
        ? cryptoVerify(alg.hash, data, { key, dsaEncoding: 'ieee-p1363' }, msg.signature)
        : alg.kind === 'rsa-pss'
          ? cryptoVerify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_LENGTH[alg.hash] }, msg.signature)
          : cryptoVerify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, msg.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw fail('cose.signature_invalid', `the COSE_Sign1 ${alg.name} signature does not verify with the signer's key`, { alg: alg.name });
}

/** The protected x5chain header (label 33): one DER certificate or an array of them, leaf first. */
export function coseX5Chain(msg: CoseSign1): Uint8Array[] {
  const v = msg.protectedHeaders.get(COSE_HEADER.x5chain);
  if (v instanceof Uint8Array) return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((c) => c instanceof Uint8Array)) return v as Uint8Array[];
  throw fail('cose.malformed', 'the COSE_Sign1 protected header carries no x5chain (label 33) of DER certificates');
}
