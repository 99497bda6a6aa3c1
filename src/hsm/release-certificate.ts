/**
 * The certificate of the vault's release-signing key. Azure's SKR sidecar checks a release JWS by its
 * `x5c` chain: signature by x5c[0], chain to a trusted root, leaf valid for the vault's DNS name
 * (skr-maa-protocol.md §2.3). So the leaf is issued by a CA the TEE can trust — the server's own local
 * CA (`<data-dir>/tls/ca.pem`) by default, or an operator's CA (`--release-cert`/`--release-key`) — and
 * names the vault host in its subjectAltName; the chain goes out leaf first, CA last.
 */
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign as cryptoSign, webcrypto, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { fail } from '../core/errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export type ReleaseAlg = 'RS256' | 'ES256' | 'ES384';

/** What the vault signs releases with: the chain (leaf first), the JWS alg and the signing function. */
export interface ReleaseIdentity {
  readonly certDer: Uint8Array;
  readonly chainDer: readonly Uint8Array[];
  readonly alg: ReleaseAlg;
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

function pemCertificates(pem: string): Uint8Array[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/g)].map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
}

function algOf(key: KeyObject): ReleaseAlg | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec') return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ES384' : undefined;
  return undefined;
}

/** JWS signing with a private key held here: PKCS#1 v1.5 for RS256, raw r‖s (JWA §3.4) for ES*. */
export function signerFor(privateKey: KeyObject, alg: ReleaseAlg): (data: Uint8Array) => Uint8Array {
  const hash = alg === 'ES384' ? 'sha384' : 'sha256';
  return (data) => new Uint8Array(cryptoSign(hash, data, alg === 'RS256' ? privateKey : { key: privateKey, dsaEncoding: 'ieee-p1363' }));
}

/** Whether a certificate's subjectAltName covers `host` (DNS name or IP address). */
export function certificateNamesHost(der: Uint8Array, host: string): boolean {
  const cert = new X509Certificate(Buffer.from(der));
  return isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host, { subject: 'never' }) !== undefined;
}

/**
 * A leaf certificate for `publicKey` issued by the CA (PEM certificate and PKCS#8 key), naming `host`:
 * digital signature only, not a CA, valid for two years or until the CA expires.
 */
export async function issueReleaseCertificate(ca: { readonly certPem: string; readonly keyPem: string }, publicKey: KeyObject, subject: string, host: string, nowMs: number): Promise<{ certDer: Uint8Array; chainDer: Uint8Array[] }> {
  const caDer = pemCertificates(ca.certPem)[0];
  if (!caDer) throw fail('config.invalid', 'the local CA certificate (tls/ca.pem) holds no certificate');
  const caCert = new x509.X509Certificate(Buffer.from(caDer));
  const caKeyObject = createPrivateKey(ca.keyPem);
  const signingAlgorithm =
    caKeyObject.asymmetricKeyType === 'ec'
      ? { name: 'ECDSA', namedCurve: caKeyObject.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256', hash: caKeyObject.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'SHA-384' : 'SHA-256' }
      : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const caKey = await webcrypto.subtle.importKey('pkcs8', caKeyObject.export({ format: 'der', type: 'pkcs8' }), signingAlgorithm, false, ['sign']);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const notAfter = Math.min(nowMs + 2 * 365 * 86400_000, caCert.notAfter.getTime());
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: `CN=${subject.replace(/[,=+<>#;"\\]/g, ' ')}`,
    issuer: caCert.subject,
    notBefore: new Date(nowMs - 3600_000),
    notAfter: new Date(notAfter),
    signingAlgorithm,
    publicKey: new Uint8Array((publicKey.type === 'public' ? publicKey : createPublicKey(publicKey)).export({ type: 'spki', format: 'der' })),
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: isIP(host) ? 'ip' : 'dns', value: host }]),
    ],
  });
  const der = new Uint8Array(leaf.rawData);
  return { certDer: der, chainDer: [der, caDer] };
}

/**
 * The operator's release-signing identity (`--release-cert` PEM chain, leaf first; `--release-key` PEM
 * private key): the leaf must hold the key's public half, and the key be RSA, P-256 or P-384.
 */
export function loadOperatorReleaseIdentity(certPath: string, keyPath: string): { chainDer: Uint8Array[]; privateKey: KeyObject; alg: ReleaseAlg } {
  let chainDer: Uint8Array[];
  let privateKey: KeyObject;
  try {
    chainDer = pemCertificates(readFileSync(certPath, 'utf8'));
    privateKey = createPrivateKey(readFileSync(keyPath, 'utf8'));
  } catch (e) {
    throw fail('config.invalid', `release-cert ${certPath} / release-key ${keyPath} cannot be read as PEM`, { option: 'releaseCert' }, e);
  }
  const leaf = chainDer[0];
  if (!leaf) throw fail('config.invalid', `release-cert ${certPath} holds no certificate`, { option: 'releaseCert' });
  if (!new X509Certificate(Buffer.from(leaf)).checkPrivateKey(privateKey)) throw fail('config.invalid', `release-key ${keyPath} is not the key of the first certificate in ${certPath}`, { option: 'releaseKey' });
  const alg = algOf(privateKey);
  if (!alg) throw fail('config.invalid', `release-key ${keyPath} must be RSA, P-256 or P-384`, { option: 'releaseKey' });
  return { chainDer, privateKey, alg };
}
