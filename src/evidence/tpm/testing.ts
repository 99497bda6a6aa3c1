/**
 * A software TPM for tests and for the SDK's replay device: an RSA attestation key, SHA-256 PCRs with a
 * crypto-agile event log, TPM2_Quote, TPM2_Certify of a PolicyPCR-bound encryption key. It signs with
 * node:crypto and encodes with the same structure tables the verifier parses. Never trusted by a server:
 * its AK is bound to nothing unless a test binds it (a simulated HCL report, a test AIK certificate).
 */
import { constants, createHash, createPublicKey, type KeyObject, privateDecrypt, sign } from 'node:crypto';
import { equalBytes } from '../../core/bytes.js';
import { EV } from './eventlog.js';
import { encodeTpm2bPublic, encodeTpmsAttest, encodeTpmtPublic, encodeTpmtSignature, objectName, type PcrSelection, policyPcrDigest, TPM_ALG, TPMA_OBJECT, type TpmtPublic } from './structures.js';
import { generateRsaKeyPair } from '../../core/keygen.js';

function rsaArea(key: KeyObject, attributes: number, scheme: { scheme: number; hashAlg: number }, authPolicy: Uint8Array = new Uint8Array(0)): TpmtPublic {
  const jwk = key.export({ format: 'jwk' });
  const modulus = new Uint8Array(Buffer.from(jwk.n!, 'base64url'));
  return { type: 'rsa', nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy, symmetric: { algorithm: TPM_ALG.NULL }, scheme, keyBits: modulus.byteLength * 8, exponent: 0, modulus };
}

/** The attributes of an Azure vTPM AK: a restricted signing key that never leaves the TPM. */
export const AK_ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;

/** TPM2B_PUBLIC of an AK given as a JWK (the HCLAkPub of recorded evidence), with the AK template. */
export function akPublicAreaFromJwk(jwk: Record<string, unknown>): Uint8Array {
  return encodeTpm2bPublic(rsaArea(createPublicKey({ key: { kty: 'RSA', n: jwk.n as string, e: jwk.e as string }, format: 'jwk' }), AK_ATTRIBUTES, { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 }));
}

interface LoggedEvent {
  readonly pcr: number;
  readonly type: number;
  readonly digest: Uint8Array;
  readonly data: Uint8Array;
}

export class FakeTpm {
  readonly akPrivate: KeyObject;
  readonly akPublic: KeyObject;
  readonly akArea: TpmtPublic;
  private readonly pcrs = new Map<number, Uint8Array>();
  private readonly events: LoggedEvent[] = [];
  private clock = 1000n;

  constructor(opts: { readonly ak?: { privateKey: KeyObject; publicKey: KeyObject } } = {}) {
    const ak = opts.ak ?? generateRsaKeyPair(2048);
    this.akPrivate = ak.privateKey;
    this.akPublic = ak.publicKey;
    this.akArea = rsaArea(this.akPublic, AK_ATTRIBUTES, { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 });
  }

  /** The AK as the HCL runtime data names it (`kid: HCLAkPub`). */
  akJwk(kid = 'HCLAkPub'): Record<string, unknown> {
    const j = this.akPublic.export({ format: 'jwk' });
    return { kid, key_ops: ['sign'], kty: 'RSA', e: j.e, n: j.n };
  }

  /** TPM2B_PUBLIC of the AK, as `tpm2_readpublic` / tss2 marshal it. */
  akPublicArea(): Uint8Array {
    return encodeTpm2bPublic(this.akArea);
  }

  pcr(index: number): Uint8Array {
    return this.pcrs.get(index) ?? new Uint8Array(32);
  }

  /** Extends a PCR with SHA-256(data) and logs the event. */
  measure(pcr: number, type: number, data: Uint8Array): void {
    const digest = new Uint8Array(createHash('sha256').update(data).digest());
    this.extend(pcr, digest);
    this.events.push({ pcr, type, digest, data });
  }

  /** Extends a PCR without logging (what an OS does after the firmware log ends, or an attacker hides). */
  extend(pcr: number, digest: Uint8Array): void {
    this.pcrs.set(pcr, new Uint8Array(createHash('sha256').update(this.pcr(pcr)).update(digest).digest()));
  }

  /** Logs the UEFI SecureBoot variable in PCR 7 as firmware does (EV_EFI_VARIABLE_DRIVER_CONFIG). */
  measureSecureBoot(enabled: boolean): void {
    const name = Buffer.from('SecureBoot', 'utf16le');
    const head = Buffer.alloc(32);
    Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex').copy(head, 0);
    head.writeBigUInt64LE(BigInt(name.length / 2), 16);
    head.writeBigUInt64LE(1n, 24);
    this.measure(7, EV.EFI_VARIABLE_DRIVER_CONFIG, Buffer.concat([head, name, Uint8Array.of(enabled ? 1 : 0)]));
  }

