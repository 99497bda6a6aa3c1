/**
 * A fake NVIDIA hierarchy shaped like the real one: a device identity root → architecture CA → GPU
 * identity (BROM) → attestation (FMC) certificate with a TCG FWID extension, a RIM signing root → L4
 * signer, an OCSP responder, and reports, RIMs and OCSP responses signed by them. For tests and the
 * simulated TEE; trusted only when passed explicitly as trust anchors.
 */
import { type KeyObject, createHash, randomBytes, sign as cryptoSign } from 'node:crypto';
import { TAG, encodeInt, encodeOid, tlv } from '../../core/der.js';
import { OID_KP_OCSP_SIGNING, OID_OCSP_BASIC, OID_OCSP_NONCE, certIdFor } from '../../core/ocsp.js';
import { type Certificate, derToPem, parseCertificate } from '../../core/x509.js';
import { OID_TCG_DICE_FWID_HOPPER } from './chain.js';
import type { OpaqueFields } from './opaque.js';
import { GPU_SIGNATURE_SIZE, encodeGpuReport } from './report.js';
import { SWID_NS, TCG_RIM_NS, RIM_HASH_NS } from './rim.js';
import { signEnveloped } from './xmldsig.js';
import { generateEcKeyPair } from '../../core/keygen.js';

const ECDSA_SHA384 = '1.2.840.10045.4.3.3';
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';

function name(cn: string): Uint8Array {
  return tlv(TAG.SEQUENCE, tlv(TAG.SET, tlv(TAG.SEQUENCE, encodeOid('2.5.4.3'), tlv(TAG.UTF8_STRING, Buffer.from(cn)))));
}

function genTime(d: Date): Uint8Array {
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`));
}

function derTime(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`)) : genTime(d);
}

function extension(oid: string, value: Uint8Array, critical = false): Uint8Array {
  return tlv(TAG.SEQUENCE, encodeOid(oid), ...(critical ? [tlv(TAG.BOOLEAN, Uint8Array.of(0xff))] : []), tlv(TAG.OCTET_STRING, value));
}

function sigAlg(): Uint8Array {
  return tlv(TAG.SEQUENCE, encodeOid(ECDSA_SHA384));
}

function signDer(tbs: Uint8Array, key: KeyObject): Uint8Array {
  return tlv(TAG.BIT_STRING, Uint8Array.of(0), cryptoSign('sha384', tbs, { key, dsaEncoding: 'der' }));
}

export interface FakeCert {
  readonly der: Uint8Array;
  readonly cert: Certificate;
  readonly privateKey: KeyObject;
}

interface CertSpec {
  readonly serial: bigint;
  readonly subject: string;
  readonly issuer?: FakeCert;
  readonly ca: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions?: Uint8Array[];
}

/** Issues a P-384 certificate signed with ECDSA-SHA384 by `issuer` (self-signed without one). */
export function issueP384(spec: CertSpec): FakeCert {
  const { privateKey, publicKey } = generateEcKeyPair('P-384');
  const exts = [...(spec.extensions ?? [])];
  if (spec.ca) exts.unshift(extension('2.5.29.19', tlv(TAG.SEQUENCE, tlv(TAG.BOOLEAN, Uint8Array.of(0xff))), true));
  const tbs = tlv(
    TAG.SEQUENCE,
    tlv(0xa0, encodeInt(2)),
    encodeInt(spec.serial),
    sigAlg(),
    name(spec.issuer?.cert.subjectCN ?? spec.subject),
    tlv(TAG.SEQUENCE, derTime(spec.notBefore), derTime(spec.notAfter)),
    name(spec.subject),
    new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    ...(exts.length > 0 ? [tlv(0xa3, tlv(TAG.SEQUENCE, ...exts))] : []),
  );
  const der = tlv(TAG.SEQUENCE, tbs, sigAlg(), signDer(tbs, spec.issuer?.privateKey ?? privateKey));
  return { der, cert: parseCertificate(der), privateKey };
}

/** The Hopper FWID extension value: SEQUENCE { INTEGER 1, SubjectPublicKeyInfo, SEQUENCE { sha384, OCTET STRING fwid } }. */
function fwidExtension(fwid: Uint8Array, spki: Uint8Array): Uint8Array {
  return extension(OID_TCG_DICE_FWID_HOPPER, tlv(TAG.SEQUENCE, encodeInt(1), spki, tlv(TAG.SEQUENCE, encodeOid(OID_SHA384), tlv(TAG.OCTET_STRING, fwid))));
}

