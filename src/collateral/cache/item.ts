import { fail } from '../../core/errors.js';
import { parseCertificate, parseCrl } from '../../core/x509.js';
import { topLevelMembers } from '../../evidence/dcap/signed-json.js';
import type { DcapTee } from '../../core/tee.js';
import { parseOcspResponse } from '../../core/ocsp.js';

/**
 * One cached upstream answer, kept so that it can be replayed byte for byte (evidence-and-collateral §3):
 * the body as received (signed JSON is never re-serialised), the header values the PCS API defines for it
 * (issuer chain as URL-decoded PEM, TCBm, FMSPC, CA type), where it came from, and the signed dates inside.
 */
export const COLLATERAL_KINDS = [
  'tcb',
  'qe_identity',
  'qve_identity',
  'qae_identity',
  'tcb_eval_numbers',
  'pckcrl',
  'rootcacrl',
  'pckcert',
  'pckcerts',
  'vcek',
  'vcek_chain',
  'vlek_chain',
  'vcek_crl',
  'nvidia_rim',
  'nvidia_ocsp',
  'vlek_crl',
  'fmspcs',
] as const;
export type CollateralKind = (typeof COLLATERAL_KINDS)[number];

/** The TEEs whose collateral is Intel's (PCS routes, TCB info, identities). */
export type Tee = DcapTee;
export type PcsVersion = 'v3' | 'v4';

/** Header-borne facts of an answer, in the vendor's words. */
export interface CollateralMeta {
  readonly contentType: string;
  /** URL-decoded PEM of the `*-Issuer-Chain` header. */
  readonly issuerChain?: string | undefined;
  /** `SGX-TCBm`, hex. */
  readonly tcbm?: string | undefined;
  /** `SGX-FMSPC`, hex. */
  readonly fmspc?: string | undefined;
  /** `SGX-PCK-Certificate-CA-Type`. */
  readonly caType?: string | undefined;
}

export interface CollateralItem {
  readonly key: string;
  readonly kind: CollateralKind;
  /** Items that are versions of one another (one FMSPC's TCB info at several evaluation numbers) share a scope. */
  readonly scope: string;
  readonly evalNumber: number | null;
  /** The Intel `update` selector the upstream answered (standard|early), when known. */
  readonly selector: string | null;
  readonly meta: CollateralMeta;
  /** Body as the vendor sent it; CRLs are kept as DER. */
  readonly body: Uint8Array;
  readonly source: string;
  /** Milliseconds since the epoch. */
  readonly fetchedAt: number;
  readonly issueDate: number | null;
  readonly nextUpdate: number | null;
  readonly version: number;
}

export const SIGNED_JSON_MEMBER: Partial<Record<CollateralKind, 'tcbInfo' | 'enclaveIdentity' | 'tcbEvaluationDataNumbers'>> = {
  tcb: 'tcbInfo',
  qe_identity: 'enclaveIdentity',
  qve_identity: 'enclaveIdentity',
  qae_identity: 'enclaveIdentity',
  tcb_eval_numbers: 'tcbEvaluationDataNumbers',
};

export interface SignedDates {
  readonly issueDate: number | null;
  readonly nextUpdate: number | null;
  readonly evalNumber: number | null;
}

