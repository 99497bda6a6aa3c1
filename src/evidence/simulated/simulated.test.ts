import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { sha256, toHex } from '../../core/bytes.js';
import { parseQuote, verifyQuote } from '../dcap/index.js';
import { verifyMaaSevSnpEvidence } from '../snp/index.js';
import { SIMULATED_FMSPC, loadOrCreateSimulatedTee } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-sim-'));
const runtime = new TextEncoder().encode(JSON.stringify({ keys: [] }));
const at = new Date('2026-01-01T00:00:00Z');

describe('simulated TEE', () => {
  const tee = loadOrCreateSimulatedTee(dir);

  test('is created once per data dir and reloads to the same roots', () => {
    const again = loadOrCreateSimulatedTee(dir);
    assert.equal(again, tee);
    assert.equal(tee.intelRoot.subjectCN, 'Conclave Simulated SGX Root CA (development only)');
  });

  test('SGX quote verifies against its own root and collateral, binding the runtime data', () => {
    const ev = tee.evidence({ tee: 'sgx', runtimeData: runtime, mrenclave: 'ab'.repeat(32), debug: true });
    assert.equal(ev.path, '/attest/SgxEnclave');
    const quote = new Uint8Array(Buffer.from(ev.body.quote as string, 'base64url'));
    const r = verifyQuote(parseQuote(quote), tee.collateral('sgx'), { at, trustAnchors: { intelRoot: tee.intelRoot } });
    assert.equal(r.tee, 'sgx');
    assert.equal(r.status, 'UpToDate');
    assert.equal(r.fmspc, SIMULATED_FMSPC);
    if (r.tee !== 'sgx') return;
    assert.equal(r.report.mrenclave, 'ab'.repeat(32));
    assert.equal(r.report.debug, true);
    assert.equal(r.report.reportdata.slice(0, 64), toHex(sha256(runtime)));
  });

  test('SGX quote does not verify against the real Intel root', () => {
    const ev = tee.evidence({ tee: 'sgx', runtimeData: runtime });
    const quote = new Uint8Array(Buffer.from(ev.body.quote as string, 'base64url'));
    assert.throws(() => verifyQuote(parseQuote(quote), tee.collateral('sgx'), { at }), (e: { code?: string }) => /chain|collateral|crl/.test(String(e.code)));
  });

  test('TDX quote verifies with its measurement', () => {
    const ev = tee.evidence({ tee: 'tdx', runtimeData: runtime, measurement: 'cd'.repeat(48) });
    const quote = new Uint8Array(Buffer.from(ev.body.quote as string, 'base64url'));
    const r = verifyQuote(parseQuote(quote), tee.collateral('tdx'), { at, trustAnchors: { intelRoot: tee.intelRoot } });
    assert.equal(r.tee, 'tdx');
    if (r.tee === 'tdx') assert.equal(r.td.mrtd, 'cd'.repeat(48));
  });

  test('SNP evidence verifies in the MAA container form with runtime and init-time binding', () => {
    const init = new TextEncoder().encode('policy');
    const ev = tee.evidence({ tee: 'snp', runtimeData: runtime, measurement: 'ef'.repeat(48), initTimeData: init });
    assert.equal(ev.path, '/attest/SevSnpVm');
    const inner = Buffer.from(ev.body.report as string, 'base64url');
    const r = verifyMaaSevSnpEvidence(inner, runtime, init, { at, trustAnchors: tee.amdAnchors });
    assert.equal(r.measurement, 'ef'.repeat(48));
    assert.equal(r.hostData, toHex(sha256(init)));
    assert.equal(r.isDebuggable, false);
  });
});
