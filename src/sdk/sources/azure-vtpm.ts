import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../../core/bytes.js';
import { fail, isConclaveError } from '../../core/errors.js';
// A pure parser over src/core only (no server dependencies), shared with the verifier side.
import { parseHclReport, parseHclRuntimeClaims } from '../../evidence/azure-vtpm/hcl.js';
import { findExecutable, runProgram } from './exec.js';
import { maaReportData, sevSnpVmBody } from './maa-body.js';
import type { EvidenceOptions, EvidenceSource, MaaEvidence } from './types.js';
import { azureGuestEvidence } from './azure-guest.js';
import { type VtpmDevice, tpm2ToolsDevice } from './vtpm-device.js';

/** vTPM NV index holding the HCL report; writing the user-data index first refreshes it (evidence-and-collateral §4.3). */
export const HCL_REPORT_NV_INDEX = '0x01400001';
export const HCL_USER_DATA_NV_INDEX = '0x01400002';

export interface AzureVtpmSourceOptions {
  /** tpm2-tools programs (names searched in PATH, or paths). */
  readonly tpm2Nvread?: string;
  readonly tpm2Nvwrite?: string;
  readonly tpm2Nvdefine?: string;
  /**
   * PEM VCEK ‖ ASK ‖ ARK for a report, e.g. from the Azure THIM endpoint. Without it the body carries
   * no VcekCertChain and the attestation service uses its own collateral cache.
   */
  readonly certificates?: (snpReport: Uint8Array) => Promise<string | undefined>;
  /**
   * Require the HCL runtime claims' `user-data` to equal the 64 bytes written (SHA-256(runtime data) ‖
   * zeros), proving the report was refreshed for this request. Default true.
   */
  readonly requireUserData?: boolean;
  /** The vTPM for guest attestation (`/attest/AzureGuest`); default tpm2-tools. */
  readonly device?: VtpmDevice;
  /** The TD quote of a TDX VM's TD report (Azure IMDS `/acc/tdquote`), for guest attestation of TDX CVMs. */
  readonly tdQuote?: (tdReport: Uint8Array) => Promise<Uint8Array>;
}

/**
 * Evidence of an Azure confidential VM (SEV-SNP under the Hyper-V paravisor): the HCL report from the
 * vTPM. The SNP REPORT_DATA binds the HCL runtime claims JSON (keys, vm-configuration, user-data); the
 * caller's runtime data is bound through `user-data`. The MAA body is the SevSnpVm form with the HCL
 * runtime claims as runtimeData.
 */
export function azureVtpmSource(opts: AzureVtpmSourceOptions = {}): EvidenceSource {
  const nvreadName = opts.tpm2Nvread ?? 'tpm2_nvread';
  return {
    name: 'azure-vtpm',
    // Azure's own flow: the guest attestation document, answered with a token sealed to the vTPM.
    getAzureGuestEvidence(runtimeData: Uint8Array) {
      return azureGuestEvidence(runtimeData, {
        device: opts.device ?? tpm2ToolsDevice(),
        ...(opts.certificates ? { certificates: opts.certificates } : {}),
        ...(opts.tdQuote ? { tdQuote: opts.tdQuote } : {}),
        ...(opts.requireUserData !== undefined ? { requireUserData: opts.requireUserData } : {}),
      });
    },
    describe: () => `Azure CVM vTPM HCL report (NV ${HCL_REPORT_NV_INDEX}) via ${nvreadName}`,
    async getEvidence(runtimeData: Uint8Array, _eo: EvidenceOptions = {}): Promise<MaaEvidence> {
      const userData = maaReportData(runtimeData);
      let raw: Uint8Array;
      if (opts.device) raw = await opts.device.readHclReport(userData);
      else {
        const nvread = await findExecutable(nvreadName);
        if (!nvread) throw fail('sdk.evidence_source_unavailable', `${nvreadName} not found: apt-get install tpm2-tools (Azure confidential VM with a vTPM)`, { source: 'azure-vtpm' });
        await writeUserData(userData, opts);
        try {
          raw = await runProgram(nvread, ['-C', 'o', HCL_REPORT_NV_INDEX]);
        } catch (e) {
          throw fail('sdk.evidence_failed', `reading the HCL report failed: ${(e as Error).message}`, { source: 'azure-vtpm' }, e);
        }
      }
      let hcl: ReturnType<typeof parseHclReport>;
      try {
        hcl = parseHclReport(raw);
      } catch (e) {
        if (isConclaveError(e)) throw fail('sdk.evidence_failed', `the vTPM NV index does not hold an HCL report: ${e.message}`, { source: 'azure-vtpm', cause: e.code }, e);
        throw e;
      }
      if (hcl.reportType !== 'snp') {
        throw fail('sdk.evidence_failed', 'this HCL report holds a TDX TD report; Azure TDX CVMs need a quote from IMDS, which this source does not fetch', { source: 'azure-vtpm' });
      }
      const claims = parseHclRuntimeClaims(hcl.runtimeData);
      if (opts.requireUserData !== false && claims.userData !== toHex(userData)) {
        throw fail('sdk.evidence_failed', 'the HCL report was not refreshed with this request\'s user data (NV 0x01400002)', {
          source: 'azure-vtpm',
          expected: toHex(userData),
          got: claims.userData,
        });
      }
      const chain = opts.certificates ? await opts.certificates(hcl.hwReport) : undefined;
      return sevSnpVmBody({ report: hcl.hwReport, vcekCertChainPem: chain, runtimeData: hcl.runtimeData, runtimeDataType: 'JSON' });
    },
  };
}

async function writeUserData(userData: Uint8Array, opts: AzureVtpmSourceOptions): Promise<void> {
  const nvwrite = await findExecutable(opts.tpm2Nvwrite ?? 'tpm2_nvwrite');
  if (!nvwrite) {
    if (opts.requireUserData === false) return;
    throw fail('sdk.evidence_source_unavailable', 'tpm2_nvwrite not found: apt-get install tpm2-tools', { source: 'azure-vtpm' });
  }
  const dir = await mkdtemp(join(tmpdir(), 'conclave-vtpm-'));
  const file = join(dir, 'user-data.bin');
  try {
    await writeFile(file, userData, { mode: 0o600 });
    try {
      await runProgram(nvwrite, ['-C', 'o', HCL_USER_DATA_NV_INDEX, '-i', file]);
    } catch {
      // First use on this VM: the user-data index does not exist yet (az-cvm-vtpm defines it on demand).
      const nvdefine = await findExecutable(opts.tpm2Nvdefine ?? 'tpm2_nvdefine');
      if (!nvdefine) throw fail('sdk.evidence_failed', `writing NV ${HCL_USER_DATA_NV_INDEX} failed and tpm2_nvdefine is not available`, { source: 'azure-vtpm' });
      try {
        await runProgram(nvdefine, ['-C', 'o', '-s', '64', '-a', 'ownerread|ownerwrite', HCL_USER_DATA_NV_INDEX]);
        await runProgram(nvwrite, ['-C', 'o', HCL_USER_DATA_NV_INDEX, '-i', file]);
      } catch (e) {
        throw fail('sdk.evidence_failed', `writing the HCL user data failed: ${(e as Error).message}`, { source: 'azure-vtpm' }, e);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
