/**
 * TPM 2.0 structures the attestation paths read (TCG "TPM 2.0 Library, Part 2: Structures", rev 1.59),
 * parsed by the lengths they declare and encoded with the same field order (the fake TPM of the tests
 * and the SDK's replay device use the encoders). All TPM structures are big-endian (Part 2 §1).
 */
import { createHash } from 'node:crypto';
import { b64url, ByteReader } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';

/** TPM_ALG_ID values used here (Part 2 §6.3). */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  AES: 0x0006,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECC: 0x0023,
  CFB: 0x0043,
} as const;

/** TPM_ST values of TPMS_ATTEST.type (Part 2 §6.9). */
export const TPM_ST = { ATTEST_CERTIFY: 0x8017, ATTEST_QUOTE: 0x8018 } as const;

/** TPM_GENERATED_VALUE: every TPMS_ATTEST the TPM signs starts with it (Part 2 §6.2). */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPM_CC_PolicyPCR (Part 2 §6.5.2), hashed into a PolicyPCR policy digest. */
export const TPM_CC_POLICY_PCR = 0x0000017f;

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

export type TpmHashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const HASHES: Readonly<Record<number, { name: TpmHashName; size: number }>> = {
  [TPM_ALG.SHA1]: { name: 'sha1', size: 20 },
  [TPM_ALG.SHA256]: { name: 'sha256', size: 32 },
  [TPM_ALG.SHA384]: { name: 'sha384', size: 48 },
  [TPM_ALG.SHA512]: { name: 'sha512', size: 64 },
};

/** The node:crypto name and digest size of a TPM hash algorithm; `tpm.unsupported` for any other. */
export function hashAlg(alg: number, field = 'hashAlg'): { name: TpmHashName; size: number } {
  const h = HASHES[alg];
  if (!h) throw fail('tpm.unsupported', `${field}: hash algorithm 0x${alg.toString(16).padStart(4, '0')} is not supported`, { field, alg });
  return h;
}

export function hashAlgId(name: TpmHashName): number {
  const id = Object.entries(HASHES).find(([, h]) => h.name === name)?.[0];
  return Number(id);
}

function reader(bytes: Uint8Array, structure: string): ByteReader {
  return new ByteReader(bytes, structure, 'tpm.truncated');
}

function tpm2b(r: ByteReader, field: string): Uint8Array {
  const size = r.u16be(`${field}.size`);
  return r.bytesCopy(`${field}.buffer`, size);
}

function done(r: ByteReader, structure: string): void {
  if (r.remaining !== 0) throw fail('tpm.malformed', `${structure} has ${r.remaining} bytes after its last field`, { structure, trailing: r.remaining });
}

/** A growable big-endian writer for the encoders. */
class Writer {
  private readonly parts: Uint8Array[] = [];
  u8(v: number): this {
    this.parts.push(Uint8Array.of(v));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  bytes(b: Uint8Array): this {
    this.parts.push(b);
    return this;
  }
  tpm2b(b: Uint8Array): this {
    return this.u16(b.byteLength).bytes(b);
  }
  build(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts));
  }
}

// ── TPML_PCR_SELECTION (Part 2 §10.9.7) ─────────────────────────────────────────────────────────────

export interface PcrSelection {
  readonly hashAlg: number;
  /** PCR indices selected, ascending. */
  readonly pcrs: readonly number[];
}

function readPcrSelection(r: ByteReader): PcrSelection[] {
  const count = r.u32be('pcrSelect.count');
  // TPM implementations bound this by HASH_COUNT; 16 banks is far above any real TPM.
  if (count > 16) throw fail('tpm.malformed', `TPML_PCR_SELECTION.count ${count} is implausible`, { count });
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const alg = r.u16be(`pcrSelections[${i}].hash`);
    const size = r.u8(`pcrSelections[${i}].sizeofSelect`);
    if (size > 32) throw fail('tpm.malformed', `sizeofSelect ${size} is implausible`, { size });
    const bitmap = r.view_(`pcrSelections[${i}].pcrSelect`, size);
    const pcrs: number[] = [];
    for (let byte = 0; byte < size; byte++) for (let bit = 0; bit < 8; bit++) if ((bitmap[byte]! >> bit) & 1) pcrs.push(byte * 8 + bit);
    out.push({ hashAlg: alg, pcrs });
  }
  return out;
}

function writePcrSelection(w: Writer, sel: readonly PcrSelection[]): void {
  w.u32(sel.length);
  for (const s of sel) {
    const size = Math.max(3, Math.ceil((Math.max(-1, ...s.pcrs) + 1) / 8));
    const bitmap = new Uint8Array(size);
    for (const p of s.pcrs) bitmap[p >> 3]! |= 1 << (p & 7);
    w.u16(s.hashAlg).u8(size).bytes(bitmap);
  }
}

