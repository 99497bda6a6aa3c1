/**
 * Confidential AI end to end: a simulated TDX VM with two simulated NVIDIA GPUs → one composite
 * attestation (the GPUs answer a nonce derived from the runtime data the TD quote binds) → a token with
 * the CPU claims and one claim set per GPU → release of an exportable key whose policy requires both
 * GPUs; one GPU with a different measurement → 403 naming that GPU and claim.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { attestAndRelease, simSource, simulatedGpuCollector } from '../../../src/sdk/index.js';
import { decodeReleaseResponse, unwrapKeyTransfer } from '../../../src/vault/release/index.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { generateRsaKeyPair } from '../../../src/core/keygen.js';

describe('composite CPU + GPU attestation and release (simulated TDX + 2 simulated GPUs)', () => {
  let server: TestServer;
  let bearer: string;
  const workload = generateRsaKeyPair(2048);
  const jwk = { ...workload.publicKey.export({ format: 'jwk' }), kid: 'workload', key_ops: ['encrypt'] };
  const runtime = new TextEncoder().encode(JSON.stringify({ keys: [jwk] }));

  before(async () => {
    server = await startTestServer({ simulate: true });
    bearer = `Bearer ${await server.adminToken()}`;
    const r = await server.sendHttps('PUT', '/admin/vault/roleAssignments', {
      headers: { authorization: bearer },
      body: { principalId: server.admin.clientId, role: 'Key Vault Crypto Service Release User', scope: '/' },
    });
    assert.equal(r.status, 200, r.text);
  });
  after(() => server.stop());

  async function attest(opts: { gpus: number; gpuMismatch?: number[] }): Promise<{ token: string; claims: Record<string, any> }> {
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'tdx', runtimeData: runtime, ...opts });
    const r = await server.sendHttps('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
    assert.equal(r.status, 200, r.text);
    const token = r.json().token as string;
    return { token, claims: JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) };
  }

  async function createModelKey(): Promise<string> {
    const name = `model-${randomBytes(4).toString('hex')}`;
    const policy = {
      version: '1.0.0',
      anyOf: [
        {
          authority: server.url,
          allOf: [
            { claim: 'x-ms-attestation-type', equals: 'tdxvm' },
            { claim: 'x-conclave-gpu-count', equals: 2 },
            { claim: 'x-conclave-gpus.GPU-0.measres', equals: 'success' },
            { claim: 'x-conclave-gpus.GPU-1.measres', equals: 'success' },
            { claim: 'x-conclave-gpus.GPU-0.dbgstat', equals: 'disabled' },
            { claim: 'x-conclave-gpus.GPU-1.dbgstat', equals: 'disabled' },
            { claim: 'x-nvidia-overall-att-result', equals: true },
            { claim: 'x-conclave-gpu-min-driver-version-number', greaterOrEquals: 550090000 },
          ],
        },
      ],
    };
    const r = await server.sendHttps('POST', `/keys/${name}/create?api-version=7.4`, {
      headers: { authorization: bearer },
      body: { kty: 'oct-HSM', key_size: 256, attributes: { exportable: true }, release_policy: { data: Buffer.from(JSON.stringify(policy)).toString('base64url') } },
    });
    assert.equal(r.status, 200, r.text);
    return name;
  }

  test('the token carries the CPU claims, one NRAS-named claim set per GPU and the overall result', async () => {
    const { claims } = await attest({ gpus: 2 });
    assert.equal(claims['x-ms-attestation-type'], 'tdxvm');
    assert.equal(claims['x-conclave-simulated'], true);
    assert.equal(claims['x-conclave-gpu-count'], 2);
    assert.equal(claims['x-nvidia-overall-att-result'], true);
    assert.equal(claims['x-conclave-gpu-min-driver-version-number'], 550090007);
    for (const g of ['GPU-0', 'GPU-1']) {
      const c = claims['x-conclave-gpus'][g];
      assert.equal(c.measres, 'success');
      assert.equal(c.secboot, true);
      assert.equal(c['x-nvidia-gpu-attestation-report-signature-verified'], true);
      assert.equal(c.eat_nonce, claims['x-conclave-gpu-nonce']);
    }
    assert.notEqual(claims['x-conclave-gpus']['GPU-0'].ueid, claims['x-conclave-gpus']['GPU-1'].ueid);
  });

  test('a key whose policy requires both GPUs is released to the VM when CPU and GPUs pass', async () => {
    const name = await createModelKey();
    const { token } = await attest({ gpus: 2 });
    const r = await server.sendHttps('POST', `/keys/${name}/release?api-version=7.4`, { headers: { authorization: bearer }, body: { target: token } });
    assert.equal(r.status, 200, r.text);
    const { payload } = decodeReleaseResponse(r.json().value) as any;
    assert.equal(unwrapKeyTransfer(payload.response.key.key.key_hsm, workload.privateKey).byteLength, 32);
  });

  test('one GPU with a different measurement: the token says measres fail for it, and the release is 403 naming it', async () => {
    const name = await createModelKey();
    const { token, claims } = await attest({ gpus: 2, gpuMismatch: [1] });
    assert.equal(claims['x-conclave-gpus']['GPU-0'].measres, 'success');
    assert.equal(claims['x-conclave-gpus']['GPU-1'].measres, 'fail');
    assert.equal(claims['x-conclave-gpus']['GPU-1']['x-nvidia-mismatch-measurement-records'][0].index, 5);
    assert.equal(claims['x-nvidia-overall-att-result'], false);
    const r = await server.sendHttps('POST', `/keys/${name}/release?api-version=7.4`, { headers: { authorization: bearer }, body: { target: token } });
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /x-conclave-gpus\.GPU-1\.measres/);
    assert.match(r.text, /success/);
    assert.match(r.text, /fail/);
  });

  test('the SDK attests CPU and GPUs in one request and releases the model key (and is refused when a GPU differs)', async () => {
    const name = await createModelKey();
    const common = {
      attestationUrl: server.url,
      vaultUrl: server.url,
      keyName: name,
      source: simSource({ dataDir: server.dataDir, tee: 'tdx' }),
      tee: 'tdx' as const,
      credential: server.admin,
      ca: readFileSync(server.caPath, 'utf8'),
      trustStore: readFileSync(server.caPath, 'utf8'),
    };
    const released = await attestAndRelease({ ...common, gpus: simulatedGpuCollector(server.dataDir, 2) });
    assert.equal(released.jwk.kty, 'oct');
    await assert.rejects(attestAndRelease({ ...common, gpus: simulatedGpuCollector(server.dataDir, 2, [1]) }), (e: { message?: string }) => /GPU-1\.measres/.test(e.message ?? ''));
    await assert.rejects(attestAndRelease({ ...common, gpus: simulatedGpuCollector(server.dataDir, 1) }), (e: { message?: string }) => /x-conclave-gpu-count/.test(e.message ?? ''));
  });

  test('the MAA policy language sees each GPU: a rule can require every GPU to pass and issue per-GPU claims', async () => {
    const policy = [
      'version= 1.0;',
      'authorizationrules {',
      '  c1:[type=="x-nvidia-overall-att-result", value==true] && c2:[type=="x-conclave-gpus.GPU-1.dbgstat", value=="disabled"] => permit();',
      '};',
      'issuancerules {',
      '  c:[type=="x-conclave-gpus.GPU-1.hwmodel"] => issue(type="gpu1-hwmodel", value=c.value);',
      '};',
    ].join('\n');
    const tee = loadOrCreateSimulatedTee(server.dataDir);
    const good = tee.evidence({ tee: 'tdx', runtimeData: runtime, gpus: 2 });
    const ok = await server.sendHttps('POST', '/attest/TdxVm?api-version=2022-08-01', { body: { ...good.body, draftPolicyForAttestation: policy } });
    assert.equal(ok.status, 200, ok.text);
    const claims = JSON.parse(Buffer.from((ok.json().token as string).split('.')[1]!, 'base64url').toString('utf8'));
    assert.equal(claims['gpu1-hwmodel'], 'GH100 A01 GSP BROM');
    const bad = tee.evidence({ tee: 'tdx', runtimeData: runtime, gpus: 2, gpuMismatch: [0] });
    const denied = await server.sendHttps('POST', '/attest/TdxVm?api-version=2022-08-01', { body: { ...bad.body, draftPolicyForAttestation: policy } });
    assert.equal(denied.status, 400, denied.text);
    assert.match(denied.text, /policy/i);
  });

  test('GPU evidence for another runtime data (replayed from another VM) is refused with gpu.nonce_mismatch', async () => {
    const tee = loadOrCreateSimulatedTee(server.dataDir);
    const other = tee.evidence({ tee: 'tdx', runtimeData: new TextEncoder().encode('{"keys":[]}'), gpus: 2 });
    const mine = tee.evidence({ tee: 'tdx', runtimeData: runtime });
    const r = await server.sendHttps('POST', '/attest/TdxVm?api-version=2022-08-01', { body: { ...mine.body, gpuEvidence: other.body.gpuEvidence } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /GPU-0/);
    assert.match(r.text, /nonce/i);
  });

  test('attack: the passing GPU’s evidence sent twice in place of the failing one is refused (one GPU never counts as two)', async () => {
    // A VM whose GPU-1 fails its measurements sends GPU-0's report again as GPU-1: each copy answers the
    // nonce and verifies on its own, so without a check the token said two GPUs, both "success", and the
    // model key whose policy requires two passing GPUs was released.
    const name = await createModelKey();
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'tdx', runtimeData: runtime, gpus: 2, gpuMismatch: [1] });
    const [good] = (ev.body as { gpuEvidence: unknown[] }).gpuEvidence;
    const r = await server.sendHttps('POST', `${ev.path}?api-version=2022-08-01`, { body: { ...ev.body, gpuEvidence: [good, good] } });
    if (r.status === 200) {
      const released = await server.sendHttps('POST', `/keys/${name}/release?api-version=7.4`, { headers: { authorization: bearer }, body: { target: r.json().token } });
      assert.fail(`one GPU attested as two (token issued), and the release answered ${released.status}`);
    }
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json().error.code, 'gpu.evidence_mismatch');
    assert.match(r.text, /GPU-1/);
    assert.match(r.text, /GPU-0/);
    // The honest evidence of the same VM still attests, and its failing GPU still stops the release.
    const honest = await server.sendHttps('POST', `${ev.path}?api-version=2022-08-01`, { body: ev.body });
    assert.equal(honest.status, 200, honest.text);
    const released = await server.sendHttps('POST', `/keys/${name}/release?api-version=7.4`, { headers: { authorization: bearer }, body: { target: honest.json().token } });
    assert.equal(released.status, 403, released.text);
  });

  test('single-TEE requests are unchanged, and gpuEvidence without runtime data is refused', async () => {
    const { claims } = await attest({ gpus: 0 });
    assert.equal(claims['x-conclave-gpus'], undefined);
    const ev = loadOrCreateSimulatedTee(server.dataDir).evidence({ tee: 'tdx', runtimeData: runtime, gpus: 1 });
    const { runtimeData: _omit, ...noRuntime } = ev.body as Record<string, unknown>;
    const r = await server.sendHttps('POST', '/attest/TdxVm?api-version=2022-08-01', { body: noRuntime });
    assert.equal(r.status, 400, r.text);
  });
});