  /** Logs Windows boot configuration (SIPA) events in PCR 12 as Windows does (EV_EVENT_TAG). */
  measureSipa(events: readonly { type: number; value: Uint8Array }[]): void {
    const parts = events.map((e) => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(e.type, 0);
      h.writeUInt32LE(e.value.byteLength, 4);
      return Buffer.concat([h, e.value]);
    });
    this.measure(12, EV.EVENT_TAG, Buffer.concat(parts));
  }

  /** A plausible boot: firmware, boot loader, separators, SecureBoot. */
  bootLinux(secureBoot = true): this {
    for (let p = 0; p <= 7; p++) {
      if (p === 7) this.measureSecureBoot(secureBoot);
      this.measure(p, EV.SEPARATOR, new Uint8Array(4));
    }
    this.measure(4, EV.EFI_BOOT_SERVICES_APPLICATION, Buffer.from('shimx64.efi'));
    return this;
  }

  /** The crypto-agile event log (SHA-256 bank) of everything measured. */
  eventLog(): Uint8Array {
    const spec = Buffer.alloc(16 + 4 + 3 + 1 + 4 + 4 + 1);
    Buffer.from('Spec ID Event03\0', 'latin1').copy(spec, 0);
    spec[21] = 2; // specVersionMajor
    spec[23] = 2; // uintnSize (UINT64)
    spec.writeUInt32LE(1, 24);
    spec.writeUInt16LE(TPM_ALG.SHA256, 28);
    spec.writeUInt16LE(32, 30);
    const first = Buffer.alloc(32);
    first.writeUInt32LE(0, 0);
    first.writeUInt32LE(EV.NO_ACTION, 4);
    first.writeUInt32LE(spec.length, 28);
    const out: Buffer[] = [first, spec];
    for (const e of this.events) {
      const h = Buffer.alloc(14);
      h.writeUInt32LE(e.pcr, 0);
      h.writeUInt32LE(e.type, 4);
      h.writeUInt32LE(1, 8);
      h.writeUInt16LE(TPM_ALG.SHA256, 12);
      const size = Buffer.alloc(4);
      size.writeUInt32LE(e.data.byteLength);
      out.push(h, Buffer.from(e.digest), size, Buffer.from(e.data));
    }
    return new Uint8Array(Buffer.concat(out));
  }

  private attestHeader(nonce: Uint8Array) {
    this.clock += 1n;
    return {
      qualifiedSigner: objectName(encodeTpmtPublic(this.akArea), TPM_ALG.SHA256),
      extraData: nonce,
      clockInfo: { clock: this.clock, resetCount: 1, restartCount: 0, safe: true },
      firmwareVersion: 0x2020031200120003n,
    };
  }

  private signRaw(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign('sha256', message, { key: this.akPrivate, padding: constants.RSA_PKCS1_PADDING }));
  }

  /** TPM2_Quote over SHA-256 PCRs: the TPMS_ATTEST, the bare RSASSA signature, the TPMT_SIGNATURE, the values. */
  quote(pcrs: readonly number[], nonce: Uint8Array = new Uint8Array(0)) {
    const selection: PcrSelection[] = [{ hashAlg: TPM_ALG.SHA256, pcrs: [...pcrs].sort((a, b) => a - b) }];
    const values = selection[0]!.pcrs.map((i) => this.pcr(i));
    const pcrDigest = new Uint8Array(createHash('sha256').update(Buffer.concat(values)).digest());
    const message = encodeTpmsAttest({ ...this.attestHeader(nonce), type: 'quote', pcrSelect: selection, pcrDigest });
    const signature = this.signRaw(message);
    return {
      message,
      signature,
      tpmtSignature: encodeTpmtSignature({ sigAlg: 'rsassa', hashAlg: TPM_ALG.SHA256, sig: signature }),
      pcrs: selection[0]!.pcrs.map((index, i) => ({ hashAlg: TPM_ALG.SHA256, index, value: values[i]! })),
    };
  }

  /**
   * The guest attestation library's ephemeral key: an RSA-2048 decryption key in the TPM whose
   * authPolicy is PolicyPCR over the PCRs, certified by the AK (TPM2_Certify).
   */
  ephemeralKey(
    pcrs: readonly number[],
    nonce: Uint8Array = new Uint8Array(0),
    attributes: number = TPMA_OBJECT.decrypt | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.noDA,
  ) {
    const sorted = [...pcrs].sort((a, b) => a - b);
    const key = generateRsaKeyPair(2048);
    const policy = policyPcrDigest(TPM_ALG.SHA256, [{ hashAlg: TPM_ALG.SHA256, pcrs: sorted }], sorted.map((i) => this.pcr(i)));
    const area = rsaArea(key.publicKey, attributes, { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL }, policy);
    const tpmt = encodeTpmtPublic(area);
    const certifyInfo = encodeTpmsAttest({ ...this.attestHeader(nonce), type: 'certify', name: objectName(tpmt, TPM_ALG.SHA256), qualifiedName: objectName(tpmt, TPM_ALG.SHA256) });
    const pcrsAtCreation = sorted.map((i) => this.pcr(i));
    return {
      publicArea: encodeTpm2bPublic(area),
      certifyInfo,
      signature: this.signRaw(certifyInfo),
      /** The key's private half, which a real TPM never releases: for tests that unwrap what was sealed to it (RSA-OAEP). */
      privateKey: key.privateKey,
      /** TPM2_RSA_Decrypt with scheme RSAES, allowed only while the PCRs are unchanged (PolicyPCR). */
      decrypt: (ciphertext: Uint8Array): Uint8Array => {
        if (!sorted.every((i, n) => equalBytes(this.pcr(i), pcrsAtCreation[n]!))) throw new Error('TPM_RC_POLICY_FAIL: the PCRs changed');
        return unpadRsaes(new Uint8Array(privateDecrypt({ key: key.privateKey, padding: constants.RSA_NO_PADDING }, Buffer.from(ciphertext))));
      },
    };
  }
}

/**
 * Removes RSAES-PKCS1-v1_5 padding (RFC 8017 §7.2.2) after a raw RSA decryption. Test-side only: it
 * stands in for the TPM's own RSA_Decrypt, because Node 20 refuses PKCS#1 v1.5 private decryption.
 */
function unpadRsaes(em: Uint8Array): Uint8Array {
  if (em[0] !== 0 || em[1] !== 2) throw new Error('RSAES decryption error');
  const sep = em.indexOf(0, 2);
  if (sep < 10) throw new Error('RSAES decryption error');
  return em.subarray(sep + 1);
}