export function encodePcrSelection(sel: readonly PcrSelection[]): Uint8Array {
  const w = new Writer();
  writePcrSelection(w, sel);
  return w.build();
}

// ── TPMS_ATTEST (Part 2 §10.12.12) ──────────────────────────────────────────────────────────────────

export interface TpmsClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

interface TpmsAttestCommon {
  readonly qualifiedSigner: Uint8Array;
  /** The caller's qualifying data (nonce) the TPM copied in. */
  readonly extraData: Uint8Array;
  readonly clockInfo: TpmsClockInfo;
  readonly firmwareVersion: bigint;
}

export type TpmsAttest =
  | (TpmsAttestCommon & { readonly type: 'quote'; readonly pcrSelect: readonly PcrSelection[]; readonly pcrDigest: Uint8Array })
  | (TpmsAttestCommon & { readonly type: 'certify'; readonly name: Uint8Array; readonly qualifiedName: Uint8Array });

/** Parses a TPMS_ATTEST of a quote or a certification; the bytes must hold exactly one structure. */
export function parseTpmsAttest(bytes: Uint8Array): TpmsAttest {
  const r = reader(bytes, 'TPMS_ATTEST');
  const magic = r.u32be('magic');
  if (magic !== TPM_GENERATED_VALUE) throw fail('tpm.malformed', 'TPMS_ATTEST.magic is not TPM_GENERATED_VALUE (the structure was not produced by a TPM)', { magic });
  const type = r.u16be('type');
  const common: TpmsAttestCommon = {
    qualifiedSigner: tpm2b(r, 'qualifiedSigner'),
    extraData: tpm2b(r, 'extraData'),
    clockInfo: { clock: r.u64be('clockInfo.clock'), resetCount: r.u32be('clockInfo.resetCount'), restartCount: r.u32be('clockInfo.restartCount'), safe: r.u8('clockInfo.safe') === 1 },
    firmwareVersion: r.u64be('firmwareVersion'),
  };
  let out: TpmsAttest;
  if (type === TPM_ST.ATTEST_QUOTE) {
    out = { ...common, type: 'quote', pcrSelect: readPcrSelection(r), pcrDigest: tpm2b(r, 'pcrDigest') };
  } else if (type === TPM_ST.ATTEST_CERTIFY) {
    out = { ...common, type: 'certify', name: tpm2b(r, 'name'), qualifiedName: tpm2b(r, 'qualifiedName') };
  } else {
    throw fail('tpm.unsupported', `TPMS_ATTEST.type 0x${type.toString(16)} is neither a quote nor a certification`, { type });
  }
  done(r, 'TPMS_ATTEST');
  return out;
}

export function encodeTpmsAttest(a: TpmsAttest): Uint8Array {
  const w = new Writer()
    .u32(TPM_GENERATED_VALUE)
    .u16(a.type === 'quote' ? TPM_ST.ATTEST_QUOTE : TPM_ST.ATTEST_CERTIFY)
    .tpm2b(a.qualifiedSigner)
    .tpm2b(a.extraData)
    .u64(a.clockInfo.clock)
    .u32(a.clockInfo.resetCount)
    .u32(a.clockInfo.restartCount)
    .u8(a.clockInfo.safe ? 1 : 0)
    .u64(a.firmwareVersion);
  if (a.type === 'quote') {
    writePcrSelection(w, a.pcrSelect);
    w.tpm2b(a.pcrDigest);
  } else w.tpm2b(a.name).tpm2b(a.qualifiedName);
  return w.build();
}

// ── TPMT_SIGNATURE (Part 2 §11.3.4) ─────────────────────────────────────────────────────────────────

export type TpmtSignature =
  | { readonly sigAlg: 'rsassa' | 'rsapss'; readonly hashAlg: number; readonly sig: Uint8Array }
  | { readonly sigAlg: 'ecdsa'; readonly hashAlg: number; readonly r: Uint8Array; readonly s: Uint8Array };

export function parseTpmtSignature(bytes: Uint8Array): TpmtSignature {
  const r = reader(bytes, 'TPMT_SIGNATURE');
  const alg = r.u16be('sigAlg');
  let out: TpmtSignature;
  if (alg === TPM_ALG.RSASSA || alg === TPM_ALG.RSAPSS) {
    out = { sigAlg: alg === TPM_ALG.RSASSA ? 'rsassa' : 'rsapss', hashAlg: r.u16be('hash'), sig: tpm2b(r, 'sig') };
  } else if (alg === TPM_ALG.ECDSA) {
    out = { sigAlg: 'ecdsa', hashAlg: r.u16be('hash'), r: tpm2b(r, 'signatureR'), s: tpm2b(r, 'signatureS') };
  } else {
    throw fail('tpm.unsupported', `signature algorithm 0x${alg.toString(16)} is not supported (RSASSA, RSAPSS, ECDSA are)`, { sigAlg: alg });
  }
  done(r, 'TPMT_SIGNATURE');
  return out;
}

