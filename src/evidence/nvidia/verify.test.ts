/**
 * GPU verification on a fake NVIDIA hierarchy: OCSP (good, revoked, hold, unknown, stale, forged,
 * unauthorised), expiry, measurement comparison (alternatives, active flags, NVDEC0, conflicts), the
 * XML-DSig profile against signature wrapping, and property tests of the parsers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { BoundedMap } from '../../core/bounded-map.js';
import { isConclaveError } from '../../core/errors.js';
import { parseOcspResponse } from '../../core/ocsp.js';
import type { Certificate } from '../../core/x509.js';
import { parseGpuReport } from './report.js';
import { RimCache, verifyRim } from './rim.js';
import { NVIDIA_DEVICE_IDENTITY_CA } from './roots.js';
import {
  FAKE_DRIVER_VERSION,
  createFakeNvidiaHierarchy,
  fakeMeasurements,
  issueP384,
  makeFakeGpuReport,
  makeFakeOcspResponse,
  makeFakeRim,
  makeFakeRims,
  signFakeGpuReport,
} from './testing.js';
import { GpuVerifierCache, type GpuVerifyOptions, validateGpuMeasurements, verifyGpuEvidence } from './verify.js';

const h = createFakeNvidiaHierarchy();
const at = new Date('2025-01-03T00:00:00Z');
const nonce = randomBytes(32);
const report = makeFakeGpuReport(h, { nonce });
const rims = makeFakeRims(h);
const base: GpuVerifyOptions = { at, nonce, trust: h.trust };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isConclaveError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

/** OCSP lookup answering every certificate with a response built by `make`. */
function ocspAll(make: (cert: Certificate, issuer: Certificate) => Uint8Array | undefined, mode: 'require' | 'if-present' = 'require', allowHold = false) {
  return { lookup: make, mode, allowHold } as const;
}

