import { fail } from '../../core/errors.js';
import type { EvidenceOptions, EvidenceSource, MaaAttestPath, MaaEvidence, Tee } from './types.js';

/** The shape of `src/evidence/simulated` the sim source relies on (imported lazily, development only). */
interface SimulatedTee {
  evidence(opts: {
    tee: Tee;
    runtimeData: Uint8Array;
    runtimeDataType?: 'JSON' | 'Binary';
    mrenclave?: string;
    mrsigner?: string;
    measurement?: string;
    debug?: boolean;
  }): { path: string; body: Record<string, unknown> } | Promise<{ path: string; body: Record<string, unknown> }>;
}
interface SimulatedModule {
  loadOrCreateSimulatedTee(dataDir: string): SimulatedTee | Promise<SimulatedTee>;
}

// Not a literal, so neither tsc nor a bundler pulls the simulator into the SDK.
const SIMULATED_MODULE = '../../evidence/simulated/index.js';

export interface SimSourceOptions {
  /** The server's data dir, where the simulated vendor hierarchy is kept. */
  readonly dataDir: string;
  readonly tee?: Tee;
  readonly mrenclave?: string;
  readonly mrsigner?: string;
  readonly measurement?: string;
  readonly debug?: boolean;
}

/** Loads the simulator, or fails with `sdk.evidence_source_unavailable` when this build lacks it. */
export async function loadSimulator(dataDir: string): Promise<SimulatedTee> {
  let mod: SimulatedModule;
  try {
    mod = (await import(SIMULATED_MODULE)) as SimulatedModule;
  } catch (e) {
    throw fail('sdk.evidence_source_unavailable', 'the simulated TEE is not part of this build (src/evidence/simulated)', { source: 'sim' }, e);
  }
  return await mod.loadOrCreateSimulatedTee(dataDir);
}

/**
 * Development-only evidence signed by the simulated vendor hierarchy in `dataDir`. A Conclave accepts it
 * only with --simulate, and marks every token from it `x-conclave-simulated: true`.
 */
export function simSource(opts: SimSourceOptions): EvidenceSource {
  let tee: Promise<SimulatedTee> | undefined;
  return {
    name: 'sim',
    describe: () => `simulated TEE (${opts.tee ?? 'snp'}; hierarchy in ${opts.dataDir}) — development only`,
    async getEvidence(runtimeData: Uint8Array, eo: EvidenceOptions = {}): Promise<MaaEvidence> {
      tee ??= loadSimulator(opts.dataDir);
      const sim = await tee.catch((e: unknown) => {
        tee = undefined;
        throw e;
      });
      const ev = await sim.evidence({
        tee: eo.tee ?? opts.tee ?? 'snp',
        runtimeData,
        runtimeDataType: eo.runtimeDataType ?? 'JSON',
        ...(opts.mrenclave ? { mrenclave: opts.mrenclave } : {}),
        ...(opts.mrsigner ? { mrsigner: opts.mrsigner } : {}),
        ...(opts.measurement ? { measurement: opts.measurement } : {}),
        ...(opts.debug !== undefined ? { debug: opts.debug } : {}),
      });
      return { path: ev.path as MaaAttestPath, body: ev.body };
    },
  };
}
