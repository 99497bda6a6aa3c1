/**
 * NVIDIA collateral in the cache: RIMs by id from a fake NVIDIA RIM service on 127.0.0.1 (serving the
 * fixture RIMs), coalescing, stale-if-error, the admin API, offline bundles into an air-gapped instance,
 * and the OCSP route failing closed on responses that do not chain to NVIDIA's root.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { buildOcspRequest, buildOcspRequestFor, parseOcspResponse } from '../../../src/core/ocsp.js';
import { createFakeNvidiaHierarchy, makeFakeOcspResponse } from '../../../src/evidence/nvidia/testing.js';
import { readFixture, skipWithoutFixtures } from '../../fixtures.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();
const RIM_ID = 'NV_GPU_DRIVER_GH100_550.144.03';
const VBIOS_ID = 'NV_GPU_VBIOS_1010_0200_882_96005E0001';

interface FakeNvidia {
  url: string;
  hits: Map<string, number>;
  delayMs: number;
  down: boolean;
  /** id → XML the fake RIM service serves. */
  rims: Map<string, Buffer>;
  ocsp: (req: Buffer) => Buffer;
  close(): Promise<void>;
}

async function startFakeNvidia(): Promise<FakeNvidia> {
  const f: Omit<FakeNvidia, 'url' | 'close'> = { hits: new Map(), delayMs: 0, down: false, rims: new Map(), ocsp: () => Buffer.alloc(0) };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      f.hits.set(path, (f.hits.get(path) ?? 0) + 1);
      setTimeout(() => {
        if (f.down) return void res.writeHead(503).end();
        const m = /^\/v1\/rim\/(.+)$/.exec(path);
        if (req.method === 'GET' && m) {
          const xml = f.rims.get(decodeURIComponent(m[1]!));
          if (!xml) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: decodeURIComponent(m[1]!), rim: xml.toString('base64'), sha256: '' }));
        }
        if (req.method === 'POST' && path === '/ocsp') return void res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(f.ocsp(Buffer.concat(chunks)));
        res.writeHead(404).end();
      }, f.delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(f, { url, close: () => new Promise<void>((r) => server.close(() => r())) }) as FakeNvidia;
}

