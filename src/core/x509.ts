import { type KeyObject, constants, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import {
  TAG,
  type Tlv,
  bitString,
  children,
  content,
  encoding,
  expectTag,
  integer,
  oid,
  parseDer,
  readTlv,
  smallInt,
  text,
  time,
} from './der.js';
import { type ErrorCode, fail } from './errors.js';

/** RFC 5280 certificate, parsed just far enough for chain, CRL and extension checks. */
export interface Certificate {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly signature: Uint8Array;
  /** Serial number as lowercase hex without leading zeros (CRL matching key). */
  readonly serial: string;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly issuerCN: string | undefined;
  readonly subjectCN: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Uint8Array;
  readonly extensions: ReadonlyMap<string, Extension>;
  readonly isCA: boolean;
}

export interface Extension {
  readonly critical: boolean;
  /** The extnValue OCTET STRING's content (the DER of the extension body). */
  readonly value: Uint8Array;
}

export type SignatureAlgorithm =
  | { kind: 'ecdsa'; hash: 'sha256' | 'sha384' | 'sha512' }
  | { kind: 'rsa-pkcs1'; hash: 'sha256' | 'sha384' | 'sha512' }
  | { kind: 'rsa-pss'; hash: 'sha256' | 'sha384' | 'sha512'; saltLength: number };

const OID_HASH: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

export function parseSignatureAlgorithm(t: Tlv): SignatureAlgorithm {
  const [algOid, params] = children(expectTag(t, TAG.SEQUENCE, 'AlgorithmIdentifier'));
  const o = oid(algOid!);
  switch (o) {
    case '1.2.840.10045.4.3.2':
      return { kind: 'ecdsa', hash: 'sha256' };
    case '1.2.840.10045.4.3.3':
      return { kind: 'ecdsa', hash: 'sha384' };
    case '1.2.840.10045.4.3.4':
      return { kind: 'ecdsa', hash: 'sha512' };
    case '1.2.840.113549.1.1.11':
      return { kind: 'rsa-pkcs1', hash: 'sha256' };
    case '1.2.840.113549.1.1.12':
      return { kind: 'rsa-pkcs1', hash: 'sha384' };
    case '1.2.840.113549.1.1.13':
      return { kind: 'rsa-pkcs1', hash: 'sha512' };
    case '1.2.840.113549.1.1.10': {
      // RSASSA-PSS-params (RFC 4055 §3.1): [0] hashAlgorithm, [1] maskGenAlgorithm, [2] saltLength
      let hash: 'sha256' | 'sha384' | 'sha512' | undefined;
      let saltLength = 20;
      if (params && params.tag === TAG.SEQUENCE) {
        for (const p of children(params)) {
          const inner = readTlv(p.input, p.contentStart, p.end);
          if (p.tag === 0xa0) hash = OID_HASH[oid(children(inner)[0]!)];
          else if (p.tag === 0xa2) saltLength = smallInt(inner);
        }
      }
      if (!hash) throw fail('der.malformed', 'RSA-PSS parameters without a supported hash');
      return { kind: 'rsa-pss', hash, saltLength };
    }
    default:
      throw fail('evidence.unsupported', `unsupported signature algorithm ${o}`, { oid: o });
  }
}

const OID_CN = '2.5.4.3';

function commonName(name: Tlv): string | undefined {
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [t, v] = children(atv);
      if (t && v && oid(t) === OID_CN) return text(v);
    }
  }
  return undefined;
}

