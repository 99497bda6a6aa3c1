import { createHash } from 'node:crypto';
import { equalBytes } from './bytes.js';
import {
  TAG,
  type Tlv,
  bitString,
  children,
  content,
  encodeInt,
  encodeOid,
  encoding,
  expectTag,
  integerBytes,
  oid,
  parseDer,
  readTlv,
  smallInt,
  time,
  tlv,
} from './der.js';
import { fail } from './errors.js';
import { verificationTime } from './time.js';
import { type Certificate, type SignatureAlgorithm, isIssuedBy, parseCertificate, parseSignatureAlgorithm, publicKeyOf, verifyChain, verifySignature } from './x509.js';

/**
 * OCSP (RFC 6960): building requests, and parsing and verifying basic responses over the received
 * bytes. Verification checks the response signature, that the signer is authorised for the certificate
 * (the issuing CA itself, or a responder certificate with id-kp-OCSPSigning that the issuing CA issued
 * or that chains to the same pinned root: RFC 6960 §4.2.2.2, the last as the "local configuration"),
 * that the single response is for exactly this certificate, the nonce when one was sent, and currency at
 * the verification time.
 */
export const OID_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
export const OID_OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';
export const OID_KP_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const HASH_OIDS: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const OID_OF_HASH = Object.fromEntries(Object.entries(HASH_OIDS).map(([k, v]) => [v, k])) as Record<string, string>;
/** Clock skew tolerated on thisUpdate/nextUpdate. */
const SKEW_MS = 5 * 60_000;
/** A response without nextUpdate is treated as current for this long after thisUpdate. */
const DEFAULT_MAX_AGE_MS = 7 * 24 * 3600_000;

export type OcspCertStatus = 'good' | 'revoked' | 'unknown';
/** RFC 5280 §5.3.1 CRLReason names. */
const REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'unused',
  'removeFromCRL',
  'privilegeWithdrawn',
  'aACompromise',
];

export interface OcspCertId {
  readonly hash: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  readonly issuerNameHash: Uint8Array;
  readonly issuerKeyHash: Uint8Array;
  /** Serial, lowercase hex without leading zeros (as {@link Certificate.serial}). */
  readonly serial: string;
}

export interface OcspSingleResponse {
  readonly certId: OcspCertId;
  readonly status: OcspCertStatus;
  readonly revocationTime?: Date;
  readonly revocationReason?: string;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
}

export interface OcspResponse {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly signature: Uint8Array;
  readonly responderId: { readonly byName: Uint8Array } | { readonly byKey: Uint8Array };
  readonly producedAt: Date;
  readonly responses: readonly OcspSingleResponse[];
  readonly nonce: Uint8Array | undefined;
  readonly certs: readonly Certificate[];
}

function spkiKeyBits(cert: Certificate): Uint8Array {
  const [, key] = children(parseDer(cert.spki, 'SubjectPublicKeyInfo'));
  if (!key) throw fail('der.malformed', 'SubjectPublicKeyInfo has no key');
  return bitString(key);
}

/** The CertID of `cert` under `issuer` (RFC 6960 §4.1.1). */
export function certIdFor(cert: Certificate, issuer: Certificate, hash: OcspCertId['hash'] = 'sha1'): OcspCertId {
  return {
    hash,
    issuerNameHash: new Uint8Array(createHash(hash).update(cert.issuer).digest()),
    issuerKeyHash: new Uint8Array(createHash(hash).update(spkiKeyBits(issuer)).digest()),
    serial: cert.serial,
  };
}

function encodeCertId(id: OcspCertId): Uint8Array {
  return tlv(
    TAG.SEQUENCE,
    tlv(TAG.SEQUENCE, encodeOid(OID_OF_HASH[id.hash]!), tlv(TAG.NULL)),
    tlv(TAG.OCTET_STRING, id.issuerNameHash),
    tlv(TAG.OCTET_STRING, id.issuerKeyHash),
    encodeInt(BigInt(`0x${id.serial}`)),
  );
}

/** An OCSPRequest for one certificate, with a nonce extension when `nonce` is given (RFC 6960 §4.1, §4.4.1). */
export function buildOcspRequest(cert: Certificate, issuer: Certificate, opts: { nonce?: Uint8Array; hash?: OcspCertId['hash'] } = {}): Uint8Array {
  const request = tlv(TAG.SEQUENCE, encodeCertId(certIdFor(cert, issuer, opts.hash)));
  const exts = opts.nonce
    ? [tlv(0xa2, tlv(TAG.SEQUENCE, tlv(TAG.SEQUENCE, encodeOid(OID_OCSP_NONCE), tlv(TAG.OCTET_STRING, tlv(TAG.OCTET_STRING, opts.nonce)))))]
    : [];
  return tlv(TAG.SEQUENCE, tlv(TAG.SEQUENCE, tlv(TAG.SEQUENCE, request), ...exts));
}

