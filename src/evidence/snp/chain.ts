import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { BoundedMap } from '../../core/bounded-map.js';
import { ConclaveError, fail } from '../../core/errors.js';
import { type Certificate, type Crl, crlBytes, parseCertificate, parseCrl, publicKeyOf, verifyChain, verifyCrlSignature } from '../../core/x509.js';
import { verificationTime } from '../../core/time.js';
import { type VekExtensions, parseVekExtensions, productFamilyOf } from './vek.js';
import { AMD_PRODUCTS, AMD_ROOTS, type AmdProduct } from './roots.js';

/** Certificates for one report: the VCEK/VLEK and, optionally, its ASK/ASVK and ARK and the AMD CRL. */
export interface SnpCertificates {
  /** The VCEK or VLEK, DER. May instead be the first element of `chain`. */
  readonly vcek?: Uint8Array | undefined;
  /** DER certificates: any of VEK, ASK/ASVK, ARK, in any order (the KDS cert_chain is ASK then ARK). */
  readonly chain?: readonly Uint8Array[] | undefined;
  /** The AMD CRL for the product (DER or PEM), signed by the ARK. */
  readonly crl?: Uint8Array | undefined;
}

/**
 * The most certificates one report's evidence may carry (VEK and chain together). A VEK chain is the VEK, the
 * ASK or ASVK and the ARK; the rest is room for a bundle that repeats one. More is refused before any is parsed
 * or hashed: the count of certificates is the caller's to choose, the work per request is not.
 */
export const SNP_MAX_CERTIFICATES = 8;

/** How many certificates `certs` carries (the VEK and the chain). */
export function certificateCount(certs: SnpCertificates | undefined): number {
  return (certs?.vcek ? 1 : 0) + (certs?.chain?.length ?? 0);
}

/** Throws `snp.malformed` when `certs` carries more than {@link SNP_MAX_CERTIFICATES} certificates. */
export function checkCertificateCount(certs: SnpCertificates | undefined): void {
  const count = certificateCount(certs);
  if (count > SNP_MAX_CERTIFICATES) {
    throw fail('snp.malformed', `the evidence carries ${count} certificates; a VCEK/VLEK chain has at most ${SNP_MAX_CERTIFICATES}`, { count, max: SNP_MAX_CERTIFICATES });
  }
}

/** Trusted roots per product. The ARK is required; ASK/ASVK are used when the evidence lacks them. */
export interface SnpTrustAnchor {
  readonly ark: Uint8Array | Certificate;
  readonly ask?: Uint8Array | Certificate | undefined;
  readonly asvk?: Uint8Array | Certificate | undefined;
}

export type SnpTrustAnchors = Partial<Record<AmdProduct, SnpTrustAnchor>>;

/** A VEK chain that verified: what the per-report checks need. */
export interface VerifiedVekChain {
  readonly product: AmdProduct;
  readonly signingKey: 'vcek' | 'vlek';
  readonly vek: Certificate;
  readonly vekKey: KeyObject;
  readonly extensions: VekExtensions;
  /** The window in which every certificate of the path is valid. */
  readonly validFrom: Date;
  readonly validTo: Date;
  /** Whether the AMD CRL was given and checked (its signature, dates and revocations). */
  readonly crlChecked: boolean;
  /** The CRL's nextUpdate when a CRL was checked. */
  readonly crlNextUpdate: Date | undefined;
}

/**
 * Verified VEK chains keyed by the SHA-256 of everything that went into the verdict (certificates,
 * CRL, anchors, product). Passed in by the caller (one per verifier instance), never a module global.
 * Entries are immutable facts about immutable bytes; only the time check is redone on a hit.
 */
