import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fixturePath, readFixtureText, skipWithoutFixtures } from '../../test/fixtures.js';
import { verifyGpuCommand } from './verify-gpu.js';

const skip = skipWithoutFixtures();

async function run(file: string, opts: Parameters<typeof verifyGpuCommand>[1]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await verifyGpuCommand(file, opts, { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } });
  return { code, out: out.join(''), err: err.join('') };
}

function rimDir(vector: string, ...files: string[]): string {
  const d = mkdtempSync(join(tmpdir(), 'conclave-rims-'));
  for (const f of files) copyFileSync(fixturePath('nvidia', vector, f), join(d, f));
  return d;
}

describe('conclave verify gpu', { skip }, () => {
  if (skip) return;
  const v = 'hopper-545.00-nvtrust-initial-sample';
  const report = fixturePath('nvidia', v, 'attestation_report.hex');
  const chain = fixturePath('nvidia', v, 'cert_chain.pem');
  const nonce = skip ? '' : readFixtureText('nvidia', v, 'nonce.hex').trim();

  test('report + chain + matching RIMs at the reference time: exit 0, measres success', async () => {
    const rim = rimDir(v, 'Driver_RIM_test_no_gpu.swidtag', '1010_0200_882_96005E0001_test_no_gpu.swidtag');
    const r = await run(report, { chain, rim, nonce, at: '2024-01-01T00:00:00Z' });
    assert.equal(r.code, 0, r.out + r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.verified, true);
    assert.equal(j.measres, 'success');
    assert.equal(j.driverVersion, '545.00');
    assert.equal(j.nonceChecked, true);
  });

  test('a RIM whose golden values differ: exit 1 naming the index, expected and actual', async () => {
    const rim = rimDir(v, 'Driver_RIM_test_no_gpu.swidtag', 'NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml');
    const r = await run(report, { chain, rim, at: '2024-01-01T00:00:00Z' });
    assert.equal(r.code, 1);
    const j = JSON.parse(r.out);
    assert.equal(j.error.code, 'gpu.measurement_mismatch');
    assert.equal(j.error.detail.index, 1);
    assert.equal(typeof j.error.detail.actual, 'string');
    assert.equal(j.nonceChecked, false);
  });

  test('expired RIMs (now), a wrong nonce and a bad chain: exit 1 with their codes', async () => {
    const rim = rimDir(v, 'Driver_RIM_test_no_gpu.swidtag', '1010_0200_882_96005E0001_test_no_gpu.swidtag');
    const expired = JSON.parse((await run(report, { chain, rim, at: '2026-12-06T00:00:00Z' })).out);
    assert.equal(expired.error.code, 'rim.not_found');
    assert.deepEqual(
      expired.rimErrors.map((e: { code: string }) => e.code),
      ['rim.expired', 'rim.expired'],
    );
    assert.equal(JSON.parse((await run(report, { chain, nonce: '00'.repeat(32) })).out).error.code, 'gpu.nonce_mismatch');
    const bad = await run(report, { chain: fixturePath('nvidia', v, 'negative_cert_chain_missing_brom.pem') });
    assert.equal(bad.code, 1);
    assert.equal(JSON.parse(bad.out).error.code, 'gpu.chain_invalid');
  });

  test("NVIDIA's serialised multi-GPU evidence: one result per GPU", async () => {
    const r = await run(fixturePath('nvidia', 'hopper-multi-gpu-evidence-json', 'multi_gpu_hopper.json'), { at: '2025-01-01T00:00:00Z' });
    assert.equal(r.code, 0, r.out);
    assert.equal(JSON.parse(r.out).gpus.length, 4);
  });

  test('usage and I/O errors: exit 2', async () => {
    assert.equal((await run(report, {})).code, 2);
    assert.equal((await run('/nonexistent', { chain })).code, 2);
    assert.equal((await run(report, { chain, at: 'yesterday' })).code, 2);
    assert.equal((await run(report, { chain, nonce: 'xyz' })).code, 2);
    const ambiguous = rimDir(v, '1010_0200_882_96005E0001_PROD.swidtag', '1010_0200_882_96005E0001_test_no_gpu.swidtag');
    assert.equal((await run(report, { chain, rim: ambiguous, at: '2024-01-01T00:00:00Z' })).code, 2);
  });
});
