import { fail } from './errors.js';

/**
 * A narrow DER (ITU-T X.690) reader: enough for X.509 certificates, CRLs and the vendor extensions
 * (Intel SGX PCK, AMD VCEK). Values are views into the input; nothing is re-encoded, so signatures are
 * always checked over the received bytes.
 */
export interface Tlv {
  /** The full identifier octet (class, constructed bit, tag number < 31). */
  readonly tag: number;
  /** Offset of the identifier octet within `input`. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the last content octet. */
  readonly end: number;
  readonly input: Uint8Array;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/**
 * Reads one TLV at `offset`, bounded by `limit`. DER only (X.690 §10.1): the definite length form, in the
 * fewest octets; indefinite lengths, long forms of short lengths and leading zero length octets are
 * refused, so one value has one encoding and a content hash names one meaning.
 */
export function readTlv(input: Uint8Array, offset = 0, limit = input.byteLength): Tlv {
  if (offset + 2 > limit) throw fail('der.malformed', 'DER value truncated (no tag/length)', { offset });
  const tag = input[offset]!;
  if ((tag & 0x1f) === 0x1f) throw fail('der.malformed', 'DER high tag numbers are not supported', { offset });
  let p = offset + 1;
  let len = input[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw fail('der.malformed', 'DER forbids the indefinite length form', { offset });
    if (n > 4) throw fail('der.malformed', 'DER length form not allowed', { offset });
    if (p + n > limit) throw fail('der.malformed', 'DER length truncated', { offset });
    if (input[p] === 0) throw fail('der.malformed', 'DER length is not minimal (leading zero octet)', { offset });
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + input[p++]!;
    if (len < 0x80) throw fail('der.malformed', 'DER length is not minimal (long form for a short length)', { offset });
  }
  if (p + len > limit) throw fail('der.malformed', 'DER value runs past its container', { offset, length: len });
  return { tag, start: offset, contentStart: p, end: p + len, input };
}

/** The content octets of a TLV (a view). */
export function content(t: Tlv): Uint8Array {
  return t.input.subarray(t.contentStart, t.end);
}

/** The whole encoding of a TLV, identifier to end (a view). */
export function encoding(t: Tlv): Uint8Array {
  return t.input.subarray(t.start, t.end);
}

/** The children of a constructed TLV. */
export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = t.contentStart;
  while (p < t.end) {
    const c = readTlv(t.input, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function expectTag(t: Tlv, tag: number, what: string): Tlv {
  if (t.tag !== tag) throw fail('der.malformed', `${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`, { offset: t.start });
  return t;
}

/** Parses a whole DER value, requiring that nothing trails it. */
export function parseDer(input: Uint8Array, what = 'DER value'): Tlv {
  const t = readTlv(input, 0);
  if (t.end !== input.byteLength) throw fail('der.malformed', `${what} has ${input.byteLength - t.end} trailing bytes`);
  return t;
}

/**
 * Dotted-decimal OID string (X.690 §8.19): every subidentifier in the fewest octets (no leading 0x80),
 * the last octet without the continuation bit. Arcs are exact at any size (bigint past 2^53).
 */
export function oid(t: Tlv): string {
  expectTag(t, TAG.OID, 'OID');
  const c = content(t);
  if (c.length === 0) throw fail('der.malformed', 'empty OID', { offset: t.start });
  if (c[c.length - 1]! & 0x80) throw fail('der.malformed', 'OID truncated inside a subidentifier', { offset: t.start });
  const parts: string[] = [];
  let v = 0;
  let big: bigint | undefined;
  let first = true;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (b === 0x80 && (i === 0 || !(c[i - 1]! & 0x80))) throw fail('der.malformed', 'OID subidentifier is not minimal (leading 0x80)', { offset: t.start });
    if (big !== undefined) big = big * 128n + BigInt(b & 0x7f);
    else if (v >= 2 ** 45) big = BigInt(v) * 128n + BigInt(b & 0x7f);
    else v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (first) {
        // X.690 §8.19.4: the first subidentifier is 40·arc1 + arc2, arc1 ∈ {0, 1, 2}; only arc1 = 2 has arc2 ≥ 40.
        if (big !== undefined) parts.push('2', (big - 80n).toString());
        else {
          const a = v < 80 ? Math.floor(v / 40) : 2;
          parts.push(String(a), String(v - a * 40));
        }
        first = false;
      } else parts.push(big !== undefined ? big.toString() : String(v));
      v = 0;
      big = undefined;
    }
  }
  return parts.join('.');
}

function minimalInteger(t: Tlv, c: Uint8Array): void {
  // X.690 §8.3.2: the first nine bits of a multi-octet INTEGER are not all equal.
  if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) {
    throw fail('der.malformed', 'INTEGER is not minimally encoded', { offset: t.start });
  }
}

/** An INTEGER as a bigint (two's complement, minimal encoding required). */
export function integer(t: Tlv): bigint {
  expectTag(t, TAG.INTEGER, 'INTEGER');
  const c = content(t);
  if (c.length === 0) throw fail('der.malformed', 'empty INTEGER', { offset: t.start });
  minimalInteger(t, c);
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0]! & 0x80) v -= 1n << BigInt(c.length * 8);
  return v;
}