/** Parses a DER certificate. */
export function parseCertificate(der: Uint8Array): Certificate {
  const cert = expectTag(parseDer(der, 'certificate'), TAG.SEQUENCE, 'Certificate');
  const [tbsT, sigAlgT, sigT] = children(cert);
  if (!tbsT || !sigAlgT || !sigT) throw fail('der.malformed', 'certificate lacks tbsCertificate/signature');
  const tbsKids = children(expectTag(tbsT, TAG.SEQUENCE, 'TBSCertificate'));
  let i = 0;
  if (tbsKids[0]?.tag === 0xa0) i++; // [0] version
  const serialT = tbsKids[i++];
  i++; // signature AlgorithmIdentifier (inner)
  const issuerT = tbsKids[i++];
  const validityT = tbsKids[i++];
  const subjectT = tbsKids[i++];
  const spkiT = tbsKids[i++];
  if (!serialT || !issuerT || !validityT || !subjectT || !spkiT) throw fail('der.malformed', 'TBSCertificate is incomplete');
  const [nb, na] = children(validityT);
  if (!nb || !na) throw fail('der.malformed', 'Validity is incomplete');
  const extensions = new Map<string, Extension>();
  let isCA = false;
  for (; i < tbsKids.length; i++) {
    const k = tbsKids[i]!;
    if (k.tag !== 0xa3) continue;
    const seq = readTlv(k.input, k.contentStart, k.end);
    for (const ext of children(seq)) {
      const parts = children(ext);
      const id = oid(parts[0]!);
      const critical = parts.length === 3 && parts[1]!.tag === TAG.BOOLEAN && content(parts[1]!)[0] !== 0;
      const value = content(expectTag(parts[parts.length - 1]!, TAG.OCTET_STRING, 'extnValue'));
      extensions.set(id, { critical, value });
      if (id === '2.5.29.19') {
        const bc = children(parseDer(value, 'basicConstraints'));
        isCA = bc[0]?.tag === TAG.BOOLEAN && content(bc[0])[0] !== 0;
      }
    }
  }
  return {
    der,
    tbs: encoding(tbsT),
    signatureAlgorithm: parseSignatureAlgorithm(sigAlgT),
    signature: bitString(sigT),
    serial: integer(serialT).toString(16),
    issuer: encoding(issuerT),
    subject: encoding(subjectT),
    issuerCN: commonName(issuerT),
    subjectCN: commonName(subjectT),
    notBefore: time(nb),
    notAfter: time(na),
    spki: encoding(spkiT),
    extensions,
    isCA,
  };
}

/** Splits a PEM bundle into DER blobs of the given label (default CERTIFICATE), in order. */
export function pemToDer(pem: string, label = 'CERTIFICATE'): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  return out;
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

const keyCache = new WeakMap<Uint8Array, KeyObject>();

/** The public key of a certificate as a node:crypto KeyObject (memoised per parsed certificate). */
export function publicKeyOf(cert: Certificate): KeyObject {
  let k = keyCache.get(cert.spki);
  if (!k) {
    try {
      k = createPublicKey({ key: Buffer.from(cert.spki), format: 'der', type: 'spki' });
    } catch (e) {
      // A malformed key is bad input (4xx), never an internal error.
      throw fail('der.malformed', `the public key of "${cert.subjectCN ?? '?'}" cannot be decoded`, { subject: cert.subjectCN }, e);
    }
    keyCache.set(cert.spki, k);
  }
  return k;
}

/** Verifies a signature (DER-encoded for ECDSA) under an algorithm from a certificate or CRL. */
export function verifySignature(alg: SignatureAlgorithm, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (alg.kind) {
      case 'ecdsa':
        return cryptoVerify(alg.hash, data, { key, dsaEncoding: 'der' }, signature);
      case 'rsa-pkcs1':
        return cryptoVerify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case 'rsa-pss':
        return cryptoVerify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength }, signature);
    }
  } catch {
    return false;
  }
}

/** Whether `cert` is signed by `issuer`'s key and names it as issuer. */
export function isIssuedBy(cert: Certificate, issuer: Certificate): boolean {
  return sameName(cert.issuer, issuer.subject) && verifySignature(cert.signatureAlgorithm, publicKeyOf(issuer), cert.tbs, cert.signature);
}

function sameName(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a).equals(Buffer.from(b));
}

export interface ChainOptions {
  /** Verification time. */
  readonly at: Date;
  /** Error code to use for a chain failure (e.g. `quote.pck_chain_invalid`). */
  readonly code?: ErrorCode;
  /** Error code for a validity failure; defaults to `cert.expired`. */
  readonly expiredCode?: ErrorCode;
  /** When false, validity dates are reported back instead of failing (used for lenient freshness). */
  readonly enforceValidity?: boolean;
}

export interface ChainResult {
  /** Certificates whose validity did not cover `at` (only when enforceValidity is false). */
  readonly outOfValidity: string[];
}

/**
 * Verifies `chain` (leaf first) up to `root`, a trusted self-signed anchor compared by its exact DER.
 * The last element of `chain` may be the root itself, or an intermediate the root signed.
 */
