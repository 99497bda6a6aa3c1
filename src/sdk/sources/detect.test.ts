import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readFixture, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { collateralSource, kdsVcekPath } from './collateral.js';
import { detectEvidenceSource } from './detect.js';
import { snpPartsOfBody } from './maa-body.js';
import type { EvidenceSource } from './types.js';

describe('detectEvidenceSource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-detect-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const absentTsm = { root: join(dir, 'no-tsm') };
  const absentTpm = { tpm2Nvread: join(dir, 'no-tools', 'tpm2_nvread') };

  test('nothing present: one error naming both what to enable and what to install', async () => {
    await assert.rejects(detectEvidenceSource({ tsm: absentTsm, azureVtpm: absentTpm }), (e: { code: string; message: string }) => {
      assert.equal(e.code, 'sdk.evidence_source_unavailable');
      assert.match(e.message, /configfs-tsm not found at .*no-tsm: needs Linux 6\.7\+ in an SEV-SNP\/TDX guest with configfs mounted/);
      assert.match(e.message, /tpm2_nvread not found: apt-get install tpm2-tools/);
      return true;
    });
  });

  test('an explicit preference fails with its own message and does not fall back', async () => {
    await assert.rejects(detectEvidenceSource({ preference: 'tsm', tsm: absentTsm }), { code: 'sdk.evidence_source_unavailable', message: /configfs-tsm not found/ });
    await assert.rejects(detectEvidenceSource({ preference: 'azure-vtpm', azureVtpm: absentTpm }), { code: 'sdk.evidence_source_unavailable', message: /apt-get install tpm2-tools/ });
  });

  test('auto prefers configfs-tsm, then the vTPM; sim only when asked', async () => {
    mkdirSync(join(dir, 'tsm'));
    const tsm = await detectEvidenceSource({ tsm: { root: join(dir, 'tsm') }, azureVtpm: absentTpm });
    assert.equal(tsm.source.name, 'tsm');
    const tool = join(dir, 'tpm2_nvread');
    writeFileSync(tool, '#!/bin/sh\n');
    chmodSync(tool, 0o755);
    const vtpm = await detectEvidenceSource({ tsm: absentTsm, azureVtpm: { tpm2Nvread: tool } });
    assert.equal(vtpm.source.name, 'azure-vtpm');
    assert.ok(vtpm.findings.some((f) => f.includes('configfs-tsm not found')));
    const sim = await detectEvidenceSource({ preference: 'sim', sim: { dataDir: dir } });
    assert.equal(sim.source.name, 'sim');
  });
});

describe('collateral source', { skip: skipWithoutFixtures() }, () => {
  test('KDS path from REPORTED_TCB and CHIP_ID; chain attached to the inner report', async () => {
    const report = new Uint8Array(readFixture('amd', 'snp-milan-virtee', 'report.bin'));
    const path = kdsVcekPath(report, 'Milan');
    const chipId = Buffer.from(report.subarray(0x1a0, 0x1e0)).toString('hex');
    assert.match(path, new RegExp(`^/vcek/v1/Milan/${chipId}\\?blSPL=\\d\\d&teeSPL=\\d\\d&snpSPL=\\d\\d&ucodeSPL=\\d+$`));
    const vcek = readFixture('amd', 'snp-milan-virtee', 'vcek.der');
    const chain = readFixtureText('amd', 'snp-milan-virtee', 'cert_chain.pem');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (req.url === path) res.end(vcek);
      else if (req.url === '/vcek/v1/Milan/cert_chain') res.end(chain);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const inner: EvidenceSource = {
        name: 'fake',
        describe: () => 'fake',
        getEvidence: () => Promise.reject(new Error('unused')),
        getSnpReport: async () => ({ report }),
      };
      const ev = await collateralSource(inner, { url: `http://127.0.0.1:${port}`, product: 'Milan' }).getEvidence(new Uint8Array([1]));
      const parts = snpPartsOfBody(ev.body);
      assert.ok(parts.vcekCertChainPem?.startsWith('-----BEGIN CERTIFICATE-----'));
      assert.ok(parts.vcekCertChainPem?.endsWith(chain));
      assert.deepEqual(seen, [path, '/vcek/v1/Milan/cert_chain']);
    } finally {
      server.close();
    }
  });
});