export class SnpVerifierCache {
  readonly maxEntries: number;
  private readonly chains: BoundedMap<string, VerifiedVekChain>;
  /**
   * Chains that do not lead to the anchors they were checked against (`snp.chain_invalid`), by the same
   * key: a fact about the bytes too. The attestation service tries the pinned AMD roots before the
   * simulated ones, so without this every simulated report would pay a failed cold verification first.
   * A refusal only ever refuses again; it never makes anything verify.
   */
  private readonly refusals: BoundedMap<string, ConclaveError>;
  /** Per anchors object, the id and copies of the certificates it was computed from (see {@link anchorId}). */
  private readonly anchorIds: ContentIds = new WeakMap();
  /** Per certificates object, the content id and copies of the bytes it was computed from (see {@link certsId}). */
  private readonly certIds: ContentIds = new WeakMap();
  /**
   * AMD CRLs whose ARK signature verified, by the SHA-256 of the CRL and of the ARK: a CRL is parsed and its
   * signature checked once, not again for every chain verified with it (one CRL serves every chip of a product).
   */
  private readonly crls = new BoundedMap<string, Crl>(64);

  constructor(maxEntries = 4096) {
    this.maxEntries = maxEntries;
    this.chains = new BoundedMap(maxEntries);
    this.refusals = new BoundedMap(maxEntries);
  }

  /** The CRL parsed, its signature by `ark` verified once per CRL and ARK (see {@link readAmdCrl}). */
  verifiedCrl(bytes: Uint8Array, ark: Certificate): Crl {
    const key = createHash('sha256').update(bytes).update(ark.der).digest('hex');
    let crl = this.crls.get(key);
    if (!crl) {
      crl = readAmdCrl(bytes, ark);
      this.crls.set(key, crl);
    }
    return crl;
  }

  get size(): number {
    return this.chains.size;
  }

  get(key: string): VerifiedVekChain | undefined {
    return this.chains.get(key);
  }

  set(key: string, value: VerifiedVekChain): void {
    this.chains.set(key, value);
  }

  /** Chains remembered as refused. */
  get refused(): number {
    return this.refusals.size;
  }

  refusal(key: string): ConclaveError | undefined {
    return this.refusals.get(key);
  }

  refuse(key: string, e: ConclaveError): void {
    this.refusals.set(key, e);
  }

  /**
   * The content id of a certificates object (SHA-256 over its VEK, chain and CRL bytes), memoised per
   * object (see {@link idWhileSame}): a caller that hands the same certificates for every report (a
   * collateral source, a benchmark) pays the hash once, and bytes changed in place get a new id.
   */
  certsId(certs: SnpCertificates): string {
    return idWhileSame(this.certIds, certs, certItems(certs), certsDigest);
  }

  /**
   * A content id for a trust-anchor object, memoised per object (see {@link idWhileSame}): anchors changed
   * in place (another root for a product, bytes rewritten) get a new id, so nothing verified under the old
   * ones is answered for them.
   */
  anchorId(anchors: SnpTrustAnchors): string {
    const parts: Uint8Array[] = [];
    for (const p of AMD_PRODUCTS) {
      const a = anchors[p];
      parts.push(Buffer.from(p));
      if (!a) continue;
      for (const c of [a.ark, a.ask, a.asvk]) parts.push(c === undefined ? new Uint8Array(1) : derOf(c));
    }
    return idWhileSame(this.anchorIds, anchors, parts, (xs) => {
      const h = createHash('sha256');
      for (const x of xs) h.update(x);
      return h.digest('hex');
    });
  }
}

/** Content ids memoised per object, with private copies of the bytes each was computed from. */
type ContentIds = WeakMap<object, { readonly parts: readonly Buffer[]; readonly id: string }>;

/**
 * The id `memos` holds for `owner` while `owner` still yields exactly `parts` (compared byte for byte with
 * the private copies: a memcmp instead of the hash), else `compute(parts)`, remembered with copies of them.
 */
function idWhileSame(memos: ContentIds, owner: object, parts: readonly Uint8Array[], compute: (parts: readonly Uint8Array[]) => string): string {
  const memo = memos.get(owner);
  if (memo && memo.parts.length === parts.length && memo.parts.every((m, i) => m.equals(parts[i]!))) return memo.id;
  const id = compute(parts);
  memos.set(owner, { parts: parts.map((x) => Buffer.from(x)), id });
  return id;
}

function derOf(c: Uint8Array | Certificate): Uint8Array {
  return c instanceof Uint8Array ? c : c.der;
}

function certOf(c: Uint8Array | Certificate): Certificate {
  return c instanceof Uint8Array ? parseCertificate(c) : c;
}

