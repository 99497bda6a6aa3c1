/**
 * Test support for the release domain (not part of the public surface): a fake attestation authority
 * that publishes a JWKS like MAA's `/certs` and signs tokens, and helpers to sign arbitrary JWS.
 */
import 'reflect-metadata';
import { createHmac, constants, KeyObject, sign as signData, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { normalizeAuthority } from './policy.js';
import type { GetJwks, JsonWebKeySet, Jwk } from './ports.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export type TestAlg = 'RS256' | 'PS256' | 'ES256' | 'ES384';

const WEBCRYPTO_ALG: Record<TestAlg, RsaHashedKeyGenParams | EcKeyGenParams> = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  PS256: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  ES384: { name: 'ECDSA', namedCurve: 'P-384' },
};

function b64u(v: string | Uint8Array): string {
  return Buffer.from(v).toString('base64url');
}

/** Signs `header.payload` with a private key per JWS alg (RS*, PS*, ES*) or an HMAC secret (HS256). */
export function signJws(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject | Uint8Array | string): string {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const alg = String(header.alg);
  let sig: Uint8Array;
  if (alg === 'none') sig = new Uint8Array();
  else if (alg.startsWith('HS')) sig = createHmac(`sha${alg.slice(2)}`, key as Uint8Array | string).update(input).digest();
  else {
    const hash = `sha${alg.slice(2)}`;
    const k = key as KeyObject;
    if (alg.startsWith('ES')) sig = signData(hash, Buffer.from(input), { key: k, dsaEncoding: 'ieee-p1363' });
    else if (alg.startsWith('PS')) sig = signData(hash, Buffer.from(input), { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
    else sig = signData(hash, Buffer.from(input), k);
  }
  return `${input}.${b64u(sig)}`;
}

export interface FakeAuthority {
  readonly issuer: string;
  readonly kid: string;
  readonly alg: TestAlg;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly certificateDer: Uint8Array;
  /** The published key: `{kid, kty, x5c}` only (MAA /certs style) or a full public JWK plus x5c. */
  readonly jwk: Jwk;
  /** Signs a token with this authority's key; `iss` defaults to the issuer. */
  token(claims: Record<string, unknown>, header?: Record<string, unknown>): string;
}

/** A fake authority with a fresh key and a self-signed certificate whose CN is the issuer URL (as MAA's). */
export async function createFakeAuthority(issuer: string, opts: { alg?: TestAlg; kid?: string; x5cOnly?: boolean } = {}): Promise<FakeAuthority> {
  const alg = opts.alg ?? 'RS256';
  const kid = opts.kid ?? `kid-${Math.random().toString(36).slice(2)}`;
  const params = WEBCRYPTO_ALG[alg];
  const keys = (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${issuer}`,
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2040-01-01T00:00:00Z'),
    signingAlgorithm: alg.startsWith('ES') ? { name: 'ECDSA', hash: alg === 'ES384' ? 'SHA-384' : 'SHA-256' } : params,
    keys,
  });
  const privateKey = KeyObject.from(keys.privateKey);
  const publicKey = KeyObject.from(keys.publicKey);
  const certificateDer = new Uint8Array(cert.rawData);
  const x5c = [Buffer.from(certificateDer).toString('base64')];
  const kty = alg.startsWith('ES') ? 'EC' : 'RSA';
  const jwk: Jwk = opts.x5cOnly ? { kid, kty, x5c } : { ...(publicKey.export({ format: 'jwk' }) as Jwk), kid, use: 'sig', alg, x5c };
  return {
    issuer,
    kid,
    alg,
    privateKey,
    publicKey,
    certificateDer,
    jwk,
    token: (claims, header = {}) => signJws({ alg, kid, typ: 'JWT', jku: `${issuer}/certs`, ...header }, { iss: issuer, ...claims }, privateKey),
  };
}

/** A {@link GetJwks} that serves fixed key sets per (normalised) issuer and records every call. */
export function fakeJwksPort(sets: Record<string, JsonWebKeySet | ((forceRefresh: boolean) => JsonWebKeySet)>): GetJwks & { calls: Array<{ issuer: string; forceRefresh: boolean }> } {
  const calls: Array<{ issuer: string; forceRefresh: boolean }> = [];
  const port = async (issuer: string, opts: { forceRefresh: boolean }): Promise<JsonWebKeySet> => {
    calls.push({ issuer, forceRefresh: opts.forceRefresh });
    const s = Object.entries(sets).find(([k]) => normalizeAuthority(k) === normalizeAuthority(issuer))?.[1];
    if (s === undefined) return { keys: [] };
    return typeof s === 'function' ? s(opts.forceRefresh) : s;
  };
  return Object.assign(port, { calls });
}
