import { createHash } from 'node:crypto';
import { BoundedMap } from '../../core/bounded-map.js';
import { fail, isConclaveError } from '../../core/errors.js';
import { type Verified, markVerified } from '../../core/verified.js';
import { type Certificate, parseCertificate, publicKeyOf, verifyChain } from '../../core/x509.js';
import { rootIdOf } from './chain.js';
import { NVIDIA_RIM_ROOT_CA } from './roots.js';
import { checkSignatureProfile, parseStrictXml, verifyEnvelopedSignature } from './xmldsig.js';

/**
 * NVIDIA reference integrity manifests (RIMs): ISO/IEC 19770-2 SWID tags following the TCG RIM
 * Information Model, with golden SHA-384 measurements per index and an enveloped XML signature whose
 * chain ends in the NVIDIA CoRIM signing Root CA (gpu-attestation §6).
 */
export const SWID_NS = 'http://standards.iso.org/iso/19770/-2/2015/schema.xsd';
export const TCG_RIM_NS = 'https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/';
export const RIM_HASH_NS = 'http://www.w3.org/2001/04/xmlenc#sha384';
const MAX_ALTERNATIVES = 16;
const MAX_RIM_CHAIN = 6;

export interface RimMeasurement {
  /** RIM index, 0-based (SPDM block index − 1). */
  readonly index: number;
  readonly name: string;
  readonly active: boolean;
  readonly size: number;
  /** Golden values, lowercase hex; a runtime value matches when it equals any of them. */
  readonly alternatives: readonly string[];
}

export interface Rim {
  /** SHA-256 of the document bytes, hex: the cache key and the identity of this issue of the RIM. */
  readonly sha256: string;
  readonly tagId: string;
  /** Driver version or VBIOS version the RIM is for (Meta@colloquialVersion). */
  readonly colloquialVersion: string;
  readonly platformModel: string | undefined;
  /** Meta@FirmwareManufacturerId: NVIDIA's `oemid` claim. */
  readonly firmwareManufacturerId: string | undefined;
  readonly measurements: readonly RimMeasurement[];
  /** Signer chain as embedded, leaf first. */
  readonly signer: readonly Certificate[];
  /** Earliest notAfter of the signer chain. */
  readonly notAfter: Date;
  /** {@link notAfter} as ISO text, the form results carry. */
  readonly notAfterIso: string;
  /** The times (ms) at which every certificate of the signing path, the root included, is valid. */
  readonly validFrom: number;
  readonly validUntil: number;
}