describe('NVIDIA RIMs and OCSP in the collateral cache', { skip }, () => {
  let nv: FakeNvidia;
  let server: TestServer;
  let airGapped: TestServer;
  const clock = new Date('2025-12-30T00:00:00Z');

  before(async () => {
    nv = await startFakeNvidia();
    nv.rims.set(RIM_ID, readFixture('nvidia', 'rims', 'NV_GPU_DRIVER_GH100_550.144.03.xml'));
    // A mis-targeted answer: a genuine RIM, but for another id.
    nv.rims.set('NV_GPU_DRIVER_GH100_999.99.99', readFixture('nvidia', 'rims', 'NV_GPU_DRIVER_GH100_550.144.03.xml'));
    nv.rims.set(VBIOS_ID, readFixture('nvidia', 'rims', '1010_0200_882_96005E0001_PROD.swidtag'));
    server = await startTestServer({ services: 'collateral', upstreamNvidiaRim: nv.url, upstreamNvidiaOcsp: `${nv.url}/ocsp` }, { now: () => clock });
    airGapped = await startTestServer({ services: 'collateral', collateralMode: 'offline' }, { now: () => clock });
  });
  after(async () => {
    await server?.stop();
    await airGapped?.stop();
    await nv?.close();
  });

  test('a burst of misses for one RIM id makes one upstream request; the answer is NVIDIA’s RIM service shape', async () => {
    nv.delayMs = 150;
    const rs = await Promise.all(Array.from({ length: 40 }, () => server.send('GET', `/v1/rim/${RIM_ID}`)));
    nv.delayMs = 0;
    assert.ok(rs.every((r) => r.status === 200), rs[0]!.text);
    assert.equal(nv.hits.get(`/v1/rim/${RIM_ID}`), 1);
    const j = rs[0]!.json() as { id: string; rim: string; sha256: string };
    assert.equal(j.id, RIM_ID);
    assert.deepEqual(Buffer.from(j.rim, 'base64'), readFixture('nvidia', 'rims', 'NV_GPU_DRIVER_GH100_550.144.03.xml'));
    assert.match(j.sha256, /^[0-9a-f]{64}$/);
  });

  test('a RIM that does not verify now (expired signer), an id for another version and an unknown id are refused', async () => {
    assert.equal((await server.send('GET', `/v1/rim/${VBIOS_ID}`)).status, 503);
    const wrong = await server.send('GET', '/v1/rim/NV_GPU_DRIVER_GH100_999.99.99');
    assert.equal(wrong.status, 503);
    assert.equal(wrong.headers['error-code'], 'upstream.unavailable');
    assert.equal((await server.send('GET', '/v1/rim/NV_GPU_DRIVER_GH100_1.2.3')).status, 404);
    assert.equal((await server.send('GET', '/v1/rim/not-a-rim-id')).status, 400);
  });

  test('the admin API lists and refreshes the RIM; with the upstream down it is still served, marked stale', async () => {
    const admin = { authorization: `Bearer ${await server.adminToken()}` };
    const status = (await server.send('GET', '/admin/collateral/status', { headers: admin })).json() as { upstreams: Record<string, string | null>; items: { key: string; kind: string }[] };
    assert.equal(status.upstreams.nvidiaRim, nv.url);
    assert.ok(status.items.some((i) => i.kind === 'nvidia_rim' && i.key === `nvidia/rim/${RIM_ID}`));
    const refreshed = await server.send('POST', `/admin/collateral/refresh?key=${encodeURIComponent(`nvidia/rim/${RIM_ID}`)}`, { headers: admin });
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal(nv.hits.get(`/v1/rim/${RIM_ID}`), 2);
    nv.down = true;
    const failed = await server.send('POST', `/admin/collateral/refresh?key=${encodeURIComponent(`nvidia/rim/${RIM_ID}`)}`, { headers: admin });
    assert.notEqual(failed.status, 200);
    const r = await server.send('GET', `/v1/rim/${RIM_ID}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.warning, '110 - "Response is Stale"');
    nv.down = false;
  });

  test('an offline bundle carries the RIM into an air-gapped instance, which serves it without any upstream', async () => {
    const bundle = await server.send('GET', '/admin/collateral/bundle', { headers: { authorization: `Bearer ${await server.adminToken()}` } });
    assert.equal(bundle.status, 200);
    assert.equal((await airGapped.send('GET', `/v1/rim/${RIM_ID}`)).status, 404);
    const imported = await airGapped.send('POST', '/admin/collateral/bundle', { headers: { authorization: `Bearer ${await airGapped.adminToken()}`, 'content-type': 'application/json' }, body: bundle.text });
    assert.equal(imported.status, 200, imported.text);
    const r = await airGapped.send('GET', `/v1/rim/${RIM_ID}`);
    assert.equal(r.status, 200);
    assert.equal((r.json() as { id: string }).id, RIM_ID);
  });

  test('a bundle with an altered RIM is refused whole', async () => {
    const bundle = JSON.parse((await server.send('GET', '/admin/collateral/bundle', { headers: { authorization: `Bearer ${await server.adminToken()}` } })).text);
    const item = bundle.items.find((i: { kind: string }) => i.kind === 'nvidia_rim');
    const xml = Buffer.from(item.body, 'base64').toString('utf8').replace('active="False"', 'active="True"');
    item.body = Buffer.from(xml).toString('base64');
    const r = await airGapped.send('POST', '/admin/collateral/bundle', { headers: { authorization: `Bearer ${await airGapped.adminToken()}`, 'content-type': 'application/json' }, body: JSON.stringify(bundle) });
    assert.equal(r.status, 400);
    assert.equal(r.headers['error-code'] ?? (r.json() as { error?: { code?: string } }).error?.code, 'collateral.bundle_invalid');
  });

  test('OCSP: malformed requests, no upstream, and responses that do not chain to NVIDIA’s root all fail closed', async () => {
    const h = createFakeNvidiaHierarchy();
    const request = buildOcspRequest(h.brom.cert, h.archCa.cert, { hash: 'sha384' });
    const post = (s: TestServer, body: Uint8Array) => s.send('POST', '/ocsp', { headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from(body) });
    const status = (b: Buffer) => b[4];
    assert.equal(status((await post(server, Uint8Array.of(1, 2, 3))).raw), 1, 'malformedRequest');
    assert.equal(status((await post(airGapped, request)).raw), 6, 'unauthorized (nothing cached, no upstream)');
    nv.ocsp = () => Buffer.from(makeFakeOcspResponse(h, { cert: h.brom.cert, issuer: h.archCa.cert, thisUpdate: new Date('2025-12-29T00:00:00Z') }));
    const forged = await post(server, request);
    assert.equal(forged.headers['content-type'], 'application/ocsp-response');
    assert.equal(status(forged.raw), 3, 'tryLater: the upstream answer did not verify, so it is neither cached nor passed on');
    assert.equal(nv.hits.get('/ocsp'), 1);
    assert.throws(() => parseOcspResponse(new Uint8Array(forged.raw)));
  });

  test('attack: anonymous OCSP misses for invented CertIDs run under the caller’s miss budget, not the in-process one attestations share', async () => {
    // POST /ocsp fetched a miss outside asClient, so an anonymous caller's misses counted against the
    // in-process budget (8 in all), the one the attestation service's own collateral fetches run under: a
    // flood of invented CertIDs took all of it, and attestations needing a fetch were refused as busy.
    const post = (body: Uint8Array) => server.send('POST', '/ocsp', { headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from(body) });
    const certId = (i: number) => ({ hash: 'sha384' as const, issuerNameHash: Buffer.alloc(48, 0xa0 + i), issuerKeyHash: Buffer.alloc(48, 0xb0 + i), serial: (0x1000 + i).toString(16) });
    nv.delayMs = 400;
    nv.ocsp = () => Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x06]);
    try {
      const before = nv.hits.get('/ocsp') ?? 0;
      const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => post(buildOcspRequestFor(certId(i)))));
      assert.ok(rs.every((r) => r.headers['content-type'] === 'application/ocsp-response'));
      const upstream = (nv.hits.get('/ocsp') ?? 0) - before;
      assert.ok(upstream <= 4, `at most the per-client budget (4) reached the upstream: ${upstream}`);
      assert.ok(rs.filter((r) => r.raw[4] === 3).length >= 8, 'the rest were answered tryLater');
    } finally {
      nv.delayMs = 0;
    }
  });
});