function productOfName(name: string | undefined): AmdProduct | undefined {
  if (!name) return undefined;
  const family = productFamilyOf(name);
  return (AMD_PRODUCTS as readonly string[]).includes(family) ? (family as AmdProduct) : undefined;
}

/** "ARK-Milan" → Milan, "SEV-Milan"/"SEV-VLEK-Milan" → Milan. */
function productOfCn(cn: string | undefined): AmdProduct | undefined {
  const m = /^(?:ARK|SEV|SEV-VLEK)-(\w+)$/.exec(cn ?? '');
  return m ? productOfName(m[1]) : undefined;
}

/**
 * The AMD product one certificate of a VEK chain names (a VEK by its product-name extension, an ASK/ASVK or
 * ARK by its subject), without verifying anything: which product's CRL to fetch for a report that does not
 * name its product (version 2). Verification still decides the product from every source
 * (`snp.product_mismatch`); undefined when the certificate names none or cannot be read.
 */
export function productNamedBy(der: Uint8Array): AmdProduct | undefined {
  try {
    const c = parseCertificate(der);
    if (c.subjectCN === 'SEV-VCEK' || c.subjectCN === 'SEV-VLEK') {
      const name = parseVekExtensions(c).productName;
      return name === undefined ? undefined : productOfName(name);
    }
    return productOfCn(c.subjectCN);
  } catch {
    return undefined;
  }
}

export interface VekChainOptions {
  readonly at: Date;
  readonly trustAnchors?: SnpTrustAnchors | undefined;
  readonly cache?: SnpVerifierCache | undefined;
  /** The product the report names (CPUID, v3+) or the caller expects; must agree with the chain. */
  readonly product?: AmdProduct | undefined;
  /** The SIGNING_KEY of the report; the leaf must be of that kind. */
  readonly signingKey?: 'vcek' | 'vlek' | undefined;
}

/** The certificates' bytes in a fixed order: VEK, chain, CRL (absent ones as empty). */
function certItems(certs: SnpCertificates): Uint8Array[] {
  return [certs.vcek ?? EMPTY, ...(certs.chain ?? []), certs.crl ?? EMPTY];
}

const EMPTY = new Uint8Array(0);

/** SHA-256 (hex) of the certificates: their count and lengths first, so that no two lists collide, then the bytes. */
function certsDigest(items: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  const lengths = Buffer.allocUnsafe(4 * (items.length + 1));
  lengths.writeUInt32BE(items.length, 0);
  for (let i = 0; i < items.length; i++) lengths.writeUInt32BE(items[i]!.byteLength, 4 * (i + 1));
  h.update(lengths);
  for (const b of items) h.update(b);
  return h.digest('hex');
}

function cacheKey(certs: SnpCertificates, opts: VekChainOptions): string {
  const cache = opts.cache!;
  const anchors = opts.trustAnchors ? cache.anchorId(opts.trustAnchors) : '';
  return `${cache.certsId(certs)}|${opts.product ?? ''}|${opts.signingKey ?? ''}|${anchors}`;
}

function checkWindow(c: VerifiedVekChain, at: Date): void {
  const t = verificationTime(at);
  if (!(t >= c.validFrom.getTime() && t <= c.validTo.getTime())) {
    throw fail('cert.expired', `the VCEK/VLEK chain is not valid at ${at.toISOString()}`, {
      validFrom: c.validFrom.toISOString(),
      validTo: c.validTo.toISOString(),
    });
  }
  if (c.crlNextUpdate && !(t <= c.crlNextUpdate.getTime())) {
    throw fail('crl.expired', `the AMD CRL is past its nextUpdate at ${at.toISOString()}`, { nextUpdate: c.crlNextUpdate.toISOString() });
  }
}

/**
 * Verifies VEK ← ASK/ASVK ← ARK (evidence-and-collateral §4.2): the ARK is pinned per product (or taken
 * from `trustAnchors`), the product is inferred from the chain and must agree with `opts.product`,
 * and the AMD CRL is checked when given. With a cache, a chain already verified is reused (the
 * validity window is still checked against `at`).
 */