function malformed(message: string, cause?: unknown): never {
  throw fail('ocsp.malformed', message, undefined, cause);
}

function explicit(t: Tlv): Tlv {
  return readTlv(t.input, t.contentStart, t.end);
}

function parseCertId(t: Tlv): OcspCertId {
  const [alg, nameHash, keyHash, serial] = children(expectTag(t, TAG.SEQUENCE, 'CertID'));
  if (!alg || !nameHash || !keyHash || !serial) malformed('CertID is incomplete');
  const hash = HASH_OIDS[oid(children(alg)[0]!)];
  if (!hash) malformed('CertID uses an unsupported hash');
  const serialBytes = integerBytes(serial);
  return {
    hash,
    issuerNameHash: content(expectTag(nameHash, TAG.OCTET_STRING, 'issuerNameHash')),
    issuerKeyHash: content(expectTag(keyHash, TAG.OCTET_STRING, 'issuerKeyHash')),
    serial: BigInt(`0x${Buffer.from(serialBytes).toString('hex') || '0'}`).toString(16),
  };
}

function parseSingle(t: Tlv): OcspSingleResponse {
  const kids = children(expectTag(t, TAG.SEQUENCE, 'SingleResponse'));
  const [idT, statusT, thisT] = kids;
  if (!idT || !statusT || !thisT) malformed('SingleResponse is incomplete');
  let status: OcspCertStatus;
  let revocationTime: Date | undefined;
  let revocationReason: string | undefined;
  if (statusT.tag === 0x80) status = 'good';
  else if (statusT.tag === 0x82) status = 'unknown';
  else if (statusT.tag === 0xa1) {
    status = 'revoked';
    const [rt, reason] = children(statusT);
    if (!rt) malformed('RevokedInfo has no revocationTime');
    revocationTime = time(rt);
    revocationReason = reason && reason.tag === 0xa0 ? (REASONS[smallInt(explicit(reason))] ?? 'unspecified') : 'unspecified';
  } else malformed(`unknown CertStatus tag 0x${statusT.tag.toString(16)}`);
  let nextUpdate: Date | undefined;
  for (const k of kids.slice(3)) if (k.tag === 0xa0) nextUpdate = time(explicit(k));
  return {
    certId: parseCertId(idT),
    status,
    thisUpdate: time(expectTag(thisT, TAG.GENERALIZED_TIME, 'thisUpdate')),
    ...(nextUpdate ? { nextUpdate } : {}),
    ...(revocationTime ? { revocationTime } : {}),
    ...(revocationReason ? { revocationReason } : {}),
  };
}

/** Parses an OCSPResponse; anything but a successful basic response is `ocsp.malformed`. */
export function parseOcspResponse(der: Uint8Array): OcspResponse {
  try {
    const top = children(expectTag(parseDer(der, 'OCSPResponse'), TAG.SEQUENCE, 'OCSPResponse'));
    const status = smallInt(expectTag(top[0]!, TAG.ENUMERATED, 'responseStatus'));
    if (status !== 0) malformed(`the OCSP responder answered with status ${status} (not successful)`);
    const rb = top[1];
    if (rb?.tag !== 0xa0) malformed('a successful OCSP response has no responseBytes');
    const [typeT, respT] = children(explicit(rb));
    if (!typeT || !respT || oid(typeT) !== OID_OCSP_BASIC) malformed('the OCSP response is not a basic response');
    const basicDer = content(expectTag(respT, TAG.OCTET_STRING, 'response'));
    const [tbsT, algT, sigT, certsT] = children(expectTag(parseDer(basicDer, 'BasicOCSPResponse'), TAG.SEQUENCE, 'BasicOCSPResponse'));
    if (!tbsT || !algT || !sigT) malformed('BasicOCSPResponse is incomplete');
    const data = children(expectTag(tbsT, TAG.SEQUENCE, 'ResponseData'));
    let i = 0;
    if (data[i]?.tag === 0xa0) {
      if (smallInt(explicit(data[i]!)) !== 0) malformed('unsupported ResponseData version');
      i++;
    }
    const rid = data[i++];
    let responderId: OcspResponse['responderId'];
    if (rid?.tag === 0xa1) responderId = { byName: encoding(explicit(rid)) };
    else if (rid?.tag === 0xa2) responderId = { byKey: content(expectTag(explicit(rid), TAG.OCTET_STRING, 'KeyHash')) };
    else malformed('ResponderID is missing');
    const producedAt = time(expectTag(data[i++]!, TAG.GENERALIZED_TIME, 'producedAt'));
    const responses = children(expectTag(data[i++]!, TAG.SEQUENCE, 'responses')).map(parseSingle);
    let nonce: Uint8Array | undefined;
    const extT = data[i];
    if (extT?.tag === 0xa1) {
      for (const ext of children(explicit(extT))) {
        const parts = children(ext);
        if (oid(parts[0]!) !== OID_OCSP_NONCE) continue;
        const value = content(expectTag(parts[parts.length - 1]!, TAG.OCTET_STRING, 'extnValue'));
        // RFC 8954: the value is an OCTET STRING holding the nonce; some responders put the raw nonce.
        try {
          nonce = content(expectTag(parseDer(value, 'nonce'), TAG.OCTET_STRING, 'nonce'));
        } catch {
          nonce = value;
        }
      }
    }
    const certs = certsT && certsT.tag === 0xa0 ? children(explicit(certsT)).map((c) => parseCertificate(encoding(c))) : [];
    if (certs.length > 8) malformed('the OCSP response carries too many certificates');
    return {
      der,
      tbs: encoding(tbsT),
      signatureAlgorithm: parseSignatureAlgorithm(algT),
      signature: bitString(sigT),
      responderId,
      producedAt,
      responses,
      nonce,
      certs,
    };
  } catch (e) {
    if (e && typeof e === 'object' && 'code' in e && (e as { code: string }).code === 'ocsp.malformed') throw e;
    return malformed('the OCSP response cannot be decoded', e);
  }
}

