import type { Tee } from '../../core/tee.js';

/** The MAA attestation routes the SDK produces evidence for (skr-maa-protocol.md §4.1). */
export type MaaAttestPath = '/attest/SgxEnclave' | '/attest/SevSnpVm' | '/attest/TdxVm' | '/attest/AzureGuest';

/** A ready MAA request: the route and its JSON body (`{quote|report, runtimeData, …}`). */
export interface MaaEvidence {
  readonly path: MaaAttestPath;
  readonly body: Record<string, unknown>;
}

export type { Tee };

export interface EvidenceOptions {
  /** How MAA reads the runtime data: `JSON` → `x-ms-runtime`, `Binary` → `x-ms-sgx-ehd` (default JSON). */
  readonly runtimeDataType?: 'JSON' | 'Binary';
  /** For sources that can play several TEEs (the simulated one). */
  readonly tee?: Tee;
}

/** A raw SEV-SNP report with whatever certificates the platform handed out beside it. */
export interface SnpReportWithCerts {
  readonly report: Uint8Array;
  /** PEM VCEK (or VLEK) ‖ ASK ‖ ARK when the platform supplies them. */
  readonly vcekCertChainPem?: string;
}

/** Something that produces MAA evidence binding given runtime data. */
export interface EvidenceSource {
  readonly name: string;
  /** One line saying what this source is and where it reads evidence from. */
  describe(): string;
  getEvidence(runtimeData: Uint8Array, opts?: EvidenceOptions): Promise<MaaEvidence>;
  /**
   * A raw SNP report whose REPORT_DATA is exactly `reportData` (64 bytes), for sources that can produce
   * one (the agent's `/attest/raw` and the collateral wrapper).
   */
  getSnpReport?(reportData: Uint8Array): Promise<SnpReportWithCerts>;
  /**
   * Azure confidential VMs: the guest attestation document (`/attest/AzureGuest`) binding `runtimeData`,
   * and how to open the answer (sealed to the vTPM). `attest` prefers it where a source offers it.
   */
  getAzureGuestEvidence?(runtimeData: Uint8Array): Promise<{ evidence: MaaEvidence; open(answer: string): Promise<string> }>;
}
