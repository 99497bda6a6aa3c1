/**
 * The vTPM half of Azure confidential VM evidence: the HCL report's runtime data (bound by the
 * hardware report's REPORT_DATA, verified before this runs) names the vTPM attestation key HCLAkPub;
 * that key signs a TPM2 quote over the PCRs; the boot event log, where sent, replays to them.
 */
import { constants, publicEncrypt } from 'node:crypto';
import { equalBytes, toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { markVerified, type Verified } from '../../core/verified.js';
import { type BootConfiguration, checkEventLog, type EventLogReplay, parseTcgEventLog, readBootConfiguration } from '../tpm/eventlog.js';
import { type CertifiedKey, checkEphemeralEncryptionKey, type PcrValue, publicKeyFromJwk, publicKeyOfArea, type TpmQuote, verifyCertifiedKey, verifyTpmQuote } from '../tpm/quote.js';
import { parsePublicArea } from '../tpm/structures.js';

export interface VtpmEvidenceInput {
  /** The HCLAkPub JWK of the verified HCL runtime data. */
  readonly hclAkPub: unknown;
  /** The AK public area the client sent (TPM2B_PUBLIC / TPMT_PUBLIC), when it sends one: must be HCLAkPub. */
  readonly akPublicArea?: Uint8Array | undefined;
  readonly quote: { readonly message: Uint8Array; readonly signature: Uint8Array; readonly pcrs: readonly PcrValue[] };
  /** TCG event log (crypto-agile), when the evidence carries one. */
  readonly eventLog?: Uint8Array | undefined;
  /** The nonce the quote must carry, when the caller knows it. */
  readonly expectedNonce?: Uint8Array | undefined;
  /** The TPM-resident encryption key the guest certified with the AK (guest attestation library). */
  readonly encryptionKey?: { readonly publicArea: Uint8Array; readonly certifyInfo: Uint8Array; readonly signature: Uint8Array } | undefined;
}

export interface VtpmVerificationResult {
  readonly quote: TpmQuote;
  readonly replay?: EventLogReplay;
  readonly boot?: BootConfiguration;
  readonly encryptionKey?: CertifiedKey;
}

/** Compares two RSA JWK public keys by modulus and exponent. */
function sameRsaKey(a: { n?: unknown; e?: unknown }, b: { n?: unknown; e?: unknown }): boolean {
  const bytes = (v: unknown) => (typeof v === 'string' ? Buffer.from(v, 'base64url') : Buffer.alloc(0));
  const strip = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    return b.subarray(i);
  };
  return equalBytes(strip(bytes(a.n)), strip(bytes(b.n))) && equalBytes(strip(bytes(a.e)), strip(bytes(b.e)));
}

/**
 * Verifies the vTPM evidence against the AK the HCL report binds: quote signature (by HCLAkPub), PCR
 * digest, nonce; then the event log replay; then the certified encryption key.
 */
export function verifyVtpmEvidence(input: VtpmEvidenceInput): Verified<VtpmVerificationResult> {
  if (input.hclAkPub === undefined) throw fail('tpm.ak_mismatch', 'the HCL runtime data names no vTPM attestation key (HCLAkPub)');
  const ak = publicKeyFromJwk(input.hclAkPub, 'HCLAkPub');
  if (input.akPublicArea) {
    const sent = publicKeyOfArea(parsePublicArea(input.akPublicArea).publicArea, 'AikPub').export({ format: 'jwk' });
    if (!sameRsaKey(sent, input.hclAkPub as { n?: unknown; e?: unknown })) {
      throw fail('tpm.ak_mismatch', 'the attestation key sent is not the HCLAkPub that the hardware report binds');
    }
  }
  const quote = verifyTpmQuote({
    attest: input.quote.message,
    signature: { format: 'rsassa-sha256', bytes: input.quote.signature },
    ak,
    pcrs: input.quote.pcrs,
    expectedNonce: input.expectedNonce,
  });
  let replay: EventLogReplay | undefined;
  let boot: BootConfiguration | undefined;
  if (input.eventLog && input.eventLog.byteLength > 0) {
    replay = checkEventLog(parseTcgEventLog(input.eventLog), quote);
    boot = readBootConfiguration(replay);
  }
  let encryptionKey: CertifiedKey | undefined;
  if (input.encryptionKey) {
    encryptionKey = verifyCertifiedKey({
      publicArea: input.encryptionKey.publicArea,
      certifyInfo: input.encryptionKey.certifyInfo,
      signature: { format: 'rsassa-sha256', bytes: input.encryptionKey.signature },
      ak,
    });
    checkEphemeralEncryptionKey(encryptionKey.publicArea, quote);
  }
  return markVerified({ quote, ...(replay ? { replay } : {}), ...(boot ? { boot } : {}), ...(encryptionKey ? { encryptionKey } : {}) });
}

/** The quoted PCR values as `{index: hex}` (SHA-256 bank). */
export function pcrMap(quote: TpmQuote): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of quote.pcrs) out[String(p.index)] = toHex(p.value);
  return out;
}

/** RSAES-PKCS1-v1_5 to the TPM key, as MAA seals the AzureGuest response key (cvm-guest-attestation `DecryptInnerKey`, TPM2_ALG_RSAES). */
export function encryptToTpmKey(jwk: { n: string; e: string }, data: Uint8Array): Uint8Array {
  const key = publicKeyFromJwk({ kty: 'RSA', ...jwk }, 'encryption key');
  return new Uint8Array(publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, data));
}
