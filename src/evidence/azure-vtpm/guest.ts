/**
 * The `AttestationInfo` document of Azure's guest attestation (MAA `POST /attest/AzureGuest`), as the
 * guest attestation library (Azure/confidential-computing-cvm-guest-attestation `AttestationParameters`,
 * `TpmInfo`, `IsolationInfo`) and Azure/cvm-attestation-tools build it: base64url of a JSON object
 *
 *   { AttestationProtocolVersion: "2.0", OSType, OSDistro, OSBuild: base64(text), OSVersionMajor/Minor: int or
 *     string, TcgLogs: base64(TCG event log), ClientPayload: {name: base64(value)} or {name: value},
 *     TpmInfo: {AikCert, AikPub (TPM2B_PUBLIC), PcrQuote (TPMS_ATTEST), PcrSignature (RSASSA bytes),
 *               EncKeyPub (TPM2B_PUBLIC), EncKeyCertifyInfo (TPMS_ATTEST), EncKeyCertifyInfoSignature,
 *               PcrSet: [index], PCRs: [{Index, Digest}]}            (binary fields base64)
 *     IsolationInfo: {Type: "SevSnp" | "Tdx" | "TrustedLaunch",
 *                     Evidence: {Proof, RunTimeData (the HCL variable data)}} }
 *
 * SNP `Proof` = base64(JSON {SnpReport: base64url(report), VcekCertChain: base64(PEM VCEK ‖ ASK ‖ ARK)});
 * TDX `Proof` = base64(TD quote).
 */
import { b64url, fromB64 } from '../../core/bytes.js';
import { fail, isConclaveError } from '../../core/errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../../core/json.js';
import { TPM_ALG } from '../tpm/structures.js';
import type { PcrValue } from '../tpm/quote.js';

export interface GuestAttestationInfo {
  readonly protocolVersion: string;
  readonly os: { readonly type: string; readonly distro: string; readonly build: string; readonly versionMajor: number; readonly versionMinor: number };
  readonly tcgLog: Uint8Array;
  readonly clientPayload: Readonly<Record<string, string>>;
  readonly tpm: {
    readonly aikCert: Uint8Array;
    readonly aikPub: Uint8Array;
    readonly quote: Uint8Array;
    readonly signature: Uint8Array;
    readonly pcrs: readonly PcrValue[];
    readonly encryptionKey?: { readonly publicArea: Uint8Array; readonly certifyInfo: Uint8Array; readonly signature: Uint8Array };
  };
  readonly isolation:
    | { readonly type: 'SevSnp'; readonly snpReport: Uint8Array; readonly vcekCertChainPem: string | undefined; readonly runtimeData: Uint8Array }
    | { readonly type: 'Tdx'; readonly tdQuote: Uint8Array; readonly runtimeData: Uint8Array }
    | { readonly type: 'TrustedLaunch' };
}

