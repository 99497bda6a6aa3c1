import { toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { NVDEC0_DISABLED, NVDEC0_ENABLED } from './opaque.js';
import type { GpuReport } from './report.js';
import type { Rim, RimMeasurement } from './rim.js';

/** Golden values as bytes, decoded once per verified (immutable, cached) RIM entry. */
const goldenBytes = new WeakMap<RimMeasurement, Buffer[]>();
function alternativesOf(m: RimMeasurement): Buffer[] {
  let b = goldenBytes.get(m);
  if (!b) {
    b = m.alternatives.map((h) => Buffer.from(h, 'hex'));
    goldenBytes.set(m, b);
  }
  return b;
}

/** RIM index of the NVDEC0 measurement, compared only when NVDEC0 is enabled (gpu-attestation §7 step 4). */
export const NVDEC0_RIM_INDEX = 35;

export type RimSource = 'driver' | 'vbios';

/** One index whose runtime value matches none of the golden values (NVIDIA's mismatch record, camelCase). */
export interface MeasurementMismatch {
  /** RIM index, 0-based. */
  readonly index: number;
  readonly measurementSource: RimSource;
  readonly goldenSize: number;
  readonly goldenValues: readonly string[];
  readonly runtimeSize: number;
  /** Lowercase hex; empty when the report has no block at this index. */
  readonly runtimeValue: string;
}

export interface MeasurementComparison {
  readonly result: 'success' | 'fail';
  /** Active golden entries compared, per RIM. */
  readonly compared: Readonly<Partial<Record<RimSource, number>>>;
  readonly mismatches: readonly MeasurementMismatch[];
  /** RIM indices skipped by rule (NVDEC0 disabled). */
  readonly skipped: readonly number[];
}

/**
 * Compares the report's measurement blocks with the active golden values of the driver and VBIOS RIMs,
 * index by index (RIM index i ↔ SPDM block i+1). A runtime value matches when it has the golden size and
 * equals one of the entry's alternatives. An index active in both RIMs is `rim.index_conflict`.
 * Every mismatch is reported, not only the first (policy checks report every failed clause).
 */
export function compareMeasurements(report: GpuReport, rims: Readonly<Partial<Record<RimSource, Rim>>>): MeasurementComparison {
  const nvdec = report.opaque.nvdec0Status;
  if (nvdec !== undefined && nvdec !== NVDEC0_ENABLED && nvdec !== NVDEC0_DISABLED) {
    throw fail('gpu.malformed', `opaque NVDEC0_STATUS 0x${nvdec.toString(16)} is neither enabled (0xAA) nor disabled (0x55)`, { field: 'NVDEC0_STATUS' });
  }
  const owner = new Map<number, RimSource>();
  const compared: Partial<Record<RimSource, number>> = {};
  const mismatches: MeasurementMismatch[] = [];
  const skipped: number[] = [];
  const runtime = new Map(report.measurements.map((m) => [m.index, m]));
  for (const source of ['driver', 'vbios'] as const) {
    const rim = rims[source];
    if (!rim) continue;
    let n = 0;
    for (const golden of rim.measurements) {
      if (!golden.active) continue;
      const other = owner.get(golden.index);
      if (other) {
        throw fail('rim.index_conflict', `measurement index ${golden.index} is active in both the ${other} and the ${source} RIM`, { index: golden.index });
      }
      owner.set(golden.index, source);
      if (golden.index === NVDEC0_RIM_INDEX && nvdec === NVDEC0_DISABLED) {
        skipped.push(golden.index);
        continue;
      }
      n++;
      const block = runtime.get(golden.index + 1);
      const actual = block ? Buffer.from(block.value.buffer, block.value.byteOffset, block.value.byteLength) : undefined;
      if (!actual || actual.byteLength !== golden.size || !alternativesOf(golden).some((g) => g.equals(actual))) {
        const value = block ? toHex(block.value) : '';
        mismatches.push({
          index: golden.index,
          measurementSource: source,
          goldenSize: golden.size,
          goldenValues: golden.alternatives,
          runtimeSize: block?.value.byteLength ?? 0,
          runtimeValue: value,
        });
      }
    }
    compared[source] = n;
  }
  return { result: mismatches.length === 0 ? 'success' : 'fail', compared, mismatches: mismatches.sort((a, b) => a.index - b.index), skipped };
}
