import { toHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { NVDEC0_DISABLED, NVDEC0_ENABLED } from './opaque.js';
import type { GpuReport } from './report.js';
import type { Rim, RimMeasurement } from './rim.js';

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

/** One active golden entry of a RIM pair, its alternatives as bytes (`count` values of `size` bytes). */
interface ReferenceEntry {
  readonly golden: RimMeasurement;
  readonly source: RimSource;
  readonly golds: Uint8Array;
}

/**
 * The lookup the comparison runs on, built once per pair of verified (immutable, cached) RIMs: their active
 * entries in index order with the golden values decoded, or the index both RIMs claim.
 */
interface ReferenceTable {
  readonly entries: readonly ReferenceEntry[];
  readonly conflict: { readonly index: number; readonly first: RimSource; readonly second: RimSource } | undefined;
}

function buildReferenceTable(rims: Readonly<Partial<Record<RimSource, Rim>>>): ReferenceTable {
  const owner = new Map<number, RimSource>();
  const entries: ReferenceEntry[] = [];
  for (const source of ['driver', 'vbios'] as const) {
    const rim = rims[source];
    if (!rim) continue;
    for (const golden of rim.measurements) {
      if (!golden.active) continue;
      const other = owner.get(golden.index);
      if (other) return { entries: [], conflict: { index: golden.index, first: other, second: source } };
      owner.set(golden.index, source);
      const golds = new Uint8Array(golden.size * golden.alternatives.length);
      for (const [i, h] of golden.alternatives.entries()) golds.set(Buffer.from(h, 'hex'), i * golden.size);
      entries.push({ golden, source, golds });
    }
  }
  // Index order, so the mismatches come out sorted; indices are unique once there is no conflict.
  entries.sort((a, b) => a.golden.index - b.golden.index);
  return { entries, conflict: undefined };
}

/** Tables by driver RIM, then VBIOS RIM (a RIM object that is gone takes its tables with it). */
const tables = new WeakMap<object, WeakMap<object, ReferenceTable>>();
const NO_RIM = {};

function referenceTableOf(rims: Readonly<Partial<Record<RimSource, Rim>>>): ReferenceTable {
  const a = rims.driver ?? NO_RIM;
  const b = rims.vbios ?? NO_RIM;
  let inner = tables.get(a);
  if (!inner) {
    inner = new WeakMap();
    tables.set(a, inner);
  }
  let t = inner.get(b);
  if (!t) {
    t = buildReferenceTable(rims);
    inner.set(b, t);
  }
  return t;
}

/** Whether `bytes[at..at+size)` equals one of the `golds` (consecutive values of `size` bytes). */
function matchesOne(bytes: Uint8Array, at: number, size: number, golds: Uint8Array): boolean {
  for (let g = 0; g < golds.byteLength; g += size) {
    let i = 0;
    while (i < size && bytes[at + i] === golds[g + i]) i++;
    if (i === size) return true;
  }
  return false;
}

/**
 * Compares the report's measurement blocks with the active golden values of the driver and VBIOS RIMs,
 * index by index (RIM index i ↔ SPDM block i+1). A runtime value matches when it has the golden size and
 * equals one of the entry's alternatives. An index active in both RIMs is `rim.index_conflict`.
 * Every mismatch is reported, not only the first (policy checks report every failed clause).
 * The RIM side (active entries, decoded golden values, conflicts) is prepared once per pair of RIM
 * objects; the report side is read in place from its measurement table.
 */
export function compareMeasurements(report: GpuReport, rims: Readonly<Partial<Record<RimSource, Rim>>>): MeasurementComparison {
  const nvdec = report.opaque.nvdec0Status;
  if (nvdec !== undefined && nvdec !== NVDEC0_ENABLED && nvdec !== NVDEC0_DISABLED) {
    throw fail('gpu.malformed', `opaque NVDEC0_STATUS 0x${nvdec.toString(16)} is neither enabled (0xAA) nor disabled (0x55)`, { field: 'NVDEC0_STATUS' });
  }
  const table = referenceTableOf(rims);
  if (table.conflict) {
    const c = table.conflict;
    throw fail('rim.index_conflict', `measurement index ${c.index} is active in both the ${c.first} and the ${c.second} RIM`, { index: c.index });
  }
  const m = report.measurementTable;
  const bytes = m.bytes;
  let driver = 0;
  let vbios = 0;
  let mismatches: MeasurementMismatch[] | undefined;
  let skipped: number[] | undefined;
  for (const e of table.entries) {
    const index = e.golden.index;
    if (index === NVDEC0_RIM_INDEX && nvdec === NVDEC0_DISABLED) {
      (skipped ??= []).push(index);
      continue;
    }
    if (e.source === 'driver') driver++;
    else vbios++;
    const at = m.offsetOf(index + 1);
    const size = m.sizeOf(index + 1);
    if (at < 0 || size !== e.golden.size || !matchesOne(bytes, at, size, e.golds)) {
      (mismatches ??= []).push({
        index,
        measurementSource: e.source,
        goldenSize: e.golden.size,
        goldenValues: e.golden.alternatives,
        runtimeSize: size,
        runtimeValue: at < 0 ? '' : toHex(bytes.subarray(at, at + size)),
      });
    }
  }
  const compared: Partial<Record<RimSource, number>> = {};
  if (rims.driver) compared.driver = driver;
  if (rims.vbios) compared.vbios = vbios;
  return { result: mismatches ? 'fail' : 'success', compared, mismatches: mismatches ?? [], skipped: skipped ?? [] };
}
