import type { QuoteCollateral } from '../evidence/dcap/collateral.js';
import type { AmdProduct } from '../evidence/snp/roots.js';
import type { SnpTcbParts } from '../evidence/snp/report.js';

/** Where the attestation service gets Intel collateral (our collateral service, or any PCS/THIM). */
export interface QuoteCollateralSource {
  getQuoteCollateral(req: { tee: 'sgx' | 'tdx'; fmspc: string; pceId: string; caType: 'processor' | 'platform' }): Promise<QuoteCollateral>;
}

/** Where the attestation service gets a VCEK and its chain when evidence carries none (KDS/THIM). */
export interface SnpCertificateSource {
  getVcek(req: { product: AmdProduct; chipId: Uint8Array; tcb: SnpTcbParts }): Promise<{ vcek: Uint8Array; chain: Uint8Array[] }>;
}

/** A policy as stored: the policy text, the JWS it arrived in, and its signer (if signed). */
export interface StoredPolicy {
  readonly text: string;
  readonly jws: string;
  /** DER of the signing certificate when the policy JWS was signed. */
  readonly signerCertDer?: Uint8Array | undefined;
}

/** Persistence of attestation policies and policy-management certificates (per attestation type). */
export interface PolicyStore {
  getPolicy(type: string): Promise<StoredPolicy | undefined>;
  setPolicy(type: string, policy: StoredPolicy): Promise<void>;
  resetPolicy(type: string): Promise<void>;
  listCertificates(): Promise<Uint8Array[]>;
  addCertificate(der: Uint8Array): Promise<boolean>;
  removeCertificate(der: Uint8Array): Promise<boolean>;
  /** A number that changes whenever a policy changes on any replica (cache invalidation). */
  version(): Promise<number>;
}
