/**
 * A fake AMD key hierarchy (ARK → ASK/ASVK → VCEK/VLEK, with the AMD VCEK extensions) and reports
 * signed by it, shaped like the real ones (evidence-and-collateral §4.2). For tests and the simulated
 * TEE; never trusted unless passed explicitly as `trustAnchors`.
 */
import { type KeyObject, constants, createHash, sign as cryptoSign } from 'node:crypto';
import { TAG, encodeInt, encodeOid, tlv } from '../../core/der.js';
import { VEK_OID } from './vek.js';
import type { AmdProduct } from './roots.js';
import type { SnpTrustAnchors } from './chain.js';
import { type SnpReportFields, type SnpTcbParts, encodeSnpReport, encodeTcb, tcbLayoutOf } from './report.js';
import { signSnpReport } from './sign.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../../core/keygen.js';

const OID_SHA384 = '2.16.840.1.101.3.4.2.2';

function rsaPssSha384AlgId(): Uint8Array {
  const hashAlg = tlv(TAG.SEQUENCE, encodeOid(OID_SHA384), tlv(TAG.NULL));
  return tlv(
    TAG.SEQUENCE,
    encodeOid('1.2.840.113549.1.1.10'),
    tlv(TAG.SEQUENCE, tlv(0xa0, hashAlg), tlv(0xa1, tlv(TAG.SEQUENCE, encodeOid('1.2.840.113549.1.1.8'), hashAlg)), tlv(0xa2, encodeInt(48))),
  );
}

function name(cn: string): Uint8Array {
  return tlv(TAG.SEQUENCE, tlv(TAG.SET, tlv(TAG.SEQUENCE, encodeOid('2.5.4.3'), tlv(TAG.UTF8_STRING, Buffer.from(cn)))));
}

function derTime(d: Date): Uint8Array {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(`${iso.slice(2)}Z`)) : tlv(TAG.GENERALIZED_TIME, Buffer.from(`${iso}Z`));
}

function extension(oid: string, value: Uint8Array, critical = false): Uint8Array {
  return tlv(TAG.SEQUENCE, encodeOid(oid), ...(critical ? [tlv(TAG.BOOLEAN, Uint8Array.of(0xff))] : []), tlv(TAG.OCTET_STRING, value));
}

interface CertSpec {
  readonly serial: number;
  readonly issuer: string;
  readonly subject: string;
  readonly publicKey: KeyObject;
  readonly signer: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ca: boolean;
  readonly extensions?: Uint8Array[];
}

