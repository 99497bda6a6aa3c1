import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TAG, encodeInt, encodeOid, tlv } from '../../core/der.js';
import { isConclaveError } from '../../core/errors.js';
import { SGX_EXTENSION_OID, parsePckSgxExtension } from './pck-extension.js';
import { createDcapHierarchy, issueCertificate } from './testing.js';

const pair = (suffix: string, value: Uint8Array): Uint8Array => tlv(TAG.SEQUENCE, encodeOid(`${SGX_EXTENSION_OID}.${suffix}`), value);
const octets = (hex: string): Uint8Array => tlv(TAG.OCTET_STRING, new Uint8Array(Buffer.from(hex, 'hex')));

/** A PCK certificate whose SGX extension holds `entries` (top level) with the TCB entry built from `tcb`. */
function pckWith(entries: (tcb: Uint8Array) => Uint8Array[], tcbEntries: Uint8Array[] = []) {
  const h = createDcapHierarchy();
  const comps = Array.from({ length: 16 }, (_, i) => pair(`2.${i + 1}`, encodeInt(3)));
  const tcb = pair('2', tlv(TAG.SEQUENCE, ...comps, pair('2.17', encodeInt(13)), pair('2.18', octets('03'.repeat(16))), ...tcbEntries));
  const value = tlv(TAG.SEQUENCE, ...entries(tcb));
  const ext = tlv(TAG.SEQUENCE, encodeOid(SGX_EXTENSION_OID), tlv(TAG.OCTET_STRING, value));
  return issueCertificate({ subjectCN: 'Intel SGX PCK Certificate', issuer: h.pckCa, ca: false, notBefore: h.notBefore, notAfter: h.notAfter, extensions: [ext] }).certificate;
}

const base = (tcb: Uint8Array): Uint8Array[] => [pair('1', octets('00'.repeat(16))), tcb, pair('3', octets('0000')), pair('4', octets('00906ed50000')), pair('5', tlv(TAG.ENUMERATED, Uint8Array.of(0)))];

describe('parsePckSgxExtension', () => {
  test('the well-formed extension parses', () => {
    const ext = parsePckSgxExtension(pckWith(base));
    assert.equal(ext.fmspc, '00906ed50000');
    assert.deepEqual(ext.sgxTcbComponents, Array(16).fill(3));
    assert.equal(ext.pcesvn, 13);
  });

  test('an OID that appears twice (top level or in the TCB) is quote.pck_extension_invalid, not the last one wins', () => {
    // Intel's QVL takes each entry once (it counts them and requires each); a second FMSPC, PCESVN or
    // component would otherwise silently replace the first.
    for (const [what, cert] of [
      ['FMSPC', pckWith((tcb) => [...base(tcb), pair('4', octets('00a067110000'))])],
      ['TCB', pckWith((tcb) => [...base(tcb), tcb])],
      ['PCESVN', pckWith(base, [pair('2.17', encodeInt(99))])],
      ['comp01', pckWith(base, [pair('2.1', encodeInt(99))])],
    ] as const) {
      assert.throws(() => parsePckSgxExtension(cert), (e) => isConclaveError(e, 'quote.pck_extension_invalid'), what);
    }
  });
});