export interface FakeNvidiaHierarchy {
  readonly deviceRoot: FakeCert;
  readonly archCa: FakeCert;
  readonly brom: FakeCert;
  readonly fmc: FakeCert;
  readonly fwid: Uint8Array;
  readonly rimRoot: FakeCert;
  readonly rimSigner: FakeCert;
  /** OCSP responder for the device PKI (issued by the device root, id-kp-OCSPSigning). */
  readonly ocspResponder: FakeCert;
  /** OCSP responder for the RIM PKI (issued by the RIM root). */
  readonly rimOcspResponder: FakeCert;
  /** PEM of the device chain, leaf first, root included (as the driver returns it). */
  readonly chainPem: string;
  readonly trust: { readonly deviceRoot: Certificate; readonly rimRoot: Certificate };
}

const NOT_BEFORE = new Date('2023-01-01T00:00:00Z');
const FOREVER = new Date('9999-12-31T23:59:59Z');

export interface FakeHierarchyOptions {
  readonly gpuSerial?: bigint;
  readonly rimSignerNotAfter?: Date;
  readonly rootCn?: string;
}

/** A GPU's hierarchy; call once per simulated GPU (each GPU has its own BROM/FMC under shared roots when `roots` is given). */
export function createFakeNvidiaHierarchy(opts: FakeHierarchyOptions = {}, roots?: Pick<FakeNvidiaHierarchy, 'deviceRoot' | 'archCa' | 'rimRoot' | 'rimSigner' | 'ocspResponder' | 'rimOcspResponder'>): FakeNvidiaHierarchy {
  const deviceRoot = roots?.deviceRoot ?? issueP384({ serial: 1n, subject: opts.rootCn ?? 'Fake NVIDIA Device Identity CA', ca: true, notBefore: NOT_BEFORE, notAfter: FOREVER });
  const archCa = roots?.archCa ?? issueP384({ serial: 2n, subject: 'Fake NVIDIA GH100 Identity', issuer: deviceRoot, ca: true, notBefore: NOT_BEFORE, notAfter: FOREVER });
  const serial = opts.gpuSerial ?? BigInt(`0x${randomBytes(19).toString('hex')}`);
  const brom = issueP384({ serial, subject: 'GH100 A01 GSP BROM', issuer: archCa, ca: true, notBefore: NOT_BEFORE, notAfter: FOREVER });
  const fwid = new Uint8Array(createHash('sha384').update(`fwid ${serial}`).digest());
  const { publicKey } = generateEcKeyPair('P-384');
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const fmc = issueP384({ serial: serial + 1n, subject: 'GH100 A01 GSP FMC LF', issuer: brom, ca: false, notBefore: NOT_BEFORE, notAfter: FOREVER, extensions: [fwidExtension(fwid, spki)] });
  const rimRoot = roots?.rimRoot ?? issueP384({ serial: 10n, subject: 'Fake NVIDIA CoRIM signing Root CA', ca: true, notBefore: NOT_BEFORE, notAfter: FOREVER });
  const rimSigner =
    roots?.rimSigner ??
    issueP384({ serial: 11n, subject: 'Fake RIM L4 Signer', issuer: rimRoot, ca: false, notBefore: NOT_BEFORE, notAfter: opts.rimSignerNotAfter ?? new Date('2099-01-01T00:00:00Z') });
  const ocspResponder =
    roots?.ocspResponder ??
    issueP384({
      serial: 20n,
      subject: 'Fake NVIDIA OCSP Responder',
      issuer: deviceRoot,
      ca: false,
      notBefore: NOT_BEFORE,
      notAfter: FOREVER,
      extensions: [extension('2.5.29.37', tlv(TAG.SEQUENCE, encodeOid(OID_KP_OCSP_SIGNING)))],
    });
  const rimOcspResponder =
    roots?.rimOcspResponder ??
    issueP384({
      serial: 21n,
      subject: 'Fake NVIDIA RIM OCSP Responder',
      issuer: rimRoot,
      ca: false,
      notBefore: NOT_BEFORE,
      notAfter: FOREVER,
      extensions: [extension('2.5.29.37', tlv(TAG.SEQUENCE, encodeOid(OID_KP_OCSP_SIGNING)))],
    });
  const chainPem = [fmc, brom, archCa, deviceRoot].map((c) => derToPem(c.der)).join('');
  return { deviceRoot, archCa, brom, fmc, fwid, rimRoot, rimSigner, ocspResponder, rimOcspResponder, chainPem, trust: { deviceRoot: deviceRoot.cert, rimRoot: rimRoot.cert } };
}

/**
 * The same GPU after its firmware changed (or it was reset, where the attestation key is made per boot): its
 * device identity (BROM) certificate is the same, its attestation (FMC) certificate is new, with another key,
 * serial number (NVIDIA's `ueid`) and FWID, as the DICE alias key is derived from the firmware measured.
 */
