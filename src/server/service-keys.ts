import 'reflect-metadata';
import { type KeyObject, createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { Sealer } from '../hsm/master-key.js';
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

/**
 * Loads the named service key from the store, or creates it once. Replicas starting together race on
 * the insert; the loser discards its key and reads the winner's, so all replicas sign with one key.
 */
export async function loadOrCreateServiceKey(
  db: Database,
  sealer: Sealer,
  name: string,
  alg: 'RS256' | 'ES256',
  subject: string,
  nowMs: number,
): Promise<ServiceKey> {
  const existing = await read(db, sealer, name);
  if (existing) return existing;
  const keys = (await webcrypto.subtle.generateKey(ALGS[alg], true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${subject.replace(/[,=+<>#;"\\]/g, ' ')}`,
    notBefore: new Date(nowMs - 3600_000),
    notAfter: new Date(nowMs + 5 * 365 * 86400_000),
    signingAlgorithm: ALGS[alg],
    keys,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
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
