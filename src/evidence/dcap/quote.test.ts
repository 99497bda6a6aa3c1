import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readFixture, readFixtureJson, skipWithoutFixtures } from '../../../test/fixtures.js';
import { ConclaveError, type ErrorCode, isConclaveError } from '../../core/errors.js';
import { encodeQuote, parseQuote } from './quote.js';
import { buildSignedQuote, createDcapHierarchy } from './testing.js';

const skip = skipWithoutFixtures();

const QUOTES = [
  ['sgx-v3-phala', 'quote.bin'],
  ['sgx-v3-phala', 'quote2-automata.bin'],
  ['sgx-v3-occlum-platformca', 'quote.bin'],
  ['tdx-v4-phala', 'quote.bin'],
  ['tdx-v4-automata', 'quote_tdx.bin'],
  ['tdx-v4-azure-trustee', 'td-quote.bin'],
  ['tdx-v5-fmspc90C06F', 'quote-alibaba-outofdate.bin'],
  ['tdx-v5-fmspc90C06F', 'quote-gotdxguest-uptodate.bin'],
  ['tdx-v5-fmspc90C06F', 'quote-phala-nomatch.bin'],
] as const;

function quoteBytes(folder: string, file: string): Uint8Array {
  return new Uint8Array(readFixture('intel', folder, file));
}

describe('parseQuote on real quotes', { skip }, () => {
  if (skip) return;
  for (const [folder, file] of QUOTES) {
    test(`${folder}/${file}: parses by length fields and re-encodes byte for byte`, () => {
      const b = quoteBytes(folder, file);
      const q = parseQuote(b);
      const exp = readFixtureJson<Record<string, { quote_version?: number; quote_size?: number; body_type?: number; tee_tcb_svn?: string }>>('intel', folder, 'expected.json')[file];
      if (exp?.quote_version) assert.equal(q.header.version, exp.quote_version);
      if (exp?.quote_size) assert.equal(q.size, exp.quote_size);
      if (exp?.body_type) assert.equal(q.body.kind, exp.body_type === 3 ? 'td15' : 'td10');
      // expected.json of quote-gotdxguest-uptodate.bin repeats the alibaba TEE_TCB_SVN (05 01 02); the quote
      // itself carries 0b 01 04 (module TDX_01 ISVSVN 11), which is what its UpToDate verdict rests on.
      if (exp?.tee_tcb_svn && q.body.kind !== 'sgx' && file !== 'quote-gotdxguest-uptodate.bin') assert.equal(Buffer.from(q.body.report.teeTcbSvn).toString('hex'), exp.tee_tcb_svn);
      assert.ok(q.size <= b.byteLength);
      assert.ok(b.subarray(q.size).every((x) => x === 0), 'bytes after the quote are padding');
      assert.equal(q.signatureData.certificationData.type, 5);
      assert.deepEqual(encodeQuote(q), b.subarray(0, q.size));
      assert.deepEqual(parseQuote(encodeQuote(q)), q);
    });
  }

  test('TDX v4 quote in a padded buffer: 4936 of 5006 bytes', () => {
    const q = parseQuote(quoteBytes('tdx-v4-phala', 'quote.bin'));
    assert.equal(q.size, 4936);
    assert.equal(q.signedRegion.byteLength, 632);
  });

  test('every truncation of a real quote is quote.truncated naming a field and offset', () => {
    for (const [folder, file] of [QUOTES[0], QUOTES[3], QUOTES[6]]) {
      const b = quoteBytes(folder, file);
      const size = parseQuote(b).size;
      for (let n = 0; n < size; n += n < 700 ? 1 : 37) {
        try {
          parseQuote(b.subarray(0, n));
          assert.fail(`a ${n}-byte prefix parsed`);
        } catch (e) {
          assert.ok(isConclaveError(e, 'quote.truncated'), `${folder} n=${n}: ${String(e)}`);
          assert.equal(typeof e.detail?.field, 'string');
          assert.equal(typeof e.detail?.offset, 'number');
        }
      }
    }
  });

  test('a signature data length that disagrees with its content is quote.malformed or quote.truncated', () => {
    const b = quoteBytes('sgx-v3-phala', 'quote.bin').slice();
    const view = new DataView(b.buffer);
    view.setUint32(432, view.getUint32(432, true) - 1, true);
    assert.throws(() => parseQuote(b), (e) => isConclaveError(e) && ['quote.truncated', 'quote.malformed'].includes(e.code));
    const grown = new Uint8Array(b.byteLength + 8);
    grown.set(quoteBytes('sgx-v3-phala', 'quote.bin'));
    new DataView(grown.buffer).setUint32(432, view.getUint32(432, true) + 1 + 8, true);
    assert.throws(() => parseQuote(grown), (e) => isConclaveError(e, 'quote.malformed'));
  });

  test('unsupported header values and certification data types are quote.unsupported', () => {
    const base = quoteBytes('tdx-v4-phala', 'quote.bin');
    const set16 = (off: number, v: number): Uint8Array => {
      const b = base.slice();
      new DataView(b.buffer).setUint16(off, v, true);
      return b;
    };
    for (const [b, field] of [
      [set16(0, 2), 'header.version'],
      [set16(2, 3), 'header.attestationKeyType'],
      [set16(4, 0x82), 'header.teeType'],
      [set16(632 + 4 + 128, 5), 'qeReportCertificationData.type'],
    ] as const) {
      assert.throws(() => parseQuote(b), (e) => isConclaveError(e, 'quote.unsupported') && e.detail?.field === field);
    }
  });
});

