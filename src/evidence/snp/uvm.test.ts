import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode } from 'cborg';
import fc from 'fast-check';
import { readFixture, readFixtureJson, skipWithoutFixtures } from '../../../test/fixtures.js';
import { decodeCoseSign1 } from '../../core/cose.js';
import { parseDidX509 } from '../../core/did-x509.js';
import { isConclaveError } from '../../core/errors.js';
import { uvmEndorsementOf, verifyUvmEndorsement } from './uvm.js';
import { createTestUvmSigner } from './uvm-testing.js';

const skip = skipWithoutFixtures();
const MS_UVM_ISSUER = 'did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.3.6.1.4.1.311.76.59.1.2';
const at = new Date('2025-06-01T00:00:00Z');

function code(c: string) {
  return (e: unknown) => {
    assert.ok(isConclaveError(e), `not a ConclaveError: ${String(e)}`);
    assert.equal(e.code, c, e.message);
    return true;
  };
}

const real = () => new Uint8Array(readFixture('amd', 'azure-aci-sidecar', 'body.uvm_reference_info.bin'));
const measurement = () => readFixtureJson<{ report: { measurement: string } }>('amd', 'azure-aci-sidecar', 'expected.json').report.measurement;

/** Re-encodes the real message with its protected header changed (the signature then covers other bytes). */
function withProtected(bytes: Uint8Array, change: (h: Map<number | string, unknown>) => void): Uint8Array {
  const msg = decodeCoseSign1(bytes);
  const h = new Map(msg.protectedHeaders);
  change(h);
  return new Uint8Array([0xd2, ...encode([encode(h), new Map(), msg.payload, msg.signature])]);
}