export function reflashFakeGpu(h: FakeNvidiaHierarchy, label = 'other firmware'): FakeNvidiaHierarchy {
  const fwid = new Uint8Array(createHash('sha384').update(`fwid ${h.brom.cert.serial} ${label}`).digest());
  const { publicKey } = generateEcKeyPair('P-384');
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const serial = BigInt(`0x${randomBytes(19).toString('hex')}`);
  const fmc = issueP384({ serial, subject: 'GH100 A01 GSP FMC LF', issuer: h.brom, ca: false, notBefore: NOT_BEFORE, notAfter: FOREVER, extensions: [fwidExtension(fwid, spki)] });
  const chainPem = [fmc, h.brom, h.archCa, h.deviceRoot].map((c) => derToPem(c.der)).join('');
  return { ...h, fmc, fwid, chainPem };
}

export const FAKE_DRIVER_VERSION = '550.90.07';
export const FAKE_VBIOS_VERSION = '96.00.9F.00.01';

/** Deterministic fake golden values: 64 SHA-384 digests, index i = SHA-384("gpu measurement i"). */
export function fakeMeasurements(): Uint8Array[] {
  return Array.from({ length: 64 }, (_, i) => new Uint8Array(createHash('sha384').update(`gpu measurement ${i}`).digest()));
}

export interface FakeReportOptions {
  readonly nonce: Uint8Array;
  readonly measurements?: readonly Uint8Array[];
  readonly opaque?: Partial<OpaqueFields>;
}

/** A report signed by the hierarchy's FMC key, with the FWID of its certificate. */
export function makeFakeGpuReport(h: FakeNvidiaHierarchy, opts: FakeReportOptions): Uint8Array {
  const unsigned = encodeGpuReport({
    nonce: opts.nonce,
    responderNonce: new Uint8Array(createHash('sha256').update(opts.nonce).digest()),
    measurements: opts.measurements ?? fakeMeasurements(),
    opaque: { driverVersion: FAKE_DRIVER_VERSION, vbiosVersion: FAKE_VBIOS_VERSION, project: '1010', projectSku: '0200', chipSku: '882', fwid: h.fwid, featureFlag: 'SPT', ...opts.opaque },
  });
  return signFakeGpuReport(unsigned, h.fmc.privateKey);
}

/** Writes a fresh signature over everything before the signature area (tests re-sign mutated reports). */
export function signFakeGpuReport(report: Uint8Array, key: KeyObject): Uint8Array {
  const out = new Uint8Array(report);
  const end = out.byteLength - GPU_SIGNATURE_SIZE;
  out.set(cryptoSign('sha384', out.subarray(0, end), { key, dsaEncoding: 'ieee-p1363' }), end);
  return out;
}

export interface FakeRimOptions {
  readonly version: string;
  /** RIM indices (0-based) that are active, with their golden values (first = the matching one). */
  readonly golden: ReadonlyMap<number, readonly Uint8Array[]>;
  readonly signer?: FakeCert;
  readonly chain?: readonly FakeCert[];
}

/** A RIM shaped like NVIDIA's SWID tags, signed with the fake RIM signer. */
export function makeFakeRim(h: FakeNvidiaHierarchy, opts: FakeRimOptions): string {
  const resources: string[] = [];
  for (let i = 0; i < 64; i++) {
    const g = opts.golden.get(i);
    const values = g ?? [new Uint8Array(48)];
    const hashes = values.map((v, k) => `ns2:Hash${k}="${Buffer.from(v).toString('hex')}"`).join(' ');
    resources.push(
      `    <ns0:Resource type="Measurement" index="${i}" active="${g ? 'True' : 'False'}" alternatives="${values.length}" ${hashes} name="Measurement_${i}" size="48"/>`,
    );
  }
  const xml =
    `<SoftwareIdentity xmlns="${SWID_NS}" xmlns:ns0="${SWID_NS}" xmlns:ns2="${RIM_HASH_NS}" corpus="false" name="GH100" patch="false" supplemental="false" tagId="fake-${opts.version}" version="1.0" tagVersion="0">\n` +
    `  <ns0:Entity name="Conclave simulated" role="softwareCreator tagCreator"/>\n` +
    `  <ns0:Meta xmlns:ns1="${TCG_RIM_NS}" colloquialVersion="${opts.version}" edition="GPU" product="GH100" ns1:PlatformModel="GH100" ns1:FirmwareManufacturerId="5703"/>\n` +
    `  <ns0:Payload>\n${resources.join('\n')}\n  </ns0:Payload>\n</SoftwareIdentity>`;
  const signer = opts.signer ?? h.rimSigner;
  const chain = opts.chain ?? [signer, h.rimRoot];
  return signEnveloped(xml, signer.privateKey, chain.map((c) => c.der));
}

