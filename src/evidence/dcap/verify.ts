import type { KeyObject } from 'node:crypto';
import type { QuoteCollateral } from './collateral.js';
import { type PckSgxExtension, parsePckSgxExtension } from './pck-extension.js';
import { requireTcbSigner, verifyP256 } from './signed-json.js';
import { type SignatureCheck, type SignatureJob, checkSignatureNow, checkSignaturesOffLoop } from '../../core/deferred-signatures.js';
import { type EnclaveIdentity, type TcbInfo, type TcbStatus, parseEnclaveIdentity, parseTcbInfo } from './tcb-info.js';
import { INTEL_SGX_ROOT_CA } from './roots.js';
import { equalBytes, sha256, toHex } from '../../core/bytes.js';
import { ConclaveError, type ErrorCode, fail, isConclaveError } from '../../core/errors.js';
import { verificationTime } from '../../core/time.js';
import { type Verified, markVerified } from '../../core/verified.js';
import { type Certificate, type Crl, checkCrlSigner, checkPathCertificate, parseCertificate, parseCrl, pemToDer, verifySignature } from '../../core/x509.js';
import { isSgxDebug } from '../sgx/report-body.js';
import { isTdDebug } from '../tdx/td-report.js';
import type { VerifierCache } from './cache.js';
import { CollateralMemo } from './collateral-memo.js';
import { p256PublicKey, spkiPublicKey } from './keys.js';
import { INTEL_QE_VENDOR_ID, type Quote, parseQuote, parseQuoteView, teeOf } from './quote.js';
import type { QuoteVerificationCommon, QuoteVerificationResult } from './result.js';
import {
  type QuoteStatus,
  converge,
  matchIsvsvnLevel,
  matchQeTcbLevel,
  matchSgxTcbLevel,
  matchTdxTcbLevel,
  selectTdxModule,
  tdRelaunchStatus,
  unionAdvisories,
} from './tcb.js';

/**
 * `strict`: every certificate, CRL and collateral window must cover `at` (Intel QVL). `azure`: TCB info,
 * QE identity and CRL nextUpdate are reported, not enforced (as Azure's THIM serves a pinned, older
 * baseline); certificate validity and every signature are still enforced.
 */
export type Freshness = 'strict' | 'azure';

export interface VerifyQuoteOptions {
  /** The verification time; nothing reads the clock. */
  readonly at: Date;
  readonly freshness?: Freshness;
  /** The roots the chains must end in; default the pinned Intel SGX Root CA. */
  readonly trustAnchors?: { readonly intelRoot: Certificate };
  /** Verified-collateral / PCK-chain memory shared across calls (warm mode). */
  readonly cache?: VerifierCache;
}

/** Collateral whose signatures and chains verified; nothing here depends on the verification time. */
interface VerifiedCollateral {
  readonly rootCrl: Crl;
  readonly pckCrl: Crl;
  /** The CA that signed the PCK CRL (leaf of `pck_crl_issuer_chain`). */
  readonly pckCrlIssuer: Certificate;
  readonly tcbInfo: TcbInfo;
  readonly qeIdentity: EnclaveIdentity;
  /** Every non-root certificate of the collateral chains, for the validity and root-CRL checks. */
  readonly certificates: readonly Certificate[];
}

interface VerifiedPckChain {
  readonly leaf: Certificate;
  readonly ca: Certificate;
  readonly key: KeyObject;
  readonly extension: PckSgxExtension;
  readonly caType: 'processor' | 'platform';
}

/**
 * Per-call memo so that one verification parses and checks each distinct certificate and issuer link
 * once (the TCB-info and QE-identity chains are usually identical, and the PCK CA appears in the quote
 * and in the CRL chain).
 */
class CertPool {
  readonly #certs = new Map<string, Certificate>();
  readonly #links = new Map<Certificate, Set<Certificate>>();

  cert(der: Uint8Array, code: ErrorCode, what: string): Certificate {
    const k = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
    let c = this.#certs.get(k);
    if (!c) {
      try {
        c = parseCertificate(der);
      } catch (e) {
        throw fail(code, `${what}: a certificate cannot be parsed`, { what, cause: isConclaveError(e) ? e.code : 'decode' }, e);
      }
      this.#certs.set(k, c);
    }
    return c;
  }