describe('UVM endorsement (COSE_Sign1) of the real ACI utility VM', { skip }, () => {
  test('verifies to Microsoft\'s did:x509 issuer and endorses the report\'s launch measurement', () => {
    const r = verifyUvmEndorsement(real(), measurement(), at);
    assert.equal(r.issuer, MS_UVM_ISSUER);
    assert.equal(r.feed, 'ContainerPlat-AMD-UVM');
    assert.equal(r.svn, 22);
    assert.equal(r.form, 'legacy');
    assert.equal(r.launchMeasurement, measurement());
    assert.equal(r.signer, 'ContainerPlat');
    // The signing certificate expired in 2024: reported, not enforced (the endorsement outlives it).
    assert.deepEqual(r.outOfValidity, ['ContainerPlat']);
  });

  test('another measurement, a flipped signature or payload byte, each with its own code', () => {
    assert.throws(() => verifyUvmEndorsement(real(), '00'.repeat(48), at), code('uvm.measurement_mismatch'));
    const sig = real();
    sig[sig.byteLength - 10]! ^= 0x01;
    assert.throws(() => verifyUvmEndorsement(sig, measurement(), at), code('cose.signature_invalid'));
    // The payload's SVN "22" → "23": still well-formed JSON, no longer what Microsoft signed.
    const payload = real();
    const at22 = Buffer.from(payload).indexOf(Buffer.from('"22"'));
    assert.ok(at22 > 0);
    payload[at22 + 2] = 0x33;
    assert.throws(() => verifyUvmEndorsement(payload, measurement(), at), code('cose.signature_invalid'));
  });

  test('the issuer must resolve against the chain: fingerprint, EKU, chain to its root', () => {
    // The same root with another EKU (Microsoft's AKS UVM signer): the ContainerPlat leaf lacks it.
    const eku = withProtected(real(), (h) => h.set('iss', MS_UVM_ISSUER.replace(/1\.2$/, '1.5')));
    assert.throws(() => verifyUvmEndorsement(eku, measurement(), at), code('cose.signer_invalid'));
    const fp = withProtected(real(), (h) => h.set('iss', MS_UVM_ISSUER.replace('I__iu', 'J__iu')));
    assert.throws(() => verifyUvmEndorsement(fp, measurement(), at), code('cose.signer_invalid'));
    const chain = withProtected(real(), (h) => h.set(33, (h.get(33) as Uint8Array[]).slice(0, 2)));
    assert.throws(() => verifyUvmEndorsement(chain, measurement(), at), code('cose.signer_invalid'));
    const other = withProtected(real(), (h) => h.set('iss', 'did:web:example.com'));
    assert.throws(() => verifyUvmEndorsement(other, measurement(), at), code('cose.signer_invalid'));
    // With the issuer right but the header re-encoded, only the signature fails.
    const same = withProtected(real(), (h) => h.set('feed', 'ContainerPlat-AMD-UVM2'));
    assert.throws(() => verifyUvmEndorsement(same, measurement(), at), code('cose.signature_invalid'));
    // An RSA signer cannot be claimed to have signed ES384.
    const alg = withProtected(real(), (h) => h.set(1, -35));
    assert.throws(() => verifyUvmEndorsement(alg, measurement(), at), code('cose.unsupported'));
    const rs1 = withProtected(real(), (h) => h.set(1, -65535));
    assert.throws(() => verifyUvmEndorsement(rs1, measurement(), at), code('cose.unsupported'));
  });

  test('malformed messages are cose.malformed / uvm.malformed, never a crash', () => {
    const bytes = real();
    assert.throws(() => verifyUvmEndorsement(bytes.subarray(0, 100), measurement(), at), code('cose.malformed'));
    assert.throws(() => verifyUvmEndorsement(Uint8Array.of(0xd2, 0x80), measurement(), at), code('cose.malformed'));
    assert.throws(() => verifyUvmEndorsement(new Uint8Array(Buffer.from('{"json":1}')), measurement(), at), code('cose.malformed'));
    // Non-minimal CBOR (a one-byte length written in two bytes) is refused by the strict decoder.
    assert.throws(() => decodeCoseSign1(Uint8Array.of(0x98, 0x04, 0x40, 0xa0, 0x40, 0x40)), code('cose.malformed'));
    // Detached payload.
    const detached = new Uint8Array([0xd2, ...encode([new Uint8Array(0), new Map(), null, new Uint8Array(1)])]);
    assert.throws(() => decodeCoseSign1(detached), code('cose.malformed'));
    const noIss = withProtected(real(), (h) => h.delete('iss'));
    assert.throws(() => verifyUvmEndorsement(noIss, measurement(), at), code('uvm.malformed'));
    assert.throws(() => decodeCoseSign1(new Uint8Array(300 * 1024)), code('cose.malformed'));
    // Nesting deep enough to exhaust the decoder's stack is a typed refusal, not a crash.
    const deep = new Uint8Array(200 * 1024).fill(0x81);
    assert.throws(() => decodeCoseSign1(deep), code('cose.malformed'));
  });

  test('property: a mutated endorsement verifies to the same facts (unprotected bytes) or fails with a cose.* / uvm.* code', () => {
    const bytes = real();
    const good = verifyUvmEndorsement(bytes, measurement(), at);
    fc.assert(
      fc.property(fc.nat(bytes.byteLength - 1), fc.integer({ min: 1, max: 255 }), fc.boolean(), (i, x, truncate) => {
        const m = truncate ? bytes.subarray(0, i) : Uint8Array.from(bytes);
        if (!truncate) m[i]! ^= x;
        try {
          const r = verifyUvmEndorsement(m, measurement(), at);
          assert.deepEqual({ ...r }, { ...good });
        } catch (e) {
          assert.ok(isConclaveError(e) && /^(cose|uvm|der)\./.test(e.code), `byte ${i}: ${String(e)}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('Endorsements JSON: one base64url UVM endorsement, or none', () => {
    assert.equal(uvmEndorsementOf(undefined), undefined);
    assert.equal(uvmEndorsementOf({ Uvm: [] }), undefined);
    assert.deepEqual(uvmEndorsementOf({ Uvm: [Buffer.from(real()).toString('base64url')] }), real());
    assert.throws(() => uvmEndorsementOf({ Uvm: ['a', 'b'] }), code('uvm.malformed'));
    assert.throws(() => uvmEndorsementOf({ Uvm: 'x' }), code('uvm.malformed'));
    assert.throws(() => uvmEndorsementOf({ Uvm: ['***'] }), code('uvm.malformed'));
    assert.throws(() => uvmEndorsementOf([1]), code('uvm.malformed'));
  });
});

describe('UVM endorsements by another signer (CWT and legacy forms)', () => {
  test('a self-made chain verifies under its own issuer, which is not Microsoft\'s', async () => {
    const signer = await createTestUvmSigner();
    const m = 'ab'.repeat(48);
    const cwt = verifyUvmEndorsement(signer.endorse(m, { svn: 150 }), m, at);
    assert.equal(cwt.form, 'cwt');
    assert.equal(cwt.svn, 150);
    assert.equal(cwt.issuer, signer.issuer);
    assert.notEqual(cwt.issuer, MS_UVM_ISSUER);
    const legacy = verifyUvmEndorsement(signer.endorse(m, { form: 'legacy', svn: 7 }), m, at);
    assert.equal(legacy.form, 'legacy');
    assert.equal(legacy.svn, 7);
    assert.throws(() => verifyUvmEndorsement(signer.endorse(m), 'cd'.repeat(48), at), code('uvm.measurement_mismatch'));
    // Claiming Microsoft's issuer with this chain fails resolution.
    const claimed = signer.endorse(m, { form: 'legacy', protectedExtra: [['iss', MS_UVM_ISSUER]] });
    assert.throws(() => verifyUvmEndorsement(claimed, m, at), code('cose.signer_invalid'));
    // A CWT claims map that is not a map, and an SVN that is not an integer.
    assert.throws(() => verifyUvmEndorsement(signer.endorse(m, { protectedExtra: [[15, 'x']] }), m, at), code('uvm.malformed'));
    const badSvn = signer.endorse(m, { protectedExtra: [[15, new Map<number | string, unknown>([[1, signer.issuer], [2, 'f'], ['svn', -1]])]] });
    assert.throws(() => verifyUvmEndorsement(badSvn, m, at), code('uvm.malformed'));
  });

  test('did:x509 strings: version 0, sha256/384/512, eku policies only', () => {
    const d = parseDidX509(MS_UVM_ISSUER, 'cose.signer_invalid');
    assert.equal(d.hash, 'sha256');
    assert.equal(d.caFingerprint.byteLength, 32);
    assert.deepEqual(d.eku, ['1.3.6.1.4.1.311.76.59.1.2']);
    for (const bad of [
      'did:x509:1:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.2.3',
      'did:x509:0:md5:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.2.3',
      'did:x509:0:sha256:AAAA::eku:1.2.3',
      'did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s',
      'did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::subject:CN:x',
      'did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s::eku:1.02',
    ]) {
      assert.throws(() => parseDidX509(bad, 'cose.signer_invalid'), code('cose.signer_invalid'), bad);
    }
  });
});
