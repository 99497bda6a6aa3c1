import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { fail, isConclaveError } from '../../core/errors.js';
import { b64urlPadded, maaReportData, sevSnpVmBody, tdxVmBody } from './maa-body.js';
import { certChainPemOf, parseSnpCertTable } from './snp-certs.js';
import type { EvidenceOptions, EvidenceSource, MaaEvidence, SnpReportWithCerts } from './types.js';

export const TSM_REPORT_ROOT = '/sys/kernel/config/tsm/report';

/**
 * The file operations the configfs-tsm protocol needs; node:fs/promises by default, a fake kernel in
 * tests. configfs entries are directories made with mkdir and removed with rmdir.
 */
export interface TsmFs {
  stat(path: string): Promise<unknown>;
  mkdir(path: string): Promise<unknown>;
  rmdir(path: string): Promise<unknown>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<unknown>;
}

export interface TsmSourceOptions {
  /** Defaults to /sys/kernel/config/tsm/report. */
  readonly root?: string;
  /** SNP VMPL / privilege level to request (written to `privlevel`); the kernel default when absent. */
  readonly privlevel?: number;
  readonly fs?: TsmFs;
  /**
   * Azure confidential containers (ACI, AKS confidential pods): the UVM security context directory
   * (`$UVM_SECURITY_CONTEXT_DIR`). Its `reference-info-base64` (the UVM endorsement, COSE_Sign1) goes into
   * the SevSnpVm evidence as `Endorsements.Uvm`, as Microsoft's SKR sidecar sends it, and its
   * `host-amd-cert-base64` (the THIM certification JSON) gives the VCEK chain when the kernel hands out none.
   */
  readonly securityContextDir?: string;
}

