import { fail } from '../../core/errors.js';
import { crlBytes, pemToDer } from '../../core/x509.js';
import { signatureBytes, splitSignedResponse } from './signed-json.js';

/**
 * The verification collateral of one quote, in the shape of Intel's QvE `sgx_ql_qve_collateral_t`
 * (and dcap-qvl's QuoteCollateralV3), normalised to bytes: certificate chains as DER lists (leaf first),
 * CRLs as DER, `tcbInfo` / `qeIdentity` as the exact signed JSON bytes, signatures as 64-byte r‖s.
 */
export interface QuoteCollateral {
  readonly pckCrlIssuerChain: readonly Uint8Array[];
  readonly rootCaCrl: Uint8Array;
  readonly pckCrl: Uint8Array;
  readonly tcbInfoIssuerChain: readonly Uint8Array[];
  readonly tcbInfo: Uint8Array;
  readonly tcbInfoSignature: Uint8Array;
  readonly qeIdentityIssuerChain: readonly Uint8Array[];
  readonly qeIdentity: Uint8Array;
  readonly qeIdentitySignature: Uint8Array;
}

/** A certificate chain given as PEM text, a list of PEM/DER certificates, or bytes of PEM. */
export type ChainInput = string | Uint8Array | readonly (string | Uint8Array)[];

function chain(input: unknown, field: string): Uint8Array[] {
  const one = (x: unknown): Uint8Array[] => {
    if (typeof x === 'string') return pemToDer(x);
    if (x instanceof Uint8Array) {
      const s = Buffer.from(x).toString('latin1');
      return s.includes('-----BEGIN CERTIFICATE-----') ? pemToDer(s) : [x];
    }
    if (Array.isArray(x) && x.every((b) => Number.isInteger(b))) return one(Uint8Array.from(x as number[]));
    throw fail('collateral.malformed', `collateral ${field} is not a certificate chain`, { field });
  };
  const out = Array.isArray(input) && !input.every((b) => typeof b === 'number') ? input.flatMap(one) : one(input);
  if (out.length === 0) throw fail('collateral.malformed', `collateral ${field} holds no certificate`, { field });
  return out;
}

function crl(input: unknown, field: string): Uint8Array {
  if (typeof input === 'string' || input instanceof Uint8Array) return crlBytes(input);
  if (Array.isArray(input) && input.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) return crlBytes(Uint8Array.from(input as number[]));
  throw fail('collateral.malformed', `collateral ${field} is not a CRL (DER, hex or PEM)`, { field });
}

function body(input: unknown, field: string): Uint8Array {
  if (typeof input === 'string') return new Uint8Array(Buffer.from(input, 'utf8'));
  if (input instanceof Uint8Array) return input;
  throw fail('collateral.malformed', `collateral ${field} is not the signed JSON text`, { field });
}

/**
 * Reads the QvE-style collateral JSON (`pck_crl_issuer_chain`, `root_ca_crl`, `pck_crl`,
 * `tcb_info_issuer_chain`, `tcb_info`, `tcb_info_signature`, `qe_identity_issuer_chain`, `qe_identity`,
 * `qe_identity_signature`), as text or already parsed. CRLs may be DER bytes (number arrays), hex or PEM;
 * `tcb_info` / `qe_identity` are the exact signed JSON strings.
 */