export function verifyVekChain(certs: SnpCertificates, opts: VekChainOptions): VerifiedVekChain {
  verificationTime(opts.at);
  checkCertificateCount(certs);
  const key = opts.cache ? cacheKey(certs, opts) : undefined;
  if (key !== undefined) {
    const hit = opts.cache!.get(key);
    if (hit) {
      checkWindow(hit, opts.at);
      return hit;
    }
    const refused = opts.cache!.refusal(key);
    if (refused) throw fail('snp.chain_invalid', refused.message, refused.detail);
  }
  let result: VerifiedVekChain;
  try {
    result = verifyVekChainCold(certs, opts);
  } catch (e) {
    if (e instanceof ConclaveError) {
      if (key !== undefined && e.code === 'snp.chain_invalid') opts.cache!.refuse(key, e);
      throw e;
    }
    // node:crypto rejects unusable keys (e.g. a malformed SPKI) with its own errors; keep one family.
    throw fail('snp.chain_invalid', 'a certificate of the VCEK/VLEK chain holds an unusable key', undefined, e);
  }
  checkWindow(result, opts.at);
  if (key !== undefined) opts.cache!.set(key, result);
  return result;
}

function verifyVekChainCold(certs: SnpCertificates, opts: VekChainOptions): VerifiedVekChain {
  const all = [...(certs.vcek ? [certs.vcek] : []), ...(certs.chain ?? [])].map((d) => parseCertificate(d));
  const isLeaf = (c: Certificate): boolean => c.subjectCN === 'SEV-VCEK' || c.subjectCN === 'SEV-VLEK' || (!c.isCA && c.extensions.has('1.3.6.1.4.1.3704.1.3.1'));
  const vek = all.find(isLeaf);
  if (!vek) throw fail('snp.certificate_missing', 'no VCEK or VLEK certificate was given for the report');
  const ark = all.find((c) => c !== vek && c.subjectCN?.startsWith('ARK-'));
  const ask = all.find((c) => c !== vek && c !== ark && c.isCA && c.subjectCN?.startsWith('SEV-'));

  const signingKey: 'vcek' | 'vlek' =
    vek.subjectCN === 'SEV-VLEK' ? 'vlek' : vek.subjectCN === 'SEV-VCEK' ? 'vcek' : (opts.signingKey ?? 'vcek');
  if (opts.signingKey && opts.signingKey !== signingKey) {
    throw fail('snp.chain_invalid', `the report is signed by its ${opts.signingKey.toUpperCase()} but the certificate is a ${signingKey.toUpperCase()}`, {
      reportSigningKey: opts.signingKey,
      certificate: vek.subjectCN,
    });
  }
  if (ask) {
    const askIsVlek = ask.subjectCN?.startsWith('SEV-VLEK-') === true;
    if (askIsVlek !== (signingKey === 'vlek')) {
      throw fail('snp.chain_invalid', `a ${signingKey.toUpperCase()} must be issued by ${signingKey === 'vlek' ? 'an ASVK' : 'an ASK'}, not "${ask.subjectCN}"`, {
        issuer: ask.subjectCN,
      });
    }
  }

  const extensions = parseVekExtensions(vek);
  // Every source that names a product must name the same one (snp.product_mismatch otherwise).
  const named: Array<[string, AmdProduct | undefined, string | undefined]> = [
    ['VEK product name', productOfName(extensions.productName), extensions.productName],
    ['ASK/ASVK subject', productOfCn(ask?.subjectCN), ask?.subjectCN],
    ['ARK subject', productOfCn(ark?.subjectCN), ark?.subjectCN],
    ['report', opts.product, opts.product],
  ];
  let product: AmdProduct | undefined;
  let source: string | undefined;
  for (const [where, p, raw] of named) {
    if (raw !== undefined && p === undefined && where !== 'report') {
      throw fail('snp.product_mismatch', `${where} "${raw}" names no known AMD product`, { [where]: raw });
    }
    if (p === undefined) continue;
    if (product !== undefined && p !== product) {
      throw fail('snp.product_mismatch', `${where} names ${p} but ${source} names ${product}`, { expected: product, actual: p, where });
    }
    product = p;
    source = where;
  }
  if (!product) throw fail('snp.product_mismatch', 'the AMD product cannot be inferred from the report or the certificates');
  if (extensions.structVersion === 1 && product !== 'Turin') {
    throw fail('snp.product_mismatch', `a Turin-format VCEK (struct version 1) was given for ${product}`, { product });
  }

  const anchor = opts.trustAnchors ? opts.trustAnchors[product] : AMD_ROOTS[product];
  if (!anchor) throw fail('snp.chain_invalid', `no trust anchor is configured for ${product}`, { product });
  const root = certOf(anchor.ark);
  const pinnedIntermediate = signingKey === 'vlek' ? anchor.asvk : anchor.ask;
  const intermediate = ask ?? (pinnedIntermediate ? certOf(pinnedIntermediate) : undefined);
  if (!intermediate) throw fail('snp.certificate_missing', `no ${signingKey === 'vlek' ? 'ASVK' : 'ASK'} for ${product}`, { product });

  const path = ark ? [vek, intermediate, ark] : [vek, intermediate];
  verifyChain(path, root, { at: opts.at, code: 'snp.chain_invalid' });

  let crlNextUpdate: Date | undefined;
  if (certs.crl) {
    const crl = opts.cache ? opts.cache.verifiedCrl(certs.crl, root) : readAmdCrl(certs.crl, root);
    crlNextUpdate = checkCrl(crl, root, [intermediate, vek], opts.at);
  }

  const vekKey = publicKeyOf(vek);
  const details = vekKey.asymmetricKeyDetails;
  if (vekKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    throw fail('snp.chain_invalid', 'the VCEK/VLEK key is not ECDSA P-384', { keyType: vekKey.asymmetricKeyType, curve: details?.namedCurve });
  }
  const validFrom = new Date(Math.max(vek.notBefore.getTime(), intermediate.notBefore.getTime(), root.notBefore.getTime()));
  const validTo = new Date(Math.min(vek.notAfter.getTime(), intermediate.notAfter.getTime(), root.notAfter.getTime()));
  return { product, signingKey, vek, vekKey, extensions, validFrom, validTo, crlChecked: certs.crl !== undefined, crlNextUpdate };
}