function time(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

const OCSP_SCOPE = /^nvidia\/ocsp\/(sha1|sha256|sha384|sha512)\/([0-9a-f]+)\/([0-9a-f]+)\/([0-9a-f]+)$/;

/**
 * The single response of an OCSP answer that answers for the CertID `scope` names (the one verification
 * reads, wherever it is listed); without a scope, the first.
 */
function ocspSingleOf(body: Uint8Array, scope: string | undefined) {
  const responses = parseOcspResponse(body).responses;
  if (scope === undefined) return responses[0];
  const m = OCSP_SCOPE.exec(scope);
  if (!m) throw fail('collateral.malformed', `"${scope}" is not an OCSP scope`, { scope });
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return responses.find((r) => r.certId.hash === m[1] && r.certId.serial === m[4] && hex(r.certId.issuerNameHash) === m[2] && hex(r.certId.issuerKeyHash) === m[3]);
}

/**
 * The dates and evaluation number signed inside an answer (TCB info, identity, CRL, certificate). For an
 * OCSP answer, those of its response for the CertID of `scope` (given wherever the scope is known).
 */
export function signedDatesOf(kind: CollateralKind, body: Uint8Array, scope?: string): SignedDates {
  const member = SIGNED_JSON_MEMBER[kind];
  if (member) {
    const raw = topLevelMembers(body).get(member);
    if (!raw) throw fail('collateral.malformed', `${kind} body lacks "${member}"`, { kind });
    const o = JSON.parse(Buffer.from(raw).toString('utf8')) as Record<string, unknown>;
    const n = o.tcbEvaluationDataNumber;
    return { issueDate: time(o.issueDate), nextUpdate: time(o.nextUpdate), evalNumber: typeof n === 'number' ? n : null };
  }
  if (kind === 'pckcrl' || kind === 'rootcacrl' || kind === 'vcek_crl' || kind === 'vlek_crl') {
    const crl = parseCrl(body);
    return { issueDate: crl.thisUpdate.getTime(), nextUpdate: crl.nextUpdate?.getTime() ?? null, evalNumber: null };
  }
  if (kind === 'nvidia_ocsp') {
    const single = ocspSingleOf(body, scope);
    if (!single) throw fail('collateral.malformed', scope === undefined ? 'the OCSP response holds no single response' : `the OCSP response does not answer for the CertID of ${scope}`, { kind });
    return { issueDate: single.thisUpdate.getTime(), nextUpdate: single.nextUpdate?.getTime() ?? null, evalNumber: null };
  }
  if (kind === 'vcek') {
    const c = parseCertificate(body);
    return { issueDate: c.notBefore.getTime(), nextUpdate: null, evalNumber: null };
  }
  return { issueDate: null, nextUpdate: null, evalNumber: null };
}

/** The scope of a TCB info: one TEE, API version and FMSPC. */
export function tcbScope(tee: Tee, version: PcsVersion, fmspc: string): string {
  return `${tee}/${version}/tcb/${fmspc.toUpperCase()}`;
}

/** The scope of an enclave identity (QE, QVE, QAE; TD_QE for tdx). */
export function identityScope(tee: Tee, version: PcsVersion, enclave: 'qe' | 'qve' | 'qae'): string {
  return `${tee}/${version}/${enclave}/identity`;
}

/** Keys of versioned items carry the evaluation number; others are their scope. */
export function itemKey(scope: string, evalNumber: number | null): string {
  return evalNumber === null ? scope : `${scope}#${evalNumber}`;
}

function decoded(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** The header-borne facts of an Intel answer (header names per API version, §3.1). */
export function intelMeta(kind: CollateralKind, h: Readonly<Record<string, string>>): CollateralMeta {
  const chain =
    kind === 'tcb'
      ? (h['tcb-info-issuer-chain'] ?? h['sgx-tcb-info-issuer-chain'])
      : kind === 'pckcrl'
        ? h['sgx-pck-crl-issuer-chain']
        : kind === 'pckcert' || kind === 'pckcerts'
          ? h['sgx-pck-certificate-issuer-chain']
          : kind === 'tcb_eval_numbers'
            ? h['tcb-evaluation-data-numbers-issuer-chain']
            : (h['sgx-enclave-identity-issuer-chain'] ?? h['sgx-qe-identity-issuer-chain']);
  return {
    contentType: h['content-type'] ?? 'application/octet-stream',
    issuerChain: decoded(chain),
    tcbm: h['sgx-tcbm'],
    fmspc: h['sgx-fmspc'],
    caType: h['sgx-pck-certificate-ca-type'],
  };
}
