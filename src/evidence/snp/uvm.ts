/**
 * The UVM reference information of Azure confidential containers (ACI, AKS confidential pods): a
 * COSE_Sign1 endorsement, by the utility-VM image's publisher, of the SNP launch measurement that
 * image produces. MAA `SevSnpVm` evidence carries it as `Endorsements: {"Uvm": [base64url(COSE_Sign1)]}`
 * (ACI: `$UVM_SECURITY_CONTEXT_DIR/reference-info-base64`).
 *
 * Two published forms (facts from Microsoft CCF's `uvm_endorsements.cpp`, checked on the real ACI vector
 * for the first):
 *
 * | form | issuer, feed | SVN | launch measurement |
 * |---|---|---|---|
 * | legacy | protected headers `"iss"`, `"feed"` (text labels); content type `application/json` | payload `x-ms-sevsnpvm-guestsvn` (string or integer) | payload `x-ms-sevsnpvm-launchmeasurement` (hex) |
 * | CWT (ContainerPlat 0.2.10+) | protected CWT claims (label 15): 1 = iss, 2 = sub (the feed) | CWT claim `"svn"` | the payload bytes |
 *
 * Verified here: the COSE_Sign1 signature with the key of the x5chain leaf, the chain resolving the
 * `did:x509` issuer (chain to its root, CA fingerprint, EKU), and the endorsed measurement equal to the
 * report's. Which issuer, feed and minimum SVN are trusted is the attestation policy's decision: the
 * result names them (Conclave's default SevSnpVm policy pins Microsoft's signer and minimum SVNs).
 */
import { fromB64 } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { COSE_HEADER, coseAlgorithm, coseX5Chain, decodeCoseSign1, verifyCoseSign1 } from '../../core/cose.js';
import { resolveDidX509 } from '../../core/did-x509.js';
import { markVerified, type Verified } from '../../core/verified.js';

export interface UvmEndorsement {
  /** The did:x509 issuer the signature resolved to. */
  readonly issuer: string;
  /** The feed (the UVM product line), e.g. `ContainerPlat-AMD-UVM`. */
  readonly feed: string;
  /** The UVM's security version number. */
  readonly svn: number;
  /** The endorsed SNP launch measurement (hex), equal to the report's. */
  readonly launchMeasurement: string;
  readonly form: 'legacy' | 'cwt';
  /** Common name of the signing certificate. */
  readonly signer: string | undefined;
  /** Certificates of the signing chain outside their validity at the verification time (not enforced). */
  readonly outOfValidity: readonly string[];
}

const MAX_SVN = 0xffffffff;

function svnOf(v: unknown, where: string): number {
  const n = typeof v === 'string' && /^(0|[1-9][0-9]{0,9})$/.test(v) ? Number(v) : typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_SVN) throw fail('uvm.malformed', `the UVM endorsement's ${where} is not an unsigned integer`, { field: where });
  return n;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '' || v.length > 1024) throw fail('uvm.malformed', `the UVM endorsement has no ${what}`, { field: what });
  return v;
}

/**
 * Verifies one UVM endorsement against the report's launch measurement (hex) at time `at`. Throws
 * `cose.*` (structure, algorithm, signer, signature), `uvm.malformed` or `uvm.measurement_mismatch`.
 */
export function verifyUvmEndorsement(bytes: Uint8Array, reportMeasurement: string, at: Date): Verified<UvmEndorsement> {
  const msg = decodeCoseSign1(bytes);
  coseAlgorithm(msg);
  const cwt = msg.protectedHeaders.get(COSE_HEADER.cwtClaims);
  let issuer: string;
  let feed: string;
  let svn: number | undefined;
  if (cwt !== undefined) {
    if (!(cwt instanceof Map)) throw fail('uvm.malformed', 'the UVM endorsement CWT claims (label 15) are not a map');
    issuer = text(cwt.get(1), 'issuer (CWT claim 1)');
    feed = text(cwt.get(2), 'feed (CWT claim 2, sub)');
    svn = svnOf(cwt.get('svn'), 'CWT claim "svn"');
  } else {
    issuer = text(msg.protectedHeaders.get('iss'), 'issuer (protected header "iss")');
    feed = text(msg.protectedHeaders.get('feed'), 'feed (protected header "feed")');
  }
  const resolved = resolveDidX509(issuer, coseX5Chain(msg), at, 'cose.signer_invalid');
  verifyCoseSign1(msg, resolved.key);

  // Only now, with the signature verified, is the payload read.
  let measurement: string;
  if (cwt !== undefined && msg.payload.byteLength === 48) {
    measurement = Buffer.from(msg.payload).toString('hex');
  } else {
    const ct = msg.protectedHeaders.get(COSE_HEADER.contentType);
    if (cwt === undefined && ct !== 'application/json') throw fail('uvm.malformed', `the UVM endorsement payload type is ${JSON.stringify(ct)}, not application/json`, { contentType: ct });
    let doc: unknown;
    try {
      doc = JSON.parse(Buffer.from(msg.payload).toString('utf8'));
    } catch {
      throw fail('uvm.malformed', 'the UVM endorsement payload is not JSON');
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('uvm.malformed', 'the UVM endorsement payload is not a JSON object');
    const d = doc as Record<string, unknown>;
    const m = d['x-ms-sevsnpvm-launchmeasurement'];
    if (typeof m !== 'string' || !/^[0-9a-fA-F]{96}$/.test(m)) throw fail('uvm.malformed', 'the UVM endorsement payload has no 48-byte hex x-ms-sevsnpvm-launchmeasurement', { field: 'x-ms-sevsnpvm-launchmeasurement' });
    measurement = m.toLowerCase();
    if (svn === undefined) svn = svnOf(d['x-ms-sevsnpvm-guestsvn'], 'payload x-ms-sevsnpvm-guestsvn');
  }
  if (svn === undefined) throw fail('uvm.malformed', 'the UVM endorsement names no SVN');
  if (measurement !== reportMeasurement.toLowerCase()) {
    throw fail('uvm.measurement_mismatch', 'the UVM endorsement is for another launch measurement than the SNP report', { expected: measurement, actual: reportMeasurement.toLowerCase() });
  }
  return markVerified({ issuer, feed, svn, launchMeasurement: measurement, form: cwt !== undefined ? 'cwt' : 'legacy', signer: resolved.leaf.subjectCN, outOfValidity: resolved.outOfValidity });
}

/**
 * The UVM endorsements of a decoded MAA `Endorsements` JSON: `{"Uvm": [base64url, …]}`. One endorsement
 * is accepted (the policy then pins its issuer); none returns undefined.
 */
export function uvmEndorsementOf(endorsements: unknown): Uint8Array | undefined {
  if (endorsements === undefined || endorsements === null) return undefined;
  if (typeof endorsements !== 'object' || Array.isArray(endorsements)) throw fail('uvm.malformed', 'Endorsements is not a JSON object');
  const uvm = (endorsements as Record<string, unknown>).Uvm;
  if (uvm === undefined || (Array.isArray(uvm) && uvm.length === 0)) return undefined;
  if (!Array.isArray(uvm) || uvm.length !== 1 || typeof uvm[0] !== 'string') throw fail('uvm.malformed', 'Endorsements.Uvm must be an array of one base64url COSE_Sign1 message');
  try {
    return fromB64(uvm[0], 'Endorsements.Uvm[0]');
  } catch {
    throw fail('uvm.malformed', 'Endorsements.Uvm[0] is not base64url');
  }
}