/**
 * The AMD CRL (DER or PEM) parsed and its signature checked with the ARK: bytes that are no CRL are
 * `crl.invalid` as a CRL signed by another key is, since a CRL that is given must verify.
 */
function readAmdCrl(bytes: Uint8Array, ark: Certificate): Crl {
  let crl: Crl;
  try {
    crl = parseCrl(crlBytes(bytes));
  } catch (e) {
    if (e instanceof ConclaveError) throw fail('crl.invalid', `the AMD CRL cannot be read: ${e.message}`, { reason: e.code }, e);
    throw e;
  }
  verifyCrlSignature(crl, ark);
  return crl;
}

/** Dates and revocations of a CRL whose signature {@link readAmdCrl} checked. */
function checkCrl(crl: Crl, ark: Certificate, certs: Certificate[], at: Date): Date | undefined {
  const t = verificationTime(at);
  if (!(t >= crl.thisUpdate.getTime())) throw fail('crl.invalid', 'the AMD CRL is not yet valid', { thisUpdate: crl.thisUpdate.toISOString() });
  // RFC 5280 §5.1.2.5: every CRL carries nextUpdate (AMD's do). One without it would never expire, so an old
  // one replayed would stand for good: refused, as a CRL that does not verify is.
  if (!crl.nextUpdate) throw fail('crl.invalid', 'the AMD CRL has no nextUpdate', { thisUpdate: crl.thisUpdate.toISOString() });
  if (!(t <= crl.nextUpdate.getTime())) throw fail('crl.expired', 'the AMD CRL is past its nextUpdate', { nextUpdate: crl.nextUpdate.toISOString() });
  for (const c of certs) {
    // The ARK's CRL lists the ASK/ASVK (and VEKs in principle) it revoked, by serial number.
    if (c.issuerCN === ark.subjectCN && crl.revoked.has(c.serial)) {
      throw fail('snp.revoked', `certificate "${c.subjectCN}" is revoked by the AMD CRL`, { subject: c.subjectCN, serial: c.serial });
    }
  }
  return crl.nextUpdate;
}
