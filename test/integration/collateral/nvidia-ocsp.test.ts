/**
 * NVIDIA OCSP answers and RIMs in the collateral service (domain level, real SQLite store), with a fake
 * NVIDIA hierarchy standing in for NVIDIA's roots (no real OCSP response exists offline): verified before
 * storing, one upstream request per CertID across concurrent misses, refresh, refusal of forged answers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CollateralItem } from '../../../src/collateral/cache/item.js';
import { certIdOfScope, fetchOcsp, fetchRim, ocspScope, verifyNvidiaOcspItem, verifyNvidiaRimItem } from '../../../src/collateral/nvidia.js';
import type { CollateralUpstream, UpstreamAnswer } from '../../../src/collateral/ports.js';
import { type CollateralService, createCollateralService } from '../../../src/collateral/service.js';
import { certIdFor, parseOcspRequest, verifyOcspResponse } from '../../../src/core/ocsp.js';
import { isConclaveError } from '../../../src/core/errors.js';
import { createFakeNvidiaHierarchy, makeFakeOcspResponse, makeFakeRims } from '../../../src/evidence/nvidia/testing.js';
import { createCollateralStore } from '../../../src/storage/collateral-store.js';
import type { Database } from '../../../src/storage/database.js';
import { MIGRATIONS } from '../../../src/storage/migrations/index.js';
import { openDatabase } from '../../../src/storage/open.js';

const h = createFakeNvidiaHierarchy();
const rims = makeFakeRims(h);
const now = new Date('2025-01-03T00:00:00Z');

describe('NVIDIA OCSP and RIMs in the collateral service (fake NVIDIA roots)', () => {
  let db: Database;
  let svc: CollateralService;
  const calls: string[] = [];
  let ocspStatus: 'good' | 'revoked' = 'good';
  let ocspThisUpdate = new Date('2025-01-02T00:00:00Z');
  let forge = false;

  before(async () => {
    db = await openDatabase(`sqlite:${join(mkdtempSync(join(tmpdir(), 'conclave-nv-')), 'c.db')}`);
    await db.migrate(MIGRATIONS);
    const upstream: CollateralUpstream = {
      hasIntel: false,
      hasAmd: false,
      hasNvidiaRim: true,
      hasNvidiaOcsp: true,
      intelIsPcs: false,
      intel: () => Promise.reject(new Error('no Intel')),
      intelPost: () => Promise.reject(new Error('no Intel')),
      intelRootCaCrl: () => Promise.reject(new Error('no Intel')),
      amd: () => Promise.reject(new Error('no AMD')),
      async nvidiaRim(id): Promise<UpstreamAnswer> {
        calls.push(`rim ${id}`);
        const xml = id.includes('VBIOS') ? rims.vbios : rims.driver;
        return { url: `https://rim.example/v1/rim/${id}`, status: 200, headers: {}, body: Buffer.from(JSON.stringify({ id, rim: Buffer.from(xml).toString('base64') })) };
      },
      async nvidiaOcsp(request): Promise<UpstreamAnswer> {
        const { certId } = parseOcspRequest(request);
        calls.push(`ocsp ${certId.serial}`);
        await new Promise((r) => setTimeout(r, 50));
        const signer = forge ? createFakeNvidiaHierarchy({ rootCn: 'Elsewhere' }).ocspResponder : undefined;
        const body = makeFakeOcspResponse(h, { cert: h.brom.cert, issuer: h.archCa.cert, status: ocspStatus, thisUpdate: ocspThisUpdate, ...(signer ? { signer } : {}) });
        return { url: 'https://ocsp.example/', status: 200, headers: { 'content-type': 'application/ocsp-response' }, body };
      },
      owns: (url) => url.startsWith('https://ocsp.example/') || url.startsWith('https://rim.example/'),
    };
    const verifyItem = (item: CollateralItem) =>
      item.kind === 'nvidia_ocsp' ? verifyNvidiaOcspItem(item, [h.deviceRoot.cert]) : verifyNvidiaRimItem(item, h.rimRoot.cert);
    svc = createCollateralService({ mode: 'lazy', store: createCollateralStore(db), upstream, now: () => now, logger: { warn: () => undefined }, verifyItem });
    await svc.sync();
  });
  after(() => db?.close());

  const certId = () => certIdFor(h.brom.cert, h.archCa.cert, 'sha384');

  test('concurrent misses for one certificate make one upstream request; the stored answer verifies for that CertID', async () => {
    const scope = ocspScope(certId());
    const items = await Promise.all(Array.from({ length: 10 }, () => svc.fetchOnce(scope, () => svc.get(scope), () => fetchOcsp(svc, certId()))));
    assert.equal(calls.filter((c) => c.startsWith('ocsp')).length, 1);
    const item = items[0]!;
    assert.equal(item.kind, 'nvidia_ocsp');
    assert.equal(item.nextUpdate, Date.parse('2025-01-09T00:00:00Z'));
    assert.deepEqual(certIdOfScope(item.scope).serial, h.brom.cert.serial);
    const r = verifyOcspResponse(item.body, { target: { cert: h.brom.cert, issuer: h.archCa.cert }, root: h.deviceRoot.cert, at: now });
    assert.equal(r.status, 'good');
    assert.equal(svc.get(scope)?.key, item.key);
  });

  test('a refresh fetches again and stores the new status (a revocation reaches verifiers)', async () => {
    ocspStatus = 'revoked';
    const item = await svc.refresh(svc.get(ocspScope(certId()))!, { force: true });
    assert.equal(calls.filter((c) => c.startsWith('ocsp')).length, 2);
    assert.equal(verifyOcspResponse(item.body, { target: { certId: certId() }, root: h.deviceRoot.cert, at: now }).status, 'revoked');
    ocspStatus = 'good';
  });

  test('attack: an older "good" answer replayed after a revocation is refused; the revocation stays cached', async () => {
    // OCSP answers carry no nonce here (so they can be cached): an upstream, or anyone on its path, could
    // answer a refresh with an earlier "good" answer that is still inside its validity window, undoing a
    // revocation for every verifier served from the cache. CRLs and TCB infos only move forward; so does this.
    const scope = ocspScope(certId());
    ocspStatus = 'revoked';
    ocspThisUpdate = new Date('2025-01-02T12:00:00Z');
    try {
      const revoked = await svc.refresh(svc.get(scope)!, { force: true });
      assert.equal(verifyOcspResponse(revoked.body, { target: { certId: certId() }, root: h.deviceRoot.cert, at: now }).status, 'revoked');
      ocspStatus = 'good';
      ocspThisUpdate = new Date('2025-01-02T00:00:00Z');
      await assert.rejects(svc.refresh(svc.get(scope)!, { force: true }), (e) => isConclaveError(e, 'upstream.collateral_rollback'));
      const kept = svc.get(scope)!;
      assert.equal(verifyOcspResponse(kept.body, { target: { certId: certId() }, root: h.deviceRoot.cert, at: now }).status, 'revoked');
      // A newer answer still replaces it (a lifted hold, a later response).
      ocspThisUpdate = new Date('2025-01-02T18:00:00Z');
      const newer = await svc.refresh(svc.get(scope)!, { force: true });
      assert.equal(verifyOcspResponse(newer.body, { target: { certId: certId() }, root: h.deviceRoot.cert, at: now }).status, 'good');
    } finally {
      ocspStatus = 'good';
      ocspThisUpdate = new Date('2025-01-02T00:00:00Z');
    }
  });

  test('an answer signed by a responder outside the NVIDIA PKI is refused and not stored', async () => {
    forge = true;
    const other = certIdFor(h.archCa.cert, h.deviceRoot.cert, 'sha384');
    await assert.rejects(fetchOcsp(svc, other), (e) => isConclaveError(e, 'upstream.unavailable'));
    assert.equal(svc.get(ocspScope(other)), undefined);
    forge = false;
  });

  test('RIMs by id are stored verified, and a RIM for another version is refused', async () => {
    const item = await fetchRim(svc, 'NV_GPU_DRIVER_GH100_550.90.07');
    assert.equal(item.kind, 'nvidia_rim');
    await assert.rejects(fetchRim(svc, 'NV_GPU_DRIVER_GH100_551.00.01'), (e) => isConclaveError(e, 'upstream.unavailable'));
    await assert.rejects(fetchRim(svc, '../etc/passwd'), (e) => isConclaveError(e, 'request.invalid'));
  });
});