/** A small INTEGER or ENUMERATED as a number. */
export function smallInt(t: Tlv): number {
  if (t.tag !== TAG.INTEGER && t.tag !== TAG.ENUMERATED) throw fail('der.malformed', 'expected INTEGER', { offset: t.start });
  const c = content(t);
  if (c.length === 0 || c.length > 6 || c[0]! & 0x80) throw fail('der.malformed', 'INTEGER out of range', { offset: t.start });
  minimalInteger(t, c);
  let v = 0;
  for (const b of c) v = v * 256 + b;
  return v;
}

/** The magnitude bytes of an INTEGER (leading sign zero removed), e.g. a serial number. */
export function integerBytes(t: Tlv): Uint8Array {
  expectTag(t, TAG.INTEGER, 'INTEGER');
  const c = content(t);
  if (c.length === 0) throw fail('der.malformed', 'empty INTEGER', { offset: t.start });
  minimalInteger(t, c);
  return c.length > 1 && c[0] === 0 ? c.subarray(1) : c;
}

/** A BIT STRING's bytes (requires zero unused bits). */
export function bitString(t: Tlv): Uint8Array {
  expectTag(t, TAG.BIT_STRING, 'BIT STRING');
  const c = content(t);
  if (c.length === 0 || c[0] !== 0) throw fail('der.malformed', 'BIT STRING with unused bits', { offset: t.start });
  return c.subarray(1);
}

/** A DER BOOLEAN (X.690 §11.1: FALSE is 0x00, TRUE is 0xFF, nothing else). */
export function boolean(t: Tlv): boolean {
  expectTag(t, TAG.BOOLEAN, 'BOOLEAN');
  const c = content(t);
  if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) throw fail('der.malformed', 'BOOLEAN is not 0x00 or 0xFF', { offset: t.start });
  return c[0] === 0xff;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function calendarDate(t: Tlv, s: string, year: number, mo: number, d: number, h: number, mi: number, sec: number): Date {
  const leapYear = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = mo === 2 && leapYear ? 29 : (DAYS_IN_MONTH[mo - 1] ?? 0);
  // A leap second exists only as 23:59:60 at the end of June or December (ITU-R TF.460).
  const leapSecond = sec === 60 && h === 23 && mi === 59 && ((mo === 6 && d === 30) || (mo === 12 && d === 31));
  if (mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || (sec > 59 && !leapSecond)) {
    throw fail('der.malformed', `time value "${s}" is not a calendar date and time`, { offset: t.start });
  }
  return new Date(Date.UTC(year, mo - 1, d, h, mi, sec));
}

/**
 * UTCTime or GeneralizedTime as DER and RFC 5280 §4.1.2.5 write them: seconds present, `Z` (UTC), a
 * real calendar date and time; GeneralizedTime fractions without trailing zeros (X.690 §11.7.3).
 */
export function time(t: Tlv): Date {
  const s = Buffer.from(content(t)).toString('latin1');
  let m: RegExpExecArray | null;
  if (t.tag === TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    return calendarDate(t, s, yy >= 50 ? 1900 + yy : 2000 + yy, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  if (t.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d*[1-9])?Z$/.exec(s))) {
    return calendarDate(t, s, Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  throw fail('der.malformed', `bad time value "${s}"`, { offset: t.start });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A string type (UTF8String, PrintableString, IA5String) as text; invalid UTF-8 is malformed, not repaired. */
export function text(t: Tlv): string {
  try {
    return UTF8.decode(content(t));
  } catch {
    throw fail('der.malformed', 'string value is not valid UTF-8', { offset: t.start });
  }
}

/** Finds the child of a SEQUENCE of `SEQUENCE { OID, value }` pairs whose OID matches (e.g. SGX extension). */
export function findByOid(seqOfPairs: Tlv, wanted: string): Tlv | undefined {
  for (const pair of children(seqOfPairs)) {
    const kids = children(pair);
    if (kids.length >= 2 && kids[0]!.tag === TAG.OID && oid(kids[0]!) === wanted) return kids[1];
  }
  return undefined;
}

// ── encoding (used by the simulated TEE and tests to build structures) ───────────────────────────

function encLen(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** Encodes one TLV from a tag and content parts. */
export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  return new Uint8Array(Buffer.concat([Uint8Array.of(tag), encLen(body.length), body]));
}

export function encodeOid(dotted: string): Uint8Array {
  const n = dotted.split('.').map((a) => BigInt(a));
  const out: number[] = [];
  for (const v of [n[0]! * 40n + n[1]!, ...n.slice(2)]) {
    const stack: number[] = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) stack.unshift(Number(x & 0x7fn) | 0x80);
    out.push(...stack);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}

export function encodeInt(v: number | bigint): Uint8Array {
  let x = BigInt(v);
  if (x < 0n) throw new RangeError('negative INTEGER not supported');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(x & 0xffn));
    x >>= 8n;
  } while (x > 0n);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(TAG.INTEGER, Uint8Array.from(bytes));
}
