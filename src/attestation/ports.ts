import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { AmdProduct } from '../evidence/snp/roots.js';
import type { SnpTcbParts } from '../evidence/snp/report.js';

/** Where the attestation service gets Intel collateral (our collateral service, or any PCS/THIM). */
export interface QuoteCollateralSource {
  getQuoteCollateral(req: { tee: 'sgx' | 'tdx'; fmspc: string; pceId: string; caType: 'processor' | 'platform' }): Promise<QuoteCollateral>;
}

/**
 * Where the attestation service gets AMD collateral (the collateral cache, or a KDS/THIM): a VCEK and its
 * chain when evidence carries none, and the product's AMD CRL for every SNP report.
 */
export interface SnpCertificateSource {
  getVcek(req: { product: AmdProduct; chipId: Uint8Array; tcb: SnpTcbParts }): Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>;
  /**
   * The CRL (DER) the product's ARK signs over its ASKs (`vcek`) or ASVKs (`vlek`), KDS
   * `/{vcek|vlek}/v1/{product}/crl`. Rejects when none can be had (`collateral.not_found`: none cached and
   * no upstream to ask, or the upstream has none; `upstream.*`: the upstream failed).
   */
  getCrl(req: { product: AmdProduct; signingKey: 'vcek' | 'vlek' }): Promise<Uint8Array>;
}

/** A policy as stored: the policy text, the JWS it arrived in, and its signer (if signed). */
export interface StoredPolicy {
  readonly text: string;
  readonly jws: string;
  /** DER of the signing certificate when the policy JWS was signed. */
  readonly signerCertDer?: Uint8Array | undefined;
}

/**
 * Who may make a policy-management change: called with the registered policy-management certificates inside
 * the change's own store transaction, which is serialised against every other policy and certificate change
 * (of any replica), so the certificates it sees stay registered until the change is written. It throws to
 * refuse (the transaction then writes nothing). Synchronous: it decides from the list alone.
 */
export type PolicyAuthorization = (certificates: readonly Uint8Array[]) => void;

/** Persistence of attestation policies and policy-management certificates (per attestation type). */
export interface PolicyStore {
  getPolicy(type: string): Promise<StoredPolicy | undefined>;
  setPolicy(type: string, policy: StoredPolicy, authorize?: PolicyAuthorization): Promise<void>;
  resetPolicy(type: string, authorize?: PolicyAuthorization): Promise<void>;
  listCertificates(): Promise<Uint8Array[]>;
  addCertificate(der: Uint8Array, authorize?: PolicyAuthorization): Promise<boolean>;
  removeCertificate(der: Uint8Array, authorize?: PolicyAuthorization): Promise<boolean>;
  /** A number that changes whenever a policy changes on any replica (cache invalidation). */
  version(): Promise<number>;
}
