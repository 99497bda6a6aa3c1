import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { fail } from '../core/errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
  /** The local CA that issued the server certificate: give it to clients (NODE_EXTRA_CA_CERTS). */
  readonly caPath: string;
  readonly created: boolean;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/**
 * The server's TLS identity, created on first start in the data dir and reused afterwards: a local CA
 * (`tls/ca.pem`, what clients trust) and a server certificate it issued for localhost, 127.0.0.1, ::1,
 * the listen host and the `*.vault.localtest` / `*.attest.localtest` names the Azure SDKs' challenge
 * check can use. Operators replace `tls/server.pem` + `tls/server.key` with their own.
 */
export async function loadOrCreateTls(dataDir: string, host: string, retry = true): Promise<TlsMaterial> {
  const dir = join(dataDir, 'tls');
  const caPath = join(dir, 'ca.pem');
  const certPath = join(dir, 'server.pem');
  const keyPath = join(dir, 'server.key');
  if (existsSync(certPath) && existsSync(keyPath) && existsSync(caPath)) {
    return { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8'), caPath, created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const now = Date.now();
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: 'CN=Conclave local CA',
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 10 * 365 * 86400_000),
    signingAlgorithm: ALG,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names: { type: 'dns' | 'ip'; value: string }[] = [
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
    { type: 'dns', value: 'vault.localtest' },
    { type: 'dns', value: '*.vault.localtest' },
    { type: 'dns', value: 'attest.localtest' },
    { type: 'dns', value: '*.attest.localtest' },
  ];
  if (!names.some((n) => n.value === host) && host !== '0.0.0.0' && host !== '::') {
    names.push({ type: /^[\d.]+$|:/.test(host) ? 'ip' : 'dns', value: host });
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: 'CN=conclave',
    issuer: ca.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 2 * 365 * 86400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  const key = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  // Written into a private temporary directory and renamed into place, so a replica starting at the
  // same time on the same data dir either wins whole or adopts the winner's identity.
  const tmp = `${dir}.${process.pid}.tmp`;
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  writeFileSync(join(tmp, 'server.key'), key, { mode: 0o600 });
  writeFileSync(join(tmp, 'server.pem'), cert.toString('pem') + '\n' + ca.toString('pem') + '\n');
  writeFileSync(join(tmp, 'ca.pem'), ca.toString('pem') + '\n');
  // The CA's key stays, 0600 like server.key, so the CA can also certify the vault's release-signing key.
  writeFileSync(join(tmp, 'ca.key'), x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', caKeys.privateKey), 'PRIVATE KEY'), { mode: 0o600 });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !retry) {
      throw fail('config.invalid', `${dir} exists but lacks ca.pem, server.pem or server.key; restore them or remove the directory`);
    }
    return loadOrCreateTls(dataDir, host, false);
  }
  return { key, cert: readFileSync(certPath, 'utf8'), caPath, created: true };
}

function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f;
  return Buffer.from(b).toString('hex');
}

/** The local CA (certificate and key) of a data dir; undefined for data dirs made before its key was kept. */
export function loadLocalCa(dataDir: string): { readonly certPem: string; readonly keyPem: string } | undefined {
  const dir = join(dataDir, 'tls');
  if (!existsSync(join(dir, 'ca.key')) || !existsSync(join(dir, 'ca.pem'))) return undefined;
  return { certPem: readFileSync(join(dir, 'ca.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'ca.key'), 'utf8') };
}