describe('GPU evidence on a fake hierarchy', () => {
  test('verifies with matching RIMs: measres success, claims-ready facts', () => {
    const r = verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, rims });
    assert.equal(r.measres, 'success');
    assert.equal(r.fwidMatch, true);
    assert.equal(r.driverRim?.version, FAKE_DRIVER_VERSION);
    assert.equal(r.measurementComparison?.compared.driver, 19); // 20 active, index 35 skipped (NVDEC0 disabled)
    assert.deepEqual(r.measurementComparison?.skipped, [35]);
    validateGpuMeasurements(r);
  });

  test('the pinned NVIDIA root does not trust the fake hierarchy', () => {
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { at, nonce, trust: { deviceRoot: NVIDIA_DEVICE_IDENTITY_CA } })), 'gpu.chain_invalid');
  });

  test('a measurement that differs is named with index, expected and actual', () => {
    const m = fakeMeasurements();
    m[5] = new Uint8Array(48).fill(0xee); // VBIOS RIM index 5 ↔ SPDM block 6
    const bad = makeFakeGpuReport(h, { nonce, measurements: m });
    const r = verifyGpuEvidence({ report: bad, certificateChain: h.chainPem }, { ...base, rims });
    assert.equal(r.measres, 'fail');
    assert.deepEqual(
      r.measurementComparison?.mismatches.map((x) => [x.index, x.measurementSource]),
      [[5, 'vbios']],
    );
    try {
      validateGpuMeasurements(r);
      assert.fail('must throw');
    } catch (e) {
      assert.ok(isConclaveError(e, 'gpu.measurement_mismatch'));
      assert.equal(e.detail?.index, 5);
      assert.equal(e.detail?.actual, 'ee'.repeat(48));
      assert.deepEqual(e.detail?.expected, [Buffer.from(fakeMeasurements()[5]!).toString('hex')]);
    }
  });

  test('alternatives: any golden value matches; inactive entries are not compared; NVDEC0 enabled compares index 35', () => {
    const m = fakeMeasurements();
    m[35] = new Uint8Array(48).fill(0x35); // the first alternative of RIM index 35 (SPDM block 36)
    m[50] = new Uint8Array(48).fill(0x50); // inactive in both RIMs
    const alt = makeFakeGpuReport(h, { nonce, measurements: m, opaque: { nvdec0Status: 0xaa } });
    const r = verifyGpuEvidence({ report: alt, certificateChain: h.chainPem }, { ...base, rims });
    assert.equal(r.measres, 'success');
    assert.equal(r.measurementComparison?.compared.driver, 20);
    const badNvdec = makeFakeGpuReport(h, { nonce, opaque: { nvdec0Status: 0x12 } });
    assert.equal(code(() => verifyGpuEvidence({ report: badNvdec, certificateChain: h.chainPem }, { ...base, rims })), 'gpu.malformed');
  });

  test('an index active in both RIMs is rim.index_conflict; a RIM for another version is rim.version_mismatch', () => {
    const golden = new Map([[3, [fakeMeasurements()[3]!]]]);
    const conflicting = makeFakeRim(h, { version: FAKE_DRIVER_VERSION, golden });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, rims: { driver: conflicting, vbios: rims.vbios } })), 'rim.index_conflict');
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, rims: { driver: rims.vbios, vbios: rims.vbios } })), 'rim.version_mismatch');
  });

  test('without RIMs the measurements are not compared, and validation says which RIM is missing', () => {
    const r = verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, rims: { driver: rims.driver } });
    assert.equal(r.measres, 'not-compared');
    assert.equal(code(() => validateGpuMeasurements(r)), 'rim.not_found');
  });

  test('an opaque FWID that differs from the certificate → gpu.fwid_mismatch (re-signed, so only the FWID differs)', () => {
    const other = makeFakeGpuReport(h, { nonce, opaque: { fwid: new Uint8Array(48).fill(7) } });
    assert.equal(code(() => verifyGpuEvidence({ report: other, certificateChain: h.chainPem }, base)), 'gpu.fwid_mismatch');
  });

  test('a report signed by another key → gpu.signature_invalid; trailing non-zero bytes → gpu.malformed', () => {
    const other = createFakeNvidiaHierarchy({}, h);
    assert.equal(code(() => verifyGpuEvidence({ report: signFakeGpuReport(report, other.fmc.privateKey), certificateChain: h.chainPem }, base)), 'gpu.signature_invalid');
    assert.equal(code(() => verifyGpuEvidence({ report: Buffer.concat([report, Uint8Array.of(1)]), certificateChain: h.chainPem }, base)), 'gpu.malformed');
    assert.equal(verifyGpuEvidence({ report: Buffer.concat([report, Uint8Array.of(0)]), certificateChain: h.chainPem }, base).trailingBytes, 1);
  });

  test('an expired RIM signer → rim.expired; an expired device certificate → cert.expired', () => {
    const shortLived = issueP384({ serial: 99n, subject: 'Fake RIM L4 Signer (expired)', issuer: h.rimRoot, ca: false, notBefore: new Date('2023-01-01T00:00:00Z'), notAfter: new Date('2024-01-01T00:00:00Z') });
    const old = makeFakeRim(h, { version: FAKE_DRIVER_VERSION, golden: new Map([[20, [fakeMeasurements()[20]!]]]), signer: shortLived, chain: [shortLived, h.rimRoot] });
    assert.equal(code(() => verifyRim(old, { at, root: h.rimRoot.cert })), 'rim.expired');
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, at: new Date('2022-06-01T00:00:00Z') })), 'cert.expired');
  });
});

