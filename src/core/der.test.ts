import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readFixture, skipWithoutFixtures } from '../../test/fixtures.js';
import { TAG, boolean, encodeOid, integer, oid, parseDer, readTlv, time, tlv } from './der.js';
import { isConclaveError } from './errors.js';
import { isIssuedBy, parseCertificate, parseCrl } from './x509.js';
import { INTEL_SGX_ROOT_CA } from '../evidence/dcap/roots.js';

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
const malformed = (f: () => unknown) =>
  assert.throws(f, (e) => {
    assert.ok(isConclaveError(e, 'der.malformed'), String(e));
    return true;
  });

/** Re-encodes the length of the TLV at `offset` in `n` octets (a non-minimal long form). */
function widenLength(der: Uint8Array, offset: number, n: number): Uint8Array {
  const t = readTlv(der, offset);
  const len = t.end - t.contentStart;
  const lenOctets = Array.from({ length: n }, (_, i) => (len >> (8 * (n - 1 - i))) & 0xff);
  return Uint8Array.from([...der.subarray(0, offset + 1), 0x80 | n, ...lenOctets, ...der.subarray(t.contentStart)]);
}

describe('DER lengths', () => {
  test('non-minimal and indefinite lengths are refused', () => {
    malformed(() => readTlv(bytes('04 81 01 00'))); // long form for a short length
    malformed(() => readTlv(Uint8Array.from([0x04, 0x82, 0x00, 0x81, ...new Uint8Array(0x81)]))); // leading zero length octet
    malformed(() => readTlv(bytes('30 80 04 00 00 00'))); // indefinite
    assert.equal(readTlv(Uint8Array.from([0x04, 0x81, 0x80, ...new Uint8Array(0x80)])).end, 0x83);
  });

  test('trailing bytes after a whole value are refused', () => {
    malformed(() => parseDer(bytes('05 00 00')));
  });
});

describe('DER OIDs', () => {
  test('a truncated subidentifier, a non-minimal one and an empty OID are refused', () => {
    malformed(() => oid(readTlv(bytes('06 03 2a 86 c8')))); // ends with the continuation bit set
    malformed(() => oid(readTlv(bytes('06 03 2a 80 01')))); // leading 0x80
    malformed(() => oid(readTlv(bytes('06 00'))));
  });

  test('arcs beyond 2^53 parse exactly and round-trip', () => {
    for (const o of ['2.25.329800735698586629295641978511506172918', '1.2.840.113741.1.13.1', '2.999.3', '1.3.6.1.4.1.3704.1.3.1']) {
      assert.equal(oid(readTlv(encodeOid(o))), o);
    }
  });
});

describe('DER INTEGER and BOOLEAN', () => {
  test('non-minimal INTEGERs and non-DER BOOLEANs are refused', () => {
    malformed(() => integer(readTlv(bytes('02 02 00 7f'))));
    malformed(() => integer(readTlv(bytes('02 02 ff 80'))));
    assert.equal(integer(readTlv(bytes('02 02 00 80'))), 128n);
    malformed(() => boolean(readTlv(bytes('01 01 01'))));
    assert.equal(boolean(readTlv(bytes('01 01 ff'))), true);
  });
});

describe('DER times (RFC 5280 §4.1.2.5)', () => {
  const utc = (s: string) => time(readTlv(tlv(TAG.UTC_TIME, new Uint8Array(Buffer.from(s, 'latin1')))));
  const gen = (s: string) => time(readTlv(tlv(TAG.GENERALIZED_TIME, new Uint8Array(Buffer.from(s, 'latin1')))));
  test('invalid calendar values are refused', () => {
    malformed(() => utc('251301000000Z')); // month 13
    malformed(() => utc('250230000000Z')); // 30 February
    malformed(() => utc('250101240000Z')); // hour 24
    malformed(() => utc('250101000060Z')); // second 60 outside a leap second
    malformed(() => utc('2501010000Z')); // no seconds
    malformed(() => utc('250101000000')); // missing Z
    malformed(() => utc('250101000000+0100'));
    malformed(() => gen('20250101000000.10Z')); // trailing zero in the fraction
    malformed(() => gen('20250101000000.Z'));
  });
  test('valid values, including a leap second and 29 February of a leap year', () => {
    assert.equal(utc('240229120000Z').toISOString(), '2024-02-29T12:00:00.000Z');
    assert.equal(utc('161231235960Z').toISOString(), '2017-01-01T00:00:00.000Z');
    assert.equal(utc('490101000000Z').getUTCFullYear(), 2049);
    assert.equal(utc('500101000000Z').getUTCFullYear(), 1950);
    assert.equal(gen('20500101000000Z').getUTCFullYear(), 2050);
    malformed(() => utc('230229000000Z'));
  });
});

