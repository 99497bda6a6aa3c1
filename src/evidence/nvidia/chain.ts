import { type KeyObject, createHash } from 'node:crypto';
import { BoundedMap } from '../../core/bounded-map.js';
import { TAG, children, content, oid, parseDer } from '../../core/der.js';
import { type ConclaveError, fail, isConclaveError } from '../../core/errors.js';
import { type Certificate, parseCertificate, pemToDer, publicKeyOf, verifyChain } from '../../core/x509.js';
import { NVIDIA_DEVICE_IDENTITY_CA } from './roots.js';

/** TCG DICE FWID extensions of the GPU attestation (FMC) certificate (gpu-attestation §4). */
export const OID_TCG_DICE_FWID_HOPPER = '2.23.133.5.4.1';
export const OID_TCG_DICE_TCB_INFO_BLACKWELL = '2.23.133.5.4.1.1';
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
/** A device chain longer than this is not one NVIDIA issues (5 in every vector). */
const MAX_CHAIN_LENGTH = 8;

export type GpuArchitecture = 'HOPPER' | 'BLACKWELL';

export interface VerifiedDeviceChain {
  /** Leaf first, as the driver returns it (root included when the driver included it). */
  readonly certificates: readonly Certificate[];
  /** The attestation certificate whose key signs the report. */
  readonly leaf: Certificate;
  readonly architecture: GpuArchitecture;
  /** The FWID the attestation certificate carries (48 bytes), from the extension of its architecture. */
  readonly fwid: Uint8Array;
  readonly fwidOid: string;
  /** Serial number of the attestation certificate, decimal: NVIDIA's `ueid` claim. */
  readonly ueid: string;
  /** CN of the device identity (BROM) certificate: NVIDIA's `hwmodel` claim. */
  readonly hwmodel: string;
  /**
   * SHA-256 (hex) of the device identity (BROM) certificate's public key: the GPU itself. Unlike the ueid
   * (the attestation certificate's serial, made for the firmware the GPU runs), it stays the same when the
   * GPU's firmware changes.
   */
  readonly deviceId: string;
  /** Earliest notAfter of the chain (`x-nvidia-cert-expiration-date`). */
  readonly notAfter: Date;
  /** {@link notAfter} as ISO text, the form results carry. */
  readonly notAfterIso: string;
  /**
   * The times (ms) at which every certificate of the path, the trusted root included, is valid: the latest
   * notBefore and the earliest notAfter. A cached chain is used only inside it.
   */
  readonly validFrom: number;
  readonly validUntil: number;
  /** The attestation certificate's public key, decoded once. */
  readonly leafKey: KeyObject;
}

/** Parses the PEM text of `attestationCertChain` (or DER blobs), leaf first. */
export function parseDeviceChain(input: string | readonly Uint8Array[]): Certificate[] {
  const ders = typeof input === 'string' ? pemToDer(input) : input;
  if (ders.length === 0) throw fail('gpu.chain_invalid', 'the GPU certificate chain holds no certificate');
  if (ders.length > MAX_CHAIN_LENGTH) throw fail('gpu.chain_invalid', `the GPU certificate chain holds ${ders.length} certificates; at most ${MAX_CHAIN_LENGTH} are allowed`);
  return ders.map((d, i) => {
    try {
      return parseCertificate(d);
    } catch (e) {
      throw fail('gpu.chain_invalid', `certificate ${i} of the GPU chain cannot be parsed`, { index: i, reason: isConclaveError(e) ? e.message : 'malformed' }, e);
    }
  });
}

function derFail(what: string, cause: unknown): ConclaveError {
  return fail('gpu.chain_invalid', `the ${what} of the GPU attestation certificate is malformed`, { extension: what }, cause);
}

/**
 * The FWID of an attestation certificate. Hopper: `SEQUENCE { INTEGER, SubjectPublicKeyInfo,
 * SEQUENCE { hashAlg, OCTET STRING fwid } }` under 2.23.133.5.4.1; Blackwell: a DICE TcbInfo under
 * 2.23.133.5.4.1.1 whose `[6] fwids` list holds the FWID as its first digest.
 */
export function fwidOf(cert: Certificate): { fwid: Uint8Array; oid: string } {
  const hopper = cert.extensions.get(OID_TCG_DICE_FWID_HOPPER);
  const blackwell = cert.extensions.get(OID_TCG_DICE_TCB_INFO_BLACKWELL);
  try {
    if (hopper) {
      const kids = children(parseDer(hopper.value, 'FWID extension'));
      const last = kids[kids.length - 1];
      if (!last || last.tag !== TAG.SEQUENCE) throw fail('der.malformed', 'no FWID sequence');
      const [alg, digest] = children(last);
      if (!alg || !digest || oid(alg) !== OID_SHA384 || digest.tag !== TAG.OCTET_STRING || content(digest).byteLength !== 48) {
        throw fail('der.malformed', 'FWID is not a SHA-384 digest');
      }
      return { fwid: new Uint8Array(content(digest)), oid: OID_TCG_DICE_FWID_HOPPER };
    }
    if (blackwell) {
      const fwids = children(parseDer(blackwell.value, 'TcbInfo extension')).find((t) => t.tag === 0xa6);
      const first = fwids ? children(fwids)[0] : undefined;
      const [alg, digest] = first ? children(first) : [];
      if (!alg || !digest || oid(alg) !== OID_SHA384 || digest.tag !== TAG.OCTET_STRING || content(digest).byteLength !== 48) {
        throw fail('der.malformed', 'TcbInfo fwids[0] is not a SHA-384 digest');
      }
      return { fwid: new Uint8Array(content(digest)), oid: OID_TCG_DICE_TCB_INFO_BLACKWELL };
    }
  } catch (e) {
    throw derFail(hopper ? 'FWID extension' : 'TcbInfo extension', e);
  }
  throw fail('gpu.chain_invalid', 'the first certificate of the GPU chain has no FWID extension, so it is not an attestation certificate', {
    subject: cert.subjectCN,
  });
}