describe('a warm GpuVerifierCache keeps every check that depends on the report or on the time', () => {
  const chain = h.chainPem;

  test('nonce, report signature, FWID and measurements are checked on every call with warm chain and RIMs', () => {
    const cache = new GpuVerifierCache();
    const opts = { ...base, rims, cache };
    assert.equal(verifyGpuEvidence({ report, certificateChain: chain }, opts).measres, 'success');
    // From here the chain and both RIMs are cache hits; each report is new.
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: chain }, { ...opts, nonce: randomBytes(32) })), 'gpu.nonce_mismatch');
    const flipped = new Uint8Array(report);
    flipped[37 + 8 + 7 + 5]! ^= 0x01; // inside the value of measurement block 1
    assert.equal(code(() => verifyGpuEvidence({ report: flipped, certificateChain: chain }, opts)), 'gpu.signature_invalid');
    const otherKey = createFakeNvidiaHierarchy({}, h);
    assert.equal(code(() => verifyGpuEvidence({ report: signFakeGpuReport(report, otherKey.fmc.privateKey), certificateChain: chain }, opts)), 'gpu.signature_invalid');
    const otherFwid = makeFakeGpuReport(h, { nonce, opaque: { fwid: new Uint8Array(48).fill(7) } });
    assert.equal(code(() => verifyGpuEvidence({ report: otherFwid, certificateChain: chain }, opts)), 'gpu.fwid_mismatch');
    // The prepared reference table is shared by both reports; each gets its own mismatches.
    for (const index of [5, 30]) {
      const m = fakeMeasurements();
      m[index] = new Uint8Array(48).fill(0xee);
      const r = verifyGpuEvidence({ report: makeFakeGpuReport(h, { nonce, measurements: m }), certificateChain: chain }, opts);
      assert.equal(r.measres, 'fail');
      assert.deepEqual(r.measurementComparison?.mismatches.map((x) => [x.index, x.runtimeValue]), [[index, 'ee'.repeat(48)]]);
    }
    const conflicting = makeFakeRim(h, { version: FAKE_DRIVER_VERSION, golden: new Map([[3, [fakeMeasurements()[3]!]]]) });
    for (let i = 0; i < 2; i++) {
      assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: chain }, { ...opts, rims: { driver: conflicting, vbios: rims.vbios } })), 'rim.index_conflict');
    }
    assert.equal(verifyGpuEvidence({ report, certificateChain: chain }, opts).measres, 'success');
  });

  test('a warm result equals the cold one', () => {
    const cold = verifyGpuEvidence({ report, certificateChain: chain }, { ...base, rims });
    const cache = new GpuVerifierCache();
    verifyGpuEvidence({ report, certificateChain: chain }, { ...base, rims, cache });
    const warm = verifyGpuEvidence({ report, certificateChain: chain }, { ...base, rims, cache });
    assert.deepEqual(JSON.parse(JSON.stringify(warm)), JSON.parse(JSON.stringify(cold)));
  });

  test('cached chains and RIMs are checked against the time of each report', () => {
    // A GPU whose arch CA expires mid-2025, and RIMs whose signer does.
    const shortArch = issueP384({ serial: 2n, subject: 'Fake NVIDIA GH100 Identity', issuer: h.deviceRoot, ca: true, notBefore: new Date('2023-01-01T00:00:00Z'), notAfter: new Date('2025-06-01T00:00:00Z') });
    const g = createFakeNvidiaHierarchy({}, { ...h, archCa: shortArch });
    const gReport = makeFakeGpuReport(g, { nonce });
    const cache = new GpuVerifierCache();
    const opts = { ...base, cache };
    assert.equal(verifyGpuEvidence({ report: gReport, certificateChain: g.chainPem }, opts).verified, true);
    assert.equal(code(() => verifyGpuEvidence({ report: gReport, certificateChain: g.chainPem }, { ...opts, at: new Date('2025-07-01T00:00:00Z') })), 'cert.expired');
    assert.equal(code(() => verifyGpuEvidence({ report: gReport, certificateChain: g.chainPem }, { ...opts, at: new Date('2022-06-01T00:00:00Z') })), 'cert.expired');
    assert.equal(verifyGpuEvidence({ report: gReport, certificateChain: g.chainPem }, opts).verified, true);

    const r = createFakeNvidiaHierarchy({ rimSignerNotAfter: new Date('2025-06-01T00:00:00Z') });
    const rRims = makeFakeRims(r);
    const rimCache = new RimCache();
    assert.equal(verifyRim(rRims.vbios, { at, root: r.rimRoot.cert, cache: rimCache }).colloquialVersion.length > 0, true);
    assert.equal(code(() => verifyRim(rRims.vbios, { at: new Date('2025-07-01T00:00:00Z'), root: r.rimRoot.cert, cache: rimCache })), 'rim.expired');
    const rOpts = { at, nonce, trust: r.trust, rims: rRims, cache: new GpuVerifierCache() };
    const rReport = makeFakeGpuReport(r, { nonce });
    assert.equal(verifyGpuEvidence({ report: rReport, certificateChain: r.chainPem }, rOpts).measres, 'success');
    assert.equal(code(() => verifyGpuEvidence({ report: rReport, certificateChain: r.chainPem }, { ...rOpts, at: new Date('2025-07-01T00:00:00Z') })), 'rim.expired');
  });

  test('a chain or RIM cached under one root is not trusted under another', () => {
    const cache = new GpuVerifierCache();
    verifyGpuEvidence({ report, certificateChain: chain }, { ...base, rims, cache });
    const stranger = createFakeNvidiaHierarchy({ rootCn: 'Another PKI' });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: chain }, { ...base, cache, trust: { deviceRoot: stranger.deviceRoot.cert } })), 'gpu.chain_invalid');
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: chain }, { ...base, rims, cache, trust: { deviceRoot: h.deviceRoot.cert, rimRoot: stranger.rimRoot.cert } })), 'rim.chain_invalid');
  });

  test('a cached good OCSP answer does not hide a revoked one; the OCSP memo is bounded', () => {
    const cache = new GpuVerifierCache();
    assert.ok(cache.ocsp instanceof BoundedMap);
    const good = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer });
    const revoked = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer, ...(cert.subjectCN === 'GH100 A01 GSP BROM' ? { status: 'revoked' as const } : {}) });
    assert.equal(verifyGpuEvidence({ report, certificateChain: chain }, { ...base, cache, ocsp: ocspAll(good) }).deviceChain.ocspStatus, 'good');
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: chain }, { ...base, cache, ocsp: ocspAll(revoked) })), 'ocsp.revoked');
  });
});

