import { type KeyObject, constants, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import {
  TAG,
  type Tlv,
  bitString,
  boolean,
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
import { verificationTime } from './time.js';

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
  /** basicConstraints cA (RFC 5280 §4.2.1.9). */
  readonly isCA: boolean;
  /** basicConstraints pathLenConstraint, when present. */
  readonly pathLen: number | undefined;
  /** keyUsage bits (RFC 5280 §4.2.1.3) as a mask of {@link KEY_USAGE}; undefined when the extension is absent. */
  readonly keyUsage: number | undefined;
}

/** keyUsage bit masks: bit n of the named BIT STRING is `1 << n`. */
export const KEY_USAGE = { digitalSignature: 1 << 0, keyCertSign: 1 << 5, cRLSign: 1 << 6 } as const;

/**
 * Critical extensions a verifier here processes or that only narrow what it accepts: basicConstraints,
 * keyUsage, extKeyUsage, subjectAltName, subject/authority key identifiers. Any other critical extension
 * refuses the certificate (RFC 5280 §4.2).
 */
export const UNDERSTOOD_CRITICAL_EXTENSIONS: ReadonlySet<string> = new Set(['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.14', '2.5.29.35']);

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

/**
 * A named BIT STRING (keyUsage) as a mask, bit n = 1 << n. Unused bits must be zero. X.690 §11.2.2 also
 * asks DER to drop trailing zero bits, but AMD's ASK certificates (all of Milan, Genoa, Turin, VCEK and
 * VLEK) encode keyUsage keyCertSign as 03 02 01 04, one trailing zero bit kept; OpenSSL and AMD's own
 * tools accept it, and the field sits inside the signed part, so accepting it opens no malleability.
 */
function namedBits(t: Tlv): number {
  expectTag(t, TAG.BIT_STRING, 'BIT STRING');
  const c = content(t);
  const unused = c[0];
  if (unused === undefined || unused > 7 || (c.length === 1 && unused !== 0) || c.length > 5) throw fail('der.malformed', 'named BIT STRING is malformed', { offset: t.start });
  if (c.length > 1 && c[c.length - 1]! & ((1 << unused) - 1)) throw fail('der.malformed', 'named BIT STRING has non-zero unused bits', { offset: t.start });
  let mask = 0;
  for (let i = 1; i < c.length; i++) for (let bit = 0; bit < 8; bit++) if (c[i]! & (0x80 >> bit)) mask |= 1 << ((i - 1) * 8 + bit);
  return mask;
}

function basicConstraints(value: Uint8Array): { isCA: boolean; pathLen: number | undefined } {
  const seq = expectTag(parseDer(value, 'basicConstraints'), TAG.SEQUENCE, 'basicConstraints');
  const kids = children(seq);
  let i = 0;
  let isCA = false;
  if (kids[i]?.tag === TAG.BOOLEAN) {
    // DER omits a DEFAULT value: an explicit FALSE is a second encoding of the same meaning.
    if (!boolean(kids[i]!)) throw fail('der.malformed', 'basicConstraints encodes cA FALSE explicitly');
    isCA = true;
    i++;
  }
  let pathLen: number | undefined;
  if (kids[i]?.tag === TAG.INTEGER) pathLen = smallInt(kids[i++]!);
  if (i !== kids.length) throw fail('der.malformed', 'basicConstraints has unexpected fields');
  return { isCA, pathLen };
}

/** Parses the Extensions of a TBSCertificate or TBSCertList (RFC 5280 §4.1): no duplicates, DER booleans. */
function parseExtensions(wrapper: Tlv): Map<string, Extension> {
  const seq = expectTag(readTlv(wrapper.input, wrapper.contentStart, wrapper.end), TAG.SEQUENCE, 'Extensions');
  if (seq.end !== wrapper.end) throw fail('der.malformed', 'Extensions wrapper holds trailing bytes', { offset: seq.end });
  const extensions = new Map<string, Extension>();
  for (const ext of children(seq)) {
    const parts = children(expectTag(ext, TAG.SEQUENCE, 'Extension'));
    if (parts.length < 2 || parts.length > 3) throw fail('der.malformed', 'Extension has the wrong number of fields', { offset: ext.start });
    const id = oid(parts[0]!);
    let critical = false;
    if (parts.length === 3) {
      critical = boolean(parts[1]!);
      if (!critical) throw fail('der.malformed', `extension ${id} encodes critical FALSE explicitly (DER omits a DEFAULT)`, { oid: id });
    }
    const value = content(expectTag(parts[parts.length - 1]!, TAG.OCTET_STRING, 'extnValue'));
    if (extensions.has(id)) throw fail('der.malformed', `extension ${id} appears twice (RFC 5280 §4.2)`, { oid: id });
    extensions.set(id, { critical, value });
  }
  return extensions;
}

/** The three fields of a signed structure (RFC 5280 §4.1.1), exactly three. */
function signedParts(der: Uint8Array, what: string): [Tlv, Tlv, Tlv] {
  const outer = expectTag(parseDer(der, what), TAG.SEQUENCE, what);
  const kids = children(outer);
  if (kids.length !== 3) throw fail('der.malformed', `${what} has ${kids.length} fields, expected tbs, signatureAlgorithm, signature`);
  return kids as [Tlv, Tlv, Tlv];
}

function sameAlgorithm(inner: Tlv | undefined, outer: Tlv, what: string): void {
  // RFC 5280 §4.1.1.2 / §5.1.1.2: the signed copy of the algorithm must equal the unsigned one, or the
  // unsigned field could be swapped without touching the signature.
  if (!inner || !equalBytes(encoding(inner), encoding(outer))) throw fail('der.malformed', `${what}: the signature algorithm inside the signed part differs from the outer one`);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Parses a DER certificate strictly: DER lengths, exactly the RFC 5280 §4.1 fields in order, nothing
 * trailing at any level, inner and outer signature algorithms equal, no duplicate extensions.
 */
export function parseCertificate(der: Uint8Array): Certificate {
  const [tbsT, sigAlgT, sigT] = signedParts(der, 'certificate');
  const tbsKids = children(expectTag(tbsT, TAG.SEQUENCE, 'TBSCertificate'));
  let i = 0;
  let version = 0;
  if (tbsKids[0]?.tag === 0xa0) {
    const v = tbsKids[i++]!;
    const inner = readTlv(v.input, v.contentStart, v.end);
    if (inner.end !== v.end) throw fail('der.malformed', 'version holds trailing bytes');
    version = smallInt(expectTag(inner, TAG.INTEGER, 'version'));
    // v1 is the DEFAULT and DER omits it; only v2 (1) and v3 (2) are written out.
    if (version !== 1 && version !== 2) throw fail('der.malformed', `certificate version ${version} is not allowed here`);
  }
  const serialT = tbsKids[i++];
  const innerAlgT = tbsKids[i++];
  const issuerT = tbsKids[i++];
  const validityT = tbsKids[i++];
  const subjectT = tbsKids[i++];
  const spkiT = tbsKids[i++];
  if (!serialT || !issuerT || !validityT || !subjectT || !spkiT) throw fail('der.malformed', 'TBSCertificate is incomplete');
  expectTag(issuerT, TAG.SEQUENCE, 'issuer');
  expectTag(subjectT, TAG.SEQUENCE, 'subject');
  expectTag(spkiT, TAG.SEQUENCE, 'subjectPublicKeyInfo');
  sameAlgorithm(innerAlgT, sigAlgT, 'certificate');
  const validity = children(expectTag(validityT, TAG.SEQUENCE, 'Validity'));
  if (validity.length !== 2) throw fail('der.malformed', 'Validity must hold exactly notBefore and notAfter');
  const [nb, na] = validity as [Tlv, Tlv];
  // Optional [1] issuerUniqueID, [2] subjectUniqueID (v2+), [3] extensions (v3), in this order, once each.
  let extensions = new Map<string, Extension>();
  let lastTag = 0;
  for (; i < tbsKids.length; i++) {
    const k = tbsKids[i]!;
    const n = k.tag & 0x1f;
    if ((k.tag & 0xc0) !== 0x80 || n < 1 || n > 3 || n <= lastTag) throw fail('der.malformed', `unexpected field 0x${k.tag.toString(16)} in TBSCertificate`, { offset: k.start });
    if (version < 1 || (n === 3 && version !== 2)) throw fail('der.malformed', 'TBSCertificate field not allowed in this certificate version', { offset: k.start });
    lastTag = n;
    if (n === 3) extensions = parseExtensions(expectTag(k, 0xa3, 'extensions'));
  }
  const bc = extensions.get('2.5.29.19');
  const { isCA, pathLen } = bc ? basicConstraints(bc.value) : { isCA: false, pathLen: undefined };
  const ku = extensions.get('2.5.29.15');
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
    pathLen,
    keyUsage: ku ? namedBits(parseDer(ku.value, 'keyUsage')) : undefined,
  };
}

/** Splits a PEM bundle into DER blobs of the given label (default CERTIFICATE), in order. */
export function pemToDer(pem: string, label = 'CERTIFICATE'): Uint8Array[] {
  // Each BEGIN to the nearest END after it, found with indexOf: linear in the text. (A lazy regex scanned to the
  // end of the text from every BEGIN without an END: quadratic, in chains that anonymous requests carry.)
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const out: Uint8Array[] = [];
  for (let at = pem.indexOf(begin); at >= 0; at = pem.indexOf(begin, at)) {
    const stop = pem.indexOf(end, at + begin.length);
    if (stop < 0) break; // no END after this BEGIN, so none after any later one
    out.push(new Uint8Array(Buffer.from(pem.slice(at + begin.length, stop).replace(/\s+/g, ''), 'base64')));
    at = stop + end.length;
  }
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
 * The per-certificate rules of RFC 5280 §6.1 that a signature check alone misses, for `cert` at position
 * `depth` of a path (0 = leaf): an unknown critical extension refuses it (§4.2); an issuer (depth > 0)
 * must be a CA (basicConstraints cA, §4.2.1.9) allowed to sign certificates (keyUsage keyCertSign when
 * keyUsage is present, §4.2.1.3), and its pathLenConstraint must admit the `depth - 1` intermediate CA
 * certificates below it. Every real vendor chain (Intel SGX, AMD ARK/ASK, NVIDIA) carries keyUsage on
 * its CAs; the "when present" rule is RFC 5280's and OpenSSL's.
 */
export function checkPathCertificate(cert: Certificate, depth: number, code: ErrorCode = 'cert.chain_invalid'): void {
  const name = cert.subjectCN ?? cert.serial;
  for (const [id, ext] of cert.extensions) {
    if (ext.critical && !UNDERSTOOD_CRITICAL_EXTENSIONS.has(id)) throw fail(code, `certificate "${name}" carries the unknown critical extension ${id}`, { subject: cert.subjectCN, oid: id });
  }
  if (depth === 0) return;
  if (!cert.isCA) throw fail(code, `certificate "${name}" is used as an issuer but is not a CA`, { subject: cert.subjectCN });
  if (cert.keyUsage !== undefined && !(cert.keyUsage & KEY_USAGE.keyCertSign)) throw fail(code, `certificate "${name}" is used as an issuer but its keyUsage lacks keyCertSign`, { subject: cert.subjectCN });
  if (cert.pathLen !== undefined && depth - 1 > cert.pathLen) {
    throw fail(code, `certificate "${name}" allows ${cert.pathLen} intermediate CA(s) below it, the path has ${depth - 1}`, { subject: cert.subjectCN, pathLen: cert.pathLen, actual: depth - 1 });
  }
}

/** A CRL issuer must be allowed to sign CRLs (keyUsage cRLSign when keyUsage is present, RFC 5280 §4.2.1.3). */
export function checkCrlSigner(issuer: Certificate): void {
  if (issuer.keyUsage !== undefined && !(issuer.keyUsage & KEY_USAGE.cRLSign)) {
    throw fail('crl.invalid', `"${issuer.subjectCN ?? '?'}" signs CRLs but its keyUsage lacks cRLSign`, { issuer: issuer.subjectCN });
  }
}

/**
 * Verifies `chain` (leaf first) up to `root`, a trusted self-signed anchor compared by its exact DER.
 * The last element of `chain` may be the root itself, or an intermediate the root signed. Each link:
 * name and signature, {@link checkPathCertificate} (the anchor too: its constraints are the vendor's own),
 * and validity at `opts.at`.
 */
export function verifyChain(chain: readonly Certificate[], root: Certificate, opts: ChainOptions): ChainResult {
  const code = opts.code ?? 'cert.chain_invalid';
  const at = verificationTime(opts.at);
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
    checkPathCertificate(c, i, code);
    if (!(at >= c.notBefore.getTime() && at <= c.notAfter.getTime())) {
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
  /** The cRLNumber extension (RFC 5280 §5.2.3), monotonically increasing per issuer; absent if not present. */
  readonly crlNumber: bigint | undefined;
}

/** Parses a DER CRL strictly (RFC 5280 §5.1): fields in order, inner and outer algorithms equal, nothing trailing. */
export function parseCrl(der: Uint8Array): Crl {
  const [tbsT, sigAlgT, sigT] = signedParts(der, 'CRL');
  const kids = children(expectTag(tbsT, TAG.SEQUENCE, 'TBSCertList'));
  let i = 0;
  // version is v2 (1) when present; v1 CRLs omit it.
  if (kids[0]?.tag === TAG.INTEGER && smallInt(kids[i++]!) !== 1) throw fail('der.malformed', 'CRL version must be v2 when present');
  sameAlgorithm(kids[i++], sigAlgT, 'CRL');
  const issuerT = kids[i++];
  const thisT = kids[i++];
  if (!issuerT || !thisT) throw fail('der.malformed', 'TBSCertList is incomplete');
  expectTag(issuerT, TAG.SEQUENCE, 'issuer');
  let nextUpdate: Date | undefined;
  if (kids[i] && (kids[i]!.tag === TAG.UTC_TIME || kids[i]!.tag === TAG.GENERALIZED_TIME)) nextUpdate = time(kids[i++]!);
  const revoked = new Set<string>();
  if (kids[i] && kids[i]!.tag === TAG.SEQUENCE) {
    for (const entry of children(kids[i++]!)) {
      const e = children(expectTag(entry, TAG.SEQUENCE, 'revokedCertificate'));
      if (e.length < 2 || e.length > 3) throw fail('der.malformed', 'revokedCertificate has the wrong number of fields', { offset: entry.start });
      time(e[1]!);
      if (e[2]) expectTag(e[2], TAG.SEQUENCE, 'crlEntryExtensions');
      revoked.add(integer(e[0]!).toString(16));
    }
  }
  let crlNumber: bigint | undefined;
  if (kids[i]?.tag === 0xa0) {
    // cRLNumber (2.5.29.20, RFC 5280 §5.2.3): an INTEGER that grows with each CRL of the issuer.
    const n = parseExtensions(kids[i++]!).get('2.5.29.20');
    if (n) crlNumber = integer(expectTag(parseDer(n.value, 'cRLNumber'), TAG.INTEGER, 'cRLNumber'));
  }
  if (i !== kids.length) throw fail('der.malformed', 'TBSCertList has unexpected trailing fields', { offset: kids[i]!.start });
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
    crlNumber,
  };
}

/**
 * Where CRL `next` is older than `prev`, the one in use (a smaller cRLNumber where both carry one, else an
 * earlier thisUpdate): the field and both values; undefined when `next` is not older. A cache that only
 * moves forward refuses such an answer, so a source that rolls back cannot undo a revocation.
 */
export function crlGoesBack(prev: Crl, next: Crl): { field: 'cRLNumber' | 'thisUpdate'; prev: string; next: string } | undefined {
  if (prev.crlNumber !== undefined && next.crlNumber !== undefined && next.crlNumber < prev.crlNumber) return { field: 'cRLNumber', prev: String(prev.crlNumber), next: String(next.crlNumber) };
  if (next.thisUpdate.getTime() < prev.thisUpdate.getTime()) return { field: 'thisUpdate', prev: prev.thisUpdate.toISOString(), next: next.thisUpdate.toISOString() };
  return undefined;
}

/** Verifies that `crl` is signed by `issuer` and names it. */
export function verifyCrlSignature(crl: Crl, issuer: Certificate): void {
  checkCrlSigner(issuer);
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

