/**
 * The vTPM operations Azure's guest attestation needs, behind one interface: the real one drives
 * tpm2-tools (the commands the guest attestation library issues through tss2, cvm-guest-attestation
 * `Tss2Wrapper.cpp`); tests and replays plug in a software TPM.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../../core/errors.js';
import { findExecutable, runProgram } from './exec.js';

/** vTPM handles and NV indices of an Azure confidential VM (evidence-and-collateral §4.3; cvm-guest-attestation `Tss2Wrapper.h`). */
export const AZURE_VTPM = {
  hclReportNv: '0x01400001',
  userDataNv: '0x01400002',
  akHandle: '0x81000003',
  akCertNv: '0x01C101D0',
  eventLog: '/sys/kernel/security/tpm0/binary_bios_measurements',
} as const;

export interface VtpmDevice {
  readonly name: string;
  /** Writes the 64 bytes of user data (NV 0x01400002), then reads the refreshed HCL report (NV 0x01400001). */
  readHclReport(userData: Uint8Array): Promise<Uint8Array>;
  /** The AK certificate (DER); empty when the VM has none. */
  readAkCert(): Promise<Uint8Array>;
  /** TPM2B_PUBLIC of the AK. */
  readAkPublic(): Promise<Uint8Array>;
  /** SHA-256 PCR values, in the order asked. */
  readPcrs(pcrs: readonly number[]): Promise<Uint8Array[]>;
  /** TPM2_Quote over SHA-256 PCRs with the AK: TPMS_ATTEST and the bare RSASSA signature. */
  quote(pcrs: readonly number[], nonce: Uint8Array): Promise<{ message: Uint8Array; signature: Uint8Array }>;
  /** The PolicyPCR-bound RSA decryption key in the null hierarchy, certified by the AK (TPM2_Certify); undefined where a (recorded) device has none. */
  createEphemeralKey(pcrs: readonly number[]): Promise<{ publicArea: Uint8Array; certifyInfo: Uint8Array; signature: Uint8Array } | undefined>;
  /** TPM2_RSA_Decrypt (RSAES) with that key, in a PolicyPCR session over the same PCRs. */
  decryptWithEphemeralKey(pcrs: readonly number[], ciphertext: Uint8Array): Promise<Uint8Array>;
  /** The firmware's TCG event log; empty when unreadable. */
  readEventLog(): Promise<Uint8Array>;
}

export interface Tpm2ToolsOptions {
  /** Directory holding the tpm2-tools programs (default: PATH). */
  readonly toolsDir?: string;
  readonly eventLogPath?: string;
}

const EPHEMERAL_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|decrypt|noda';