describe('OCSP of the device and RIM chains', () => {
  const good = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer });

  test('good responses for every certificate: ocspStatus good on all chains', () => {
    const r = verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, rims, ocsp: ocspAll(good) });
    assert.equal(r.deviceChain.ocspStatus, 'good');
    assert.equal(r.driverRim?.ocspStatus, 'good');
    assert.equal(r.vbiosRim?.ocspStatus, 'good');
  });

  test('a revoked device certificate → ocsp.revoked naming it; certificateHold is tolerated only when allowed', () => {
    const revokeBrom = (reason: number) => (cert: Certificate, issuer: Certificate) =>
      makeFakeOcspResponse(h, { cert, issuer, ...(cert.subjectCN === 'GH100 A01 GSP BROM' ? { status: 'revoked' as const, reason } : {}) });
    try {
      verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(revokeBrom(1)) });
      assert.fail('must throw');
    } catch (e) {
      assert.ok(isConclaveError(e, 'ocsp.revoked'));
      assert.equal(e.detail?.subject, 'GH100 A01 GSP BROM');
      assert.equal(e.detail?.reason, 'keyCompromise');
    }
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(revokeBrom(6)) })), 'ocsp.revoked');
    const held = verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(revokeBrom(6), 'require', true) });
    assert.match(held.warnings.join(' '), /on hold/);
  });

  test('attack: a revoked certificate without an answer at hand is not reported "good" because the others have one', () => {
    // if-present is how the attestation service looks answers up: a certificate whose answer could not be
    // had (its fetch failed: an upstream outage, a full fetch budget, a failure remembered for 30 s) is left
    // unchecked. The chain's status said "good" as soon as one other certificate had an answer.
    const unanswered = (cert: Certificate, issuer: Certificate) => (cert.subjectCN === 'GH100 A01 GSP BROM' ? undefined : good(cert, issuer));
    const r = verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, rims, ocsp: ocspAll(unanswered, 'if-present') });
    assert.equal(r.deviceChain.ocspStatus, 'not-checked');
    assert.equal(r.driverRim?.ocspStatus, 'good', 'a chain whose every certificate was answered is still good');
  });

  test('a revoked RIM signer → ocsp.revoked on the RIM chain; unknown → ocsp.unknown', () => {
    const revokeSigner = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer, ...(cert.subjectCN === 'Fake RIM L4 Signer' ? { status: 'revoked' as const } : {}) });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, rims, ocsp: ocspAll(revokeSigner) })), 'ocsp.revoked');
    const unknown = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer, status: 'unknown' });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(unknown) })), 'ocsp.unknown');
  });

  test('stale, missing, mismatched, forged and unauthorised responses fail with their own codes', () => {
    const stale = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer, thisUpdate: new Date('2024-01-01T00:00:00Z') });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(stale) })), 'ocsp.stale');
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(() => undefined) })), 'ocsp.not_covered');
    assert.equal(verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(() => undefined, 'if-present') }).deviceChain.ocspStatus, 'not-checked');
    const forOther = () => makeFakeOcspResponse(h, { cert: h.fmc.cert, issuer: h.brom.cert });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(forOther) })), 'ocsp.not_covered');
    const forged = (cert: Certificate, issuer: Certificate) => {
      const d = makeFakeOcspResponse(h, { cert, issuer });
      d[d.byteLength - h.ocspResponder.der.byteLength - 20]! ^= 1; // inside the signature
      return d;
    };
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(forged) })), 'ocsp.signature_invalid');
    // A responder without id-kp-OCSPSigning, and one from another PKI.
    const noEku = issueP384({ serial: 30n, subject: 'Not a responder', issuer: h.deviceRoot, ca: false, notBefore: new Date('2023-01-01'), notAfter: new Date('2099-01-01') });
    const byNoEku = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer, signer: noEku });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(byNoEku) })), 'ocsp.unauthorized');
    const stranger = createFakeNvidiaHierarchy({ rootCn: 'Another PKI' });
    const byStranger = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer, signer: stranger.ocspResponder });
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(byStranger) })), 'ocsp.unauthorized');
    // The issuing CA may answer for its own certificates (RFC 6960 §4.2.2.2).
    const byIssuer = (cert: Certificate, issuer: Certificate) => {
      const signer = [h.deviceRoot, h.archCa, h.brom].find((c) => c.cert === issuer || c.cert.subjectCN === issuer.subjectCN)!;
      return makeFakeOcspResponse(h, { cert, issuer, signer, includeSigner: false });
    };
    assert.equal(verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, ocsp: ocspAll(byIssuer) }).deviceChain.ocspStatus, 'good');
  });

  test('a cached good response is not reused once it is stale', () => {
    const cache = new GpuVerifierCache();
    const opts = { ...base, cache, ocsp: ocspAll(good) };
    verifyGpuEvidence({ report, certificateChain: h.chainPem }, opts);
    assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...opts, at: new Date('2025-03-01T00:00:00Z') })), 'ocsp.stale');
  });
});

