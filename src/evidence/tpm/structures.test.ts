import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isConclaveError } from '../../core/errors.js';
import { FakeTpm } from './testing.js';
import {
  TPM_ALG,
  type TpmsAttest,
  encodeTpmsAttest,
  encodeTpmtPublic,
  encodeTpmtSignature,
  parsePublicArea,
  parseTpmsAttest,
  parseTpmtPublic,
  parseTpmtSignature,
  policyPcrDigest,
} from './structures.js';

const bytes = (max: number) => fc.uint8Array({ maxLength: max });

const attestArb: fc.Arbitrary<TpmsAttest> = fc.record({
  qualifiedSigner: bytes(34),
  extraData: bytes(64),
  clockInfo: fc.record({ clock: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), resetCount: fc.nat(), restartCount: fc.nat(), safe: fc.boolean() }),
  firmwareVersion: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
}).chain((common) =>
  fc.oneof(
    fc.record({ pcrSelect: fc.array(fc.record({ hashAlg: fc.constantFrom(TPM_ALG.SHA1, TPM_ALG.SHA256), pcrs: fc.uniqueArray(fc.integer({ min: 0, max: 23 })).map((a) => a.sort((x, y) => x - y)) }), { maxLength: 3 }), pcrDigest: bytes(48) }).map((q) => ({ ...common, type: 'quote' as const, ...q })),
    fc.record({ name: bytes(34), qualifiedName: bytes(34) }).map((c) => ({ ...common, type: 'certify' as const, ...c })),
  ),
);

describe('TPM 2.0 structures', () => {
  test('TPMS_ATTEST round-trips through the encoder and the parser', () => {
    fc.assert(
      fc.property(attestArb, (a) => {
        const b = encodeTpmsAttest(a);
        const parsed = parseTpmsAttest(b);
        assert.deepEqual(encodeTpmsAttest(parsed), b);
        assert.equal(parsed.type, a.type);
        assert.deepEqual(parsed.extraData, a.extraData);
      }),
      { numRuns: 200 },
    );
  });

  test('any truncation or trailing byte of a TPMS_ATTEST is a typed error', () => {
    fc.assert(
      fc.property(attestArb, fc.nat(), (a, cut) => {
        const b = encodeTpmsAttest(a);
        const n = cut % b.byteLength;
        assert.throws(() => parseTpmsAttest(b.subarray(0, n)), (e: unknown) => isConclaveError(e) && e.code.startsWith('tpm.'));
        assert.throws(() => parseTpmsAttest(Uint8Array.from([...b, 0])), (e: unknown) => isConclaveError(e, 'tpm.malformed'));
      }),
      { numRuns: 100 },
    );
  });

  test('random bytes never crash the parsers (typed errors only)', () => {
    fc.assert(
      fc.property(bytes(400), (b) => {
        for (const parse of [parseTpmsAttest, parseTpmtPublic, parseTpmtSignature, parsePublicArea]) {
          try {
            parse(b);
          } catch (e) {
            assert.ok(isConclaveError(e) && e.code.startsWith('tpm.'), String(e));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  test('TPMT_PUBLIC and TPMT_SIGNATURE round-trip; TPM2B_PUBLIC is unwrapped', () => {
    const tpm = new FakeTpm();
    const area = tpm.akArea;
    assert.deepEqual(parseTpmtPublic(encodeTpmtPublic(area)), area);
    assert.deepEqual(parsePublicArea(tpm.akPublicArea()).publicArea, area);
    const sig = { sigAlg: 'rsassa' as const, hashAlg: TPM_ALG.SHA256, sig: new Uint8Array(256).fill(9) };
    assert.deepEqual(parseTpmtSignature(encodeTpmtSignature(sig)), sig);
    const ecdsa = { sigAlg: 'ecdsa' as const, hashAlg: TPM_ALG.SHA256, r: new Uint8Array(32).fill(1), s: new Uint8Array(32).fill(2) };
    assert.deepEqual(parseTpmtSignature(encodeTpmtSignature(ecdsa)), ecdsa);
  });

  test('PolicyPCR digest (TPM 2.0 Part 3 §23.7) of all-zero PCRs 0-7', () => {
    // H(0^32 ‖ 0000017F ‖ 00000001 000B 03 FF0000 ‖ H(0^256)), computed independently with openssl.
    const d = policyPcrDigest(TPM_ALG.SHA256, [{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }], Array.from({ length: 8 }, () => new Uint8Array(32)));
    assert.equal(Buffer.from(d).toString('hex'), EXPECTED_POLICY_PCR_0_7_ZERO);
  });
});

const EXPECTED_POLICY_PCR_0_7_ZERO = '9a72c2e06a93c453a86efb47532e9c7a91dcab018e675919910c58d6a1a5aa78';