export function verifyChain(chain: readonly Certificate[], root: Certificate, opts: ChainOptions): ChainResult {
  const code = opts.code ?? 'cert.chain_invalid';
  if (chain.length === 0) throw fail(code, 'empty certificate chain');
  const path = [...chain];
  const last = path[path.length - 1]!;
  if (sameName(last.subject, root.subject) && Buffer.from(last.spki).equals(Buffer.from(root.spki))) {
    if (!Buffer.from(last.der).equals(Buffer.from(root.der))) throw fail(code, 'chain ends in a root that differs from the trusted anchor', { subject: last.subjectCN });
    path.pop();
  }
  path.push(root);
  const outOfValidity: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    const issuer = i + 1 < path.length ? path[i + 1]! : root;
    if (!isIssuedBy(c, issuer)) {
      throw fail(code, `certificate "${c.subjectCN ?? '?'}" is not signed by "${issuer.subjectCN ?? '?'}"`, {
        subject: c.subjectCN,
        issuer: issuer.subjectCN,
      });
    }
    if (i > 0 && !c.isCA) throw fail(code, `certificate "${c.subjectCN ?? '?'}" is used as an issuer but is not a CA`, { subject: c.subjectCN });
    if (opts.at < c.notBefore || opts.at > c.notAfter) {
      if (opts.enforceValidity === false) outOfValidity.push(c.subjectCN ?? c.serial);
      else
        throw fail(opts.expiredCode ?? 'cert.expired', `certificate "${c.subjectCN ?? '?'}" is not valid at ${opts.at.toISOString()}`, {
          subject: c.subjectCN,
          notBefore: c.notBefore.toISOString(),
          notAfter: c.notAfter.toISOString(),
        });
    }
  }
  return { outOfValidity };
}

/** RFC 5280 §5 certificate revocation list. */
export interface Crl {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly signature: Uint8Array;
  readonly issuer: Uint8Array;
  readonly issuerCN: string | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** Revoked serial numbers, lowercase hex without leading zeros. */
  readonly revoked: ReadonlySet<string>;
}

export function parseCrl(der: Uint8Array): Crl {
  const crl = expectTag(parseDer(der, 'CRL'), TAG.SEQUENCE, 'CertificateList');
  const [tbsT, sigAlgT, sigT] = children(crl);
  if (!tbsT || !sigAlgT || !sigT) throw fail('der.malformed', 'CRL lacks tbsCertList/signature');
  const kids = children(expectTag(tbsT, TAG.SEQUENCE, 'TBSCertList'));
  let i = 0;
  if (kids[0]?.tag === TAG.INTEGER) i++; // version
  i++; // signature
  const issuerT = kids[i++];
  const thisT = kids[i++];
  if (!issuerT || !thisT) throw fail('der.malformed', 'TBSCertList is incomplete');
  let nextUpdate: Date | undefined;
  if (kids[i] && (kids[i]!.tag === TAG.UTC_TIME || kids[i]!.tag === TAG.GENERALIZED_TIME)) nextUpdate = time(kids[i++]!);
  const revoked = new Set<string>();
  if (kids[i] && kids[i]!.tag === TAG.SEQUENCE) {
    for (const entry of children(kids[i]!)) {
      const serial = children(entry)[0];
      if (serial) revoked.add(integer(serial).toString(16));
    }
  }
  return {
    der,
    tbs: encoding(tbsT),
    signatureAlgorithm: parseSignatureAlgorithm(sigAlgT),
    signature: bitString(sigT),
    issuer: encoding(issuerT),
    issuerCN: commonName(issuerT),
    thisUpdate: time(thisT),
    nextUpdate,
    revoked,
  };
}

/** Verifies that `crl` is signed by `issuer` and names it. */
export function verifyCrlSignature(crl: Crl, issuer: Certificate): void {
  if (!sameName(crl.issuer, issuer.subject) || !verifySignature(crl.signatureAlgorithm, publicKeyOf(issuer), crl.tbs, crl.signature)) {
    throw fail('crl.invalid', `CRL of "${crl.issuerCN ?? '?'}" is not signed by "${issuer.subjectCN ?? '?'}"`, {
      crlIssuer: crl.issuerCN,
      expectedIssuer: issuer.subjectCN,
    });
  }
}

/** Reads a CRL given as DER bytes, hex text or PEM (all three occur in QvE-style collateral). */
export function crlBytes(input: Uint8Array | string): Uint8Array {
  if (typeof input !== 'string') {
    const s = Buffer.from(input).toString('latin1');
    if (s.startsWith('-----BEGIN')) return crlBytes(s);
    if (/^[0-9a-fA-F\s]+$/.test(s) && s.length > 8) return crlBytes(s);
    return input;
  }
  if (input.includes('-----BEGIN X509 CRL-----')) {
    const d = pemToDer(input, 'X509 CRL')[0];
    if (!d) throw fail('collateral.malformed', 'empty PEM CRL');
    return d;
  }
  const h = input.trim();
  if (/^[0-9a-fA-F]+$/.test(h) && h.length % 2 === 0) return new Uint8Array(Buffer.from(h, 'hex'));
  throw fail('collateral.malformed', 'CRL is neither DER, hex nor PEM');
}

