/**
 * Composite attestation with the Azure CVM HCL form: the HCL report binds its own runtime data (the vTPM
 * variable data), and the GPU nonce is derived from exactly those bytes. A real Azure CVM report with
 * simulated GPUs shows it: GPUs answering the HCL runtime data verify (and are then refused because
 * simulated and real evidence never mix), GPUs answering anything else fail on the nonce.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { b64url } from '../../../src/core/bytes.js';
import { pemToDer } from '../../../src/core/x509.js';
import { parseHclReport } from '../../../src/evidence/azure-vtpm/hcl.js';
import { gpuNonceFor } from '../../../src/evidence/nvidia/nonce.js';
import { serializeGpuEvidence } from '../../../src/evidence/nvidia/serialized.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { fixturePath, readFixture, skipWithoutFixtures } from '../../fixtures.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const skip = skipWithoutFixtures();

describe('composite attestation with an Azure CVM HCL report', { skip }, () => {
  let kds: Server;
  let server: TestServer;
  const dir = ['amd', 'azure-cvm-hcl-milan-trustee'];
  const hcl = skip ? new Uint8Array() : new Uint8Array(readFixture(...dir, 'hcl_report.bin'));

  before(async () => {
    const vcek = pemToDer(readFileSync(fixturePath(...dir, 'vcek.pem'), 'utf8'))[0]!;
    const chain = readFixture('amd', 'roots', 'kds_cert_chain', 'ask_ark_milan.pem');
    kds = createServer((req, res) => {
      if (/^\/vcek\/v1\/Milan\/cert_chain/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(chain);
      else if (/^\/vcek\/v1\/Milan\/[0-9a-f]{128}\?/.test(req.url ?? '')) res.writeHead(200, { 'content-type': 'application/pkix-cert' }).end(Buffer.from(vcek));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => kds.listen(0, '127.0.0.1', () => r()));
    server = await startTestServer({ simulate: true, upstreamAmd: `http://127.0.0.1:${(kds.address() as AddressInfo).port}` }, { now: () => new Date('2025-06-01T00:00:00Z') });
  });
  after(async () => {
    await server?.stop();
    kds?.close();
  });

  async function attestWith(gpuRuntimeData: Uint8Array): Promise<{ status: number; text: string }> {
    const gpus = loadOrCreateSimulatedTee(server.dataDir).gpus.evidence(gpuNonceFor(gpuRuntimeData), 1);
    const r = await server.sendHttps('POST', '/attest/SevSnpVm?api-version=2022-08-01', { body: { report: b64url(hcl), gpuEvidence: serializeGpuEvidence(gpus) } });
    return { status: r.status, text: r.text };
  }

  test('GPUs answering the HCL runtime data get past the nonce (and are refused only for mixing simulated with real)', async () => {
    const r = await attestWith(parseHclReport(hcl).runtimeData);
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /evidence\.untrusted_root/);
    assert.match(r.text, /simulated and real/);
  });

  test('GPUs answering other runtime data fail with gpu.nonce_mismatch naming the GPU', async () => {
    const r = await attestWith(new TextEncoder().encode('{"keys":[]}'));
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /gpu\.nonce_mismatch/);
    assert.match(r.text, /GPU-0/);
  });
});