function architectureOf(leaf: Certificate): GpuArchitecture {
  const cn = leaf.subjectCN ?? '';
  if (cn.startsWith('GH100')) return 'HOPPER';
  if (cn.startsWith('GB')) return 'BLACKWELL';
  throw fail('gpu.unsupported', `GPU attestation certificate "${cn}" names no supported architecture`, { subject: cn });
}

/** SHA-256 of a root's DER, hex, once per root object (roots are pinned constants or configuration). */
const rootIds = new WeakMap<Certificate, string>();
export function rootIdOf(root: Certificate): string {
  let id = rootIds.get(root);
  if (id === undefined) {
    id = createHash('sha256').update(root.der).digest('hex');
    rootIds.set(root, id);
  }
  return id;
}

/** Verified device chains by content hash; each hit still re-checks validity at the caller's time. */
export class DeviceChainCache {
  private readonly map: BoundedMap<string, VerifiedDeviceChain>;
  constructor(max = 1024) {
    this.map = new BoundedMap(max);
  }
  get(key: string): VerifiedDeviceChain | undefined {
    return this.map.get(key);
  }
  set(key: string, v: VerifiedDeviceChain): void {
    this.map.set(key, v);
  }
}

export interface DeviceChainOptions {
  readonly at: Date;
  /** The trusted root; defaults to the pinned NVIDIA Device Identity CA (tests pass a fake one). */
  readonly root?: Certificate | undefined;
  readonly cache?: DeviceChainCache | undefined;
}

/**
 * Verifies the GPU attestation certificate chain (leaf first) to the pinned NVIDIA Device Identity CA:
 * each link's issuer name and ECDSA signature, the CA flag of every issuer, validity at `at`, a chain end
 * byte-identical to the root, and an attestation certificate that carries a FWID. The chain does not
 * check revocation; that is OCSP's job ({@link verifyOcspForChain}).
 */
export function verifyDeviceChain(input: string | readonly Uint8Array[], opts: DeviceChainOptions): VerifiedDeviceChain {
  const root = opts.root ?? NVIDIA_DEVICE_IDENTITY_CA;
  // Keyed by the received bytes (with the root), so a warm verification neither decodes nor parses the chain again.
  // The root's id is a fixed-length prefix of what is hashed, so one hash names both.
  const h = createHash('sha256').update(rootIdOf(root));
  if (typeof input === 'string') h.update(input);
  else for (const d of input) h.update(`${d.byteLength}:`).update(d);
  const key = h.digest('hex');
  const cached = opts.cache?.get(key);
  if (cached) {
    // Signatures, names and the FWID were checked when it was cached; validity depends on `at`, so it is
    // checked at every use: inside the window every certificate is valid, outside it the full check
    // names the certificate.
    const at = opts.at.getTime();
    if (!(at >= cached.validFrom && at <= cached.validUntil)) {
      verifyChain(cached.certificates, root, { at: opts.at, code: 'gpu.chain_invalid' });
    }
    return cached;
  }
  const certs = parseDeviceChain(input);
  if (certs.length < 2) throw fail('gpu.chain_invalid', 'the GPU certificate chain must hold the attestation certificate and its issuers', { length: certs.length });
  try {
    verifyChain(certs, root, { at: opts.at, code: 'gpu.chain_invalid' });
  } catch (e) {
    if (isConclaveError(e, 'der.malformed')) throw fail('gpu.chain_invalid', 'a certificate of the GPU chain is malformed', { reason: e.message }, e);
    throw e;
  }
  const leaf = certs[0]!;
  const { fwid, oid: fwidOid } = fwidOf(leaf);
  const brom = certs[1]!;
  const architecture = architectureOf(leaf);
  let leafKey: KeyObject;
  try {
    leafKey = publicKeyOf(leaf);
  } catch (e) {
    throw fail('gpu.chain_invalid', 'the attestation certificate has a malformed key', { subject: leaf.subjectCN }, e);
  }
  const notAfter = new Date(Math.min(...certs.map((c) => c.notAfter.getTime())));
  const result: VerifiedDeviceChain = {
    certificates: certs,
    leaf,
    architecture,
    fwid,
    fwidOid,
    ueid: BigInt(`0x${leaf.serial}`).toString(10),
    hwmodel: brom.subjectCN ?? '',
    deviceId: createHash('sha256').update(brom.spki).digest('hex'),
    notAfter,
    notAfterIso: notAfter.toISOString(),
    validFrom: Math.max(root.notBefore.getTime(), ...certs.map((c) => c.notBefore.getTime())),
    validUntil: Math.min(root.notAfter.getTime(), ...certs.map((c) => c.notAfter.getTime())),
    leafKey,
  };
  opts.cache?.set(key, result);
  return result;
}
