import 'reflect-metadata';
import { type KeyObject, X509Certificate, createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { fail } from '../core/errors.js';
import type { Sealer } from './master-key.js';
import type { Pkcs11KeyProtector, Pkcs11ServiceSigner } from './pkcs11.js';
import type { Database } from '../storage/database.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** A signing identity of the service itself (access tokens, attestation tokens, release responses). */
export interface ServiceKey {
  readonly name: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Self-signed certificate over the public key (DER), published in x5c. */
  readonly certDer: Uint8Array;
  /** Key id: base64url SHA-256 of the certificate (what MAA publishes as kid is likewise cert-derived). */
  readonly kid: string;
}

const ALGS = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
  ES256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
} as const;

const commonName = (subject: string) => `CN=${subject.replace(/[,=+<>#;"\\]/g, ' ')}`;
const serialNumber = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex').replace(/^[89a-f]/, '1');
const validity = (nowMs: number) => ({ notBefore: new Date(nowMs - 3600_000), notAfter: new Date(nowMs + 5 * 365 * 86400_000) });

/**
 * Loads the named service key from the store, or creates it once. Replicas starting together race on
 * the insert; the loser discards its key and reads the winner's, so all replicas sign with one key.
 */
/** Certificate extensions of a service key: digital signature, and the host names it speaks for (SAN). */
function extensionsFor(hosts: readonly string[] | undefined): x509.Extension[] {
  const ext: x509.Extension[] = [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)];
  if (hosts && hosts.length > 0) {
    ext.push(new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: /^[\d.]+$|:/.test(h) ? ('ip' as const) : ('dns' as const), value: h }))));
  }
  return ext;
}