/** Whether two CertIDs name the same certificate (same hash algorithm). */
export function sameCertId(a: OcspCertId, b: OcspCertId): boolean {
  return a.hash === b.hash && a.serial === b.serial && equalBytes(a.issuerNameHash, b.issuerNameHash) && equalBytes(a.issuerKeyHash, b.issuerKeyHash);
}

/** The CertID of a request (its first Request), and its nonce if any. */
export function parseOcspRequest(der: Uint8Array): { certId: OcspCertId; nonce: Uint8Array | undefined } {
  try {
    const [tbs] = children(expectTag(parseDer(der, 'OCSPRequest'), TAG.SEQUENCE, 'OCSPRequest'));
    const kids = children(expectTag(tbs!, TAG.SEQUENCE, 'TBSRequest'));
    const list = kids.find((k) => k.tag === TAG.SEQUENCE);
    const first = list ? children(list)[0] : undefined;
    if (!first) malformed('the OCSP request names no certificate');
    const certId = parseCertId(children(first)[0]!);
    let nonce: Uint8Array | undefined;
    const exts = kids.find((k) => k.tag === 0xa2);
    if (exts) {
      for (const ext of children(explicit(exts))) {
        const parts = children(ext);
        if (oid(parts[0]!) === OID_OCSP_NONCE) nonce = content(expectTag(parseDer(content(parts[parts.length - 1]!), 'nonce'), TAG.OCTET_STRING, 'nonce'));
      }
    }
    return { certId, nonce };
  } catch (e) {
    if (e && typeof e === 'object' && 'code' in e && (e as { code: string }).code === 'ocsp.malformed') throw e;
    return malformed('the OCSP request cannot be decoded', e);
  }
}

/** An OCSPRequest for a CertID (no nonce): what a cache sends upstream on a miss. */
export function buildOcspRequestFor(id: OcspCertId): Uint8Array {
  return tlv(TAG.SEQUENCE, tlv(TAG.SEQUENCE, tlv(TAG.SEQUENCE, tlv(TAG.SEQUENCE, encodeCertId(id)))));
}

function hasOcspSigningEku(cert: Certificate): boolean {
  const eku = cert.extensions.get(OID_EXT_KEY_USAGE);
  if (!eku) return false;
  return children(parseDer(eku.value, 'extKeyUsage')).some((t) => t.tag === TAG.OID && oid(t) === OID_KP_OCSP_SIGNING);
}

function matchesResponderId(cert: Certificate, rid: OcspResponse['responderId']): boolean {
  if ('byName' in rid) return equalBytes(cert.subject, rid.byName);
  return equalBytes(new Uint8Array(createHash('sha1').update(spkiKeyBits(cert)).digest()), rid.byKey);
}

export interface OcspVerifyOptions {
  /**
   * The certificate whose status is asked, and its issuer; or only the CertID a request named (a cache
   * answering requests), in which case the responder must prove itself by a chain to `root`.
   */
  readonly target: { readonly cert: Certificate; readonly issuer: Certificate } | { readonly certId: OcspCertId };
  /** The pinned root of the PKI: a responder certificate chaining to it is authorised. */
  readonly root: Certificate;
  readonly at: Date;
  /** When the request carried a nonce, the response must echo it. */
  readonly nonce?: Uint8Array | undefined;
  /** Currency of a response without nextUpdate; default 7 days. */
  readonly maxAgeMs?: number;
}