  issued(child: Certificate, issuer: Certificate): boolean {
    let s = this.#links.get(child);
    if (s?.has(issuer)) return true;
    if (!issuedBy(child, issuer)) return false;
    if (!s) {
      s = new Set();
      this.#links.set(child, s);
    }
    s.add(issuer);
    return true;
  }

  /** Verifies `chain` (leaf first) to `root`, which must be the pinned anchor if the chain carries it. */
  chain(ders: readonly Uint8Array[], root: Certificate, code: ErrorCode, what: string): Certificate[] {
    if (ders.length === 0) throw fail(code, `${what} is empty`, { what });
    const certs = ders.map((d) => this.cert(d, code, what));
    const last = certs[certs.length - 1]!;
    if (equalBytes(last.subject, root.subject) && equalBytes(last.spki, root.spki)) {
      if (!equalBytes(last.der, root.der)) throw fail(code, `${what} ends in a root that differs from the trust anchor`, { what });
      certs.pop();
    }
    if (certs.length === 0) throw fail(code, `${what} holds only the root`, { what });
    for (let i = 0; i < certs.length; i++) {
      const c = certs[i]!;
      const issuer = certs[i + 1] ?? root;
      if (!this.issued(c, issuer)) {
        throw fail(code, `${what}: "${c.subjectCN ?? '?'}" is not signed by "${issuer.subjectCN ?? '?'}"`, { what, subject: c.subjectCN, issuer: issuer.subjectCN });
      }
      checkPathCertificate(c, i, code);
    }
    // The anchor's own constraints bound the whole path (its pathLen counts the CAs below it).
    checkPathCertificate(root, certs.length, code);
    return certs;
  }
}

function keyOf(cert: Certificate, code: ErrorCode): KeyObject {
  try {
    return spkiPublicKey(cert.spki);
  } catch (e) {
    throw fail(code, `the key of "${cert.subjectCN ?? '?'}" cannot be read`, { subject: cert.subjectCN }, e);
  }
}

/** `child` names `issuer` as its issuer and carries its signature (RFC 5280 §6.1.3 (a)(1)–(a)(4) in part). */
function issuedBy(child: Certificate, issuer: Certificate): boolean {
  return equalBytes(child.issuer, issuer.subject) && verifySignature(child.signatureAlgorithm, keyOf(issuer, 'cert.chain_invalid'), child.tbs, child.signature);
}

function verifyCrlSignature(crl: Crl, issuer: Certificate): void {
  checkCrlSigner(issuer);
  if (!equalBytes(crl.issuer, issuer.subject) || !verifySignature(crl.signatureAlgorithm, keyOf(issuer, 'crl.invalid'), crl.tbs, crl.signature)) {
    throw fail('crl.invalid', `CRL of "${crl.issuerCN ?? '?'}" is not signed by "${issuer.subjectCN ?? '?'}"`, { crlIssuer: crl.issuerCN, expectedIssuer: issuer.subjectCN });
  }
}

/** Content digests of collateral sets, computed once per set while its bytes stay the same. */
const digests = new CollateralMemo<string>();

/** SHA-256 over every item of a collateral set, each length-prefixed (the set's content id). */
function collateralDigest(c: QuoteCollateral): string {
  const parts: Uint8Array[] = [];
  const len = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const add = (b: Uint8Array): void => {
    parts.push(len(b.byteLength), b);
  };
  for (const list of [c.pckCrlIssuerChain, c.tcbInfoIssuerChain, c.qeIdentityIssuerChain]) {
    parts.push(len(list.length));
    for (const d of list) add(d);
  }
  for (const b of [c.rootCaCrl, c.pckCrl, c.tcbInfo, c.tcbInfoSignature, c.qeIdentity, c.qeIdentitySignature]) add(b);
  return toHex(sha256(...parts));
}

function crlOf(der: Uint8Array, what: string): Crl {
  try {
    return parseCrl(der);
  } catch (e) {
    throw fail('collateral.malformed', `${what} cannot be parsed`, { what, cause: isConclaveError(e) ? e.code : 'decode' }, e);
  }
}

