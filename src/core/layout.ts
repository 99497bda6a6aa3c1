import type { ByteReader } from './bytes.js';
import { fail } from './errors.js';

/**
 * Binary layouts as tables of named fields at the spec's offsets: the one mechanism of every binary
 * format here (DCAP quotes and report bodies, TDX TD reports, SEV-SNP reports, NVIDIA SPDM reports). One
 * table both decodes (through the bounds-checked ByteReader, so a truncated input names the field and
 * absolute offset) and encodes (for the simulated TEE and the round-trip tests). Integers are
 * little-endian; a numeric `type` is a byte string of that length. A table may mark the ranges the spec
 * reserves (must be zero) and the report version a field appeared in, whose bytes were reserved before.
 */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | number;

export interface Field {
  readonly name: string;
  /** Offset from the start of the structure, as the spec writes it. */
  readonly offset: number;
  readonly type: FieldType;
  /** First structure version that defines the field; before it, its bytes belong to the reserved range around them. */
  readonly since?: number;
  /** A range the spec reserves: must be zero, except where a field of the structure's version lies in it. */
  readonly reserved?: boolean;
}

export type Layout = readonly Field[];

type ValueOf<T extends FieldType> = T extends number ? Uint8Array : T extends 'u64' ? bigint : number;

/** The decoded record of a layout: one property per field. */
export type Decoded<L extends Layout> = { readonly [F in L[number] as F['name']]: ValueOf<F['type']> };

export function fieldSize(t: FieldType): number {
  return t === 'u8' ? 1 : t === 'u16' ? 2 : t === 'u32' ? 4 : t === 'u64' ? 8 : t;
}

/** Where each field of a table lies, by name, for structures read at fixed offsets. */
export type LayoutIndex<L extends Layout> = { readonly [F in L[number] as F['name']]: { readonly offset: number; readonly size: number; readonly since?: number } };

export function indexLayout<L extends Layout>(layout: L): LayoutIndex<L> {
  const out: Record<string, { offset: number; size: number; since?: number }> = {};
  for (const f of layout) out[f.name] = { offset: f.offset, size: fieldSize(f.type), ...(f.since !== undefined ? { since: f.since } : {}) };
  return out as LayoutIndex<L>;
}

/**
 * The must-be-zero ranges of a structure at `version`, as [start, end, name]: each reserved range of the
 * table less the fields that this version defines inside it (a later version's field is still reserved).
 */
export function reservedRanges(layout: Layout, version = Number.POSITIVE_INFINITY): Array<readonly [number, number, string]> {
  const fields = layout.filter((f) => !f.reserved && (f.since ?? 0) <= version).map((f) => [f.offset, f.offset + fieldSize(f.type)] as const);
  const out: Array<readonly [number, number, string]> = [];
  for (const r of layout.filter((f) => f.reserved)) {
    let pieces: Array<readonly [number, number]> = [[r.offset, r.offset + fieldSize(r.type)]];
    for (const [s, e] of fields) pieces = pieces.flatMap(([a, b]) => (e <= a || s >= b ? [[a, b] as const] : [...(s > a ? [[a, s] as const] : []), ...(e < b ? [[e, b] as const] : [])]));
    for (const [a, b] of pieces) out.push([a, b, r.name]);
  }
  return out;
}

/** Total size of a layout (offset of the last field plus its size). */
export function layoutSize(layout: Layout): number {
  const last = layout[layout.length - 1];
  return last ? last.offset + fieldSize(last.type) : 0;
}

/**
 * Decodes `layout` at the reader's position. Byte fields are copies, so a parsed quote never aliases the
 * caller's buffer, unless `copy` is false (a transient parse inside one synchronous verification).
 */
export function decodeLayout<L extends Layout>(r: ByteReader, layout: L, structure: string, copy = true): Decoded<L> {
  const base = r.offset;
  const out: Record<string, number | bigint | Uint8Array> = {};
  for (const f of layout) {
    if (r.offset - base !== f.offset) throw new Error(`layout ${structure}: field ${f.name} is not at offset ${f.offset}`);
    const name = `${structure}.${f.name}`;
    out[f.name] = f.type === 'u8' ? r.u8(name) : f.type === 'u16' ? r.u16(name) : f.type === 'u32' ? r.u32(name) : f.type === 'u64' ? r.u64(name) : copy ? r.bytesCopy(name, f.type) : r.view_(name, f.type);
  }
  return out as Decoded<L>;
}

/** Encodes a record into `layout`; byte fields must have exactly their declared size. */
export function encodeLayout<L extends Layout>(layout: L, values: Decoded<L>, structure: string): Uint8Array {
  const out = new Uint8Array(layoutSize(layout));
  const view = new DataView(out.buffer);
  const record = values as Readonly<Record<string, number | bigint | Uint8Array>>;
  for (const f of layout) {
    const v = record[f.name];
    if (f.type === 'u64') {
      if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw fail('quote.malformed', `${structure}.${f.name} must be a u64`, { structure, field: f.name, offset: f.offset });
      view.setBigUint64(f.offset, v, true);
    } else if (f.type === 'u8' || f.type === 'u16' || f.type === 'u32') {
      const max = f.type === 'u8' ? 0xff : f.type === 'u16' ? 0xffff : 0xffffffff;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
        throw fail('quote.malformed', `${structure}.${f.name} must be a ${f.type}`, { structure, field: f.name, offset: f.offset });
      }
      if (f.type === 'u8') view.setUint8(f.offset, v);
      else if (f.type === 'u16') view.setUint16(f.offset, v, true);
      else view.setUint32(f.offset, v, true);
    } else {
      if (!(v instanceof Uint8Array) || v.byteLength !== f.type) {
        throw fail('quote.malformed', `${structure}.${f.name} must be ${f.type} bytes`, { structure, field: f.name, offset: f.offset, size: f.type });
      }
      out.set(v, f.offset);
    }
  }
  return out;
}

/** A record of zeroed fields, the starting point for building a structure by hand. */
export function zeroLayout<L extends Layout>(layout: L): Decoded<L> {
  const out: Record<string, number | bigint | Uint8Array> = {};
  for (const f of layout) out[f.name] = typeof f.type === 'number' ? new Uint8Array(f.type) : f.type === 'u64' ? 0n : 0;
  return out as Decoded<L>;
}
