import { createHash, type KeyObject, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { C14nCanonicalization, SignedXml } from 'xml-crypto';
import { fail } from '../../core/errors.js';

/**
 * The one XML-DSig profile NVIDIA signs RIMs with (gpu-attestation §6), and nothing else: an enveloped
 * signature over the whole document (`Reference URI=""`, transforms enveloped-signature + C14N 1.1,
 * SHA-384), SignedInfo canonicalised with C14N 1.1 and signed with ECDSA P-384 (raw r‖s). Verification
 * is xml-crypto's (canonicalisation, reference digest, SignedInfo signature) with only these algorithms
 * registered, so no other algorithm a document names can be used against us.
 *
 * C14N 1.1 differs from C14N 1.0 only in how `xml:` attributes of omitted ancestors are inherited into a
 * document subset (W3C C14N 1.1 §2.4). This profile refuses any `xml:` attribute (see
 * {@link parseStrictXml}), so on every document it accepts the two produce the same octets, and xml-crypto's
 * C14N 1.0 serves for the C14N 1.1 URI.
 */
export const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
export const C14N_11 = 'http://www.w3.org/2006/12/xml-c14n11';
export const ENVELOPED_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
export const DIGEST_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#sha384';
export const SIGNATURE_ECDSA_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384';
/** A RIM is about 20 KB; anything far larger is not one. */
export const MAX_XML_SIZE = 1 << 20;
const MAX_XML_DEPTH = 32;
const MAX_XML_ELEMENTS = 4096;

class C14n11 extends C14nCanonicalization {
  override getAlgorithmName(): never {
    return C14N_11 as never;
  }
}

class Sha384 {
  getHash(xml: string): string {
    return createHash('sha384').update(xml, 'utf8').digest('base64');
  }
  getAlgorithmName(): never {
    return DIGEST_SHA384 as never;
  }
}

class EcdsaSha384 {
  verifySignature(material: string, key: KeyObject, signatureValue: string): boolean {
    const sig = Buffer.from(signatureValue, 'base64');
    if (sig.length !== 96) return false;
    try {
      return cryptoVerify('sha384', Buffer.from(material, 'utf8'), { key, dsaEncoding: 'ieee-p1363' }, sig);
    } catch {
      return false;
    }
  }
  getSignature(signedInfo: string, key: KeyObject): string {
    return cryptoSign('sha384', Buffer.from(signedInfo, 'utf8'), { key, dsaEncoding: 'ieee-p1363' }).toString('base64');
  }
  getAlgorithmName(): never {
    return SIGNATURE_ECDSA_SHA384 as never;
  }
}

/** xml-crypto's enveloped-signature transform (not exported by name, so taken from its registry). */
const EnvelopedSignature = new SignedXml().CanonicalizationAlgorithms[ENVELOPED_SIGNATURE as never];

/** A SignedXml that knows only this profile's algorithms. */
function profileSignedXml(options: ConstructorParameters<typeof SignedXml>[0]): SignedXml {
  const sx = new SignedXml(options);
  sx.CanonicalizationAlgorithms = { [C14N_11]: C14n11, [ENVELOPED_SIGNATURE]: EnvelopedSignature } as never;
  sx.HashAlgorithms = { [DIGEST_SHA384]: Sha384 } as never;
  sx.SignatureAlgorithms = { [SIGNATURE_ECDSA_SHA384]: EcdsaSha384 } as never;
  return sx;
}

/**
 * Parses XML text strictly: no DTD (so no entities, no external anything), no processing instruction
 * but the declaration, no `xml:` attribute, well-formed (any parser warning is an error). `code` is the
 * error code to fail with.
 */
export function parseStrictXml(text: string, code: 'rim.malformed', what: string): Document {
  if (text.length > MAX_XML_SIZE) throw fail(code, `${what} is larger than ${MAX_XML_SIZE} bytes`, { length: text.length });
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw fail(code, `${what} has a document type declaration, which is not allowed`);
  if (/<\?(?!xml\s)/.test(text) || /<\?xml\s/.test(text.slice(1))) throw fail(code, `${what} has a processing instruction, which is not allowed`);
  if (/\sxml:[A-Za-z]/.test(text)) throw fail(code, `${what} has an xml: attribute, which this XML-DSig profile does not allow`);
  const problems: string[] = [];
  const doc = new DOMParser({
    errorHandler: { warning: (m: string) => problems.push(m), error: (m: string) => problems.push(m), fatalError: (m: string) => problems.push(m) },
  }).parseFromString(text, 'text/xml');
  if (problems.length > 0 || !doc?.documentElement) throw fail(code, `${what} is not well-formed XML`, { reason: problems[0]?.slice(0, 200) });
  // Canonicalisation recurses per element: bound the depth (a RIM is four levels deep) and the element count.
  let elements = 0;
  const stack: Array<[Node, number]> = [[doc.documentElement as unknown as Node, 1]];
  while (stack.length > 0) {
    const [n, depth] = stack.pop()!;
    if (depth > MAX_XML_DEPTH) throw fail(code, `${what} nests elements deeper than ${MAX_XML_DEPTH}`);
    if (++elements > MAX_XML_ELEMENTS) throw fail(code, `${what} has more than ${MAX_XML_ELEMENTS} elements`);
    for (let c = n.firstChild; c; c = c.nextSibling) if (c.nodeType === 1) stack.push([c, depth + 1]);
  }
  return doc as unknown as Document;
}

function elementChildren(e: Element): Element[] {
  const out: Element[] = [];
  for (let n = e.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}

function dsChild(parent: Element, name: string, what: string): Element {
  const found = elementChildren(parent).filter((c) => c.namespaceURI === DS_NS && c.localName === name);
  if (found.length !== 1) throw fail('rim.malformed', `${what} must have exactly one ds:${name}`, { element: name, count: found.length });
  return found[0]!;
}

function algorithm(e: Element, expected: string, what: string): void {
  const alg = e.getAttribute('Algorithm');
  if (alg !== expected) throw fail('rim.malformed', `${what} algorithm ${alg ?? '(none)'} is not ${expected}`, { element: what, expected, actual: alg });
}

export interface XmlSignatureParts {
  /** The ds:Signature element (the last child of the document element). */
  readonly signature: Element;
  /** Base64 DER certificates of KeyInfo/X509Data, in document order (leaf first). */
  readonly x509Certificates: readonly string[];
}

/**
 * Checks that the document carries exactly one signature, as the last child of the document element, in
 * exactly this profile. This is what defeats signature wrapping: with one enveloped signature whose
 * reference is the whole document, every element outside the signature is signed.
 */
export function checkSignatureProfile(doc: Document): XmlSignatureParts {
  const root = doc.documentElement;
  const all = doc.getElementsByTagNameNS(DS_NS, 'Signature');
  if (all.length !== 1) throw fail('rim.malformed', `the document must hold exactly one ds:Signature, not ${all.length}`, { count: all.length });
  const signature = all[0]!;
  const kids = elementChildren(root);
  if (signature.parentNode !== root || kids[kids.length - 1] !== signature) {
    throw fail('rim.malformed', 'ds:Signature must be the last child of the document element (enveloped)');
  }
  const sigKids = elementChildren(signature).map((c) => (c.namespaceURI === DS_NS ? c.localName : `{${c.namespaceURI}}${c.localName}`));
  if (sigKids.join(' ') !== 'SignedInfo SignatureValue KeyInfo') {
    throw fail('rim.malformed', 'ds:Signature must hold exactly SignedInfo, SignatureValue and KeyInfo (nothing unsigned besides)', { children: sigKids });
  }
  const signedInfo = dsChild(signature, 'SignedInfo', 'ds:Signature');
  algorithm(dsChild(signedInfo, 'CanonicalizationMethod', 'SignedInfo'), C14N_11, 'CanonicalizationMethod');
  algorithm(dsChild(signedInfo, 'SignatureMethod', 'SignedInfo'), SIGNATURE_ECDSA_SHA384, 'SignatureMethod');
  const reference = dsChild(signedInfo, 'Reference', 'SignedInfo');
  if (reference.getAttribute('URI') !== '') throw fail('rim.malformed', 'the signature reference must be the whole document (URI="")', { uri: reference.getAttribute('URI') });
  const transforms = elementChildren(dsChild(reference, 'Transforms', 'Reference'));
  const algs = transforms.map((t) => t.getAttribute('Algorithm'));
  if (transforms.some((t) => t.namespaceURI !== DS_NS || t.localName !== 'Transform') || algs.join(' ') !== `${ENVELOPED_SIGNATURE} ${C14N_11}`) {
    throw fail('rim.malformed', 'the reference transforms must be enveloped-signature then C14N 1.1', { transforms: algs });
  }
  algorithm(dsChild(reference, 'DigestMethod', 'Reference'), DIGEST_SHA384, 'DigestMethod');
  dsChild(reference, 'DigestValue', 'Reference');
  dsChild(signature, 'SignatureValue', 'ds:Signature');
  const x509Data = dsChild(dsChild(signature, 'KeyInfo', 'ds:Signature'), 'X509Data', 'KeyInfo');
  const x509Certificates = elementChildren(x509Data)
    .filter((c) => c.namespaceURI === DS_NS && c.localName === 'X509Certificate')
    .map((c) => (c.textContent ?? '').replace(/\s+/g, ''));
  if (x509Certificates.length === 0) throw fail('rim.malformed', 'KeyInfo holds no X509Certificate');
  return { signature, x509Certificates };
}

/**
 * Verifies the reference digest and the SignedInfo signature with `key`, and returns the canonical XML
 * of what the reference signed: the document without its signature. Callers read every value from that
 * text and never from the received document. Throws `rim.digest_mismatch` (the document was altered) or
 * `rim.signature_invalid`.
 */
export function verifyEnvelopedSignature(text: string, parts: XmlSignatureParts, key: KeyObject): string {
  const sx = profileSignedXml({ publicCert: key });
  let ok: boolean;
  try {
    sx.loadSignature(parts.signature as never);
  } catch (e) {
    throw fail('rim.malformed', 'the XML signature cannot be read', { reason: (e as Error).message.slice(0, 120) }, e);
  }
  try {
    ok = sx.checkSignature(text);
  } catch (e) {
    throw fail('rim.signature_invalid', 'the XML signature does not verify with the RIM signing certificate', { reason: (e as Error).message.slice(0, 120) }, e);
  }
  if (!ok) throw fail('rim.digest_mismatch', 'the RIM does not match the digest its signature signs');
  const signed = sx.getSignedReferences();
  if (signed.length !== 1) throw fail('rim.malformed', 'the signature must sign exactly one reference');
  return signed[0]!;
}

/**
 * Signs a document with this profile (enveloped, whole document), embedding `certificatesDer` in
 * KeyInfo. For simulated GPUs and tests only; NVIDIA signs real RIMs.
 */
export function signEnveloped(xml: string, privateKey: KeyObject, certificatesDer: readonly Uint8Array[]): string {
  const sx = profileSignedXml({
    privateKey,
    signatureAlgorithm: SIGNATURE_ECDSA_SHA384 as never,
    canonicalizationAlgorithm: C14N_11 as never,
    getKeyInfoContent: (args) => {
      const prefix = args?.prefix;
      const p = prefix ? `${prefix}:` : '';
      return `<${p}X509Data>${certificatesDer.map((d) => `<${p}X509Certificate>${Buffer.from(d).toString('base64')}</${p}X509Certificate>`).join('')}</${p}X509Data>`;
    },
  });
  sx.addReference({ xpath: '/*', transforms: [ENVELOPED_SIGNATURE, C14N_11] as never, digestAlgorithm: DIGEST_SHA384 as never, isEmptyUri: true });
  sx.computeSignature(xml, { prefix: 'ds', location: { reference: '/*', action: 'append' } });
  return sx.getSignedXml();
}