describe('the RIM XML-DSig profile defeats signature wrapping', () => {
  const verify = (doc: string) => code(() => verifyRim(doc, { at, root: h.rimRoot.cert }));

  test('content hidden inside ds:Signature (unsigned) is refused', () => {
    const wrapped = rims.vbios.replace('</ds:KeyInfo>', '</ds:KeyInfo><ds:Object><Payload xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"/></ds:Object>');
    assert.notEqual(wrapped, rims.vbios);
    assert.equal(verify(wrapped), 'rim.malformed');
  });

  test('a second signature, a signature that is not the last child, a DTD or an xml: attribute are refused', () => {
    const sig = rims.vbios.slice(rims.vbios.indexOf('<ds:Signature'), rims.vbios.indexOf('</ds:Signature>') + '</ds:Signature>'.length);
    assert.equal(verify(rims.vbios.replace('</SoftwareIdentity>', `${sig}</SoftwareIdentity>`)), 'rim.malformed');
    assert.equal(verify(rims.vbios.replace(sig, '').replace('<ns0:Payload>', `${sig}<ns0:Payload>`)), 'rim.malformed');
    assert.equal(verify(`<!DOCTYPE x [<!ENTITY a "b">]>${rims.vbios}`), 'rim.malformed');
    assert.equal(verify(rims.vbios.replace('<ns0:Payload>', '<ns0:Payload xml:lang="en">')), 'rim.malformed');
  });

  test('an extra golden value anywhere in the document changes the signed digest', () => {
    const extra = rims.vbios.replace('<ns0:Payload>', `<ns0:Payload><ns0:Resource type="Measurement" index="60" active="True" alternatives="1" ns2:Hash0="${'00'.repeat(48)}" name="x" size="48"/>`);
    assert.equal(verify(extra), 'rim.digest_mismatch');
  });

  test('another signature algorithm or reference is refused before any crypto', () => {
    assert.equal(verify(rims.vbios.replace('xmldsig-more#ecdsa-sha384', 'xmldsig#rsa-sha1')), 'rim.malformed');
    assert.equal(verify(rims.vbios.replace('URI=""', 'URI="#x"')), 'rim.malformed');
    assert.equal(verify(rims.vbios.replace('<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>', '')), 'rim.malformed');
  });
});