function issueCertificate(spec: CertSpec): Uint8Array {
  const exts = [...(spec.extensions ?? [])];
  if (spec.ca) exts.unshift(extension('2.5.29.19', tlv(TAG.SEQUENCE, tlv(TAG.BOOLEAN, Uint8Array.of(0xff))), true));
  const algId = rsaPssSha384AlgId();
  const tbs = tlv(
    TAG.SEQUENCE,
    tlv(0xa0, encodeInt(2)),
    encodeInt(spec.serial),
    algId,
    name(spec.issuer),
    tlv(TAG.SEQUENCE, derTime(spec.notBefore), derTime(spec.notAfter)),
    name(spec.subject),
    new Uint8Array(spec.publicKey.export({ type: 'spki', format: 'der' })),
    ...(exts.length > 0 ? [tlv(0xa3, tlv(TAG.SEQUENCE, ...exts))] : []),
  );
  const sig = cryptoSign('sha384', tbs, { key: spec.signer, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
  return tlv(TAG.SEQUENCE, tbs, algId, tlv(TAG.BIT_STRING, Uint8Array.of(0), sig));
}

export interface FakeKeyPair {
  readonly der: Uint8Array;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export interface FakeVekOptions {
  readonly signingKey?: 'vcek' | 'vlek';
  readonly chipId?: Uint8Array;
  readonly tcb?: SnpTcbParts;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Product-name extension; defaults to "Milan-B0", "Genoa", "Turin" (VLEK: bare product). */
  readonly productName?: string;
  /** Leave Turin's fmcSPL extension out (a VEK no AMD KDS issues). */
  readonly omitFmcSpl?: boolean;
}

export interface FakeSnpHierarchy {
  readonly product: AmdProduct;
  readonly ark: FakeKeyPair;
  readonly ask: FakeKeyPair;
  readonly asvk: FakeKeyPair;
  /** The VCEK (or VLEK) that signs reports. */
  readonly vek: FakeKeyPair;
  readonly signingKey: 'vcek' | 'vlek';
  readonly chipId: Uint8Array;
  readonly tcb: SnpTcbParts;
  /** ASK (or ASVK) then ARK, as KDS serves cert_chain. */
  readonly chain: Uint8Array[];
  /** Trust anchors that make this hierarchy verify. */
  readonly trustAnchors: SnpTrustAnchors;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface FakeHierarchyOptions extends FakeVekOptions {
  readonly product?: AmdProduct;
  /** RSA modulus for ARK/ASK/ASVK; real ones are 4096, tests default to 2048 for speed. */
  readonly rsaBits?: number;
}

const CPUID: Record<AmdProduct, { family: number; model: number; stepping: number }> = {
  Milan: { family: 0x19, model: 0x01, stepping: 0x01 },
  Genoa: { family: 0x19, model: 0x11, stepping: 0x01 },
  Turin: { family: 0x1a, model: 0x02, stepping: 0x00 },
};

/** CPUID fields a v3+ report of the product carries. */
export function fakeCpuid(product: AmdProduct): { family: number; model: number; stepping: number } {
  return CPUID[product];
}

function rsa(bits: number): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateRsaKeyPair(bits);
}

/** Creates ARK, ASK, ASVK and a VCEK (or VLEK) for one product. */
export function createFakeSnpHierarchy(opts: FakeHierarchyOptions = {}): FakeSnpHierarchy {
  const product = opts.product ?? 'Milan';
  const notBefore = opts.notBefore ?? new Date('2020-01-01T00:00:00Z');
  const notAfter = opts.notAfter ?? new Date('2045-01-01T00:00:00Z');
  const bits = opts.rsaBits ?? 2048;
  const arkKeys = rsa(bits);
  const askKeys = rsa(bits);
  const asvkKeys = rsa(bits);
  const common = { notBefore, notAfter, ca: true, signer: arkKeys.privateKey, issuer: `ARK-${product}` };
  const ark: FakeKeyPair = { ...arkKeys, der: issueCertificate({ ...common, serial: 0x10000, subject: `ARK-${product}`, publicKey: arkKeys.publicKey }) };
  const ask: FakeKeyPair = { ...askKeys, der: issueCertificate({ ...common, serial: 0x10001, subject: `SEV-${product}`, publicKey: askKeys.publicKey }) };
  const asvk: FakeKeyPair = { ...asvkKeys, der: issueCertificate({ ...common, serial: 0x10002, subject: `SEV-VLEK-${product}`, publicKey: asvkKeys.publicKey }) };
  const signingKey = opts.signingKey ?? 'vcek';
  const chipId = opts.chipId ?? new Uint8Array(createHash('sha512').update(`fake chip ${product}`).digest());
  const tcb = opts.tcb ?? { bootloader: 3, tee: 0, snp: 8, microcode: 115, ...(product === 'Turin' ? { fmc: 1 } : {}) };
  const partial = { product, ark, ask, asvk, chipId, tcb, notBefore, notAfter };
  const vek = issueFakeVek(partial, { ...opts, signingKey, chipId, tcb });
  return {
    ...partial,
    vek,
    signingKey,
    chain: [signingKey === 'vlek' ? asvk.der : ask.der, ark.der],
    trustAnchors: { [product]: { ark: ark.der, ask: ask.der, asvk: asvk.der } },
  };
}

/** Issues another VCEK/VLEK under a hierarchy's ASK/ASVK (another chip, another TCB, …). */
export function issueFakeVek(
  h: Pick<FakeSnpHierarchy, 'product' | 'ask' | 'asvk' | 'chipId' | 'tcb' | 'notBefore' | 'notAfter'>,
  opts: FakeVekOptions = {},
): FakeKeyPair {
  const signingKey = opts.signingKey ?? 'vcek';
  const tcb = opts.tcb ?? h.tcb;
  const chipId = opts.chipId ?? h.chipId;
  const keys = generateEcKeyPair('secp384r1');
  const turin = h.product === 'Turin';
  const productName = opts.productName ?? (signingKey === 'vlek' ? h.product : h.product === 'Milan' ? 'Milan-B0' : h.product);
  const exts = [
    extension(VEK_OID.structVersion, encodeInt(turin ? 1 : 0)),
    extension(VEK_OID.productName, tlv(TAG.IA5_STRING, Buffer.from(productName))),
    ...(turin && !opts.omitFmcSpl ? [extension(VEK_OID.fmcSpl, encodeInt(tcb.fmc ?? 0))] : []),
    extension(VEK_OID.blSpl, encodeInt(tcb.bootloader)),
    extension(VEK_OID.teeSpl, encodeInt(tcb.tee)),
    extension(VEK_OID.snpSpl, encodeInt(tcb.snp)),
    extension(VEK_OID.ucodeSpl, encodeInt(tcb.microcode)),
    ...(signingKey === 'vcek' ? [extension(VEK_OID.hwId, turin ? chipId.subarray(0, 8) : chipId)] : []),
    ...(signingKey === 'vlek' ? [extension(VEK_OID.cspId, tlv(TAG.IA5_STRING, Buffer.from('CN=conclave.test')))] : []),
  ];
  const issuer = signingKey === 'vlek' ? h.asvk : h.ask;
  const der = issueCertificate({
    serial: 0,
    issuer: signingKey === 'vlek' ? `SEV-VLEK-${h.product}` : `SEV-${h.product}`,
    subject: signingKey === 'vlek' ? 'SEV-VLEK' : 'SEV-VCEK',
    publicKey: keys.publicKey,
    signer: issuer.privateKey,
    notBefore: opts.notBefore ?? h.notBefore,
    notAfter: opts.notAfter ?? h.notAfter,
    ca: false,
    extensions: exts,
  });
  return { der, ...keys };
}

/**
 * Encodes and signs a v3 report for the hierarchy's chip and TCB (CPUID of the product), overriding any
 * field with `fields`; signed by `vek` when given (e.g. another chip's key), else the hierarchy's.
 */
export function makeFakeSnpReport(h: FakeSnpHierarchy, fields: SnpReportFields = {}, vek: FakeKeyPair = h.vek): Uint8Array {
  const layout = tcbLayoutOf(h.product);
  const tcb = encodeTcb(h.tcb, layout);
  const report = encodeSnpReport({
    version: 3,
    policy: 0x3001fn,
    signerInfo: h.signingKey === 'vlek' ? 0x4 : 0,
    cpuid: CPUID[h.product],
    reportedTcb: tcb,
    chipId: h.signingKey === 'vlek' ? new Uint8Array(64) : h.chipId,
    currentFirmware: { major: 1, minor: 55, build: 29 },
    ...fields,
  });
  return signSnpReport(report, vek.privateKey);
}

/** A CRL signed by the hierarchy's ARK revoking the given serial numbers (hex); `nextUpdate` undefined leaves the field out. */
export function makeFakeAmdCrl(h: FakeSnpHierarchy, revokedSerials: readonly string[], thisUpdate: Date, nextUpdate: Date | undefined): Uint8Array {
  const algId = rsaPssSha384AlgId();
  const entries = revokedSerials.map((s) => tlv(TAG.SEQUENCE, encodeInt(BigInt(`0x${s}`)), derTime(thisUpdate)));
  const tbs = tlv(
    TAG.SEQUENCE,
    encodeInt(1),
    algId,
    name(`ARK-${h.product}`),
    derTime(thisUpdate),
    ...(nextUpdate ? [derTime(nextUpdate)] : []),
    ...(entries.length > 0 ? [tlv(TAG.SEQUENCE, ...entries)] : []),
  );
  const sig = cryptoSign('sha384', tbs, { key: h.ark.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
  return tlv(TAG.SEQUENCE, tbs, algId, tlv(TAG.BIT_STRING, Uint8Array.of(0), sig));
}