export function parseQuoteCollateral(json: string | Readonly<Record<string, unknown>>): QuoteCollateral {
  let o: Record<string, unknown>;
  if (typeof json === 'string') {
    try {
      o = JSON.parse(json) as Record<string, unknown>;
    } catch {
      throw fail('collateral.malformed', 'collateral is not valid JSON');
    }
  } else o = { ...json };
  if (typeof o !== 'object' || o === null) throw fail('collateral.malformed', 'collateral is not a JSON object');
  const need = (k: string): unknown => {
    if (o[k] === undefined || o[k] === null) throw fail('collateral.missing', `collateral lacks ${k}`, { field: k });
    return o[k];
  };
  return {
    pckCrlIssuerChain: chain(need('pck_crl_issuer_chain'), 'pck_crl_issuer_chain'),
    rootCaCrl: crl(need('root_ca_crl'), 'root_ca_crl'),
    pckCrl: crl(need('pck_crl'), 'pck_crl'),
    tcbInfoIssuerChain: chain(need('tcb_info_issuer_chain'), 'tcb_info_issuer_chain'),
    tcbInfo: body(need('tcb_info'), 'tcb_info'),
    tcbInfoSignature: signatureBytes(need('tcb_info_signature'), 'tcb_info_signature'),
    qeIdentityIssuerChain: chain(need('qe_identity_issuer_chain'), 'qe_identity_issuer_chain'),
    qeIdentity: body(need('qe_identity'), 'qe_identity'),
    qeIdentitySignature: signatureBytes(need('qe_identity_signature'), 'qe_identity_signature'),
  };
}

/** The raw answers of a PCS / PCCS / THIM for one quote. */
export interface PcsResponses {
  /** Body of GET …/tcb (`{"tcbInfo":…,"signature":…}`), exactly as received. */
  readonly tcbInfoResponse: string | Uint8Array;
  /** `TCB-Info-Issuer-Chain` / `SGX-TCB-Info-Issuer-Chain` header (URL-decoded PEM) or certificates. */
  readonly tcbInfoIssuerChain: ChainInput;
  /** Body of GET …/qe/identity, exactly as received. */
  readonly qeIdentityResponse: string | Uint8Array;
  /** `SGX-Enclave-Identity-Issuer-Chain` header (URL-decoded PEM) or certificates. */
  readonly qeIdentityIssuerChain: ChainInput;
  /** PCK CRL: DER, hex (PCCS) or PEM. */
  readonly pckCrl: string | Uint8Array;
  /** `SGX-PCK-CRL-Issuer-Chain` header (URL-decoded PEM) or certificates. */
  readonly pckCrlIssuerChain: ChainInput;
  /** Intel SGX Root CA CRL: DER, hex (PCCS) or PEM. */
  readonly rootCaCrl: string | Uint8Array;
}

/** Builds {@link QuoteCollateral} from raw PCS responses, slicing the signed JSON out of the bodies. */
export function collateralFromPcsResponses(r: PcsResponses): QuoteCollateral {
  const tcb = splitSignedResponse(r.tcbInfoResponse, 'tcbInfo');
  const qe = splitSignedResponse(r.qeIdentityResponse, 'enclaveIdentity');
  return {
    pckCrlIssuerChain: chain(r.pckCrlIssuerChain, 'pckCrlIssuerChain'),
    rootCaCrl: crl(r.rootCaCrl, 'rootCaCrl'),
    pckCrl: crl(r.pckCrl, 'pckCrl'),
    tcbInfoIssuerChain: chain(r.tcbInfoIssuerChain, 'tcbInfoIssuerChain'),
    tcbInfo: tcb.signed,
    tcbInfoSignature: tcb.signature,
    qeIdentityIssuerChain: chain(r.qeIdentityIssuerChain, 'qeIdentityIssuerChain'),
    qeIdentity: qe.signed,
    qeIdentitySignature: qe.signature,
  };
}

/** The collateral as QvE-style JSON (hex CRLs, PEM chains), the inverse of {@link parseQuoteCollateral}. */
export function quoteCollateralToJson(c: QuoteCollateral): Record<string, string> {
  const pem = (ders: readonly Uint8Array[]): string =>
    ders.map((d) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`).join('');
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  return {
    pck_crl_issuer_chain: pem(c.pckCrlIssuerChain),
    root_ca_crl: hex(c.rootCaCrl),
    pck_crl: hex(c.pckCrl),
    tcb_info_issuer_chain: pem(c.tcbInfoIssuerChain),
    tcb_info: Buffer.from(c.tcbInfo).toString('utf8'),
    tcb_info_signature: hex(c.tcbInfoSignature),
    qe_identity_issuer_chain: pem(c.qeIdentityIssuerChain),
    qe_identity: Buffer.from(c.qeIdentity).toString('utf8'),
    qe_identity_signature: hex(c.qeIdentitySignature),
  };
}
