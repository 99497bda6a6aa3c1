/**
 * Every `conclave` subcommand through the real binary: one success path and one failure path each,
 * with the documented exit codes (0 success, 1 operation failed, 2 usage or I/O error).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixturePath, skipWithoutFixtures } from '../../fixtures.js';
import { conclave } from '../../helpers/cli.js';
import { sharedSoftHsm, skipWithoutSoftHsm } from '../../helpers/softhsm.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

const work = mkdtempSync(join(tmpdir(), 'conclave-cli-'));
const file = (name: string, text: string | Uint8Array) => {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
};

describe('conclave (binary)', () => {
  test('--help lists the commands with an example; an unknown command exits 2', async () => {
    const help = await conclave(['--help']);
    assert.equal(help.code, 0);
    for (const c of ['serve', 'verify', 'sim', 'policy', 'attest', 'token', 'agent']) assert.match(help.stdout, new RegExp(`\\b${c}\\b`));
    const serveHelp = await conclave(['serve', '--help']);
    assert.match(serveHelp.stdout, /Example:/);
    const bad = await conclave(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command/);
  });

  test('verify quote: a real SGX quote verifies (0); a truncated one fails (1); a missing file is usage (2)', { skip: skipWithoutFixtures() }, async () => {
    const dir = fixturePath('intel', 'sgx-v3-phala');
    const ok = await conclave(['verify', 'quote', join(dir, 'quote.bin'), '--collateral', join(dir, 'collateral.orig.json'), '--at', '2025-06-20T00:00:00Z']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.json().status, 'ConfigurationAndSWHardeningNeeded');
    const truncated = file('truncated.bin', readFileSync(join(dir, 'quote.bin')).subarray(0, 700));
    const bad = await conclave(['verify', 'quote', truncated, '--collateral', join(dir, 'collateral.orig.json'), '--at', '2025-06-20T00:00:00Z']);
    assert.equal(bad.code, 1);
    assert.equal(bad.json().verified, false);
    assert.equal(bad.json().error.code, 'quote.truncated');
    assert.equal((await conclave(['verify', 'quote', join(work, 'nope.bin'), '--collateral', join(dir, 'collateral.orig.json')])).code, 2);
  });

  test('verify snp: a real Milan report verifies (0); a flipped byte fails (1)', { skip: skipWithoutFixtures() }, async () => {
    const dir = fixturePath('amd', 'snp-milan-virtee');
    const args = ['--vcek', join(dir, 'vcek.der'), '--chain', join(dir, 'cert_chain.pem'), '--at', '2025-06-01T00:00:00Z'];
    const ok = await conclave(['verify', 'snp', join(dir, 'report.bin'), ...args]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.json().product, 'Milan');
    const report = readFileSync(join(dir, 'report.bin'));
    report[0x90] = report[0x90]! ^ 1;
    const bad = await conclave(['verify', 'snp', file('flipped.bin', report), ...args]);
    assert.equal(bad.code, 1);
    assert.equal(bad.json().error.code, 'snp.signature_invalid');
  });

  test('sim evidence prints an /attest body; a bad --tee is usage (2)', async () => {
    const dataDir = join(work, 'sim-data');
    const rt = file('rt.json', JSON.stringify({ keys: [] }));
    const ok = await conclave(['sim', 'evidence', '--tee', 'sgx', '--runtime-data', rt, '--data-dir', dataDir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.json().quote);
    assert.equal(ok.json().runtimeData.dataType, 'JSON');
    const path = await conclave(['sim', 'evidence', '--tee', 'snp', '--runtime-data', rt, '--data-dir', dataDir, '--path']);
    assert.equal(path.stdout.trim(), '/attest/SevSnpVm');
    const bad = await conclave(['sim', 'evidence', '--tee', 'tpm', '--runtime-data', rt, '--data-dir', dataDir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tee must be sgx, tdx or snp/);
  });

  test('policy check: a satisfied policy exits 0, an unsatisfied one 1 with the failing clause, a malformed one 2', async () => {
    const policy = file(
      'policy.json',
      JSON.stringify({ version: '1.0.0', anyOf: [{ authority: 'https://att.example', allOf: [{ claim: 'x-ms-sevsnpvm-is-debuggable', equals: 'false' }] }] }),
    );
    const good = file('good-claims.json', JSON.stringify({ iss: 'https://att.example', 'x-ms-sevsnpvm-is-debuggable': false }));
    const badClaims = file('bad-claims.json', JSON.stringify({ iss: 'https://att.example', 'x-ms-sevsnpvm-is-debuggable': true }));
    assert.equal((await conclave(['policy', 'check', '--policy', policy, '--claims', good])).code, 0);
    const denied = await conclave(['policy', 'check', '--policy', policy, '--claims', badClaims]);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /x-ms-sevsnpvm-is-debuggable/);
    const malformed = file('malformed.json', JSON.stringify({ version: '1.0.0', anyOf: [{ allOf: [{ claim: 'x', equals: 1, notEquals: 2 }] }] }));
    assert.equal((await conclave(['policy', 'check', '--policy', malformed, '--claims', good])).code, 2);
  });

  test('token decode shows header and claims of a JWT; garbage fails', async () => {
    const jwt = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"iss":"https://x","a":1}').toString('base64url')}.c2ln`;
    const ok = await conclave(['token', 'decode', jwt, '--output', 'json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /"iss": "https:\/\/x"/);
    const bad = await conclave(['token', 'decode', 'not-a-token', '--output', 'json']);
    assert.notEqual(bad.code, 0);
  });
});

describe('conclave db and hsm (binary)', () => {
  test('db migrate applies the migrations once; a bad store URL is usage (2)', async () => {
    const dataDir = join(work, 'migrate-data');
    const first = await conclave(['db', 'migrate', '--data-dir', dataDir, '--output', 'json']);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(first.json().applied > 0);
    const again = await conclave(['db', 'migrate', '--data-dir', dataDir, '--output', 'json']);
    assert.equal(again.json().applied, 0);
    assert.equal((await conclave(['db', 'migrate', '--db', 'mysql://nope'])).code, 2);
  });

  test('hsm info reports the token and the release wrap path; a malformed spec is usage (2)', { skip: skipWithoutSoftHsm() }, async () => {
    const hsm = sharedSoftHsm();
    const ok = await conclave(['hsm', 'info', '--hsm', hsm.spec, '--output', 'json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /AES_KEY_WRAP_PAD|0x210a|two-step/i);
    const bad = await conclave(['hsm', 'info', '--hsm', 'pkcs11:token=x']);
    assert.equal(bad.code, 2);
  });
});

describe('conclave demo (binary)', () => {
  test('walks attest → release → unwrap → use → denial against a temporary server', async () => {
    const r = await conclave(['demo'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /the released key IS the vault key/);
    assert.match(r.stdout, /decrypted inside the VM: "hello from the vault"/);
    assert.match(r.stdout, /the enclave decrypts: "sealed for the enclave"/);
    assert.match(r.stdout, /403 .*x-ms-sevsnpvm-launchmeasurement/);
    assert.match(r.stdout, /model key released to the VM/);
    assert.match(r.stdout, /403 .*x-conclave-gpus\.GPU-1\.measres expected equals "success", actual "fail"/);
  });

  test('a --data-dir without a server credential is a usage error', async () => {
    const r = await conclave(['demo', '--url', 'https://127.0.0.1:1', '--data-dir', join(work, 'no-such-dir')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no admin credential/);
  });
});

describe('conclave attest (binary) against a running server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server.stop());

  test('attest with the simulated source prints a token; an unreachable server fails', async () => {
    const ok = await conclave(['attest', '--url', server.url, '--source', 'sim', '--tee', 'sgx', '--data-dir', server.dataDir, '--ca', server.caPath]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.json().token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const down = await conclave(['attest', '--url', 'https://127.0.0.1:1', '--source', 'sim', '--tee', 'sgx', '--data-dir', server.dataDir, '--ca', server.caPath]);
    assert.equal(down.code, 1);
    assert.doesNotMatch(down.stderr, /\n\s+at /, 'no stack trace');
  });
});