function bad(message: string, field?: string): never {
  throw fail('tpm.malformed', `AttestationInfo: ${message}`, field ? { field } : undefined);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${field} must be an object`, field);
  return v as Record<string, unknown>;
}

function b64(v: unknown, field: string, optional = false): Uint8Array {
  if (optional && (v === undefined || v === null || v === '')) return new Uint8Array(0);
  if (typeof v !== 'string') bad(`${field} must be a base64 string`, field);
  try {
    return fromB64(v, field);
  } catch {
    return bad(`${field} is not base64`, field);
  }
}

/** JSON.parse of a document inside the body's base64 (the edge's depth check never saw it), within MAX_JSON_DEPTH. */
function parseDocument(bytes: Uint8Array, field: string): unknown {
  const t = Buffer.from(bytes).toString('utf8');
  if (jsonTextTooDeep(t)) bad(`${field} nests deeper than ${MAX_JSON_DEPTH} levels`, field);
  return JSON.parse(t);
}

function text(v: unknown, field: string): string {
  if (v === undefined || v === null || v === '') return '';
  return Buffer.from(b64(v, field)).toString('utf8');
}

function int(v: unknown, field: string): number {
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) bad(`${field} must be a non-negative integer`, field);
  return n;
}

/** A ClientPayload value is base64 of UTF-8 text (library) or the text itself (cvm-attestation-tools); MAA shows the text. */
function payloadValue(v: unknown, field: string): string {
  if (typeof v !== 'string') bad(`${field} must be a string`, field);
  if (v.length > 0 && v.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(v)) {
    const decoded = Buffer.from(v, 'base64');
    const t = decoded.toString('utf8');
    if (Buffer.from(t, 'utf8').equals(decoded) && !/[\u0000-\u0008\u000e-\u001f]/.test(t)) return t;
  }
  return v;
}

/** Decodes the `AttestationInfo` field of an AzureGuest request (base64url of the JSON document). */
export function parseGuestAttestationInfo(field: unknown): GuestAttestationInfo {
  if (typeof field !== 'string' || field === '') throw fail('request.invalid', 'the request needs "AttestationInfo" (base64url of the guest attestation document)', { field: 'AttestationInfo' });
  let doc: unknown;
  try {
    doc = parseDocument(fromB64(field, 'AttestationInfo'), 'AttestationInfo');
  } catch (e) {
    if (isConclaveError(e, 'tpm.malformed')) throw e;
    bad('not base64url of a JSON document');
  }
  const d = obj(doc, 'AttestationInfo');
  const tpm = obj(d.TpmInfo, 'TpmInfo');
  const pcrList = tpm.PCRs;
  if (!Array.isArray(pcrList) || pcrList.length === 0 || pcrList.length > 24) bad('TpmInfo.PCRs must list the quoted PCRs', 'TpmInfo.PCRs');
  const pcrs: PcrValue[] = (pcrList as unknown[]).map((p, i) => {
    const o = obj(p, `TpmInfo.PCRs[${i}]`);
    return { hashAlg: TPM_ALG.SHA256, index: int(o.Index, `TpmInfo.PCRs[${i}].Index`), value: b64(o.Digest, `TpmInfo.PCRs[${i}].Digest`) };
  });
  const encPub = b64(tpm.EncKeyPub, 'TpmInfo.EncKeyPub', true);
  const encryptionKey =
    encPub.byteLength > 0
      ? { publicArea: encPub, certifyInfo: b64(tpm.EncKeyCertifyInfo, 'TpmInfo.EncKeyCertifyInfo'), signature: b64(tpm.EncKeyCertifyInfoSignature, 'TpmInfo.EncKeyCertifyInfoSignature') }
      : undefined;

  const iso = obj(d.IsolationInfo, 'IsolationInfo');
  let isolation: GuestAttestationInfo['isolation'];
  if (iso.Type === 'TrustedLaunch') isolation = { type: 'TrustedLaunch' };
  else if (iso.Type === 'SevSnp' || iso.Type === 'Tdx') {
    const ev = obj(iso.Evidence, 'IsolationInfo.Evidence');
    const runtimeData = b64(ev.RunTimeData, 'IsolationInfo.Evidence.RunTimeData');
    const proof = b64(ev.Proof, 'IsolationInfo.Evidence.Proof');
    if (iso.Type === 'Tdx') isolation = { type: 'Tdx', tdQuote: proof, runtimeData };
    else {
      let p: Record<string, unknown>;
      try {
        p = obj(parseDocument(proof, 'Proof'), 'Proof');
      } catch (e) {
        if (isConclaveError(e, 'tpm.malformed')) throw e;
        bad('the SevSnp Proof is not base64 of a JSON document', 'IsolationInfo.Evidence.Proof');
      }
      const chain = p.VcekCertChain === undefined || p.VcekCertChain === '' ? undefined : Buffer.from(b64(p.VcekCertChain, 'Proof.VcekCertChain')).toString('latin1');
      isolation = { type: 'SevSnp', snpReport: b64(p.SnpReport, 'Proof.SnpReport'), vcekCertChainPem: chain, runtimeData };
    }
  } else bad(`IsolationInfo.Type ${JSON.stringify(iso.Type)} is not SevSnp, Tdx or TrustedLaunch`, 'IsolationInfo.Type');

  const payload = d.ClientPayload === undefined || d.ClientPayload === null ? {} : obj(d.ClientPayload, 'ClientPayload');
  if (Object.keys(payload).length > 32) bad('ClientPayload has too many entries', 'ClientPayload');
  const clientPayload: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload)) clientPayload[k] = payloadValue(v, `ClientPayload.${k}`);

  return {
    protocolVersion: typeof d.AttestationProtocolVersion === 'string' ? d.AttestationProtocolVersion : bad('AttestationProtocolVersion must be a string', 'AttestationProtocolVersion'),
    os: {
      type: text(d.OSType, 'OSType'),
      distro: text(d.OSDistro, 'OSDistro'),
      build: text(d.OSBuild, 'OSBuild'),
      versionMajor: int(d.OSVersionMajor ?? 0, 'OSVersionMajor'),
      versionMinor: int(d.OSVersionMinor ?? 0, 'OSVersionMinor'),
    },
    tcgLog: b64(d.TcgLogs, 'TcgLogs', true),
    clientPayload,
    tpm: {
      aikCert: b64(tpm.AikCert, 'TpmInfo.AikCert', true),
      aikPub: b64(tpm.AikPub, 'TpmInfo.AikPub'),
      quote: b64(tpm.PcrQuote, 'TpmInfo.PcrQuote'),
      signature: b64(tpm.PcrSignature, 'TpmInfo.PcrSignature'),
      pcrs,
      ...(encryptionKey ? { encryptionKey } : {}),
    },
    isolation,
  };
}

/** Builds the AttestationInfo document (the SDK, agent and tests use it; the inverse of the parser). */
export function encodeGuestAttestationInfo(i: GuestAttestationInfo): string {
  const b = (x: Uint8Array | string) => Buffer.from(x).toString('base64');
  const iso = i.isolation;
  const doc = {
    AttestationProtocolVersion: i.protocolVersion,
    OSType: b(i.os.type),
    OSDistro: b(i.os.distro),
    OSVersionMajor: i.os.versionMajor,
    OSVersionMinor: i.os.versionMinor,
    OSBuild: b(i.os.build),
    TcgLogs: b(i.tcgLog),
    ClientPayload: Object.fromEntries(Object.entries(i.clientPayload).map(([k, v]) => [k, b(v)])),
    TpmInfo: {
      AikCert: b(i.tpm.aikCert),
      AikPub: b(i.tpm.aikPub),
      PcrQuote: b(i.tpm.quote),
      PcrSignature: b(i.tpm.signature),
      EncKeyPub: i.tpm.encryptionKey ? b(i.tpm.encryptionKey.publicArea) : '',
      EncKeyCertifyInfo: i.tpm.encryptionKey ? b(i.tpm.encryptionKey.certifyInfo) : '',
      EncKeyCertifyInfoSignature: i.tpm.encryptionKey ? b(i.tpm.encryptionKey.signature) : '',
      PcrSet: i.tpm.pcrs.map((p) => p.index),
      PCRs: i.tpm.pcrs.map((p) => ({ Index: p.index, Digest: b(p.value) })),
    },
    IsolationInfo:
      iso.type === 'TrustedLaunch'
        ? { Type: 'TrustedLaunch' }
        : iso.type === 'Tdx'
          ? { Type: 'Tdx', Evidence: { Proof: b(iso.tdQuote), RunTimeData: b(iso.runtimeData) } }
          : {
              Type: 'SevSnp',
              Evidence: {
                Proof: b(JSON.stringify({ SnpReport: b64url(iso.snpReport), VcekCertChain: iso.vcekCertChainPem ? b(iso.vcekCertChainPem) : '' })),
                RunTimeData: b(iso.runtimeData),
              },
            },
  };
  return b64url(JSON.stringify(doc));
}