describe('parsers fail closed on arbitrary input', () => {
  test('verifyRim throws only rim.* codes for mutated documents, and refuses deep nesting', () => {
    const doc = rims.vbios;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: doc.length - 1 }), fc.constantFrom('<', '>', '"', '=', 'a', '0', ' ', '/', '&'), (i, ch) => {
        try {
          verifyRim(doc.slice(0, i) + ch + doc.slice(i + 1), { at, root: h.rimRoot.cert });
        } catch (e) {
          assert.ok(isConclaveError(e) && /^rim\./.test(e.code), String(e));
        }
      }),
      { numRuns: 80 },
    );
    const deep = `${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}`;
    assert.equal(code(() => verifyRim(deep, { at, root: h.rimRoot.cert })), 'rim.malformed');
  });

  test('parseGpuReport throws only gpu.* codes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 0, max: report.byteLength - 1 }), fc.integer({ min: 0, max: 255 }), (junk, i, b) => {
        for (const input of [junk, (() => { const m = new Uint8Array(report); m[i] = b; return m; })(), report.subarray(0, i)]) {
          try {
            parseGpuReport(input);
          } catch (e) {
            assert.ok(isConclaveError(e) && /^gpu\./.test(e.code), String(e));
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  test('parseOcspResponse throws only ocsp.malformed', () => {
    const der = makeFakeOcspResponse(h, { cert: h.brom.cert, issuer: h.archCa.cert });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: der.byteLength - 1 }), fc.integer({ min: 0, max: 255 }), (i, b) => {
        const m = new Uint8Array(der);
        m[i] = b;
        try {
          parseOcspResponse(m);
        } catch (e) {
          assert.ok(isConclaveError(e, 'ocsp.malformed'), String(e));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('GPU verification hardening (time, memo bounds)', () => {
  const good = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer });

  test('an invalid verification time fails closed, cold and warm (cached chain, RIMs and OCSP answers)', () => {
    const cache = new GpuVerifierCache();
    const opts: GpuVerifyOptions = { ...base, rims, cache, ocsp: ocspAll(good) };
    assert.equal(verifyGpuEvidence({ report, certificateChain: h.chainPem }, opts).measres, 'success');
    for (const c of [cache, undefined]) {
      assert.equal(code(() => verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...opts, cache: c, at: new Date(Number.NaN) })), 'request.invalid');
    }
  });

  test('the OCSP memo stays within its bound however many distinct responses it verifies', () => {
    const cache = new GpuVerifierCache({ maxEntries: 4 });
    let seen = 0;
    for (let i = 0; i < 12; i++) {
      // A distinct response (thisUpdate one second apart) for every certificate on every round: a new memo key each.
      const fresh = (cert: Certificate, issuer: Certificate) => makeFakeOcspResponse(h, { cert, issuer, thisUpdate: new Date(Date.parse('2025-01-01T00:00:00Z') + i * 1000) });
      assert.equal(verifyGpuEvidence({ report, certificateChain: h.chainPem }, { ...base, cache, ocsp: ocspAll(fresh) }).deviceChain.ocspStatus, 'good');
      seen += 2;
      assert.ok(cache.ocsp.size <= 4, `the OCSP memo holds ${cache.ocsp.size} entries after ${seen} distinct responses`);
    }
    assert.equal(cache.ocsp.size, 4);
    // The default bound is finite too.
    assert.ok(Number.isFinite(new GpuVerifierCache().ocsp.max));
  });
});
