import 'reflect-metadata';
import { type KeyObject, createPrivateKey, sign, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { b64url } from '../../src/core/bytes.js';
import { tempDir } from './server.js';

/** A policy-management identity for tests: a self-signed RSA certificate and its private key. */
export interface PolicySigner {
  readonly certDer: Uint8Array;
  readonly privateKey: KeyObject;
  /** A PEM file of the certificate, for `--policy-certificate`. */
  readonly pemPath: string;
}

export async function newPolicySigner(name: string): Promise<PolicySigner> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    { serialNumber: '01', name: `CN=${name}`, notBefore: new Date(Date.now() - 3600_000), notAfter: new Date(Date.now() + 86400_000), signingAlgorithm: alg, keys },
    webcrypto as unknown as Crypto,
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const pemPath = join(tempDir('conclave-signer-'), `${name}.pem`);
  writeFileSync(pemPath, cert.toString('pem'));
  return { certDer: new Uint8Array(cert.rawData), privateKey: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }), pemPath };
}

/**
 * A compact RS256 JWS of a policy-management operation: `payload` as JSON ('' for an empty payload, as the
 * Azure SDK sends a reset), `signer`'s certificate in x5c, signed with `key` (the signer's own unless given).
 */
export function policyManagementJws(signer: PolicySigner, payload: unknown, key: KeyObject = signer.privateKey): string {
  const header = b64url(JSON.stringify({ alg: 'RS256', x5c: [Buffer.from(signer.certDer).toString('base64')] }));
  const input = `${header}.${payload === '' ? '' : b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}
