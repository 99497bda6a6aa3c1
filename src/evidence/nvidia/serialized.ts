import { fromB64, fromHex } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep } from '../../core/json.js';
import type { GpuArchitecture } from './chain.js';
import type { GpuEvidence } from './verify.js';

/** At most this many GPUs in one attestation (8 GPUs per HGX board; room for two boards). */
export const MAX_GPUS = 16;

/** One GPU's evidence with the nonce its collector says it answers. */
export interface SerializedGpuEvidence extends GpuEvidence {
  readonly nonce: Uint8Array;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 64 * 1024) throw fail('gpu.malformed', `${what} must be a non-empty string`, { field: what });
  return v;
}

/**
 * Reads NVIDIA's serialised GPU evidence, `[{"arch", "nonce": hex, "evidence": base64 report,
 * "certificate": base64 PEM chain}]` (as NVIDIA's attestation SDK writes it; gpu-attestation §1), also
 * accepting trustee's `{"device_evidence_list": [...]}` wrapper and `evidence` in hex.
 */
export function parseSerializedGpuEvidence(input: unknown): SerializedGpuEvidence[] {
  let value = input;
  if (typeof value === 'string') {
    // JSON from inside the request body (a string member): the edge's depth check never saw it.
    if (jsonTextTooDeep(value)) throw fail('gpu.malformed', `the GPU evidence nests deeper than ${MAX_JSON_DEPTH} levels`, { maxDepth: MAX_JSON_DEPTH });
    try {
      value = JSON.parse(value);
    } catch (e) {
      throw fail('gpu.malformed', 'the GPU evidence is not JSON', undefined, e);
    }
  }
  if (value && typeof value === 'object' && !Array.isArray(value) && 'device_evidence_list' in value) value = (value as { device_evidence_list: unknown }).device_evidence_list;
  if (!Array.isArray(value) || value.length === 0) throw fail('gpu.malformed', 'the GPU evidence must be a non-empty list');
  if (value.length > MAX_GPUS) throw fail('gpu.malformed', `at most ${MAX_GPUS} GPUs per attestation`, { count: value.length });
  return value.map((e: unknown, i) => {
    if (!e || typeof e !== 'object') throw fail('gpu.malformed', `GPU evidence ${i} is not an object`, { index: i });
    const o = e as Record<string, unknown>;
    const arch = o.arch === undefined ? undefined : str(o.arch, `[${i}].arch`);
    if (arch !== undefined && arch !== 'HOPPER' && arch !== 'BLACKWELL') throw fail('gpu.unsupported', `GPU architecture "${arch}" is not supported`, { index: i });
    const ev = str(o.evidence, `[${i}].evidence`);
    const report = /^[0-9a-fA-F]+$/.test(ev) && ev.length % 2 === 0 ? fromHex(ev) : fromB64(ev, `[${i}].evidence`);
    const cert = str(o.certificate, `[${i}].certificate`);
    const certificateChain = cert.includes('-----BEGIN') ? cert : Buffer.from(fromB64(cert, `[${i}].certificate`)).toString('utf8');
    const nonce = o.nonce === undefined ? new Uint8Array(0) : fromHex(str(o.nonce, `[${i}].nonce`), `[${i}].nonce`);
    return { report, certificateChain, nonce, ...(arch ? { arch: arch as GpuArchitecture } : {}) };
  });
}

/** Writes evidence in NVIDIA's serialised form. */
export function serializeGpuEvidence(list: readonly SerializedGpuEvidence[]): Array<{ arch: string; nonce: string; evidence: string; certificate: string }> {
  return list.map((e) => ({
    arch: e.arch ?? 'HOPPER',
    nonce: Buffer.from(e.nonce).toString('hex'),
    evidence: Buffer.from(e.report).toString('base64'),
    certificate: Buffer.from(e.certificateChain, 'utf8').toString('base64'),
  }));
}
