/**
 * Azure guest attestation from inside an Azure confidential VM, as Azure's guest attestation library
 * does it (`AttestationClientImpl`): the HCL report refreshed with the caller's user data, the AK and its
 * PCR quote, the boot event log, a PolicyPCR-bound ephemeral key certified by the AK, and the hardware
 * evidence, in the `AttestationInfo` document for `POST /attest/AzureGuest`. The answer is sealed to the
 * ephemeral key; `open` unseals it with the vTPM (only this VM, in this boot state, can).
 */
import { createDecipheriv } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { toHex } from '../../core/bytes.js';
import { fail, isConclaveError } from '../../core/errors.js';
import { encodeGuestAttestationInfo } from '../../evidence/azure-vtpm/guest.js';
import { parseHclReport, parseHclRuntimeClaims } from '../../evidence/azure-vtpm/hcl.js';
import { TPM_ALG } from '../../evidence/tpm/structures.js';
import { maaReportData } from './maa-body.js';
import type { MaaEvidence } from './types.js';
import type { VtpmDevice } from './vtpm-device.js';

/** The PCRs the guest attestation library quotes on Linux (`GetAttestationPcrList`). */
export const GUEST_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7];

export interface AzureGuestOptions {
  readonly device: VtpmDevice;
  /** PEM VCEK ‖ ASK ‖ ARK for an SNP report (Azure IMDS THIM); without it the service uses its collateral cache. */
  readonly certificates?: (snpReport: Uint8Array) => Promise<string | undefined>;
  /** The TD quote for a TDX VM's TD report (Azure IMDS `/acc/tdquote`). */
  readonly tdQuote?: (tdReport: Uint8Array) => Promise<Uint8Array>;
  /** Require the HCL `user-data` to be SHA-256(runtime data) ‖ zeros (the report was refreshed for this call). Default true. */
  readonly requireUserData?: boolean;
  /** OS facts the document reports (default: /etc/os-release). */
  readonly os?: { readonly type: string; readonly distro: string; readonly build: string; readonly versionMajor: number; readonly versionMinor: number };
  readonly clientPayload?: Readonly<Record<string, string>>;
  /** PCRs to quote (default the library's 0–7). */
  readonly pcrs?: readonly number[];
}

export interface AzureGuestEvidence {
  readonly evidence: MaaEvidence;
  /** The token from MAA's (or Conclave's) answer: unsealed with the vTPM, or returned as is when not sealed. */
  open(answer: string): Promise<string>;
}

async function osRelease(): Promise<NonNullable<AzureGuestOptions['os']>> {
  let text = '';
  try {
    text = await readFile('/etc/os-release', 'utf8');
  } catch {
    // not Linux, or no os-release
  }
  const field = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm').exec(text)?.[1];
  const [major, minor] = (field('VERSION_ID') ?? '1.0').split('.').map((n) => Number.parseInt(n, 10));
  return { type: 'Linux', distro: field('NAME') ?? 'Linux', build: 'NotApplication', versionMajor: major || 1, versionMinor: minor || 0 };
}

function failed(message: string, cause?: unknown): never {
  throw fail('sdk.evidence_failed', message, { source: 'azure-vtpm' }, cause);
}

export async function azureGuestEvidence(runtimeData: Uint8Array, opts: AzureGuestOptions): Promise<AzureGuestEvidence> {
  const device = opts.device;
  // The caller's runtime data is bound through the HCL user-data, which the hardware report signs.
  const userData = maaReportData(runtimeData);
  let hcl: ReturnType<typeof parseHclReport>;
  try {
    hcl = parseHclReport(await device.readHclReport(userData));
  } catch (e) {
    if (isConclaveError(e) && e.code.startsWith('evidence.')) failed(`the vTPM NV index does not hold an HCL report: ${e.message}`, e);
    throw e;
  }
  const claims = parseHclRuntimeClaims(hcl.runtimeData);
  if (opts.requireUserData !== false && claims.userData !== toHex(userData)) {
    throw fail('sdk.evidence_failed', "the HCL report was not refreshed with this request's user data (NV 0x01400002)", { source: 'azure-vtpm', expected: toHex(userData), got: claims.userData });
  }
  let isolation: Parameters<typeof encodeGuestAttestationInfo>[0]['isolation'];
  if (hcl.reportType === 'snp') {
    isolation = { type: 'SevSnp', snpReport: hcl.hwReport, vcekCertChainPem: opts.certificates ? await opts.certificates(hcl.hwReport) : undefined, runtimeData: hcl.runtimeData };
  } else {
    if (!opts.tdQuote) failed('this HCL report holds a TDX TD report: pass tdQuote (Azure IMDS /acc/tdquote) to turn it into a TD quote');
    isolation = { type: 'Tdx', tdQuote: await opts.tdQuote(hcl.hwReport), runtimeData: hcl.runtimeData };
  }
  const pcrs = opts.pcrs ?? GUEST_PCRS;
  // The library quotes with empty qualifying data; freshness comes from the user-data refresh and the sealed answer.
  const q = await device.quote(pcrs, new Uint8Array(0));
  const values = await device.readPcrs(pcrs);
  const key = await device.createEphemeralKey(pcrs);
  const attestationInfo = encodeGuestAttestationInfo({
    protocolVersion: '2.0',
    os: opts.os ?? (await osRelease()),
    tcgLog: await device.readEventLog(),
    clientPayload: opts.clientPayload ?? {},
    tpm: {
      aikCert: await device.readAkCert(),
      aikPub: await device.readAkPublic(),
      quote: q.message,
      signature: q.signature,
      pcrs: pcrs.map((index, i) => ({ hashAlg: TPM_ALG.SHA256, index, value: values[i]! })),
      ...(key ? { encryptionKey: key } : {}),
    },
    isolation,
  });
  return {
    evidence: { path: '/attest/AzureGuest', body: { AttestationInfo: attestationInfo } },
    async open(answer: string) {
      if (answer.split('.').length === 3) return answer;
      let sealed: { EncryptedInnerKey?: string; EncryptionParams?: { Iv?: string; KeySizeInBits?: number }; AuthenticationData?: string; Jwt?: string };
      try {
        sealed = JSON.parse(Buffer.from(answer, 'base64url').toString('utf8'));
      } catch (e) {
        throw fail('sdk.http_error', 'the AzureGuest answer is neither a token nor a sealed token', undefined, e);
      }
      if (!sealed.EncryptedInnerKey || !sealed.EncryptionParams?.Iv || !sealed.AuthenticationData || !sealed.Jwt) throw fail('sdk.http_error', 'the sealed AzureGuest answer lacks a field');
      const aesKey = await device.decryptWithEphemeralKey(pcrs, Buffer.from(sealed.EncryptedInnerKey, 'base64'));
      try {
        const d = createDecipheriv(aesKey.byteLength === 16 ? 'aes-128-gcm' : aesKey.byteLength === 24 ? 'aes-192-gcm' : 'aes-256-gcm', aesKey, Buffer.from(sealed.EncryptionParams.Iv, 'base64'));
        d.setAAD(Buffer.from('Transport Key'));
        d.setAuthTag(Buffer.from(sealed.AuthenticationData, 'base64'));
        return Buffer.concat([d.update(Buffer.from(sealed.Jwt, 'base64')), d.final()]).toString('utf8');
      } catch (e) {
        throw fail('sdk.unwrap_failed', 'the sealed AzureGuest token does not open with the vTPM key', undefined, e);
      }
    },
  };
}
