/**
 * A complete DCAP trust hierarchy of one's own (root CA, PCK CA, PCK certificate with the SGX extension,
 * TCB signing certificate, CRLs), signed collateral and signed quotes built on it. Used by the tests and
 * by the simulated TEE: verifyQuote accepts it when its root is passed as `trustAnchors.intelRoot`.
 * Everything is synchronous node:crypto plus the DER encoders of src/core/der.ts.
 */
import { type KeyObject, randomBytes, sign } from 'node:crypto';
import type { QuoteCollateral } from './collateral.js';
import { SGX_EXTENSION_OID } from './pck-extension.js';
import { sha256 } from '../../core/bytes.js';
import { TAG, encodeInt, encodeOid, tlv } from '../../core/der.js';
import { type Certificate, derToPem, parseCertificate } from '../../core/x509.js';
import { SGX_REPORT_BODY, type SgxReportBody } from '../sgx/report-body.js';
import { TD_REPORT_10, TD_REPORT_15, type TdReport10, type TdReport15 } from '../tdx/td-report.js';
import { type Decoded, zeroLayout } from '../../core/layout.js';
import {
  ATTESTATION_KEY_TYPE_ECDSA_P256,
  CERT_DATA_PCK_CHAIN,
  INTEL_QE_VENDOR_ID,
  QUOTE_HEADER,
  type QuoteBody,
  type QuoteHeader,
  TEE_TYPE_SGX,
  TEE_TYPE_TDX,
  encodeQuote,
  encodeSgxReportBody,
  encodeSignedRegion,
} from './quote.js';
import { generateEcKeyPair } from '../../core/keygen.js';

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';

/** Intel's QE / TD_QE identity values (real PCS QE identity; evidence-and-collateral §2.3). */
export const INTEL_QE_MRSIGNER = '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff';
export const INTEL_TD_QE_MRSIGNER = 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5';
const QE_ATTRIBUTES = '11000000000000000000000000000000';