/** What an ACI UVM security context directory holds for attestation (files absent: fields absent). */
export async function readSecurityContext(dir: string, fs: Pick<TsmFs, 'readFile'> = nodeFs as unknown as TsmFs): Promise<{ uvmReferenceInfo?: Uint8Array; vcekCertChainPem?: string }> {
  const read = async (name: string): Promise<Uint8Array | undefined> => {
    let text: string;
    try {
      text = Buffer.from(await fs.readFile(join(dir, name))).toString('utf8').trim();
    } catch {
      return undefined;
    }
    if (text === '') return undefined;
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw fail('sdk.evidence_failed', `${join(dir, name)} is not base64`, { source: 'tsm', file: name });
    return new Uint8Array(Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
  };
  const uvmReferenceInfo = await read('reference-info-base64');
  const thim = await read('host-amd-cert-base64');
  let vcekCertChainPem: string | undefined;
  if (thim) {
    let doc: { vcekCert?: unknown; certificateChain?: unknown };
    try {
      doc = JSON.parse(Buffer.from(thim).toString('utf8'));
    } catch {
      throw fail('sdk.evidence_failed', `${join(dir, 'host-amd-cert-base64')} is not the THIM certification JSON`, { source: 'tsm' });
    }
    if (typeof doc.vcekCert === 'string' && typeof doc.certificateChain === 'string') vcekCertChainPem = `${doc.vcekCert.trim()}\n${doc.certificateChain.trim()}\n`;
  }
  return { ...(uvmReferenceInfo ? { uvmReferenceInfo } : {}), ...(vcekCertChainPem ? { vcekCertChainPem } : {}) };
}

export type TsmProvider = 'sev_guest' | 'tdx_guest';

export interface TsmReport {
  readonly provider: TsmProvider;
  readonly outblob: Uint8Array;
  readonly auxblob: Uint8Array | undefined;
  readonly generation: number;
}

function text(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8').trim();
}

const UNAVAILABLE_HINT = 'needs Linux 6.7+ in an SEV-SNP/TDX guest with configfs mounted (mount -t configfs none /sys/kernel/config)';

/**
 * Requests one report through configfs-tsm (Documentation/ABI/testing/configfs-tsm): mkdir an entry,
 * read `generation`, write `privlevel`/`inblob`, read `outblob` and `auxblob`, read `generation` again.
 * Every write bumps `generation`; if it moved by more than our own writes, another process wrote to the
 * entry between our inblob and outblob and the report may bind its data, not ours: fail.
 */
export async function requestTsmReport(inblob: Uint8Array, opts: TsmSourceOptions = {}): Promise<TsmReport> {
  const fs = opts.fs ?? (nodeFs as unknown as TsmFs);
  const root = opts.root ?? TSM_REPORT_ROOT;
  if (inblob.byteLength > 64) throw fail('request.invalid', 'configfs-tsm inblob is at most 64 bytes', { length: inblob.byteLength });
  try {
    await fs.stat(root);
  } catch {
    throw fail('sdk.evidence_source_unavailable', `configfs-tsm not found at ${root}: ${UNAVAILABLE_HINT}`, { source: 'tsm', root });
  }
  const entry = join(root, `conclave-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await fs.mkdir(entry);
  } catch (e) {
    throw fail('sdk.evidence_source_unavailable', `cannot create a configfs-tsm report entry under ${root} (run as root?): ${(e as Error).message}`, { source: 'tsm', root }, e);
  }
  try {
    const provider = text(await fs.readFile(join(entry, 'provider')));
    if (provider !== 'sev_guest' && provider !== 'tdx_guest') {
      throw fail('sdk.evidence_source_unavailable', `configfs-tsm provider "${provider}" is not sev_guest or tdx_guest`, { source: 'tsm', provider });
    }
    const before = Number(text(await fs.readFile(join(entry, 'generation'))));
    let writes = 0;
    if (opts.privlevel !== undefined) {
      await fs.writeFile(join(entry, 'privlevel'), Buffer.from(String(opts.privlevel)));
      writes++;
    }
    await fs.writeFile(join(entry, 'inblob'), inblob);
    writes++;
    const outblob = await fs.readFile(join(entry, 'outblob'));
    let auxblob: Uint8Array | undefined;
    if (provider === 'sev_guest') {
      try {
        auxblob = await fs.readFile(join(entry, 'auxblob'));
      } catch {
        auxblob = undefined; // older kernels or hosts that hand out no certificates
      }
    }
    const after = Number(text(await fs.readFile(join(entry, 'generation'))));
    if (!Number.isFinite(before) || after !== before + writes) {
      throw fail('sdk.evidence_failed', 'configfs-tsm generation changed under us: another writer used the report entry; retry', {
        source: 'tsm',
        before,
        after,
        ownWrites: writes,
      });
    }
    if (outblob.byteLength === 0) throw fail('sdk.evidence_failed', 'configfs-tsm returned an empty outblob', { source: 'tsm', provider });
    return { provider, outblob, auxblob: auxblob && auxblob.byteLength > 0 ? auxblob : undefined, generation: after };
  } catch (e) {
    if (isConclaveError(e)) throw e;
    throw fail('sdk.evidence_failed', `configfs-tsm report failed: ${(e as Error).message}`, { source: 'tsm' }, e);
  } finally {
    await fs.rmdir(entry).catch(() => undefined);
  }
}

/** Evidence from the guest kernel's configfs-tsm interface (SEV-SNP or TDX). */
export function tsmSource(opts: TsmSourceOptions = {}): EvidenceSource {
  const root = opts.root ?? TSM_REPORT_ROOT;
  async function snp(reportData: Uint8Array): Promise<SnpReportWithCerts & { provider: TsmProvider }> {
    const r = await requestTsmReport(reportData, opts);
    if (r.provider !== 'sev_guest') return { provider: r.provider, report: r.outblob };
    const chain = r.auxblob ? certChainPemOf(parseSnpCertTable(r.auxblob), r.outblob) : undefined;
    return chain ? { provider: r.provider, report: r.outblob, vcekCertChainPem: chain } : { provider: r.provider, report: r.outblob };
  }
  return {
    name: 'tsm',
    describe: () => `configfs-tsm at ${root}`,
    async getEvidence(runtimeData: Uint8Array, eo: EvidenceOptions = {}): Promise<MaaEvidence> {
      const r = await requestTsmReport(maaReportData(runtimeData), opts);
      if (r.provider === 'tdx_guest') return tdxVmBody(r.outblob, runtimeData, eo.runtimeDataType);
      let chain = r.auxblob ? certChainPemOf(parseSnpCertTable(r.auxblob), r.outblob) : undefined;
      let endorsements: { Uvm: string[] } | undefined;
      if (opts.securityContextDir) {
        const ctx = await readSecurityContext(opts.securityContextDir, opts.fs);
        chain ??= ctx.vcekCertChainPem;
        if (ctx.uvmReferenceInfo) endorsements = { Uvm: [b64urlPadded(ctx.uvmReferenceInfo)] };
      }
      return sevSnpVmBody({ report: r.outblob, vcekCertChainPem: chain, runtimeData, ...(endorsements ? { endorsements } : {}), ...(eo.runtimeDataType ? { runtimeDataType: eo.runtimeDataType } : {}) });
    },
    async getSnpReport(reportData: Uint8Array): Promise<SnpReportWithCerts> {
      const r = await snp(reportData);
      if (r.provider !== 'sev_guest') throw fail('sdk.evidence_source_unavailable', 'configfs-tsm provider is tdx_guest: no SEV-SNP report', { source: 'tsm' });
      return r.vcekCertChainPem ? { report: r.report, vcekCertChainPem: r.vcekCertChainPem } : { report: r.report };
    },
  };
}
