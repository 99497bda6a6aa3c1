/**
 * Tests only: a UVM endorsement signed by a throw-away CA (ES384, CWT form or legacy form), with the
 * did:x509 issuer that names that CA. It shows what anyone can make: a self-consistent endorsement
 * whose issuer is not Microsoft's, which the attestation policy must not trust.
 */
import 'reflect-metadata';
import { createHash, KeyObject, sign, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { encode } from 'cborg';

const ALG = { name: 'ECDSA', namedCurve: 'P-384' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-384' } as const;

export interface TestUvmSigner {
  readonly issuer: string;
  readonly chain: Uint8Array[];
  /** Signs an endorsement of `measurement` (hex). */
  endorse(measurement: string, opts?: { svn?: number; feed?: string; form?: 'cwt' | 'legacy'; protectedExtra?: [number | string, unknown][] }): Uint8Array;
}

export async function createTestUvmSigner(eku = '1.3.6.1.4.1.311.76.59.1.2'): Promise<TestUvmSigner> {
  const rootKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date('2020-01-01T00:00:00Z');
  const notAfter = new Date('2040-01-01T00:00:00Z');
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Not Microsoft UVM Root',
    notBefore,
    notAfter,
    signingAlgorithm: SIGN,
    keys: rootKeys,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=Not ContainerPlat',
    issuer: root.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGN,
    publicKey: leafKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.ExtendedKeyUsageExtension([eku])],
  });
  const chain = [new Uint8Array(leaf.rawData), new Uint8Array(root.rawData)];
  const issuer = `did:x509:0:sha256:${createHash('sha256').update(chain[1]!).digest('base64url')}::eku:${eku}`;
  const privateKey = KeyObject.from(leafKeys.privateKey);
  return {
    issuer,
    chain,
    endorse(measurement, opts = {}) {
      const form = opts.form ?? 'cwt';
      const feed = opts.feed ?? 'ContainerPlat-AMD-UVM';
      const headers = new Map<number | string, unknown>([
        [1, -35],
        [3, 'application/json'],
        [33, chain],
      ]);
      let payload: Uint8Array;
      if (form === 'cwt') {
        headers.set(
          15,
          new Map<number | string, unknown>([
            [1, issuer],
            [2, feed],
            ['svn', opts.svn ?? 101],
          ]),
        );
        payload = new Uint8Array(Buffer.from(measurement, 'hex'));
      } else {
        headers.set('iss', issuer);
        headers.set('feed', feed);
        payload = new Uint8Array(Buffer.from(JSON.stringify({ 'x-ms-sevsnpvm-guestsvn': String(opts.svn ?? 101), 'x-ms-sevsnpvm-launchmeasurement': measurement })));
      }
      for (const [k, v] of opts.protectedExtra ?? []) headers.set(k, v);
      const protectedBytes = encode(headers);
      const toBeSigned = encode(['Signature1', protectedBytes, new Uint8Array(0), payload]);
      const signature = sign('sha384', toBeSigned, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return encodeTagged18([protectedBytes, new Map(), payload, new Uint8Array(signature)]);
    },
  };
}

/** CBOR tag 18 (COSE_Sign1) around the encoded array. */
function encodeTagged18(value: unknown[]): Uint8Array {
  const body = encode(value);
  return new Uint8Array(Buffer.concat([Buffer.from([0xd2]), Buffer.from(body)]));
}
