import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { toHex } from '../../core/bytes.js';
import { parseHclReport } from '../../evidence/azure-vtpm/hcl.js';
import { fixturePath, readFixture, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import { azureVtpmSource } from './azure-vtpm.js';
import { maaReportData, snpPartsOfBody } from './maa-body.js';

/** A fake tpm2-tools: nvread cats an HCL report file, nvwrite copies its -i file aside. */
function fakeTools(dir: string, hclFile: string) {
  const nvread = join(dir, 'tpm2_nvread');
  const nvwrite = join(dir, 'tpm2_nvwrite');
  const written = join(dir, 'written.bin');
  writeFileSync(nvread, `#!/bin/sh\n[ "$3" = "0x01400001" ] || { echo "bad index $3" >&2; exit 1; }\ncat '${hclFile}'\n`);
  writeFileSync(nvwrite, `#!/bin/sh\n[ "$3" = "0x01400002" ] || { echo "bad index $3" >&2; exit 1; }\ncp "$5" '${written}'\n`);
  chmodSync(nvread, 0o755);
  chmodSync(nvwrite, 0o755);
  return { nvread, nvwrite, written };
}

/** An HCL report like the recorded one but whose runtime claims carry `userData` (what a refresh does). */
function hclWithUserData(recorded: Uint8Array, userDataHex: string): Uint8Array {
  const hcl = parseHclReport(recorded);
  const claims = JSON.parse(Buffer.from(hcl.runtimeData).toString('utf8')) as Record<string, unknown>;
  const variable = Buffer.from(JSON.stringify({ ...claims, 'user-data': userDataHex.toUpperCase() }));
  const head = Buffer.from(recorded.subarray(0, 32 + 1184));
  const igvm = Buffer.alloc(20);
  igvm.writeUInt32LE(20 + variable.length, 0);
  igvm.writeUInt32LE(1, 4);
  igvm.writeUInt32LE(2, 8);
  igvm.writeUInt32LE(1, 12);
  igvm.writeUInt32LE(variable.length, 16);
  return new Uint8Array(Buffer.concat([head, igvm, variable, Buffer.alloc(64)]));
}

describe('Azure CVM vTPM source', { skip: skipWithoutFixtures() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-vtpm-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const fixture of ['azure-cvm-hcl-milan-trustee', 'azure-cvm-hcl-genoa-trustee']) {
    test(`${fixture}: SevSnpVm body with the HCL runtime claims as runtime data`, async () => {
      const tools = fakeTools(dir, fixturePath('amd', fixture, 'hcl_report.bin'));
      const runtimeData = new Uint8Array(Buffer.from('{"nonce":"1"}'));
      const src = azureVtpmSource({ tpm2Nvread: tools.nvread, tpm2Nvwrite: tools.nvwrite, requireUserData: false });
      const ev = await src.getEvidence(runtimeData);
      assert.equal(ev.path, '/attest/SevSnpVm');
      const { report, vcekCertChainPem } = snpPartsOfBody(ev.body);
      assert.deepEqual(Buffer.from(report), readFixture('amd', fixture, 'snp_report.bin'));
      assert.equal(vcekCertChainPem, undefined);
      const rd = ev.body.runtimeData as { data: string; dataType: string };
      assert.equal(rd.dataType, 'JSON');
      assert.deepEqual(Buffer.from(rd.data, 'base64'), readFixture('amd', fixture, 'runtime_data.json'));
      assert.deepEqual(new Uint8Array(readFileSync(tools.written)), maaReportData(runtimeData), 'user data written to NV 0x01400002');
    });
  }

  test('a report not refreshed with our user data is refused by default', async () => {
    const tools = fakeTools(dir, fixturePath('amd', 'azure-cvm-hcl-milan-trustee', 'hcl_report.bin'));
    await assert.rejects(azureVtpmSource({ tpm2Nvread: tools.nvread, tpm2Nvwrite: tools.nvwrite }).getEvidence(new Uint8Array([1])), { code: 'sdk.evidence_failed', message: /refreshed/ });
  });

  test('a refreshed report (user-data = SHA-256(runtime data) ‖ zeros) passes, with certificates attached', async () => {
    const runtimeData = new Uint8Array(Buffer.from('{"keys":[]}'));
    const file = join(dir, 'refreshed.bin');
    writeFileSync(file, hclWithUserData(new Uint8Array(readFixture('amd', 'azure-cvm-hcl-milan-trustee', 'hcl_report.bin')), toHex(maaReportData(runtimeData))));
    const tools = fakeTools(dir, file);
    const pem = readFixtureText('amd', 'azure-cvm-hcl-milan-trustee', 'vcek_and_chain.pem');
    const ev = await azureVtpmSource({ tpm2Nvread: tools.nvread, tpm2Nvwrite: tools.nvwrite, certificates: async () => pem }).getEvidence(runtimeData);
    assert.equal(snpPartsOfBody(ev.body).vcekCertChainPem, pem);
  });

  test('missing tpm2_nvread says what to install', async () => {
    await assert.rejects(azureVtpmSource({ tpm2Nvread: join(dir, 'nope', 'tpm2_nvread') }).getEvidence(new Uint8Array(0)), {
      code: 'sdk.evidence_source_unavailable',
      message: /apt-get install tpm2-tools/,
    });
  });

  test('an NV index that holds no HCL report fails clearly', async () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, Buffer.alloc(2600, 7));
    const tools = fakeTools(dir, junk);
    await assert.rejects(azureVtpmSource({ tpm2Nvread: tools.nvread, tpm2Nvwrite: tools.nvwrite, requireUserData: false }).getEvidence(new Uint8Array(0)), { code: 'sdk.evidence_failed' });
  });
});
