/**
 * RFC 5280 path rules beyond the signature: table-driven over small chains built here (ECDSA P-256),
 * each row changing one field of one certificate.
 */
import assert from 'node:assert/strict';
import { type KeyObject, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readFixture, skipWithoutFixtures } from '../../test/fixtures.js';
import { AMD_ROOTS } from '../evidence/snp/roots.js';
import { TAG, encodeInt, encodeOid, tlv } from './der.js';
import { type ErrorCode, isConclaveError } from './errors.js';
import { type Certificate, isIssuedBy, parseCertificate, parseCrl, pemToDer, verifyChain, verifyCrlSignature } from './x509.js';
import { generateEcKeyPair } from './keygen.js';

const ECDSA_SHA256 = tlv(TAG.SEQUENCE, encodeOid('1.2.840.10045.4.3.2'));
const ECDSA_SHA384 = tlv(TAG.SEQUENCE, encodeOid('1.2.840.10045.4.3.3'));
const NB = new Date('2024-01-01T00:00:00Z');
const NA = new Date('2034-01-01T00:00:00Z');
const AT = new Date('2025-01-01T00:00:00Z');

const name = (cn: string) => tlv(TAG.SEQUENCE, tlv(TAG.SET, tlv(TAG.SEQUENCE, encodeOid('2.5.4.3'), tlv(TAG.UTF8_STRING, new Uint8Array(Buffer.from(cn))))));
const utc = (d: Date) => tlv(TAG.UTC_TIME, new Uint8Array(Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`)));
const ext = (o: string, critical: boolean, value: Uint8Array) => tlv(TAG.SEQUENCE, encodeOid(o), ...(critical ? [tlv(TAG.BOOLEAN, Uint8Array.of(0xff))] : []), tlv(TAG.OCTET_STRING, value));
const bc = (ca: boolean, pathLen?: number) => ext('2.5.29.19', true, tlv(TAG.SEQUENCE, ...(ca ? [tlv(TAG.BOOLEAN, Uint8Array.of(0xff))] : []), ...(pathLen !== undefined ? [encodeInt(pathLen)] : [])));
/** keyUsage with keyCertSign + cRLSign (CA), keyCertSign only, or digitalSignature only. */
const KU = { ca: tlv(TAG.BIT_STRING, Uint8Array.of(1, 0x06)), certOnly: tlv(TAG.BIT_STRING, Uint8Array.of(2, 0x04)), leaf: tlv(TAG.BIT_STRING, Uint8Array.of(7, 0x80)) };
const ku = (v: Uint8Array) => ext('2.5.29.15', true, v);

interface Node {
  readonly cert: Certificate;
  readonly key: KeyObject;
  readonly cn: string;
}

function issue(cn: string, issuer: Node | undefined, extensions: Uint8Array[], o: { innerAlg?: Uint8Array; notAfter?: Date } = {}): Node {
  const { privateKey, publicKey } = generateEcKeyPair('P-256');
  const tbs = tlv(
    TAG.SEQUENCE,
    tlv(0xa0, encodeInt(2)),
    encodeInt(BigInt(Math.floor(Math.random() * 1e9) + 1)),
    o.innerAlg ?? ECDSA_SHA256,
    name(issuer?.cn ?? cn),
    tlv(TAG.SEQUENCE, utc(NB), utc(o.notAfter ?? NA)),
    name(cn),
    new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    tlv(0xa3, tlv(TAG.SEQUENCE, ...extensions)),
  );
  const sig = sign('sha256', tbs, { key: issuer?.key ?? privateKey, dsaEncoding: 'der' });
  const der = tlv(TAG.SEQUENCE, tbs, ECDSA_SHA256, tlv(TAG.BIT_STRING, Uint8Array.of(0), new Uint8Array(sig)));
  return { cert: parseCertificate(der), key: privateKey, cn };
}

const root = issue('Root', undefined, [bc(true, 1), ku(KU.ca)]);
const ca = issue('CA', root, [bc(true, 0), ku(KU.ca)]);
const leafOf = (issuer: Node, extra: Uint8Array[] = []) => issue('Leaf', issuer, [bc(false), ku(KU.leaf), ...extra]);

function refused(f: () => unknown, code: ErrorCode = 'cert.chain_invalid') {
  assert.throws(f, (e) => {
    assert.ok(isConclaveError(e, code), String(e));
    return true;
  });
}

describe('pemToDer', () => {
  const BEGIN = '-----BEGIN CERTIFICATE-----';
  const END = '-----END CERTIFICATE-----';

  test('linear in its input: 1 MB of BEGIN lines with no END is no certificate, read in well under a second', () => {
    // Certificate chains come from anonymous requests (SNP VcekCertChain, a quote's PCK chain, an AzureGuest Proof)
    // and are split before they are counted. The lazy regex scanned to the end of the text from every BEGIN.
    const text = `${BEGIN}\n`.repeat(37_000);
    const t = performance.now();
    assert.deepEqual(pemToDer(text), []);
    const ms = performance.now() - t;
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
  });

  test('reads what the regex it replaces read: each BEGIN to the nearest END after it, whitespace dropped, the rest ignored', () => {
    const regex = (pem: string, label = 'CERTIFICATE') =>
      [...pem.matchAll(new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g'))].map((m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
    const token = fc.constantFrom(BEGIN, END, '-----BEGIN X509 CRL-----', '-----END X509 CRL-----', 'MIIB', 'QUJD', '\n', ' ', '-----', 'zz==');
    fc.assert(
      fc.property(fc.array(token, { maxLength: 24 }), (parts) => {
        const pem = parts.join('');
        assert.deepEqual(pemToDer(pem), regex(pem));
        assert.deepEqual(pemToDer(pem, 'X509 CRL'), regex(pem, 'X509 CRL'));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('X.509 path rules (RFC 5280 §6.1)', () => {
  test('a well-formed three-level chain verifies', () => {
    verifyChain([leafOf(ca).cert, ca.cert], root.cert, { at: AT });
  });

  test('an unknown critical extension is refused; an unknown non-critical one is not', () => {
    refused(() => verifyChain([leafOf(ca, [ext('1.2.3.4.5', true, tlv(TAG.NULL))]).cert, ca.cert], root.cert, { at: AT }));
    verifyChain([leafOf(ca, [ext('1.2.3.4.5', false, tlv(TAG.NULL))]).cert, ca.cert], root.cert, { at: AT });
  });

  test('an issuer without basicConstraints cA is refused', () => {
    const notCa = issue('CA', root, [bc(false), ku(KU.ca)]);
    refused(() => verifyChain([leafOf(notCa).cert, notCa.cert], root.cert, { at: AT }));
  });

  test('a CA whose keyUsage lacks keyCertSign is refused', () => {
    const noCertSign = issue('CA', root, [bc(true, 0), ku(KU.leaf)]);
    refused(() => verifyChain([leafOf(noCertSign).cert, noCertSign.cert], root.cert, { at: AT }));
  });

  test('pathLen is honoured: a CA with pathLen 0 cannot have a CA below it', () => {
    const sub = issue('Sub CA', ca, [bc(true), ku(KU.ca)]);
    refused(() => verifyChain([leafOf(sub).cert, sub.cert, ca.cert], root.cert, { at: AT }));
    // the root's pathLen 1 is exceeded by two intermediates too
    const looseCa = issue('CA', root, [bc(true), ku(KU.ca)]);
    const sub2 = issue('Sub CA', looseCa, [bc(true), ku(KU.ca)]);
    refused(() => verifyChain([leafOf(sub2).cert, sub2.cert, looseCa.cert], root.cert, { at: AT }));
    const sub1 = issue('Sub CA', looseCa, [bc(true), ku(KU.ca)]);
    verifyChain([sub1.cert, looseCa.cert], root.cert, { at: AT }); // a CA as the end entity: one intermediate below the root
    verifyChain([leafOf(looseCa).cert, looseCa.cert], root.cert, { at: AT });
  });

  test('validity is checked at the verification time', () => {
    const short = issue('Leaf', ca, [bc(false), ku(KU.leaf)], { notAfter: new Date('2024-06-01T00:00:00Z') });
    verifyChain([short.cert, ca.cert], root.cert, { at: new Date('2024-05-01T00:00:00Z') });
    refused(() => verifyChain([short.cert, ca.cert], root.cert, { at: AT }), 'cert.expired');
  });

  test('an invalid verification time (new Date(NaN)) fails closed, typed, whatever the validity', () => {
    // Every comparison with NaN is false: `at < notBefore || at > notAfter` never refused it, so an expired
    // chain passed, and a check without enforcement reported no certificate out of validity.
    const expired = issue('Expired', ca, [bc(false), ku(KU.leaf)], { notAfter: new Date('2024-06-01T00:00:00Z') });
    for (const at of [new Date(Number.NaN), new Date('not a date')]) {
      refused(() => verifyChain([leafOf(ca).cert, ca.cert], root.cert, { at }), 'request.invalid');
      refused(() => verifyChain([expired.cert, ca.cert], root.cert, { at }), 'request.invalid');
      refused(() => verifyChain([expired.cert, ca.cert], root.cert, { at, enforceValidity: false }), 'request.invalid');
    }
    refused(() => verifyChain([expired.cert, ca.cert], root.cert, { at: AT }), 'cert.expired');
  });
  test('an inner signature AlgorithmIdentifier that differs from the outer one is refused at parse', () => {
    assert.throws(() => issue('Leaf', ca, [bc(false)], { innerAlg: ECDSA_SHA384 }), (e) => isConclaveError(e, 'der.malformed'));
  });

  test('a CRL signed by a CA without cRLSign is refused', () => {
    const certOnly = issue('CA', root, [bc(true, 0), ku(KU.certOnly)]);
    const tbs = tlv(TAG.SEQUENCE, encodeInt(1), ECDSA_SHA256, name('CA'), utc(NB), utc(NA));
    const sig = sign('sha256', tbs, { key: certOnly.key, dsaEncoding: 'der' });
    const crl = parseCrl(tlv(TAG.SEQUENCE, tbs, ECDSA_SHA256, tlv(TAG.BIT_STRING, Uint8Array.of(0), new Uint8Array(sig))));
    refused(() => verifyCrlSignature(crl, certOnly.cert), 'crl.invalid');
    verifyCrlSignature(crl, { ...certOnly.cert, keyUsage: 0x60 });
  });

  test('duplicate extensions and an explicit critical FALSE are refused at parse', () => {
    assert.throws(() => issue('Leaf', ca, [bc(false), bc(false)]), (e) => isConclaveError(e, 'der.malformed'));
    const explicitFalse = tlv(TAG.SEQUENCE, encodeOid('1.2.3.4'), tlv(TAG.BOOLEAN, Uint8Array.of(0)), tlv(TAG.OCTET_STRING, tlv(TAG.NULL)));
    assert.throws(() => issue('Leaf', ca, [explicitFalse]), (e) => isConclaveError(e, 'der.malformed'));
  });
});

/**
 * Mutations of real vendor encodings (fast-check): each one either fails with a typed ConclaveError, or
 * parses to a structure whose signature no longer verifies (the signed meaning changed), or is the
 * original. DER has one encoding per value, so nothing parses to the same meaning with other bytes.
 */
describe('certificate and CRL parsing properties (fast-check)', { skip: skipWithoutFixtures() }, () => {
  type Mutation = { kind: 'set' | 'insert' | 'delete' | 'truncate'; at: number; value: number };
  const mutation = (len: number) =>
    fc.record({ kind: fc.constantFrom<Mutation['kind']>('set', 'insert', 'delete', 'truncate'), at: fc.nat(len - 1), value: fc.integer({ min: 0, max: 255 }) });
  function apply(b: Uint8Array, m: Mutation): Uint8Array {
    if (m.kind === 'set') return Uint8Array.from(b.map((x, i) => (i === m.at ? m.value : x)));
    if (m.kind === 'insert') return Uint8Array.from([...b.subarray(0, m.at), m.value, ...b.subarray(m.at)]);
    if (m.kind === 'delete') return Uint8Array.from([...b.subarray(0, m.at), ...b.subarray(m.at + 1)]);
    return b.subarray(0, m.at);
  }
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
  const typed = (e: unknown) => assert.ok(isConclaveError(e), `untyped failure: ${String(e)}`);

  const cases: Array<[string, Uint8Array, Certificate]> = [
    ['Intel PCK certificate', new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'pck.der')), parseCertificate(new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'platform.der')))],
    ['AMD VCEK (RSA-PSS signed)', new Uint8Array(readFixture('amd', 'snp-milan-virtee', 'vcek.der')), AMD_ROOTS.Milan.ask],
  ];
  for (const [what, der, issuer] of cases) {
    test(`${what}: a mutation fails typed, breaks the signature, or changes nothing`, () => {
      assert.ok(isIssuedBy(parseCertificate(der), issuer));
      fc.assert(
        fc.property(mutation(der.length), (m) => {
          const bytes = apply(der, m);
          let cert: Certificate;
          try {
            cert = parseCertificate(bytes);
          } catch (e) {
            return typed(e);
          }
          if (!same(bytes, der)) assert.equal(isIssuedBy(cert, issuer), false, `mutation ${JSON.stringify(m)} parsed and still verifies`);
        }),
        { numRuns: 400 },
      );
    });
  }

  test('Intel PCK CRL: a mutation fails typed, breaks the signature, or changes nothing', () => {
    const der = new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'pck_platform_crl.der'));
    const issuer = parseCertificate(new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'platform.der')));
    verifyCrlSignature(parseCrl(der), issuer);
    fc.assert(
      fc.property(mutation(der.length), (m) => {
        const bytes = apply(der, m);
        try {
          const crl = parseCrl(bytes);
          if (!same(bytes, der)) assert.throws(() => verifyCrlSignature(crl, issuer), (e) => isConclaveError(e, 'crl.invalid'));
        } catch (e) {
          typed(e);
        }
      }),
      { numRuns: 400 },
    );
  });
});
