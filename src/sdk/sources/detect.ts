import { stat } from 'node:fs/promises';
import { fail } from '../../core/errors.js';
import { type AzureVtpmSourceOptions, azureVtpmSource } from './azure-vtpm.js';
import { type CollateralSourceOptions, collateralSource } from './collateral.js';
import { findExecutable } from './exec.js';
import { type SimSourceOptions, simSource } from './sim.js';
import { TSM_REPORT_ROOT, type TsmSourceOptions, tsmSource } from './tsm.js';
import type { EvidenceSource } from './types.js';

export type SourcePreference = 'auto' | 'tsm' | 'azure-vtpm' | 'sim';

export interface DetectOptions {
  readonly preference?: SourcePreference;
  readonly tsm?: TsmSourceOptions;
  readonly azureVtpm?: AzureVtpmSourceOptions;
  /** Required for `sim`. */
  readonly sim?: SimSourceOptions;
  /** Attach certificates from a collateral URL to tsm SNP reports. */
  readonly collateral?: CollateralSourceOptions;
}

export interface DetectedSource {
  readonly source: EvidenceSource;
  /** What was looked at, one line each, for `conclave agent` to log. */
  readonly findings: readonly string[];
}

const TSM_HINT = 'needs Linux 6.7+ in an SEV-SNP/TDX guest with configfs mounted';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Picks the evidence source this machine has. `auto` tries configfs-tsm, then the Azure vTPM; the
 * simulated TEE is never picked automatically. A missing source fails with
 * `sdk.evidence_source_unavailable` naming what to install or enable.
 */
export async function detectEvidenceSource(opts: DetectOptions = {}): Promise<DetectedSource> {
  const pref = opts.preference ?? 'auto';
  const findings: string[] = [];
  const tsmRoot = opts.tsm?.root ?? TSM_REPORT_ROOT;
  const nvread = opts.azureVtpm?.tpm2Nvread ?? 'tpm2_nvread';
  const wrap = (s: EvidenceSource) => (opts.collateral ? collateralSource(s, opts.collateral) : s);

  if (pref === 'sim') {
    if (!opts.sim) throw fail('request.invalid', 'the sim source needs a data dir (--data-dir) holding the simulated vendor hierarchy');
    findings.push(`sim: simulated TEE with hierarchy in ${opts.sim.dataDir} (development only)`);
    return { source: simSource(opts.sim), findings };
  }
  if (pref === 'auto' || pref === 'tsm') {
    if (await exists(tsmRoot)) {
      findings.push(`tsm: configfs-tsm found at ${tsmRoot}`);
      // Azure confidential containers name their UVM security context (UVM endorsement, THIM certificates) so.
      const securityContextDir = opts.tsm?.securityContextDir ?? process.env.UVM_SECURITY_CONTEXT_DIR;
      if (securityContextDir) findings.push(`tsm: UVM security context at ${securityContextDir} (UVM endorsement and VCEK chain sent with SEV-SNP evidence)`);
      return { source: wrap(tsmSource({ ...opts.tsm, ...(securityContextDir ? { securityContextDir } : {}) })), findings };
    }
    findings.push(`tsm: configfs-tsm not found at ${tsmRoot}: ${TSM_HINT}`);
    if (pref === 'tsm') throw fail('sdk.evidence_source_unavailable', `configfs-tsm not found at ${tsmRoot}: ${TSM_HINT} (mount -t configfs none /sys/kernel/config)`, { source: 'tsm', findings });
  }
  if (pref === 'auto' || pref === 'azure-vtpm') {
    const found = await findExecutable(nvread);
    if (found) {
      findings.push(`azure-vtpm: ${found} found`);
      return { source: azureVtpmSource(opts.azureVtpm), findings };
    }
    findings.push(`azure-vtpm: ${nvread} not found: apt-get install tpm2-tools`);
    if (pref === 'azure-vtpm') throw fail('sdk.evidence_source_unavailable', `${nvread} not found: apt-get install tpm2-tools (on an Azure confidential VM)`, { source: 'azure-vtpm', findings });
  }
  throw fail('sdk.evidence_source_unavailable', `no TEE evidence source found (${findings.join('; ')}); for development use --source sim against a server started with --simulate`, { findings });
}
