/**
 * verifyOcspResponse's time checks (fake NVIDIA PKI: a delegated responder the issuing CA signed).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createFakeNvidiaHierarchy, makeFakeOcspResponse } from '../evidence/nvidia/testing.js';
import { isConclaveError } from './errors.js';
import { verifyOcspResponse } from './ocsp.js';

const h = createFakeNvidiaHierarchy();
const target = { cert: h.brom.cert, issuer: h.archCa.cert };
// Current 2025-01-01 .. 2025-01-08.
const der = makeFakeOcspResponse(h, { ...target, thisUpdate: new Date('2025-01-01T00:00:00Z') });

describe('OCSP currency', () => {
  test('current inside its window, stale outside it', () => {
    assert.equal(verifyOcspResponse(der, { target, root: h.deviceRoot.cert, at: new Date('2025-01-03T00:00:00Z') }).status, 'good');
    assert.throws(() => verifyOcspResponse(der, { target, root: h.deviceRoot.cert, at: new Date('2026-01-01T00:00:00Z') }), (e) => isConclaveError(e, 'ocsp.stale'));
  });

  test('an invalid verification time fails closed: a stale response is not current at NaN', () => {
    // NaN compares false both ways: neither the responder's validity nor thisUpdate/nextUpdate refused it.
    // The responder is signed by the device root: for the CA it is the issuer's own responder, for the BROM
    // certificate a delegated one proven by its chain.
    for (const t of [{ cert: h.archCa.cert, issuer: h.deviceRoot.cert }, target]) {
      const stale = makeFakeOcspResponse(h, { ...t, thisUpdate: new Date('2025-01-01T00:00:00Z') });
      assert.throws(() => verifyOcspResponse(stale, { target: t, root: h.deviceRoot.cert, at: new Date('2026-01-01T00:00:00Z') }), (e) => isConclaveError(e, 'ocsp.stale'));
      assert.throws(() => verifyOcspResponse(stale, { target: t, root: h.deviceRoot.cert, at: new Date(Number.NaN) }), (e) => isConclaveError(e, 'request.invalid'));
    }
  });
});
