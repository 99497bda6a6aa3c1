/**
 * TPM2_Quote and TPM2_Certify verification (TPM 2.0 Library Part 3 §18.2, §18.4): the signature over
 * the TPMS_ATTEST bytes as sent, the PCR values against the signed PCR digest, the qualifying data.
 */
import { constants, createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { constantTimeEqual, equalBytes, toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { markVerified, type Verified } from '../../core/verified.js';
import {
  hashAlg,
  objectName,
  type PcrSelection,
  parsePublicArea,
  parseTpmsAttest,
  parseTpmtSignature,
  policyPcrDigest,
  publicAreaJwk,
  TPM_ALG,
  TPMA_OBJECT,
  type TpmsAttest,
  type TpmsClockInfo,
  type TpmtPublic,
  type TpmtSignature,
} from './structures.js';

/**
 * How the signature arrives: a marshalled TPMT_SIGNATURE (MAA's TPM protocol), or the bare RSASSA
 * signature bytes that Azure's guest attestation library and trustee's az-*-vtpm evidence send
 * (`signature.rsassa.sig` of the TPMT_SIGNATURE; the Azure vTPM AK signs RSASSA-PKCS1-v1_5 SHA-256).
 */
export type TpmSignatureInput = { readonly format: 'tpmt'; readonly bytes: Uint8Array } | { readonly format: 'rsassa-sha256'; readonly bytes: Uint8Array };

/** One PCR value as the evidence reports it. */
export interface PcrValue {
  readonly hashAlg: number;
  readonly index: number;
  readonly value: Uint8Array;
}

export interface TpmQuoteInput {
  /** The TPMS_ATTEST bytes exactly as signed. */
  readonly attest: Uint8Array;
  readonly signature: TpmSignatureInput;
  /** The attestation key (AK/AIK) public key. */
  readonly ak: KeyObject;
  /** PCR values claimed for the selection; must cover it exactly. */
  readonly pcrs: readonly PcrValue[];
  /** When given, the quote's qualifying data (extraData) must equal it. */
  readonly expectedNonce?: Uint8Array | undefined;
}

export interface TpmQuote {
  readonly extraData: Uint8Array;
  readonly clockInfo: TpmsClockInfo;
  readonly firmwareVersion: bigint;
  readonly pcrSelect: readonly PcrSelection[];
  /** The quoted PCR values, in selection order. */
  readonly pcrs: readonly PcrValue[];
}

/** Turns a JWK (`kty: RSA|EC`) into a public KeyObject; `tpm.malformed` when it is not a public key. */
export function publicKeyFromJwk(jwk: unknown, what: string): KeyObject {
  try {
    if (typeof jwk !== 'object' || jwk === null) throw new Error('not an object');
    const { kty, n, e, crv, x, y } = jwk as Record<string, unknown>;
    const k = kty === 'RSA' ? { kty, n, e } : { kty, crv, x, y };
    return createPublicKey({ key: k as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    throw fail('tpm.malformed', `${what} is not a usable public JWK`, { field: what });
  }
}

/**
 * The public key of a TPMT_PUBLIC; `tpm.malformed` naming `what` when it holds none that node:crypto can
 * use (an ECC point off its curve, say): the area is the caller's bytes, and its fault is theirs (400).
 */
export function publicKeyOfArea(p: TpmtPublic, what = 'the TPM public area'): KeyObject {
  const jwk = publicAreaJwk(p);
  try {
    return createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    throw fail('tpm.malformed', `${what} holds no usable ${jwk.kty} public key`, { field: what });
  }
}

function signatureOf(input: TpmSignatureInput): TpmtSignature {
  if (input.format === 'tpmt') return parseTpmtSignature(input.bytes);
  return { sigAlg: 'rsassa', hashAlg: TPM_ALG.SHA256, sig: input.bytes };
}

/** Checks a TPM signature (RSASSA, RSAPSS, ECDSA) over the signed bytes with the key. */
function checkSignature(signed: Uint8Array, sig: TpmtSignature, key: KeyObject, code: 'tpm.quote_signature_invalid' | 'tpm.key_certification_invalid', what: string): void {
  const h = hashAlg(sig.hashAlg, 'signature hash');
  let ok = false;
  try {
    if (sig.sigAlg === 'ecdsa') {
      if (key.asymmetricKeyType !== 'ec') throw new Error('key type');
      const size = Math.ceil((key.asymmetricKeyDetails?.namedCurve === 'secp521r1' ? 521 : key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 384 : 256) / 8);
      const pad = (b: Uint8Array) => (b.byteLength > size ? b : Buffer.concat([Buffer.alloc(size - b.byteLength), b]));
      ok = verify(h.name, signed, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(sig.r), pad(sig.s)]));
    } else {
      if (key.asymmetricKeyType !== 'rsa') throw new Error('key type');
      const padding = sig.sigAlg === 'rsapss' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      ok = verify(h.name, signed, { key, padding, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig.sig);
    }
  } catch {
    ok = false;
  }
  if (!ok) throw fail(code, `the ${what} signature does not verify with the attestation key`, { sigAlg: sig.sigAlg, hash: h.name });
}

/**
 * Verifies a TPM quote: signature with the AK, then that the PCR values sent cover the selection and
 * hash (in selection order, with the signature's hash, Part 3 §18.4) to the signed pcrDigest, then the
 * nonce. Returns the quoted values.
 */
export function verifyTpmQuote(input: TpmQuoteInput): Verified<TpmQuote> {
  const sig = signatureOf(input.signature);
  const attest = parseTpmsAttest(input.attest);
  if (attest.type !== 'quote') throw fail('tpm.malformed', 'the TPMS_ATTEST is a certification, not a quote');
  checkSignature(input.attest, sig, input.ak, 'tpm.quote_signature_invalid', 'quote');

  const digestHash = hashAlg(sig.hashAlg, 'signature hash');
  const byKey = new Map<string, PcrValue>();
  for (const p of input.pcrs) {
    const size = hashAlg(p.hashAlg, `PCR ${p.index} bank`).size;
    if (p.value.byteLength !== size) throw fail('tpm.malformed', `PCR ${p.index} has ${p.value.byteLength} bytes, its bank needs ${size}`, { index: p.index });
    const k = `${p.hashAlg}:${p.index}`;
    if (byKey.has(k)) throw fail('tpm.malformed', `PCR ${p.index} is sent twice for one bank`, { index: p.index });
    byKey.set(k, p);
  }
  const ordered: PcrValue[] = [];
  const h = createHash(digestHash.name);
  for (const sel of attest.pcrSelect) {
    for (const index of sel.pcrs) {
      const p = byKey.get(`${sel.hashAlg}:${index}`);
      if (!p) throw fail('tpm.pcr_digest_mismatch', `the quote selects PCR ${index} (bank 0x${sel.hashAlg.toString(16)}) but no value was sent for it`, { index });
      h.update(p.value);
      ordered.push(p);
    }
  }
  if (ordered.length !== byKey.size) throw fail('tpm.malformed', 'PCR values were sent that the quote does not select', { sent: byKey.size, quoted: ordered.length });
  const digest = new Uint8Array(h.digest());
  if (!equalBytes(digest, attest.pcrDigest)) {
    throw fail('tpm.pcr_digest_mismatch', 'the PCR values do not hash to the PCR digest the quote signs', { expected: toHex(attest.pcrDigest), actual: toHex(digest) });
  }
  if (input.expectedNonce !== undefined && !constantTimeEqual(attest.extraData, input.expectedNonce)) {
    throw fail('tpm.nonce_mismatch', 'the quote qualifying data is not the expected nonce', { expected: toHex(input.expectedNonce), actual: toHex(attest.extraData) });
  }
  return markVerified({ extraData: attest.extraData, clockInfo: attest.clockInfo, firmwareVersion: attest.firmwareVersion, pcrSelect: attest.pcrSelect, pcrs: ordered });
}

export interface CertifiedKeyInput {
  /** TPM2B_PUBLIC or TPMT_PUBLIC of the certified key. */
  readonly publicArea: Uint8Array;
  /** TPMS_ATTEST of TPM2_Certify. */
  readonly certifyInfo: Uint8Array;
  readonly signature: TpmSignatureInput;
  readonly ak: KeyObject;
  readonly expectedNonce?: Uint8Array | undefined;
}

export interface CertifiedKey {
  readonly publicArea: TpmtPublic;
  readonly name: Uint8Array;
  readonly jwk: ReturnType<typeof publicAreaJwk>;
}

/**
 * Verifies that the AK certified a key (TPM2_Certify, Part 3 §18.2): the signature over the
 * TPMS_CERTIFY_INFO, and that the certified name is nameAlg ‖ H(TPMT_PUBLIC) of the key sent.
 */
export function verifyCertifiedKey(input: CertifiedKeyInput): Verified<CertifiedKey> {
  const sig = signatureOf(input.signature);
  const attest: TpmsAttest = parseTpmsAttest(input.certifyInfo);
  if (attest.type !== 'certify') throw fail('tpm.key_certification_invalid', 'the certification is not a TPM2_Certify attestation');
  checkSignature(input.certifyInfo, sig, input.ak, 'tpm.key_certification_invalid', 'key certification');
  const { publicArea, tpmtBytes } = parsePublicArea(input.publicArea);
  const name = objectName(tpmtBytes, publicArea.nameAlg);
  if (!equalBytes(name, attest.name)) {
    throw fail('tpm.key_certification_invalid', 'the certification names another key than the public area sent', { expected: toHex(attest.name), actual: toHex(name) });
  }
  if (input.expectedNonce !== undefined && !constantTimeEqual(attest.extraData, input.expectedNonce)) {
    throw fail('tpm.nonce_mismatch', 'the key certification qualifying data is not the expected challenge', { expected: toHex(input.expectedNonce), actual: toHex(attest.extraData) });
  }
  return markVerified({ publicArea, name, jwk: publicAreaJwk(publicArea) });
}

/**
 * The checks on the guest attestation library's ephemeral encryption key (cvm-guest-attestation
 * `Tss2Util::PopulateEphemeralKeyPublicTemplate`): an RSA decryption key that cannot leave the TPM
 * (fixedTPM, fixedParent, sensitiveDataOrigin), cannot sign, is usable only through its policy
 * (userWithAuth clear: with it set the TPM also accepts the key's password, Part 1 §19.7.1), and whose
 * authPolicy is PolicyPCR over the quoted PCRs, so that only this TPM in this boot state can decrypt what
 * is sealed to it.
 */
export function checkEphemeralEncryptionKey(key: TpmtPublic, quote: TpmQuote): void {
  const a = key.objectAttributes;
  const need = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.decrypt;
  if (key.type !== 'rsa') throw fail('tpm.key_certification_invalid', 'the encryption key is not an RSA key');
  if ((a & need) !== need || (a & TPMA_OBJECT.sign) !== 0 || (a & TPMA_OBJECT.restricted) !== 0) {
    throw fail('tpm.key_certification_invalid', 'the encryption key attributes are not fixedTPM|fixedParent|sensitiveDataOrigin|decrypt without sign/restricted', {
      objectAttributes: `0x${a.toString(16)}`,
    });
  }
  if ((a & TPMA_OBJECT.userWithAuth) !== 0) {
    throw fail('tpm.key_certification_invalid', 'the encryption key has userWithAuth set: the TPM would use it with its password in any PCR state, not only through its PolicyPCR', {
      objectAttributes: `0x${a.toString(16)}`,
    });
  }
  const selection = quote.pcrSelect;
  const expected = policyPcrDigest(key.nameAlg, selection, quote.pcrs.map((p) => p.value));
  if (!equalBytes(expected, key.authPolicy)) {
    throw fail('tpm.key_certification_invalid', 'the encryption key is not bound (PolicyPCR) to the quoted PCR values', { expected: toHex(expected), actual: toHex(key.authPolicy) });
  }
}