export function encodeTpmtSignature(s: TpmtSignature): Uint8Array {
  const w = new Writer();
  if (s.sigAlg === 'ecdsa') w.u16(TPM_ALG.ECDSA).u16(s.hashAlg).tpm2b(s.r).tpm2b(s.s);
  else w.u16(s.sigAlg === 'rsassa' ? TPM_ALG.RSASSA : TPM_ALG.RSAPSS).u16(s.hashAlg).tpm2b(s.sig);
  return w.build();
}

// ── TPMT_PUBLIC (Part 2 §12.2.4) ────────────────────────────────────────────────────────────────────

export interface TpmScheme {
  readonly scheme: number;
  /** The scheme's hash (TPM_ALG_NULL when the scheme has none). */
  readonly hashAlg: number;
}

interface TpmtPublicCommon {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
  /** TPMT_SYM_DEF_OBJECT: the symmetric algorithm of a storage key, TPM_ALG_NULL otherwise. */
  readonly symmetric: { readonly algorithm: number; readonly keyBits?: number; readonly mode?: number };
  readonly scheme: TpmScheme;
}

export type TpmtPublic =
  | (TpmtPublicCommon & { readonly type: 'rsa'; readonly keyBits: number; readonly exponent: number; readonly modulus: Uint8Array })
  | (TpmtPublicCommon & { readonly type: 'ecc'; readonly curveId: number; readonly kdf: TpmScheme; readonly x: Uint8Array; readonly y: Uint8Array });

/** Schemes whose TPMU_ASYM_SCHEME member is a TPMS_SCHEME_HASH (Part 2 §11.2.3); ECDAA adds a count. */
const HASH_SCHEMES = new Set<number>([TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP, TPM_ALG.ECDSA, TPM_ALG.ECDH, TPM_ALG.ECDAA]);

function readScheme(r: ByteReader, field: string): TpmScheme {
  const scheme = r.u16be(`${field}.scheme`);
  if (scheme === TPM_ALG.NULL || scheme === TPM_ALG.RSAES) return { scheme, hashAlg: TPM_ALG.NULL };
  if (!HASH_SCHEMES.has(scheme)) throw fail('tpm.unsupported', `${field}: scheme 0x${scheme.toString(16)} is not supported`, { field, scheme });
  const hash = r.u16be(`${field}.details.hashAlg`);
  if (scheme === TPM_ALG.ECDAA) r.u16be(`${field}.details.count`);
  return { scheme, hashAlg: hash };
}

function writeScheme(w: Writer, s: TpmScheme): void {
  w.u16(s.scheme);
  if (s.scheme !== TPM_ALG.NULL && s.scheme !== TPM_ALG.RSAES) w.u16(s.hashAlg);
  if (s.scheme === TPM_ALG.ECDAA) w.u16(0);
}