export async function loadOrCreateServiceKey(
  db: Database,
  sealer: Sealer,
  name: string,
  alg: 'RS256' | 'ES256',
  subject: string,
  nowMs: number,
  hosts?: readonly string[],
): Promise<ServiceKey> {
  const existing = await read(db, sealer, name);
  if (existing) return existing;
  const keys = (await webcrypto.subtle.generateKey(ALGS[alg], true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: commonName(subject),
    ...validity(nowMs),
    signingAlgorithm: ALGS[alg],
    keys,
    extensions: extensionsFor(hosts),
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  await db.run('INSERT INTO service_keys (name, alg, sealed_private, cert_der, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING', [name, alg, Buffer.from(sealer.seal(pkcs8, `service-key:${name}`)), Buffer.from(cert.rawData), Math.floor(nowMs / 1000)]);
  const stored = await read(db, sealer, name);
  if (!stored) throw new Error(`service key ${name} vanished after insert`);
  return stored;
}

async function read(db: Database, sealer: Sealer, name: string): Promise<ServiceKey | undefined> {
  const row = await db.get<{ alg: string; sealed_private: Uint8Array; cert_der: Uint8Array }>('SELECT alg, sealed_private, cert_der FROM service_keys WHERE name = ?', [name]);
  if (!row) return undefined;
  const privateKey = createPrivateKey({ key: Buffer.from(sealer.open(new Uint8Array(row.sealed_private), `service-key:${name}`)), format: 'der', type: 'pkcs8' });
  const certDer = new Uint8Array(row.cert_der);
  return {
    name,
    alg: row.alg as 'RS256' | 'ES256',
    privateKey,
    publicKey: createPublicKey(privateKey),
    certDer,
    kid: createHash('sha256').update(certDer).digest('base64url'),
  };
}

/** An RS256 service key whose private half stays in a PKCS#11 token; the store keeps only its certificate. */
export interface TokenServiceKey {
  readonly name: string;
  readonly alg: 'RS256';
  readonly publicKey: KeyObject;
  readonly certDer: Uint8Array;
  readonly kid: string;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export type ServiceKeyToken = Pick<Pkcs11KeyProtector, 'serviceSigner' | 'findServiceSigner'>;

/**
 * The row of a token-held key is apart from the software key of the same name (which stays usable when
 * the server runs without --hsm); `sealed_private` is empty: there is nothing to seal.
 */
const tokenRowName = (name: string) => `pkcs11:${name}`;

/**
 * Loads the certificate of the named token-held service key, or certifies the token's key once. The
 * stored certificate pins which token object signs (by its public key), so replicas sharing the store
 * and the token agree even if a race left two key pairs with the label. A pinned key the token no longer
 * holds is `hsm.key_untrusted`: another PIN holder may have replaced it, so nothing is certified anew
 * until an operator unpins it (`conclave hsm unpin-service-key`, after re-initialising the token on purpose).
 */
export async function loadOrCreateTokenServiceKey(db: Database, token: ServiceKeyToken, name: string, subject: string, nowMs: number, hosts?: readonly string[]): Promise<TokenServiceKey> {
  const row = tokenRowName(name);
  const stored = await readCertificate(db, row);
  if (stored) return tokenServiceKey(name, await pinnedSigner(token, name, stored), stored);
  const signer = await token.serviceSigner(name);
  const cert = await certifyTokenKey(signer, subject, nowMs, hosts);
  await db.run('INSERT INTO service_keys (name, alg, sealed_private, cert_der, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING', [row, 'RS256', Buffer.alloc(0), Buffer.from(cert), Math.floor(nowMs / 1000)]);
  const winner = await readCertificate(db, row);
  if (!winner) throw fail('hsm.unavailable', `the certificate of the service key ${name} vanished after insert`, { reason: 'object_not_found' });
  return tokenServiceKey(name, await pinnedSigner(token, name, winner), winner);
}

/** The token key pinned by a stored certificate, checked to be in the token and protected there. */
async function pinnedSigner(token: ServiceKeyToken, name: string, certDer: Uint8Array): Promise<Pkcs11ServiceSigner> {
  const signer = await token.findServiceSigner(name, new X509Certificate(certDer).publicKey);
  if (signer) return signer;
  const pin = createHash('sha256').update(new X509Certificate(certDer).publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
  throw fail(
    'hsm.key_untrusted',
    `the HSM token does not hold the service key ${name} pinned by its stored certificate (SPKI SHA-256 ${pin}); if the token was re-initialised on purpose, run \`conclave hsm unpin-service-key ${name}\``,
    { name, spkiSha256: pin },
  );
}

/**
 * Start-up check: every token-held service key pinned in the store is in the token, sensitive and not
 * extractable. Throws `hsm.key_untrusted` (the server then refuses to start).
 */
export async function verifyPinnedTokenServiceKeys(db: Database, token: ServiceKeyToken): Promise<string[]> {
  const rows = await db.all<{ name: string; cert_der: Uint8Array }>("SELECT name, cert_der FROM service_keys WHERE name LIKE 'pkcs11:%' ORDER BY name", []);
  for (const r of rows) await pinnedSigner(token, r.name.slice(tokenRowName('').length), new Uint8Array(r.cert_der));
  return rows.map((r) => r.name.slice(tokenRowName('').length));
}

/** Forgets the pinned certificate of a token-held service key (operator action after a deliberate token re-initialisation). */
export async function unpinTokenServiceKey(db: Database, name: string): Promise<boolean> {
  const had = await readCertificate(db, tokenRowName(name));
  if (!had) return false;
  await db.run('DELETE FROM service_keys WHERE name = ?', [tokenRowName(name)]);
  return true;
}

async function readCertificate(db: Database, row: string): Promise<Uint8Array | undefined> {
  const r = await db.get<{ cert_der: Uint8Array }>('SELECT cert_der FROM service_keys WHERE name = ?', [row]);
  return r ? new Uint8Array(r.cert_der) : undefined;
}

function tokenServiceKey(name: string, signer: Pkcs11ServiceSigner, certDer: Uint8Array): TokenServiceKey {
  return { name, alg: 'RS256', publicKey: signer.publicKey, certDer, kid: createHash('sha256').update(certDer).digest('base64url'), sign: (data) => signer.sign(data) };
}

/** Self-signed certificate over the token's public key; the TBS signature is made by the token. */
async function certifyTokenKey(signer: Pkcs11ServiceSigner, subject: string, nowMs: number, hosts?: readonly string[]): Promise<Uint8Array> {
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-256' } };
  // @peculiar/x509 signs through `crypto.subtle.sign(alg, signingKey, tbs)`: that call goes to the token.
  const tokenCrypto = { subtle: { sign: async (_alg: unknown, _key: unknown, tbs: ArrayBuffer) => signer.sign(new Uint8Array(tbs)) } } as unknown as Crypto;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: commonName(subject),
      issuer: commonName(subject),
      ...validity(nowMs),
      publicKey: new Uint8Array(signer.publicKey.export({ type: 'spki', format: 'der' })),
      signingKey: { algorithm, type: 'private', extractable: false, usages: ['sign'] } as unknown as CryptoKey,
      signingAlgorithm: algorithm,
      extensions: extensionsFor(hosts),
    },
    tokenCrypto,
  );
  return new Uint8Array(cert.rawData);
}