/** Driver and VBIOS RIMs that match {@link fakeMeasurements}: driver indices 20..39, VBIOS 0..11. */
export function makeFakeRims(h: FakeNvidiaHierarchy, measurements: readonly Uint8Array[] = fakeMeasurements()): { driver: string; vbios: string } {
  const driver = new Map<number, Uint8Array[]>();
  const vbios = new Map<number, Uint8Array[]>();
  for (let i = 0; i < 12; i++) vbios.set(i, [measurements[i]!]);
  for (let i = 20; i < 40; i++) driver.set(i, i === 35 ? [new Uint8Array(48).fill(0x35), measurements[i]!] : [measurements[i]!]);
  return { driver: makeFakeRim(h, { version: FAKE_DRIVER_VERSION, golden: driver }), vbios: makeFakeRim(h, { version: FAKE_VBIOS_VERSION, golden: vbios }) };
}

export interface FakeOcspOptions {
  readonly cert: Certificate;
  readonly issuer: Certificate;
  readonly status?: 'good' | 'revoked' | 'unknown';
  /** CRLReason number (6 = certificateHold). */
  readonly reason?: number;
  readonly thisUpdate?: Date;
  readonly nextUpdate?: Date;
  readonly nonce?: Uint8Array;
  /** Signs as this certificate (default: the hierarchy's OCSP responder of the certificate's PKI, included in the response). */
  readonly signer?: FakeCert;
  readonly includeSigner?: boolean;
  /** Single responses for other certificates, listed before this one's (an answer to a request naming several). */
  readonly others?: ReadonlyArray<Pick<FakeOcspOptions, 'cert' | 'issuer' | 'status' | 'reason' | 'thisUpdate' | 'nextUpdate'>>;
}

/** A basic OCSP response (RFC 6960 §4.2.1), signed with ECDSA-SHA384. */
export function makeFakeOcspResponse(h: FakeNvidiaHierarchy, opts: FakeOcspOptions): Uint8Array {
  const rimPki = opts.issuer.subjectCN === h.rimRoot.cert.subjectCN;
  const signer = opts.signer ?? (rimPki ? h.rimOcspResponder : h.ocspResponder);
  const singleOf = (o: Pick<FakeOcspOptions, 'cert' | 'issuer' | 'status' | 'reason' | 'thisUpdate' | 'nextUpdate'>) => {
    const id = certIdFor(o.cert, o.issuer, 'sha384');
    const certId = tlv(
      TAG.SEQUENCE,
      tlv(TAG.SEQUENCE, encodeOid(OID_SHA384), tlv(TAG.NULL)),
      tlv(TAG.OCTET_STRING, id.issuerNameHash),
      tlv(TAG.OCTET_STRING, id.issuerKeyHash),
      encodeInt(BigInt(`0x${id.serial}`)),
    );
    const thisUpdate = o.thisUpdate ?? new Date('2025-01-01T00:00:00Z');
    const nextUpdate = o.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * 24 * 3600_000);
    const status = o.status ?? 'good';
    const certStatus =
      status === 'good'
        ? tlv(0x80)
        : status === 'unknown'
          ? tlv(0x82)
          : tlv(0xa1, genTime(thisUpdate), ...(o.reason !== undefined ? [tlv(0xa0, tlv(TAG.ENUMERATED, Uint8Array.of(o.reason)))] : []));
    return { single: tlv(TAG.SEQUENCE, certId, certStatus, genTime(thisUpdate), tlv(0xa0, genTime(nextUpdate))), thisUpdate };
  };
  const own = singleOf(opts);
  const others = (opts.others ?? []).map(singleOf);
  // producedAt: the latest thisUpdate of the answer.
  const producedAt = new Date(Math.max(own.thisUpdate.getTime(), ...others.map((o) => o.thisUpdate.getTime())));
  const exts = opts.nonce ? [tlv(0xa1, tlv(TAG.SEQUENCE, tlv(TAG.SEQUENCE, encodeOid(OID_OCSP_NONCE), tlv(TAG.OCTET_STRING, tlv(TAG.OCTET_STRING, opts.nonce)))))] : [];
  const tbs = tlv(TAG.SEQUENCE, tlv(0xa1, signer.cert.subject), genTime(producedAt), tlv(TAG.SEQUENCE, ...others.map((o) => o.single), own.single), ...exts);
  const basic = tlv(TAG.SEQUENCE, tbs, sigAlg(), signDer(tbs, signer.privateKey), ...(opts.includeSigner === false ? [] : [tlv(0xa0, tlv(TAG.SEQUENCE, signer.der))]));
  return tlv(TAG.SEQUENCE, tlv(TAG.ENUMERATED, Uint8Array.of(0)), tlv(0xa0, tlv(TAG.SEQUENCE, encodeOid(OID_OCSP_BASIC), tlv(TAG.OCTET_STRING, basic))));
}