/** Signatures and chains of a collateral set (evidence-and-collateral §2.4 steps 2–3). */
function verifyCollateralSignatures(c: QuoteCollateral, root: Certificate, pool: CertPool): VerifiedCollateral {
  const rootCrl = crlOf(c.rootCaCrl, 'root CA CRL');
  verifyCrlSignature(rootCrl, root);
  const pckCrlChain = pool.chain(c.pckCrlIssuerChain, root, 'collateral.chain_invalid', 'PCK CRL issuer chain');
  const pckCrlIssuer = pckCrlChain[0]!;
  const pckCrl = crlOf(c.pckCrl, 'PCK CRL');
  verifyCrlSignature(pckCrl, pckCrlIssuer);

  const tcbChain = pool.chain(c.tcbInfoIssuerChain, root, 'collateral.chain_invalid', 'TCB info issuer chain');
  requireTcbSigner(tcbChain, root, 'TCB info');
  if (!verifyP256(keyOf(tcbChain[0]!, 'collateral.chain_invalid'), c.tcbInfo, c.tcbInfoSignature)) {
    throw fail('collateral.signature_invalid', 'TCB info signature does not verify with its issuer', { item: 'tcbInfo', signer: tcbChain[0]!.subjectCN });
  }
  const qeChain = pool.chain(c.qeIdentityIssuerChain, root, 'collateral.chain_invalid', 'QE identity issuer chain');
  requireTcbSigner(qeChain, root, 'QE identity');
  if (!verifyP256(keyOf(qeChain[0]!, 'collateral.chain_invalid'), c.qeIdentity, c.qeIdentitySignature)) {
    throw fail('collateral.signature_invalid', 'QE identity signature does not verify with its issuer', { item: 'qeIdentity', signer: qeChain[0]!.subjectCN });
  }
  const certificates = [...new Set([...pckCrlChain, ...tcbChain, ...qeChain])];
  return { rootCrl, pckCrl, pckCrlIssuer, tcbInfo: parseTcbInfo(c.tcbInfo), qeIdentity: parseEnclaveIdentity(c.qeIdentity), certificates };
}

/**
 * The most certificates a PCK chain that verifies holds: the PCK, the PCK CA and the root (CertPool.chain
 * refuses a fourth). The certification data is the caller's to write (nothing signs it), so more is refused
 * before any is decoded or parsed: the count of certificates is the caller's to choose, the work per request is not.
 */
export const PCK_CHAIN_MAX_CERTIFICATES = 3;

/**
 * The most bytes of a PCK chain's certification data: three PEM certificates of Intel's (about 4 kB in all)
 * with room to spare. Text outside the PEM blocks is ignored, so without a bound padding a public chain made
 * each request's chain as large as the body, and the service remembers chains by their text.
 */
export const PCK_CHAIN_MAX_BYTES = 32 * 1024;

const PEM_BEGIN_CERTIFICATE = '-----BEGIN CERTIFICATE-----';

/**
 * The DER certificates of a quote's type-5 certification data (PEM, possibly NUL-terminated), refused with
 * `quote.pck_chain_invalid` when it is longer than {@link PCK_CHAIN_MAX_BYTES} or holds more than
 * {@link PCK_CHAIN_MAX_CERTIFICATES} (counted by their BEGIN lines, stopping at the first one over, before any is decoded).
 */
export function pckChainDers(certData: Uint8Array): Uint8Array[] {
  if (certData.byteLength > PCK_CHAIN_MAX_BYTES) {
    throw fail('quote.pck_chain_invalid', `PCK certificate chain is ${certData.byteLength} bytes, more than ${PCK_CHAIN_MAX_BYTES}`, { bytes: certData.byteLength, maxBytes: PCK_CHAIN_MAX_BYTES });
  }
  const pem = Buffer.from(certData.buffer, certData.byteOffset, certData.byteLength).toString('latin1');
  let count = 0;
  for (let at = pem.indexOf(PEM_BEGIN_CERTIFICATE); at >= 0; at = pem.indexOf(PEM_BEGIN_CERTIFICATE, at + PEM_BEGIN_CERTIFICATE.length)) {
    if (++count > PCK_CHAIN_MAX_CERTIFICATES) {
      throw fail('quote.pck_chain_invalid', `PCK certificate chain holds more than ${PCK_CHAIN_MAX_CERTIFICATES} certificates (leaf, PCK CA and root)`, { max: PCK_CHAIN_MAX_CERTIFICATES });
    }
  }
  return pemToDer(pem);
}