export interface OcspResult {
  readonly status: OcspCertStatus;
  readonly revocationReason?: string;
  readonly revocationTime?: string;
  readonly thisUpdate: string;
  readonly nextUpdate?: string;
  readonly producedAt: string;
  readonly nonceMatched: boolean | undefined;
}

/**
 * Verifies an OCSP response for one certificate (RFC 6960 §3.2). Throws `ocsp.malformed`,
 * `ocsp.signature_invalid`, `ocsp.unauthorized`, `ocsp.not_covered`, `ocsp.nonce_mismatch` or
 * `ocsp.stale`; a verified `revoked` or `unknown` status is returned, for the caller's policy.
 */
export function verifyOcspResponse(input: Uint8Array | OcspResponse, opts: OcspVerifyOptions): OcspResult {
  const at = verificationTime(opts.at);
  const resp = input instanceof Uint8Array ? parseOcspResponse(input) : input;
  const issuer = 'issuer' in opts.target ? opts.target.issuer : undefined;
  const subject = 'cert' in opts.target ? opts.target.cert.subjectCN : `serial ${opts.target.certId.serial}`;
  // Who signed: the issuing CA itself, or a responder certificate the response carries.
  let signer: Certificate | undefined;
  if (issuer && matchesResponderId(issuer, resp.responderId)) signer = issuer;
  else {
    const candidate = resp.certs.find((c) => matchesResponderId(c, resp.responderId));
    if (!candidate) throw fail('ocsp.unauthorized', 'the OCSP responder is neither the issuing CA nor a certificate the response carries', { subject });
    if (!hasOcspSigningEku(candidate)) throw fail('ocsp.unauthorized', `OCSP responder "${candidate.subjectCN ?? '?'}" lacks id-kp-OCSPSigning`, { subject, responder: candidate.subjectCN });
    if (!issuer || !isIssuedBy(candidate, issuer)) {
      const path = [candidate, ...resp.certs.filter((c) => c !== candidate)];
      try {
        verifyChain(path, opts.root, { at: opts.at, code: 'ocsp.unauthorized' });
      } catch (e) {
        throw fail('ocsp.unauthorized', `OCSP responder "${candidate.subjectCN ?? '?'}" does not chain to the pinned root`, { subject, responder: candidate.subjectCN }, e);
      }
    } else if (!(at >= candidate.notBefore.getTime() && at <= candidate.notAfter.getTime())) {
      throw fail('ocsp.unauthorized', `OCSP responder "${candidate.subjectCN ?? '?'}" is not valid at ${opts.at.toISOString()}`, { subject, responder: candidate.subjectCN });
    }
    signer = candidate;
  }
  if (!verifySignature(resp.signatureAlgorithm, publicKeyOf(signer), resp.tbs, resp.signature)) {
    throw fail('ocsp.signature_invalid', `the OCSP response for "${subject ?? '?'}" does not verify with "${signer.subjectCN ?? '?'}"`, { subject, responder: signer.subjectCN });
  }
  const target = opts.target;
  const single = resp.responses.find((r) => {
    const want = 'certId' in target ? target.certId : certIdFor(target.cert, target.issuer, r.certId.hash);
    return r.certId.hash === want.hash && sameCertId(r.certId, want);
  });
  if (!single) throw fail('ocsp.not_covered', `the OCSP response does not cover "${subject ?? '?'}"`, { subject });
  let nonceMatched: boolean | undefined;
  if (opts.nonce) {
    if (!resp.nonce || !equalBytes(resp.nonce, opts.nonce)) throw fail('ocsp.nonce_mismatch', 'the OCSP response does not echo the request nonce', { subject });
    nonceMatched = true;
  }
  const until = single.nextUpdate ? single.nextUpdate.getTime() : single.thisUpdate.getTime() + (opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS);
  if (!(at >= single.thisUpdate.getTime() - SKEW_MS && at <= until + SKEW_MS)) {
    throw fail('ocsp.stale', `the OCSP response for "${subject ?? '?'}" is not current at ${opts.at.toISOString()}`, {
      subject,
      thisUpdate: single.thisUpdate.toISOString(),
      nextUpdate: single.nextUpdate?.toISOString(),
    });
  }
  return {
    status: single.status,
    ...(single.revocationReason ? { revocationReason: single.revocationReason } : {}),
    ...(single.revocationTime ? { revocationTime: single.revocationTime.toISOString() } : {}),
    thisUpdate: single.thisUpdate.toISOString(),
    ...(single.nextUpdate ? { nextUpdate: single.nextUpdate.toISOString() } : {}),
    producedAt: resp.producedAt.toISOString(),
    nonceMatched,
  };
}
