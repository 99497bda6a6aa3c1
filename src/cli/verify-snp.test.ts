import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { fixturePath, readFixture, skipWithoutFixtures } from '../../test/fixtures.js';
import { verifySnpCommand } from './verify-snp.js';

const skip = skipWithoutFixtures();
const at = '2025-06-01T00:00:00Z';

async function run(file: string, opts: Parameters<typeof verifySnpCommand>[1]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await verifySnpCommand(file, opts, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('conclave verify snp', { skip }, () => {
  test('raw report with --vcek: exit 0 and the result JSON', async () => {
    const r = await run(fixturePath('amd/snp-milan-virtee/report.bin'), { vcek: fixturePath('amd/snp-milan-virtee/vcek.der'), chain: fixturePath('amd/snp-milan-virtee/cert_chain.pem'), at });
    assert.equal(r.code, 0, r.out + r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.verified, true);
    assert.equal(j.product, 'Milan');
  });

  test('Azure HCL (trustee JSON, detected) and MAA body with a THIM JSON as --vcek', async () => {
    assert.equal((await run(fixturePath('amd/azure-cvm-hcl-genoa-trustee/evidence-genoa.json'), { at })).code, 0);
    const r = await run(fixturePath('amd/azure-aci-sidecar/snp_report.bin'), { vcek: fixturePath('amd/azure-aci-sidecar/uvm_host_amd_certificate.json'), format: 'raw', at });
    assert.equal(r.code, 0, r.out);
    const m = await run(fixturePath('amd/azure-aci-sidecar/DERIVED_maa_attest_sevsnpvm_request.json'), { runtimeData: fixturePath('amd/azure-aci-sidecar/runtime_data.json'), at });
    assert.equal(m.code, 0, m.out);
    assert.deepEqual(JSON.parse(m.out).runtimeData.json, { akey: 'avalue' });
  });

  test('verification failure: exit 1 with the error code', async () => {
    const r = await run(fixturePath('amd/snp-milan-virtee/report.bin'), { vcek: fixturePath('amd/snp-milan-gosevguest/vcek.der'), at });
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.out), { verified: false, error: { code: 'snp.chip_id_mismatch', message: JSON.parse(r.out).error.message } });
  });

  test('usage and I/O errors: exit 2', async () => {
    assert.equal((await run('/nonexistent/report.bin', { at })).code, 2);
    assert.equal((await run(fixturePath('amd/snp-milan-virtee/report.bin'), { at: 'yesterday' })).code, 2);
    assert.equal((await run(fixturePath('amd/snp-milan-virtee/report.bin'), { format: 'tdx' })).code, 2);
  });

  test('--kds fetches the VCEK from a KDS-compatible server', async () => {
    const vcek = readFixture('amd/snp-milan-gosevguest/vcek.der');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (req.url?.startsWith('/vcek/v1/Milan/3ac3fe21')) {
        res.writeHead(200, { 'content-type': 'application/pkix-cert' }).end(vcek);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await run(fixturePath('amd/snp-milan-gosevguest/report.bin'), { kds: base, at });
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(seen[0]!, /\?blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=68$/);
      const miss = await run(fixturePath('amd/snp-milan-virtee/report.bin'), { kds: base, at });
      assert.equal(miss.code, 2);
    } finally {
      server.close();
    }
  });
});
