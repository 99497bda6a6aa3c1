/**
 * GPU evidence on a confidential-computing host: NVIDIA GPUs in CC mode hand out an SPDM attestation
 * report and the attestation certificate chain through NVML (`nvmlDeviceGetConfComputeGpuAttestationReport`,
 * `nvmlDeviceGetConfComputeGpuCertificate`). Node has no NVML binding, so the SDK asks NVIDIA's own
 * collector, `nvattest collect-evidence --device gpu --nonce HEX --format json` (NVIDIA Attestation CLI),
 * which calls NVML for every GPU and prints NVIDIA's serialised evidence. The SDK checks every report
 * answers the nonce it asked for before it sends anything.
 */
import { fail } from '../../core/errors.js';
import { parseGpuReport } from '../../evidence/nvidia/report.js';
import { type SerializedGpuEvidence, parseSerializedGpuEvidence } from '../../evidence/nvidia/serialized.js';
import { findExecutable, runProgram } from './exec.js';

/** Something that collects the evidence of the host's GPUs for a nonce. */
export interface GpuEvidenceCollector {
  readonly name: string;
  describe(): string;
  collect(nonce: Uint8Array): Promise<SerializedGpuEvidence[]>;
}

/** Checks a collector's answer: at least one GPU, and every report's request nonce is the one asked. */
export function checkCollected(list: readonly SerializedGpuEvidence[], nonce: Uint8Array, from: string): SerializedGpuEvidence[] {
  if (list.length === 0) throw fail('sdk.evidence_failed', `${from} returned no GPU evidence`, { source: from });
  return list.map((e, i) => {
    let asked: Uint8Array;
    try {
      asked = parseGpuReport(e.report).request.nonce;
    } catch (err) {
      throw fail('sdk.evidence_failed', `${from} returned a GPU report that does not parse (GPU ${i})`, { source: from, gpu: i }, err);
    }
    if (!Buffer.from(asked).equals(Buffer.from(nonce))) {
      throw fail('sdk.evidence_failed', `${from} returned a GPU report for another nonce (GPU ${i})`, { source: from, gpu: i });
    }
    return { ...e, nonce };
  });
}

export interface NvattestOptions {
  /** The collector program; `nvattest` in PATH by default. */
  readonly program?: string;
  readonly timeoutMs?: number;
}

/** Evidence of every CC-mode GPU of this host, through NVIDIA's `nvattest` (NVML). */
export function nvattestCollector(opts: NvattestOptions = {}): GpuEvidenceCollector {
  const program = opts.program ?? 'nvattest';
  return {
    name: 'nvattest',
    describe: () => `NVIDIA GPUs through ${program} collect-evidence (NVML)`,
    async collect(nonce) {
      const exe = await findExecutable(program);
      if (!exe) throw fail('sdk.evidence_source_unavailable', `${program} is not installed: it collects GPU evidence through NVML`, { source: 'nvattest' });
      let out: Uint8Array;
      try {
        out = await runProgram(exe, ['collect-evidence', '--device', 'gpu', '--nonce', Buffer.from(nonce).toString('hex'), '--format', 'json'], opts.timeoutMs ?? 60_000);
      } catch (e) {
        throw fail('sdk.evidence_failed', `${program} collect-evidence failed`, { source: 'nvattest', reason: (e as Error).message.slice(0, 300) }, e);
      }
      let doc: { evidences?: unknown; result_code?: unknown; result_message?: unknown };
      try {
        doc = JSON.parse(Buffer.from(out).toString('utf8'));
      } catch (e) {
        throw fail('sdk.evidence_failed', `${program} printed no JSON`, { source: 'nvattest' }, e);
      }
      if (doc.result_code !== undefined && doc.result_code !== 0) {
        throw fail('sdk.evidence_failed', `${program}: ${String(doc.result_message ?? doc.result_code)}`, { source: 'nvattest', resultCode: doc.result_code });
      }
      return checkCollected(parseSerializedGpuEvidence(doc.evidences), nonce, program);
    },
  };
}

/** The simulated GPUs of a Conclave data dir (development only; trusted only under --simulate). */
export function simulatedGpuCollector(dataDir: string, count: number, mismatch: readonly number[] = []): GpuEvidenceCollector {
  // Not a literal, so neither tsc nor a bundler pulls the simulator into the SDK.
  const module = '../../evidence/simulated/gpu.js';
  return {
    name: 'sim',
    describe: () => `${count} simulated GPU(s) (hierarchy in ${dataDir}) — development only`,
    async collect(nonce) {
      const mod = (await import(module)) as { loadOrCreateSimulatedGpus(d: string): { evidence(n: Uint8Array, c: number, m?: readonly number[]): SerializedGpuEvidence[] } };
      return checkCollected(mod.loadOrCreateSimulatedGpus(dataDir).evidence(nonce, count, mismatch), nonce, 'simulated GPUs');
    },
  };
}