/** The type-5 PEM chain of the quote verified to the root; SGX extension parsed (§2.4 step 4). */
function verifyPckChain(certData: Uint8Array, root: Certificate, pool: CertPool): VerifiedPckChain {
  const ders = pckChainDers(certData);
  if (ders.length < 2) throw fail('quote.pck_chain_invalid', `PCK certificate chain holds ${ders.length} certificate(s), expected leaf and PCK CA`, { count: ders.length });
  const [leaf, ca] = pool.chain(ders, root, 'quote.pck_chain_invalid', 'PCK certificate chain');
  if (!leaf || !ca) throw fail('quote.pck_chain_invalid', 'PCK certificate chain lacks the PCK CA');
  // QVL QuoteVerifier 4.1.2.4.5: the leaf must be a PCK certificate; the CA type comes from the issuer CN.
  if (!leaf.subjectCN?.includes('SGX PCK Certificate')) throw fail('quote.pck_chain_invalid', 'leaf of the PCK chain is not an SGX PCK certificate', { subject: leaf.subjectCN });
  const caType = ca.subjectCN?.includes('Processor') ? 'processor' : ca.subjectCN?.includes('Platform') ? 'platform' : undefined;
  if (!caType) throw fail('quote.pck_chain_invalid', 'PCK CA is neither a Processor nor a Platform CA', { issuer: ca.subjectCN });
  const key = keyOf(leaf, 'quote.pck_chain_invalid');
  return { leaf, ca, key, extension: parsePckSgxExtension(leaf), caType };
}

function attestationKeyOf(ak: Uint8Array): KeyObject {
  try {
    return p256PublicKey(ak);
  } catch (e) {
    throw fail('quote.signature_invalid', 'the attestation key is not a P-256 point', { field: 'signatureData.attestationKey' }, e);
  }
}

type ExpiredItem = QuoteVerificationCommon['collateral']['expired'][number];

function checkCertificateDates(certs: readonly Certificate[], at: Date): void {
  for (const c of certs) {
    if (!(at >= c.notBefore && at <= c.notAfter)) {
      throw fail('cert.expired', `certificate "${c.subjectCN ?? '?'}" is not valid at ${at.toISOString()}`, {
        subject: c.subjectCN,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        at: at.toISOString(),
      });
    }
  }
}

function collateralWindows(col: VerifiedCollateral, at: Date): ExpiredItem[] {
  const items: [ExpiredItem['item'], Date, Date | undefined][] = [
    ['tcbInfo', col.tcbInfo.issueDate, col.tcbInfo.nextUpdate],
    ['qeIdentity', col.qeIdentity.issueDate, col.qeIdentity.nextUpdate],
    ['pckCrl', col.pckCrl.thisUpdate, col.pckCrl.nextUpdate],
    ['rootCaCrl', col.rootCrl.thisUpdate, col.rootCrl.nextUpdate],
  ];
  const out: ExpiredItem[] = [];
  for (const [item, issued, next] of items) {
    if (!(at >= issued && (next === undefined || at <= next))) out.push({ item, issued: issued.toISOString(), nextUpdate: next?.toISOString() ?? '' });
  }
  return out;
}

/** The result's dates of a verified collateral set, written once per set (the cache hands out the same object for the same bytes). */
const collateralDates = new WeakMap<VerifiedCollateral, { readonly tcbInfoIssueDate: string; readonly nextUpdate: string; readonly earliestNextUpdate: string }>();

function collateralDatesOf(col: VerifiedCollateral): { readonly tcbInfoIssueDate: string; readonly nextUpdate: string; readonly earliestNextUpdate: string } {
  let dates = collateralDates.get(col);
  if (!dates) {
    const info = col.tcbInfo;
    dates = {
      tcbInfoIssueDate: info.issueDate.toISOString(),
      nextUpdate: info.nextUpdate.toISOString(),
      earliestNextUpdate: new Date(
        Math.min(info.nextUpdate.getTime(), col.qeIdentity.nextUpdate.getTime(), ...[col.pckCrl.nextUpdate, col.rootCrl.nextUpdate].filter((d) => d !== undefined).map((d) => d.getTime())),
      ).toISOString(),
    };
    collateralDates.set(col, dates);
  }
  return dates;
}

function hex(b: Uint8Array): string {
  return toHex(b);
}