describe('a real certificate whose outer encoding changed', { skip: skipWithoutFixtures() }, () => {
  const pck = new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'pck.der'));
  const platformCa = parseCertificate(new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'platform.der')));

  test('the original parses and is signed by the Intel SGX PCK Platform CA', () => {
    assert.ok(isIssuedBy(parseCertificate(pck), platformCa));
    assert.ok(isIssuedBy(platformCa, INTEL_SGX_ROOT_CA));
  });

  test('a non-minimal length on the outer SEQUENCE (signed part untouched) is refused', () => {
    const mutated = widenLength(pck, 0, 3);
    // The signed part is byte-for-byte the original one (30 82 xx xx → 30 83 00 xx xx): only the outer encoding differs.
    const tbs = readTlv(pck, 4);
    assert.deepEqual(readTlv(mutated, 5).input.subarray(5, readTlv(mutated, 5).end), pck.subarray(4, tbs.end));
    malformed(() => parseCertificate(mutated));
  });

  test('a non-minimal length on the signature BIT STRING is refused', () => {
    const outer = readTlv(pck, 0);
    let p = readTlv(pck, outer.contentStart).end; // past tbs
    p = readTlv(pck, p).end; // past the outer AlgorithmIdentifier
    const widened = widenLength(pck, p, 2);
    // fix the outer length so only the inner form is non-minimal
    const body = widened.subarray(outer.contentStart);
    const fixed = Uint8Array.from([0x30, 0x82, body.length >> 8, body.length & 0xff, ...body]);
    malformed(() => parseCertificate(fixed));
  });

  test('bytes appended inside the outer SEQUENCE or after it are refused', () => {
    const outer = readTlv(pck, 0);
    const body = Uint8Array.from([...pck.subarray(outer.contentStart), 0x05, 0x00]);
    malformed(() => parseCertificate(Uint8Array.from([0x30, 0x82, body.length >> 8, body.length & 0xff, ...body])));
    malformed(() => parseCertificate(Uint8Array.from([...pck, 0x00])));
  });

  test('a real CRL parses; with a trailing byte it is refused', () => {
    const crl = new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'pck_platform_crl.der'));
    assert.equal(parseCrl(crl).issuerCN, 'Intel SGX PCK Platform CA');
    malformed(() => parseCrl(Uint8Array.from([...crl, 0x00])));
    malformed(() => parseCrl(widenLength(crl, 0, 3)));
  });
});

describe('DER reader properties (fast-check)', () => {
  /** Walks every TLV, descending into constructed ones: the reader's whole surface. */
  function walk(input: Uint8Array, from = 0, to = input.byteLength, depth = 0): void {
    for (let p = from; p < to; ) {
      const t = readTlv(input, p, to);
      if (t.tag & 0x20 && depth < 32) walk(input, t.contentStart, t.end, depth + 1);
      if (t.tag === TAG.OID) oid(t);
      if (t.tag === TAG.INTEGER) integer(t);
      if (t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME) time(t);
      if (t.tag === TAG.BOOLEAN) boolean(t);
      p = t.end;
    }
  }
  const typedOnly = (f: () => void) => {
    try {
      f();
    } catch (e) {
      assert.ok(isConclaveError(e, 'der.malformed'), `untyped failure: ${String(e)}`);
    }
  };

  test('any byte string is read or refused with der.malformed, never an untyped exception', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => typedOnly(() => walk(b))), { numRuns: 2000 });
  });

  test('every mutation of a real certificate is read or refused with der.malformed', { skip: skipWithoutFixtures() }, () => {
    const pck = new Uint8Array(readFixture('intel', 'tdx-v4-automata', 'pck.der'));
    fc.assert(
      fc.property(fc.nat(pck.length - 1), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const m = Uint8Array.from(pck);
        m[i] = v;
        typedOnly(() => walk(m));
      }),
      { numRuns: 1000 },
    );
  });
});