export interface Issued {
  readonly certificate: Certificate;
  readonly der: Uint8Array;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export interface DcapHierarchy {
  readonly root: Issued;
  readonly pckCa: Issued;
  readonly tcbSigning: Issued;
  readonly pck: Issued;
  readonly caType: 'processor' | 'platform';
  readonly platform: PlatformTcb;
  /** Root CA CRL (DER) revoking `revokedCaSerials`. */
  readonly rootCaCrl: Uint8Array;
  /** PCK CA CRL (DER) revoking `revokedPckSerials`. */
  readonly pckCrl: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The TCB the PCK certificate is issued for. */
export interface PlatformTcb {
  readonly fmspc: string;
  readonly pceId: string;
  readonly sgxTcbComponents: readonly number[];
  readonly pcesvn: number;
  readonly ppid: string;
}

export interface HierarchyOptions {
  readonly caType?: 'processor' | 'platform';
  readonly platform?: Partial<PlatformTcb>;
  /** Validity of every certificate and CRL; default 2020-01-01 .. 2040-01-01. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Serials (lowercase hex) the PCK CRL lists; `'pck'` revokes the generated PCK certificate. */
  readonly revokedPckSerials?: readonly (string | 'pck')[];
  readonly rootName?: string;
}

function name(cn: string): Uint8Array {
  const atv = (o: string, v: string): Uint8Array => tlv(TAG.SET, tlv(TAG.SEQUENCE, encodeOid(o), tlv(TAG.UTF8_STRING, new Uint8Array(Buffer.from(v, 'utf8')))));
  return tlv(TAG.SEQUENCE, atv(OID_CN, cn), atv(OID_O, 'Conclave Test'));
}

function time(d: Date): Uint8Array {
  const iso = d.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return d.getUTCFullYear() < 2050
    ? tlv(TAG.UTC_TIME, new Uint8Array(Buffer.from(digits.slice(2), 'latin1')))
    : tlv(TAG.GENERALIZED_TIME, new Uint8Array(Buffer.from(digits, 'latin1')));
}

const ECDSA_SHA256 = (): Uint8Array => tlv(TAG.SEQUENCE, encodeOid(OID_ECDSA_SHA256));

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return tlv(TAG.SEQUENCE, encodeOid(oid), ...(critical ? [tlv(TAG.BOOLEAN, Uint8Array.of(0xff))] : []), tlv(TAG.OCTET_STRING, value));
}

function signed(tbs: Uint8Array, key: KeyObject): Uint8Array {
  const sig = sign('sha256', tbs, { key, dsaEncoding: 'der' });
  return tlv(TAG.SEQUENCE, tbs, ECDSA_SHA256(), tlv(TAG.BIT_STRING, Uint8Array.of(0), new Uint8Array(sig)));
}

/** Issues an ECDSA P-256 certificate (self-signed when `issuer` is omitted). */
export function issueCertificate(opts: {
  readonly subjectCN: string;
  readonly issuer?: Issued;
  readonly ca: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial?: bigint;
  readonly extensions?: readonly Uint8Array[];
  /** Certify this public key instead of a fresh P-256 one (the returned privateKey is then unrelated to it). */
  readonly subjectKey?: KeyObject;
}): Issued {
  const generated = generateEcKeyPair('P-256');
  const privateKey = generated.privateKey;
  const publicKey = opts.subjectKey ?? generated.publicKey;
  const serial = opts.serial ?? BigInt(`0x${randomBytes(16).toString('hex')}`) >> 1n;
  const issuerName = opts.issuer ? opts.issuer.certificate.subject : name(opts.subjectCN);
  const exts = [
    extension(OID_BASIC_CONSTRAINTS, true, tlv(TAG.SEQUENCE, ...(opts.ca ? [tlv(TAG.BOOLEAN, Uint8Array.of(0xff))] : []))),
    extension(OID_KEY_USAGE, true, tlv(TAG.BIT_STRING, opts.ca ? Uint8Array.of(1, 0x06) : Uint8Array.of(6, 0xc0))),
    ...(opts.extensions ?? []),
  ];
  const tbs = tlv(
    TAG.SEQUENCE,
    tlv(0xa0, encodeInt(2)),
    encodeInt(serial),
    ECDSA_SHA256(),
    issuerName,
    tlv(TAG.SEQUENCE, time(opts.notBefore), time(opts.notAfter)),
    name(opts.subjectCN),
    new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    tlv(0xa3, tlv(TAG.SEQUENCE, ...exts)),
  );
  const der = signed(tbs, opts.issuer?.privateKey ?? privateKey);
  return { certificate: parseCertificate(der), der, privateKey, publicKey };
}

/** Issues a CRL signed by `issuer` listing `revokedSerials` (lowercase hex). */
export function issueCrl(issuer: Issued, thisUpdate: Date, nextUpdate: Date, revokedSerials: readonly string[] = []): Uint8Array {
  const entries = revokedSerials.map((s) => tlv(TAG.SEQUENCE, encodeInt(BigInt(`0x${s}`)), time(thisUpdate)));
  const tbs = tlv(
    TAG.SEQUENCE,
    encodeInt(1),
    ECDSA_SHA256(),
    issuer.certificate.subject,
    time(thisUpdate),
    time(nextUpdate),
    ...(entries.length > 0 ? [tlv(TAG.SEQUENCE, ...entries)] : []),
  );
  return signed(tbs, issuer.privateKey);
}

/** The SGX extension (OID 1.2.840.113741.1.13.1) of a PCK certificate (evidence-and-collateral §2.2). */
export function encodeSgxExtension(p: PlatformTcb, cpusvn?: Uint8Array): Uint8Array {
  const pair = (suffix: string, value: Uint8Array): Uint8Array => tlv(TAG.SEQUENCE, encodeOid(`${SGX_EXTENSION_OID}.${suffix}`), value);
  const octets = (h: string): Uint8Array => tlv(TAG.OCTET_STRING, new Uint8Array(Buffer.from(h, 'hex')));
  const comps = p.sgxTcbComponents.map((svn, i) => pair(`2.${i + 1}`, encodeInt(svn)));
  const cpu = cpusvn ?? Uint8Array.from(p.sgxTcbComponents);
  return tlv(
    TAG.SEQUENCE,
    pair('1', octets(p.ppid)),
    pair('2', tlv(TAG.SEQUENCE, ...comps, pair('2.17', encodeInt(p.pcesvn)), pair('2.18', tlv(TAG.OCTET_STRING, cpu)))),
    pair('3', octets(p.pceId)),
    pair('4', octets(p.fmspc)),
    pair('5', tlv(TAG.ENUMERATED, Uint8Array.of(0))),
  );
}

/** Builds root → PCK CA → PCK (with SGX extension), root → TCB signing, and both CRLs. */
export function createDcapHierarchy(opts: HierarchyOptions = {}): DcapHierarchy {
  const notBefore = opts.notBefore ?? new Date('2020-01-01T00:00:00Z');
  const notAfter = opts.notAfter ?? new Date('2040-01-01T00:00:00Z');
  const caType = opts.caType ?? 'platform';
  const platform: PlatformTcb = {
    fmspc: '00906ed50000',
    pceId: '0000',
    sgxTcbComponents: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
    pcesvn: 13,
    ppid: '00112233445566778899aabbccddeeff',
    ...opts.platform,
  };
  const root = issueCertificate({ subjectCN: opts.rootName ?? 'Conclave Test SGX Root CA', ca: true, notBefore, notAfter });
  const pckCa = issueCertificate({ subjectCN: `Intel SGX PCK ${caType === 'processor' ? 'Processor' : 'Platform'} CA`, issuer: root, ca: true, notBefore, notAfter });
  const tcbSigning = issueCertificate({ subjectCN: 'Intel SGX TCB Signing', issuer: root, ca: false, notBefore, notAfter });
  const pck = issueCertificate({
    subjectCN: 'Intel SGX PCK Certificate',
    issuer: pckCa,
    ca: false,
    notBefore,
    notAfter,
    extensions: [extension(SGX_EXTENSION_OID, false, encodeSgxExtension(platform))],
  });
  const revoked = (opts.revokedPckSerials ?? []).map((s) => (s === 'pck' ? pck.certificate.serial : s));
  return {
    root,
    pckCa,
    tcbSigning,
    pck,
    caType,
    platform,
    rootCaCrl: issueCrl(root, notBefore, notAfter),
    pckCrl: issueCrl(pckCa, notBefore, notAfter, revoked),
    notBefore,
    notAfter,
  };
}

export interface CollateralOptions {
  readonly tee: 'sgx' | 'tdx';
  readonly issueDate?: Date;
  readonly nextUpdate?: Date;
  /** Replaces the generated `tcbInfo` object. */
  readonly tcbInfo?: Record<string, unknown>;
  /** Replaces the generated `enclaveIdentity` object. */
  readonly qeIdentity?: Record<string, unknown>;
  /** TDX module TEE_TCB_SVN[0] of the UpToDate module level (default 3). */
  readonly tdxModuleIsvsvn?: number;
}

/** A TCB info v3 with one UpToDate level at exactly the platform's TCB (plus, for TDX, module TDX_01). */
export function defaultTcbInfo(h: DcapHierarchy, opts: CollateralOptions): Record<string, unknown> {
  const issueDate = (opts.issueDate ?? h.notBefore).toISOString();
  const nextUpdate = (opts.nextUpdate ?? h.notAfter).toISOString();
  const sgx = h.platform.sgxTcbComponents.map((svn) => ({ svn }));
  const zero48 = '0'.repeat(96);
  const tdx = Array.from({ length: 16 }, (_, i) => ({ svn: i === 0 ? 2 : 0 }));
  return {
    id: opts.tee === 'sgx' ? 'SGX' : 'TDX',
    version: 3,
    issueDate,
    nextUpdate,
    fmspc: h.platform.fmspc.toUpperCase(),
    pceId: h.platform.pceId.toUpperCase(),
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    ...(opts.tee === 'tdx'
      ? {
          tdxModule: { mrsigner: zero48, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
          tdxModuleIdentities: [
            {
              id: 'TDX_01',
              mrsigner: zero48,
              attributes: '0000000000000000',
              attributesMask: 'FFFFFFFFFFFFFFFF',
              tcbLevels: [{ tcb: { isvsvn: opts.tdxModuleIsvsvn ?? 3 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' }],
            },
          ],
        }
      : {}),
    tcbLevels: [
      {
        tcb: { sgxtcbcomponents: sgx, pcesvn: h.platform.pcesvn, ...(opts.tee === 'tdx' ? { tdxtcbcomponents: tdx } : {}) },
        tcbDate: '2024-03-13T00:00:00Z',
        tcbStatus: 'UpToDate',
      },
    ],
  };
}

/** A QE (SGX) or TD_QE (TDX) identity v2 with Intel's QE values and one UpToDate level at ISVSVN 8. */
export function defaultQeIdentity(h: DcapHierarchy, opts: CollateralOptions): Record<string, unknown> {
  return {
    id: opts.tee === 'sgx' ? 'QE' : 'TD_QE',
    version: 2,
    issueDate: (opts.issueDate ?? h.notBefore).toISOString(),
    nextUpdate: (opts.nextUpdate ?? h.notAfter).toISOString(),
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: QE_ATTRIBUTES.toUpperCase(),
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: (opts.tee === 'sgx' ? INTEL_QE_MRSIGNER : INTEL_TD_QE_MRSIGNER).toUpperCase(),
    isvprodid: opts.tee === 'sgx' ? 1 : 2,
    tcbLevels: [{ tcb: { isvsvn: 8 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' }],
  };
}

/** Compact JSON bytes and their r‖s signature by `key`, as the PCS serves `tcbInfo` / `enclaveIdentity`. */
export function signJson(value: unknown, key: KeyObject): { body: Uint8Array; signature: Uint8Array } {
  const body = new Uint8Array(Buffer.from(JSON.stringify(value), 'utf8'));
  return { body, signature: new Uint8Array(sign('sha256', body, { key, dsaEncoding: 'ieee-p1363' })) };
}

/** Collateral for quotes of `h`, signed by its TCB signing key. */
export function buildCollateral(h: DcapHierarchy, opts: CollateralOptions): QuoteCollateral {
  const tcb = signJson(opts.tcbInfo ?? defaultTcbInfo(h, opts), h.tcbSigning.privateKey);
  const qe = signJson(opts.qeIdentity ?? defaultQeIdentity(h, opts), h.tcbSigning.privateKey);
  return {
    pckCrlIssuerChain: [h.pckCa.der, h.root.der],
    rootCaCrl: h.rootCaCrl,
    pckCrl: h.pckCrl,
    tcbInfoIssuerChain: [h.tcbSigning.der, h.root.der],
    tcbInfo: tcb.body,
    tcbInfoSignature: tcb.signature,
    qeIdentityIssuerChain: [h.tcbSigning.der, h.root.der],
    qeIdentity: qe.body,
    qeIdentitySignature: qe.signature,
  };
}

export interface QuoteOptions {
  readonly tee: 'sgx' | 'tdx';
  /** 3 (SGX only), 4 or 5; default 3 for SGX, 4 for TDX. */
  readonly version?: 3 | 4 | 5;
  /** v5 TDX only: TD report 1.5 instead of 1.0 (default true for v5). */
  readonly td15?: boolean;
  readonly reportData?: Uint8Array;
  /** Field overrides of the enclave report / TD report. */
  readonly sgxReport?: Partial<SgxReportBody>;
  readonly tdReport?: Partial<TdReport15>;
  /** QE ISVSVN (default 8). */
  readonly qeIsvsvn?: number;
  /** Field overrides of the QE report (its REPORTDATA binding is still computed). */
  readonly qeReport?: Partial<Omit<SgxReportBody, 'reportdata'>>;
  readonly qeAuthData?: Uint8Array;
}

function hexBytes(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, 'hex'));
}

/** A quote of `h`'s platform: QE report signed by the PCK key, body signed by a fresh attestation key. */
export function buildSignedQuote(h: DcapHierarchy, opts: QuoteOptions): Uint8Array {
  const version = opts.version ?? (opts.tee === 'sgx' ? 3 : 4);
  const header: QuoteHeader = {
    ...zeroLayout(QUOTE_HEADER),
    version,
    attestationKeyType: ATTESTATION_KEY_TYPE_ECDSA_P256,
    teeType: opts.tee === 'sgx' ? TEE_TYPE_SGX : TEE_TYPE_TDX,
    qeSvn: version === 3 ? (opts.qeIsvsvn ?? 8) : 0,
    pceSvn: version === 3 ? h.platform.pcesvn : 0,
    qeVendorId: hexBytes(INTEL_QE_VENDOR_ID),
  };
  const reportdata = opts.reportData ?? new Uint8Array(64);
  let body: QuoteBody;
  if (opts.tee === 'sgx') {
    body = { kind: 'sgx', report: { ...zeroLayout(SGX_REPORT_BODY), attributes: hexBytes('05000000000000000700000000000000'), reportdata, ...opts.sgxReport } };
  } else {
    const teeTcbSvn = new Uint8Array(16);
    teeTcbSvn.set([3, 1, 2]);
    const base: TdReport10 = { ...zeroLayout(TD_REPORT_10), teeTcbSvn, tdattributes: hexBytes('0000001000000000'), xfam: hexBytes('e702060000000000'), reportdata };
    const td15 = version === 5 && opts.td15 !== false;
    body = td15
      ? { kind: 'td15', report: { ...zeroLayout(TD_REPORT_15), ...base, teeTcbSvn2: teeTcbSvn, ...opts.tdReport } }
      : { kind: 'td10', report: { ...base, ...(opts.tdReport as Partial<TdReport10>) } };
  }
  const ak = generateEcKeyPair('P-256');
  const jwk = ak.publicKey.export({ format: 'jwk' });
  const attestationKey = new Uint8Array(Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]));
  const qeAuthData = opts.qeAuthData ?? new Uint8Array(32).fill(0x5a);
  const qeReport: Decoded<typeof SGX_REPORT_BODY> = {
    ...zeroLayout(SGX_REPORT_BODY),
    cpusvn: Uint8Array.from(h.platform.sgxTcbComponents),
    attributes: hexBytes(QE_ATTRIBUTES),
    mrsigner: hexBytes(opts.tee === 'sgx' ? INTEL_QE_MRSIGNER : INTEL_TD_QE_MRSIGNER),
    isvprodid: opts.tee === 'sgx' ? 1 : 2,
    isvsvn: opts.qeIsvsvn ?? 8,
    ...opts.qeReport,
    reportdata: new Uint8Array(Buffer.concat([sha256(attestationKey, qeAuthData), new Uint8Array(32)])),
  };
  const qeReportSignature = new Uint8Array(sign('sha256', encodeSgxReportBody(qeReport), { key: h.pck.privateKey, dsaEncoding: 'ieee-p1363' }));
  const chainPem = `${derToPem(h.pck.der)}${derToPem(h.pckCa.der)}${derToPem(h.root.der)}\0`;
  const signature = new Uint8Array(sign('sha256', encodeSignedRegion(header, body), { key: ak.privateKey, dsaEncoding: 'ieee-p1363' }));
  return encodeQuote({
    header,
    body,
    signatureData: {
      signature,
      attestationKey,
      qeReport,
      qeReportSignature,
      qeAuthData,
      certificationData: { type: CERT_DATA_PCK_CHAIN, data: new Uint8Array(Buffer.from(chainPem, 'latin1')) },
    },
  });
}