function readPublic(r: ByteReader): TpmtPublic {
  const type = r.u16be('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) throw fail('tpm.unsupported', `key type 0x${type.toString(16)} is not RSA or ECC`, { type });
  const nameAlg = r.u16be('nameAlg');
  const objectAttributes = r.u32be('objectAttributes');
  const authPolicy = tpm2b(r, 'authPolicy');
  const symAlg = r.u16be('parameters.symmetric.algorithm');
  const symmetric = symAlg === TPM_ALG.NULL ? { algorithm: symAlg } : { algorithm: symAlg, keyBits: r.u16be('parameters.symmetric.keyBits'), mode: r.u16be('parameters.symmetric.mode') };
  const scheme = readScheme(r, 'parameters.scheme');
  const common = { nameAlg, objectAttributes, authPolicy, symmetric, scheme };
  if (type === TPM_ALG.RSA) {
    const keyBits = r.u16be('parameters.keyBits');
    const exponent = r.u32be('parameters.exponent');
    const modulus = tpm2b(r, 'unique.rsa');
    if (modulus.byteLength * 8 !== keyBits) throw fail('tpm.malformed', `the RSA modulus has ${modulus.byteLength * 8} bits, keyBits says ${keyBits}`, { keyBits });
    return { ...common, type: 'rsa', keyBits, exponent, modulus };
  }
  const curveId = r.u16be('parameters.curveID');
  const kdf = readScheme(r, 'parameters.kdf');
  return { ...common, type: 'ecc', curveId, kdf, x: tpm2b(r, 'unique.ecc.x'), y: tpm2b(r, 'unique.ecc.y') };
}

/** Parses a TPMT_PUBLIC (exactly). */
export function parseTpmtPublic(bytes: Uint8Array): TpmtPublic {
  const r = reader(bytes, 'TPMT_PUBLIC');
  const p = readPublic(r);
  done(r, 'TPMT_PUBLIC');
  return p;
}

/**
 * Parses a public area sent either as TPM2B_PUBLIC (a u16 size, then TPMT_PUBLIC: what tss2 marshals
 * for the Azure guest attestation library) or as a bare TPMT_PUBLIC. Returns the TPMT_PUBLIC bytes too:
 * the object's name is computed over exactly those.
 */
export function parsePublicArea(bytes: Uint8Array): { publicArea: TpmtPublic; tpmtBytes: Uint8Array } {
  if (bytes.byteLength >= 2 && ((bytes[0]! << 8) | bytes[1]!) === bytes.byteLength - 2) {
    const tpmtBytes = bytes.subarray(2);
    return { publicArea: parseTpmtPublic(tpmtBytes), tpmtBytes };
  }
  return { publicArea: parseTpmtPublic(bytes), tpmtBytes: bytes };
}

export function encodeTpmtPublic(p: TpmtPublic): Uint8Array {
  const w = new Writer().u16(p.type === 'rsa' ? TPM_ALG.RSA : TPM_ALG.ECC).u16(p.nameAlg).u32(p.objectAttributes).tpm2b(p.authPolicy);
  w.u16(p.symmetric.algorithm);
  if (p.symmetric.algorithm !== TPM_ALG.NULL) w.u16(p.symmetric.keyBits ?? 0).u16(p.symmetric.mode ?? 0);
  writeScheme(w, p.scheme);
  if (p.type === 'rsa') w.u16(p.keyBits).u32(p.exponent).tpm2b(p.modulus);
  else {
    w.u16(p.curveId);
    writeScheme(w, p.kdf);
    w.tpm2b(p.x).tpm2b(p.y);
  }
  return w.build();
}

/** TPM2B_PUBLIC: the size-prefixed TPMT_PUBLIC. */
export function encodeTpm2bPublic(p: TpmtPublic): Uint8Array {
  return new Writer().tpm2b(encodeTpmtPublic(p)).build();
}

/** TPM_ECC_CURVE → JWK crv (Part 2 §6.4). */
const CURVES: Readonly<Record<number, 'P-256' | 'P-384' | 'P-521'>> = { 3: 'P-256', 4: 'P-384', 5: 'P-521' };

/** The public key of a TPMT_PUBLIC as a JWK (RSA `n`/`e`; ECC `crv`/`x`/`y`). An exponent of 0 means 65537 (Part 2 §12.2.3.5). */
export function publicAreaJwk(p: TpmtPublic): { kty: 'RSA'; n: string; e: string } | { kty: 'EC'; crv: string; x: string; y: string } {
  if (p.type === 'rsa') {
    const e = p.exponent === 0 ? 65537 : p.exponent;
    let eb = Buffer.alloc(4);
    eb.writeUInt32BE(e);
    while (eb.length > 1 && eb[0] === 0) eb = eb.subarray(1);
    return { kty: 'RSA', n: b64url(p.modulus), e: eb.toString('base64url') };
  }
  const crv = CURVES[p.curveId];
  if (!crv) throw fail('tpm.unsupported', `ECC curve 0x${p.curveId.toString(16)} is not supported`, { curveId: p.curveId });
  return { kty: 'EC', crv, x: b64url(p.x), y: b64url(p.y) };
}

/** TPM2B_NAME of an object: nameAlg ‖ H_nameAlg(TPMT_PUBLIC) (Part 1 §16). */
export function objectName(tpmtBytes: Uint8Array, nameAlg: number): Uint8Array {
  const h = hashAlg(nameAlg, 'nameAlg');
  const w = new Writer().u16(nameAlg).bytes(createHash(h.name).update(tpmtBytes).digest());
  return w.build();
}

/**
 * The policy digest of a single TPM2_PolicyPCR (Part 3 §23.7): H(zeros ‖ TPM_CC_PolicyPCR ‖
 * TPML_PCR_SELECTION ‖ H(selected PCR values)). A key whose authPolicy equals it is usable only while
 * those PCRs hold those values.
 */
export function policyPcrDigest(nameAlg: number, selection: readonly PcrSelection[], pcrValues: readonly Uint8Array[]): Uint8Array {
  const h = hashAlg(nameAlg, 'nameAlg');
  const pcrDigest = createHash(h.name);
  for (const v of pcrValues) pcrDigest.update(v);
  const cc = Buffer.alloc(4);
  cc.writeUInt32BE(TPM_CC_POLICY_PCR);
  return new Uint8Array(
    createHash(h.name)
      .update(Buffer.alloc(h.size))
      .update(cc)
      .update(encodePcrSelection(selection))
      .update(pcrDigest.digest())
      .digest(),
  );
}