function elementChildren(e: Element): Element[] {
  const out: Element[] = [];
  for (let n = e.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}

function one(parent: Element, name: string): Element {
  const found = elementChildren(parent).filter((c) => c.namespaceURI === SWID_NS && c.localName === name);
  if (found.length !== 1) throw fail('rim.malformed', `the RIM must have exactly one ${name}`, { element: name, count: found.length });
  return found[0]!;
}

function intAttr(e: Element, name: string, min: number, max: number): number {
  const v = e.getAttribute(name) ?? '';
  if (!/^\d{1,4}$/.test(v) || Number(v) < min || Number(v) > max) throw fail('rim.malformed', `RIM attribute ${name}="${v}" is out of range`, { attribute: name, value: v });
  return Number(v);
}

/** Reads the values of a RIM from the canonical text its signature covers. */
function readSignedContent(signedXml: string): Omit<Rim, 'sha256' | 'signer' | 'notAfter' | 'notAfterIso' | 'validFrom' | 'validUntil'> {
  const doc = parseStrictXml(signedXml, 'rim.malformed', 'signed RIM content');
  const root = doc.documentElement;
  if (root.namespaceURI !== SWID_NS || root.localName !== 'SoftwareIdentity') throw fail('rim.malformed', 'the RIM is not a SWID SoftwareIdentity tag');
  const meta = one(root, 'Meta');
  const payload = one(root, 'Payload');
  const colloquialVersion = meta.getAttribute('colloquialVersion') ?? '';
  if (!/^[0-9A-Za-z.]{1,32}$/.test(colloquialVersion)) throw fail('rim.malformed', 'the RIM has no valid colloquialVersion', { value: colloquialVersion });
  const measurements: RimMeasurement[] = [];
  const seen = new Set<number>();
  for (const r of elementChildren(payload)) {
    if (r.namespaceURI !== SWID_NS || r.localName !== 'Resource' || r.getAttribute('type') !== 'Measurement') continue;
    const index = intAttr(r, 'index', 0, 254);
    if (seen.has(index)) throw fail('rim.malformed', `RIM measurement index ${index} is repeated`, { index });
    seen.add(index);
    const activeText = r.getAttribute('active') ?? '';
    if (!/^(true|false)$/i.test(activeText)) throw fail('rim.malformed', `RIM measurement ${index} has active="${activeText}"`, { index });
    const size = intAttr(r, 'size', 1, 64);
    const n = intAttr(r, 'alternatives', 1, MAX_ALTERNATIVES);
    const alternatives: string[] = [];
    for (let i = 0; i < n; i++) {
      const h = r.getAttributeNS(RIM_HASH_NS, `Hash${i}`) ?? '';
      if (h.length !== size * 2 || !/^[0-9a-fA-F]+$/.test(h)) throw fail('rim.malformed', `RIM measurement ${index} Hash${i} is not ${size} bytes of hex`, { index, attribute: `Hash${i}` });
      alternatives.push(h.toLowerCase());
    }
    measurements.push({ index, name: r.getAttribute('name') ?? '', active: /^true$/i.test(activeText), size, alternatives });
  }
  if (measurements.length === 0) throw fail('rim.malformed', 'the RIM holds no measurement');
  return {
    tagId: root.getAttribute('tagId') ?? '',
    colloquialVersion,
    platformModel: meta.getAttributeNS(TCG_RIM_NS, 'PlatformModel') ?? undefined,
    firmwareManufacturerId: meta.getAttributeNS(TCG_RIM_NS, 'FirmwareManufacturerId') ?? undefined,
    measurements: measurements.sort((a, b) => a.index - b.index),
  };
}

/**
 * The content hash of a RIM buffer, memoised per buffer object together with a copy of the bytes it was
 * computed from: a hit needs the same bytes (one memcmp, cheaper than SHA-256), so a buffer rewritten in
 * place is hashed, and verified, afresh instead of passing under the hash of what it held before.
 */
const hashOfBuffer = new WeakMap<Uint8Array, { readonly bytes: Buffer; readonly sha256: string }>();

function contentHash(input: Uint8Array, bytes: Buffer): string {
  const memo = hashOfBuffer.get(input);
  if (memo?.bytes.equals(bytes)) return memo.sha256;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  hashOfBuffer.set(input, { bytes: Buffer.from(bytes), sha256 });
  return sha256;
}

/** Verified RIMs by content hash. */
export class RimCache {
  private readonly map: BoundedMap<string, Verified<Rim>>;
  constructor(max = 512) {
    this.map = new BoundedMap(max);
  }
  get(key: string): Verified<Rim> | undefined {
    return this.map.get(key);
  }
  set(key: string, v: Verified<Rim>): void {
    this.map.set(key, v);
  }
}

export interface RimVerifyOptions {
  readonly at: Date;
  /** Defaults to the pinned NVIDIA CoRIM signing Root CA (tests pass a fake one). */
  readonly root?: Certificate | undefined;
  readonly cache?: RimCache | undefined;
}

function checkSignerValidity(signer: readonly Certificate[], root: Certificate, at: Date): void {
  try {
    verifyChain(signer, root, { at, code: 'rim.chain_invalid', expiredCode: 'rim.expired' });
  } catch (e) {
    if (isConclaveError(e, 'der.malformed')) throw fail('rim.chain_invalid', 'a certificate of the RIM signing chain is malformed', { reason: e.message }, e);
    throw e;
  }
}

/**
 * Verifies a RIM document: strict XML, the one XML-DSig profile (exactly one enveloped signature over
 * the whole document), the reference digest, the ECDSA signature with the embedded leaf certificate, that
 * certificate's chain to the pinned RIM root at `at`, and returns the measurements read from the signed
 * canonical content. Order: digest, signature, chain, so that each failure has its own code
 * (`rim.digest_mismatch`, `rim.signature_invalid`, `rim.chain_invalid`, `rim.expired`).
 */
export function verifyRim(input: string | Uint8Array, opts: RimVerifyOptions): Verified<Rim> {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const root = opts.root ?? NVIDIA_RIM_ROOT_CA;
  // The cache is keyed by content: the same buffer object (a RIM held by a collateral source) is hashed
  // once while it holds the same bytes; rewritten in place, it is hashed and verified afresh.
  const sha256 = typeof input === 'string' ? createHash('sha256').update(bytes).digest('hex') : contentHash(input, bytes);
  const key = `${sha256}:${rootIdOf(root)}`;
  const cached = opts.cache?.get(key);
  if (cached) {
    // Signatures were verified when it was cached; only the validity windows depend on `at`, so they are
    // checked at every use: inside the window every certificate is valid, outside it the full check names one.
    const at = opts.at.getTime();
    if (!(at >= cached.validFrom && at <= cached.validUntil)) checkSignerValidity(cached.signer, root, opts.at);
    return cached;
  }
  const text = bytes.toString('utf8');
  if (Buffer.byteLength(text, 'utf8') !== bytes.byteLength || text.includes('\ufffd')) throw fail('rim.malformed', 'the RIM is not UTF-8 text');
  const doc = parseStrictXml(text, 'rim.malformed', 'RIM');
  const parts = checkSignatureProfile(doc);
  if (parts.x509Certificates.length > MAX_RIM_CHAIN) throw fail('rim.chain_invalid', 'the RIM signing chain is too long', { length: parts.x509Certificates.length });
  const signer = parts.x509Certificates.map((b64, i) => {
    try {
      return parseCertificate(new Uint8Array(Buffer.from(b64, 'base64')));
    } catch (e) {
      throw fail('rim.chain_invalid', `certificate ${i} of the RIM signing chain cannot be parsed`, { index: i, reason: isConclaveError(e) ? e.message : 'malformed' }, e);
    }
  });
  let signerKey: ReturnType<typeof publicKeyOf>;
  try {
    signerKey = publicKeyOf(signer[0]!);
  } catch (e) {
    throw fail('rim.chain_invalid', 'the RIM signing certificate has a malformed key', undefined, e);
  }
  const signedContent = verifyEnvelopedSignature(text, parts, signerKey);
  checkSignerValidity(signer, root, opts.at);
  const notAfter = new Date(Math.min(...signer.map((c) => c.notAfter.getTime())));
  const rim = markVerified<Rim>({
    sha256,
    ...readSignedContent(signedContent),
    signer,
    notAfter,
    notAfterIso: notAfter.toISOString(),
    validFrom: Math.max(root.notBefore.getTime(), ...signer.map((c) => c.notBefore.getTime())),
    validUntil: Math.min(root.notAfter.getTime(), ...signer.map((c) => c.notAfter.getTime())),
  });
  opts.cache?.set(key, rim);
  return rim;
}