describe('parseQuote: header, body and certification data must agree (pins)', () => {
  const h = createDcapHierarchy();
  const tdx5 = buildSignedQuote(h, { tee: 'tdx', version: 5 });
  const tdx4 = buildSignedQuote(h, { tee: 'tdx', version: 4 });
  const sgx3 = buildSignedQuote(h, { tee: 'sgx', version: 3 });
  const patched = (q: Uint8Array, f: (v: DataView) => void): Uint8Array => {
    const b = q.slice();
    f(new DataView(b.buffer));
    return b;
  };
  const rejects = (b: Uint8Array, code: ErrorCode, field: string): void => {
    assert.throws(() => parseQuote(b), (e) => isConclaveError(e, code) && e.detail?.field === field, `${code} ${field}`);
  };

  test('a v5 body type of the other TEE, or of the wrong size, is quote.malformed', () => {
    rejects(patched(tdx5, (v) => v.setUint16(48, 1, true)), 'quote.malformed', 'bodyDescriptor.type');
    rejects(patched(tdx5, (v) => v.setUint32(4, 0, true)), 'quote.malformed', 'bodyDescriptor.type');
    rejects(patched(tdx5, (v) => v.setUint32(50, 584, true)), 'quote.malformed', 'bodyDescriptor.size');
    rejects(patched(sgx3, (v) => v.setUint32(4, 0x81, true)), 'quote.malformed', 'header.teeType');
  });

  test('the certification data is type 6 holding type 5 in v4/v5, type 5 in v3; anything else is quote.unsupported', () => {
    // v4: the outer type 6 at 48 + 584 + 4 + 128; the inner type after the QE report, its signature and auth data.
    const outer = 48 + 584 + 4 + 128;
    const inner = outer + 6 + 384 + 64 + 2 + 32;
    rejects(patched(tdx4, (v) => v.setUint16(inner, 6, true)), 'quote.unsupported', 'certificationData.type');
    rejects(patched(tdx4, (v) => v.setUint16(inner, 4, true)), 'quote.unsupported', 'certificationData.type');
    const v3Inner = 48 + 384 + 4 + 128 + 384 + 64 + 2 + 32;
    rejects(patched(sgx3, (v) => v.setUint16(v3Inner, 6, true)), 'quote.unsupported', 'certificationData.type');
  });

  test('bytes after the PCK chain inside the type-6 container are quote.malformed', () => {
    const extra = 3;
    const b = new Uint8Array(tdx4.byteLength + extra);
    b.set(tdx4);
    const v = new DataView(b.buffer);
    const sigLenAt = 48 + 584;
    const outerSizeAt = sigLenAt + 4 + 128 + 2;
    v.setUint32(sigLenAt, v.getUint32(sigLenAt, true) + extra, true);
    v.setUint32(outerSizeAt, v.getUint32(outerSizeAt, true) + extra, true);
    rejects(b, 'quote.malformed', 'qeReportCertificationData.size');
  });
});

describe('parseQuote properties', () => {
  const h = createDcapHierarchy();
  const samples = [buildSignedQuote(h, { tee: 'sgx' }), buildSignedQuote(h, { tee: 'tdx', version: 4 }), buildSignedQuote(h, { tee: 'tdx', version: 5 })];

  test('random buffers never throw anything but ConclaveError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6000 }), (b) => {
        try {
          parseQuote(b);
        } catch (e) {
          assert.ok(e instanceof ConclaveError, String(e));
        }
      }),
      { numRuns: 500 },
    );
  });

  test('random header-shaped buffers reach deeper fields and still fail typed', () => {
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (q, at, patch, cut) => {
        const b = q.slice(0, (cut % q.byteLength) + 1);
        b.set(patch.subarray(0, Math.max(0, b.byteLength - (at % b.byteLength))), at % b.byteLength);
        try {
          parseQuote(b);
        } catch (e) {
          assert.ok(e instanceof ConclaveError, String(e));
          assert.ok(['quote.truncated', 'quote.malformed', 'quote.unsupported'].includes(e.code), e.code);
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('truncations of a built quote are quote.truncated; the full quote round-trips', () => {
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.nat(), (q, n) => {
        const cut = n % q.byteLength;
        assert.throws(() => parseQuote(q.subarray(0, cut)), (e) => isConclaveError(e, 'quote.truncated'));
        assert.deepEqual(encodeQuote(parseQuote(q)), q);
      }),
      { numRuns: 300 },
    );
  });
});