/**
 * Verifies a DCAP quote (SGX v3/v4/v5, TDX v4/v5) against its collateral at time `at`, following
 * Intel's QVL (evidence-and-collateral §2.4; docs/dcap.md). Throws a ConclaveError naming the first check
 * that failed; on success returns the verified facts with the composed TCB status.
 */
export function verifyQuote(quote: Quote | Uint8Array, collateral: QuoteCollateral, opts: VerifyQuoteOptions): Verified<QuoteVerificationResult> {
  try {
    return verifyQuoteUnchecked(quote, collateral, opts, checkSignatureNow);
  } catch (e) {
    if (e instanceof ConclaveError) throw e;
    throw fail('internal', 'quote verification failed unexpectedly', undefined, e);
  }
}

/**
 * {@link verifyQuote} with the two ECDSA P-256 verifications of the quote (the QE report signature with
 * the PCK key, the quote signature with the attestation key) on the libuv threadpool, in parallel, so a
 * server's event loop does not spend them. The same checks in the same order decide: every other check
 * runs first with the signatures pending, and the error thrown is the one {@link verifyQuote} throws, the
 * first failing check in QVL order (a signature that fails before a failing check is the one named).
 */
export async function verifyQuoteAsync(input: Quote | Uint8Array, collateral: QuoteCollateral, opts: VerifyQuoteOptions): Promise<Verified<QuoteVerificationResult>> {
  // A copy: the byte fields are read again after control returns to the event loop.
  const quote = input instanceof Uint8Array ? parseQuote(input) : input;
  try {
    return await checkSignaturesOffLoop((check) => verifyQuoteUnchecked(quote, collateral, opts, check));
  } catch (e) {
    if (e instanceof ConclaveError) throw e;
    throw fail('internal', 'quote verification failed unexpectedly', undefined, e);
  }
}

/** An ECDSA P-256 / SHA-256 signature of the quote, raw r‖s (IEEE P1363), as Intel signs. */
function p256(key: KeyObject, data: Uint8Array, signature: Uint8Array, fails: () => ConclaveError): SignatureJob {
  return { algorithm: 'sha256', data, key: { key, dsaEncoding: 'ieee-p1363' }, signature, fails };
}