/** tpm2-tools (5.x) on /dev/tpmrm0. Not exercised against a real Azure CVM here (docs/sdk.md). */
export function tpm2ToolsDevice(opts: Tpm2ToolsOptions = {}): VtpmDevice {
  const tool = async (name: string): Promise<string> => {
    const found = await findExecutable(opts.toolsDir ? join(opts.toolsDir, name) : name);
    if (!found) throw fail('sdk.evidence_source_unavailable', `${name} not found: apt-get install tpm2-tools (Azure confidential VM with a vTPM)`, { source: 'azure-vtpm' });
    return found;
  };
  const run = async (name: string, args: readonly string[]) => {
    try {
      return await runProgram(await tool(name), args);
    } catch (e) {
      if (e instanceof Error && 'code' in e) throw e;
      throw fail('sdk.evidence_failed', `${name} failed: ${(e as Error).message}`, { source: 'azure-vtpm' }, e);
    }
  };
  const withDir = async <T>(f: (dir: string) => Promise<T>): Promise<T> => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-vtpm-'));
    try {
      return await f(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const sel = (pcrs: readonly number[]) => `sha256:${pcrs.join(',')}`;
  const createPrimary = async (dir: string, pcrs: readonly number[]) => {
    const policy = join(dir, 'policy.digest');
    const ctx = join(dir, 'key.ctx');
    await run('tpm2_createpolicy', ['--policy-pcr', '-l', sel(pcrs), '-L', policy]);
    await run('tpm2_createprimary', ['-C', 'n', '-g', 'sha256', '-G', 'rsa2048:null:null', '-a', EPHEMERAL_ATTRIBUTES, '-L', policy, '-c', ctx]);
    return ctx;
  };
  return {
    name: 'tpm2-tools',
    async readHclReport(userData) {
      await withDir(async (dir) => {
        const file = join(dir, 'user-data.bin');
        await writeFile(file, userData, { mode: 0o600 });
        try {
          await run('tpm2_nvwrite', ['-C', 'o', AZURE_VTPM.userDataNv, '-i', file]);
        } catch {
          // First use on this VM: the index does not exist yet.
          await run('tpm2_nvdefine', ['-C', 'o', '-s', '64', '-a', 'ownerread|ownerwrite', AZURE_VTPM.userDataNv]);
          await run('tpm2_nvwrite', ['-C', 'o', AZURE_VTPM.userDataNv, '-i', file]);
        }
      });
      return run('tpm2_nvread', ['-C', 'o', AZURE_VTPM.hclReportNv]);
    },
    async readAkCert() {
      try {
        return await run('tpm2_nvread', ['-C', 'o', AZURE_VTPM.akCertNv]);
      } catch {
        return new Uint8Array(0);
      }
    },
    async readAkPublic() {
      return withDir(async (dir) => {
        await run('tpm2_readpublic', ['-c', AZURE_VTPM.akHandle, '-f', 'tss', '-o', join(dir, 'ak.pub')]);
        return new Uint8Array(await readFile(join(dir, 'ak.pub')));
      });
    },
    async readPcrs(pcrs) {
      return withDir(async (dir) => {
        await run('tpm2_pcrread', [sel(pcrs), '-o', join(dir, 'pcrs.bin')]);
        const all = await readFile(join(dir, 'pcrs.bin'));
        if (all.length !== 32 * pcrs.length) throw fail('sdk.evidence_failed', `tpm2_pcrread returned ${all.length} bytes for ${pcrs.length} SHA-256 PCRs`, { source: 'azure-vtpm' });
        return pcrs.map((_, i) => new Uint8Array(all.subarray(32 * i, 32 * (i + 1))));
      });
    },
    async quote(pcrs, nonce) {
      return withDir(async (dir) => {
        const args = ['-c', AZURE_VTPM.akHandle, '-l', sel(pcrs), '-g', 'sha256', '-m', join(dir, 'msg'), '-s', join(dir, 'sig'), '-f', 'plain'];
        if (nonce.byteLength > 0) args.push('-q', Buffer.from(nonce).toString('hex'));
        await run('tpm2_quote', args);
        return { message: new Uint8Array(await readFile(join(dir, 'msg'))), signature: new Uint8Array(await readFile(join(dir, 'sig'))) };
      });
    },
    async createEphemeralKey(pcrs) {
      return withDir(async (dir) => {
        const ctx = await createPrimary(dir, pcrs);
        await run('tpm2_readpublic', ['-c', ctx, '-f', 'tss', '-o', join(dir, 'key.pub')]);
        await run('tpm2_certify', ['-c', ctx, '-C', AZURE_VTPM.akHandle, '-g', 'sha256', '-o', join(dir, 'attest'), '-s', join(dir, 'sig'), '-f', 'plain']);
        await run('tpm2_flushcontext', [ctx]).catch(() => undefined);
        return { publicArea: new Uint8Array(await readFile(join(dir, 'key.pub'))), certifyInfo: new Uint8Array(await readFile(join(dir, 'attest'))), signature: new Uint8Array(await readFile(join(dir, 'sig'))) };
      });
    },
    async decryptWithEphemeralKey(pcrs, ciphertext) {
      return withDir(async (dir) => {
        // The null-hierarchy primary is the same key while the TPM is not reset: recreate it, then decrypt in a PolicyPCR session.
        const ctx = await createPrimary(dir, pcrs);
        const session = join(dir, 'session.ctx');
        await writeFile(join(dir, 'in'), ciphertext);
        await run('tpm2_startauthsession', ['--policy-session', '-S', session]);
        try {
          await run('tpm2_policypcr', ['-S', session, '-l', sel(pcrs)]);
          await run('tpm2_rsadecrypt', ['-c', ctx, '-s', 'rsaes', '-p', `session:${session}`, '-o', join(dir, 'out'), join(dir, 'in')]);
        } finally {
          await run('tpm2_flushcontext', [session]).catch(() => undefined);
          await run('tpm2_flushcontext', [ctx]).catch(() => undefined);
        }
        return new Uint8Array(await readFile(join(dir, 'out')));
      });
    },
    async readEventLog() {
      try {
        return new Uint8Array(await readFile(opts.eventLogPath ?? AZURE_VTPM.eventLog));
      } catch {
        return new Uint8Array(0);
      }
    },
  };
}
