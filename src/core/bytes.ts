import { createHash, timingSafeEqual } from 'node:crypto';
import { type ErrorCode, fail } from './errors.js';

/** Lowercase hex of bytes. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Bytes of a hex string; throws `request.invalid` on odd length or non-hex characters. */
export function fromHex(hex: string, what = 'hex'): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw fail('request.invalid', `${what} is not valid hex`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function b64url(b: Uint8Array | string): string {
  return (typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString('base64url');
}

/** Decodes base64 or base64url (with or without padding), as Azure clients send either. */
export function fromB64(s: string, what = 'base64'): Uint8Array {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw fail('request.invalid', `${what} is not valid base64/base64url`);
  // Node's base64 decoder reads both alphabets; decoded straight into a buffer of its own (no copy).
  let n = s.length;
  while (n > 0 && s.charCodeAt(n - 1) === 0x3d) n--;
  const out = new Uint8Array(Math.floor((n * 3) / 4));
  const written = Buffer.from(out.buffer, out.byteOffset, out.byteLength).write(s, 'base64');
  return written === out.byteLength ? out : out.slice(0, written);
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Constant-time comparison for secrets (client secrets, MACs). */
export function constantTimeEqual(a: Uint8Array | string, b: Uint8Array | string): boolean {
  const x = typeof a === 'string' ? Buffer.from(a) : Buffer.from(a);
  const y = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b);
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}

/** Whether `b[start, end)` is all zero (the whole array by default). */
export function isAllZero(b: Uint8Array, start = 0, end = b.byteLength): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * A bounds-checked cursor (little-endian unless a `*be` read is used) over a byte array. Each read names the field it reads, so a
 * truncated input fails with `{structure, field, offset, needBytes, gotBytes}` rather than an anonymous
 * "not enough data".
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  offset: number;
  private readonly structure: string;
  private readonly truncatedCode: ErrorCode;

  constructor(bytes: Uint8Array, structure: string, truncatedCode: ErrorCode = 'evidence.truncated', offset = 0) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
    this.structure = structure;
    this.truncatedCode = truncatedCode;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  need(field: string, n: number): void {
    if (n < 0 || this.offset + n > this.bytes.byteLength) {
      throw fail(this.truncatedCode, `${this.structure} is truncated: ${field} needs ${n} bytes at offset ${this.offset}, ${Math.max(0, this.remaining)} left`, {
        structure: this.structure,
        field,
        offset: this.offset,
        needBytes: n,
        gotBytes: Math.max(0, this.remaining),
      });
    }
  }

  u8(field: string): number {
    this.need(field, 1);
    return this.view.getUint8(this.offset++);
  }

  u16(field: string): number {
    this.need(field, 2);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u32(field: string): number {
    this.need(field, 4);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  u64(field: string): bigint {
    this.need(field, 8);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }

  /** Big-endian reads, for the formats that are (TPM 2.0 structures, Part 2 §1). */
  u16be(field: string): number {
    this.need(field, 2);
    const v = this.view.getUint16(this.offset, false);
    this.offset += 2;
    return v;
  }

  u32be(field: string): number {
    this.need(field, 4);
    const v = this.view.getUint32(this.offset, false);
    this.offset += 4;
    return v;
  }

  u64be(field: string): bigint {
    this.need(field, 8);
    const v = this.view.getBigUint64(this.offset, false);
    this.offset += 8;
    return v;
  }

  /** A view (no copy) of the next `n` bytes. */
  view_(field: string, n: number): Uint8Array {
    this.need(field, n);
    const v = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** A copy of the next `n` bytes, so parsed values never alias the input buffer. */
  bytesCopy(field: string, n: number): Uint8Array {
    // Not `.slice()`: on a Node Buffer input that returns a view, and callers mutate copies.
    return new Uint8Array(this.view_(field, n));
  }

  skip(field: string, n: number): void {
    this.need(field, n);
    this.offset += n;
  }
}