function verifyQuoteUnchecked(input: Quote | Uint8Array, collateral: QuoteCollateral, opts: VerifyQuoteOptions, checkSignature: SignatureCheck): Verified<QuoteVerificationResult> {
  const at = opts.at;
  verificationTime(at);
  const freshness = opts.freshness ?? 'strict';
  if (freshness !== 'strict' && freshness !== 'azure') throw fail('request.invalid', `unknown freshness policy "${String(freshness)}"`);
  const root = opts.trustAnchors?.intelRoot ?? INTEL_SGX_ROOT_CA;
  const cache = opts.cache;
  const quote = input instanceof Uint8Array ? parseQuoteView(input) : input;
  const tee = teeOf(quote);
  const sig = quote.signatureData;
  const warnings: string[] = [];

  // ── collateral and PCK chain: signatures (cached by content), then time and revocation (every call)
  const pool = new CertPool();
  const rootId = cache?.rootId(root) ?? '';
  const col = cache
    ? cache.memo('collateral', `${rootId}:${digests.get(collateral, collateralDigest)}`, () => verifyCollateralSignatures(collateral, root, pool))
    : verifyCollateralSignatures(collateral, root, pool);
  const certData = sig.certificationData.data;
  const pck = cache
    ? cache.memo('pckChain', `${rootId}:${cache.contentId(certData)}`, () => verifyPckChain(certData, root, pool))
    : verifyPckChain(certData, root, pool);

  checkCertificateDates([pck.leaf, pck.ca, root, ...col.certificates], at);
  const expired = collateralWindows(col, at);
  if (expired.length > 0) {
    if (freshness === 'strict') {
      const onlyCrls = expired.every((x) => x.item === 'pckCrl' || x.item === 'rootCaCrl');
      throw fail(onlyCrls ? 'crl.expired' : 'collateral.expired', `collateral is not current at ${at.toISOString()}: ${expired.map((x) => x.item).join(', ')}`, {
        at: at.toISOString(),
        expired,
      });
    }
    for (const x of expired) warnings.push(`${x.item} window ${x.issued}..${x.nextUpdate} does not cover ${at.toISOString()} (azure freshness)`);
  }
  // Revocation: intermediates against the root CRL, the PCK against the CRL of its own CA (QVL 4.1.2.4.4–7).
  for (const c of [pck.ca, ...col.certificates]) {
    if (equalBytes(c.issuer, root.subject) && col.rootCrl.revoked.has(c.serial)) {
      throw fail(c === pck.ca ? 'quote.pck_revoked' : 'cert.revoked', `certificate "${c.subjectCN ?? '?'}" is revoked by the root CA CRL`, { subject: c.subjectCN, serial: c.serial });
    }
  }
  if (!equalBytes(col.pckCrl.issuer, pck.leaf.issuer) || !equalBytes(col.pckCrlIssuer.spki, pck.ca.spki)) {
    throw fail('crl.invalid', 'the PCK CRL is not issued by the CA of the PCK certificate', { crlIssuer: col.pckCrl.issuerCN, pckIssuer: pck.leaf.issuerCN });
  }
  if (col.pckCrl.revoked.has(pck.leaf.serial)) throw fail('quote.pck_revoked', 'the PCK certificate is revoked', { serial: pck.leaf.serial, crlIssuer: col.pckCrl.issuerCN });

  // ── QE report: signed by the PCK key, binds the attestation key (§2.4 steps 7–8)
  checkSignature(
    p256(pck.key, quote.qeReportBytes, sig.qeReportSignature, () =>
      fail('quote.qe_report_signature_invalid', 'QE report signature does not verify with the PCK key', { field: 'signatureData.qeReportSignature' }),
    ),
  );
  const binding = sha256(sig.attestationKey, sig.qeAuthData);
  if (!equalBytes(binding, sig.qeReport.reportdata.subarray(0, 32))) {
    throw fail('quote.attestation_key_mismatch', 'QE report data is not SHA-256(attestation key || QE authentication data)', { field: 'qeReport.reportdata' });
  }
  if (sig.qeReport.reportdata.subarray(32).some((b) => b !== 0)) warnings.push('QE report data bytes 32..63 are not zero');

  // ── QE identity (§2.4 step 9)
  const qeIdentity = col.qeIdentity;
  const expectedQeId = tee === 'sgx' ? 'QE' : 'TD_QE';
  if (qeIdentity.id !== expectedQeId) throw fail('quote.collateral_mismatch', `QE identity is "${qeIdentity.id}", a ${tee.toUpperCase()} quote needs "${expectedQeId}"`, { id: qeIdentity.id, expected: expectedQeId });
  const qe = sig.qeReport;
  const qeMisc = Buffer.from(qe.miscselect).readUInt32LE(0);
  const mismatch: string[] = [];
  if (hex(qe.mrsigner) !== qeIdentity.mrsigner) mismatch.push('mrsigner');
  if (qe.isvprodid !== qeIdentity.isvprodid) mismatch.push('isvprodid');
  if (((qeMisc & qeIdentity.miscselectMask) >>> 0) !== qeIdentity.miscselect >>> 0) mismatch.push('miscselect');
  for (let i = 0; i < 16; i++) {
    if ((qe.attributes[i]! & qeIdentity.attributesMask[i]!) !== qeIdentity.attributes[i]) {
      mismatch.push('attributes');
      break;
    }
  }
  if (mismatch.length > 0) throw fail('quote.qe_identity_mismatch', `QE report does not match the QE identity: ${mismatch.join(', ')}`, { fields: mismatch });
  const qeLevel = matchQeTcbLevel(qeIdentity, qe.isvsvn);
  if (!qeLevel) throw fail('quote.qe_tcb_level_not_found', `no QE identity TCB level for ISVSVN ${qe.isvsvn}`, { isvsvn: qe.isvsvn });

  // ── quote signature with the attestation key (§2.4 step 10)
  const akHex = hex(sig.attestationKey);
  const ak = cache ? cache.memo('attestationKey', akHex, () => attestationKeyOf(sig.attestationKey)) : attestationKeyOf(sig.attestationKey);
  checkSignature(p256(ak, quote.signedRegion, sig.signature, () => fail('quote.signature_invalid', 'quote signature does not verify with the attestation key', { field: 'signatureData.signature' })));
  if (hex(quote.header.qeVendorId) !== INTEL_QE_VENDOR_ID) {
    throw fail('quote.unsupported', 'quote was not produced by the Intel QE (vendor id)', { field: 'header.qeVendorId', offset: 12, qeVendorId: hex(quote.header.qeVendorId) });
  }

  // ── TCB info applies to this platform (§2.4 step 5)
  const info = col.tcbInfo;
  const expectedTcbId = tee === 'sgx' ? 'SGX' : 'TDX';
  if (info.id !== expectedTcbId) throw fail('quote.collateral_mismatch', `TCB info is for ${info.id}, the quote is ${expectedTcbId}`, { id: info.id, expected: expectedTcbId });
  const ext = pck.extension;
  if (info.fmspc !== ext.fmspc || info.pceId !== ext.pceId) {
    throw fail('quote.fmspc_mismatch', 'TCB info is for another FMSPC or PCE-ID than the PCK certificate', {
      tcbInfoFmspc: info.fmspc,
      pckFmspc: ext.fmspc,
      tcbInfoPceId: info.pceId,
      pckPceId: ext.pceId,
    });
  }

  // ── TCB levels and status (§2.4 steps 6, 11–13)
  const sgxLevel = matchSgxTcbLevel(info, ext.sgxTcbComponents, ext.pcesvn);
  if (!sgxLevel) throw fail('quote.tcb_level_not_found', 'no TCB level of the TCB info matches the PCK SGX TCB', { fmspc: ext.fmspc, sgxtcbcomponents: ext.sgxTcbComponents, pcesvn: ext.pcesvn });
  const dates = collateralDatesOf(col);
  const common = {
    verified: true as const,
    quoteVersion: quote.header.version,
    fmspc: ext.fmspc,
    pceId: ext.pceId,
    qe: { id: qeIdentity.id, status: qeLevel.tcbStatus, isvsvn: qe.isvsvn, tcbDate: qeLevel.tcbDate, advisoryIds: qeLevel.advisoryIDs },
    collateral: {
      tcbEvaluationDataNumber: info.tcbEvaluationDataNumber,
      tcbInfoIssueDate: dates.tcbInfoIssueDate,
      nextUpdate: dates.nextUpdate,
      earliestNextUpdate: dates.earliestNextUpdate,
      qeIdentityTcbEvaluationDataNumber: qeIdentity.tcbEvaluationDataNumber,
      expired,
    },
    warnings,
  };
  const pckTcb = {
    sgxtcbcomponents: ext.sgxTcbComponents,
    pcesvn: ext.pcesvn,
    cpusvn: ext.cpusvn,
    sgxType: ext.sgxType,
    pckCa: pck.caType,
  };

  if (quote.body.kind === 'sgx') {
    const r = quote.body.report;
    let status: QuoteStatus = sgxLevel.tcbStatus;
    status = converge(status, qeLevel.tcbStatus);
    const debug = isSgxDebug(r);
    if (debug) warnings.push('the enclave is a debug enclave (ATTRIBUTES.DEBUG set)');
    if (status === 'Revoked') warnings.push('the TCB status is Revoked');
    return markVerified({
      ...common,
      tee: 'sgx',
      status,
      advisoryIds: unionAdvisories(sgxLevel.advisoryIDs, qeLevel.advisoryIDs),
      tcb: { status: sgxLevel.tcbStatus, tcbDate: sgxLevel.tcbDate, advisoryIds: sgxLevel.advisoryIDs, ...pckTcb },
      report: {
        mrenclave: hex(r.mrenclave),
        mrsigner: hex(r.mrsigner),
        isvprodid: r.isvprodid,
        isvsvn: r.isvsvn,
        attributes: hex(r.attributes),
        miscselect: hex(r.miscselect),
        reportdata: hex(r.reportdata),
        debug,
        cpusvn: hex(r.cpusvn),
        configid: hex(r.configid),
        configsvn: r.configsvn,
        isvextprodid: hex(r.isvextprodid),
        isvfamilyid: hex(r.isvfamilyid),
      },
    });
  }

  const td = quote.body.report;
  const teeTcbSvn = td.teeTcbSvn;
  const selected = selectTdxModule(info, teeTcbSvn);
  if (!selected) throw fail('quote.tdx_module_mismatch', `TCB info has no TDX module identity for TEE_TCB_SVN ${hex(teeTcbSvn)}`, { teeTcbSvn: hex(teeTcbSvn) });
  if (hex(td.mrsignerseam) !== selected.module.mrsigner) {
    throw fail('quote.tdx_module_mismatch', `MRSIGNERSEAM does not match TDX module ${selected.id}`, { id: selected.id, field: 'mrsignerseam' });
  }
  const seamAttributes = Buffer.from(td.seamattributes);
  const wantAttributes = Buffer.from(selected.module.attributes, 'hex');
  const mask = Buffer.from(selected.module.attributesMask, 'hex');
  for (let i = 0; i < 8; i++) {
    if ((seamAttributes[i]! & mask[i]!) !== wantAttributes[i]) throw fail('quote.tdx_module_mismatch', `SEAMATTRIBUTES do not match TDX module ${selected.id}`, { id: selected.id, field: 'seamattributes' });
  }
  const tdxLevel = matchTdxTcbLevel(info, ext.sgxTcbComponents, ext.pcesvn, teeTcbSvn);
  if (!tdxLevel) throw fail('quote.tcb_level_not_found', 'no TCB level of the TCB info matches the PCK SGX TCB and TEE_TCB_SVN', { fmspc: ext.fmspc, teeTcbSvn: hex(teeTcbSvn) });
  let moduleStatus: TcbStatus | undefined;
  let moduleLevel: ReturnType<typeof matchIsvsvnLevel>;
  if (teeTcbSvn[1]! > 0 && selected.identity) {
    moduleLevel = matchIsvsvnLevel(selected.identity.tcbLevels, teeTcbSvn[0]!);
    if (!moduleLevel) throw fail('quote.tcb_level_not_found', `no TCB level of TDX module ${selected.id} matches ISVSVN ${teeTcbSvn[0]}`, { id: selected.id, isvsvn: teeTcbSvn[0] });
    moduleStatus = moduleLevel.tcbStatus;
  }
  let status: QuoteStatus = moduleStatus ? converge(tdxLevel.tcbStatus, moduleStatus) : tdxLevel.tcbStatus;
  if (quote.body.kind === 'td15') {
    const relaunch = tdRelaunchStatus({ info, sgxStatus: sgxLevel.tcbStatus, tdxStatus: status, moduleStatus, qeStatus: qeLevel.tcbStatus, teeTcbSvn2: quote.body.report.teeTcbSvn2 });
    if (relaunch) status = relaunch;
  }
  status = converge(status, qeLevel.tcbStatus);
  const debug = isTdDebug(td);
  if (debug) warnings.push('the TD is debuggable (TDATTRIBUTES.DEBUG set)');
  if (status === 'Revoked') warnings.push('the TCB status is Revoked');
  const td15 = quote.body.kind === 'td15' ? quote.body.report : undefined;
  return markVerified({
    ...common,
    tee: 'tdx',
    status,
    advisoryIds: unionAdvisories(tdxLevel.advisoryIDs, moduleLevel?.advisoryIDs, qeLevel.advisoryIDs),
    tcb: {
      status: tdxLevel.tcbStatus,
      tcbDate: tdxLevel.tcbDate,
      advisoryIds: tdxLevel.advisoryIDs,
      ...pckTcb,
      sgxStatus: sgxLevel.tcbStatus,
      tdxModule: {
        id: selected.id,
        isvsvn: teeTcbSvn[0]!,
        ...(moduleLevel ? { status: moduleLevel.tcbStatus, tcbDate: moduleLevel.tcbDate } : {}),
        advisoryIds: moduleLevel?.advisoryIDs ?? [],
      },
    },
    td: {
      mrtd: hex(td.mrtd),
      mrseam: hex(td.mrseam),
      mrsignerseam: hex(td.mrsignerseam),
      seamattributes: hex(td.seamattributes),
      mrconfigid: hex(td.mrconfigid),
      mrowner: hex(td.mrowner),
      mrownerconfig: hex(td.mrownerconfig),
      rtmr0: hex(td.rtmr0),
      rtmr1: hex(td.rtmr1),
      rtmr2: hex(td.rtmr2),
      rtmr3: hex(td.rtmr3),
      tdattributes: hex(td.tdattributes),
      xfam: hex(td.xfam),
      teetcbsvn: hex(teeTcbSvn),
      ...(td15 ? { teetcbsvn2: hex(td15.teeTcbSvn2), mrservicetd: hex(td15.mrservicetd) } : {}),
      reportdata: hex(td.reportdata),
      debug,
    },
  });
}
