/**
 * `conclave collateral qcnl-config` prints a configuration QCNL accepts (only keys QCNL reads, DCAP
 * qcnl/qcnl_config.cpp) whose URLs really serve QCNL's requests on a running Conclave, in the PCCS and
 * the Azure THIM layout, and explains how to trust Conclave's CA.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../../src/cli/main.js';
import { skipWithoutFixtures } from '../../fixtures.js';
import { type PcsStandin, STANDIN_PLATFORMS, startPcsStandin } from '../../helpers/pcs-standin.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';

/** The keys qcnl_config.cpp reads (`HasMember("…")`). */
const QCNL_KEYS = new Set(['pccs_url', 'use_secure_cert', 'collateral_service', 'tcb_update_type', 'pccs_api_version', 'retry_times', 'retry_delay', 'local_pck_url', 'pck_cache_expire_hours', 'verify_collateral_cache_expire_hours', 'local_cache_only', 'custom_request_options']);

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [w1, w2] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}

describe('conclave collateral qcnl-config', { skip: skipWithoutFixtures() }, () => {
  let up: PcsStandin;
  let server: TestServer;
  before(async () => {
    up = await startPcsStandin('sgx-phala');
    server = await startTestServer({ services: 'collateral', upstreamIntel: up.url });
  });
  after(async () => {
    await server?.stop();
    await up?.close();
  });

  test('PCCS style: QCNL keys only, secure TLS, both URLs at Conclave, API 3.1; its URLs serve QCNL', async () => {
    const r = await run(['collateral', 'qcnl-config', '--url', server.url, '--data-dir', server.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const conf = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const k of Object.keys(conf)) assert.ok(QCNL_KEYS.has(k), `QCNL reads ${k}`);
    assert.equal(conf.pccs_url, `${server.url}/sgx/certification/v4/`);
    assert.equal(conf.collateral_service, conf.pccs_url);
    assert.equal(conf.use_secure_cert, true);
    assert.equal(conf.pccs_api_version, '3.1');
    assert.equal(conf.local_pck_url, undefined);
    // QCNL appends its request to the configured URL: the path must come out as Conclave's route.
    const path = (u: unknown, q: string) => `${new URL(String(u)).pathname}${q}`;
    assert.equal((await server.send('GET', path(conf.collateral_service, 'qe/identity?update=standard'))).status, 200);
    assert.equal((await server.send('GET', path(conf.collateral_service, 'pckcrl?ca=processor&encoding=der'))).status, 200);
    // The default --ca is the server's own CA: trust instructions with its fingerprint.
    const ca = new X509Certificate(readFileSync(join(server.dataDir, 'tls', 'ca.pem')));
    assert.match(r.stderr, /update-ca-certificates/);
    assert.ok(r.stderr.includes(ca.fingerprint256));
  });

  test('Azure THIM style: local_pck_url on the THIM prefix with Metadata: true and api-version, as QCNL sends them', async () => {
    const r = await run(['collateral', 'qcnl-config', '--thim', '--url', `${server.url}/`, '--ca', server.caPath]);
    assert.equal(r.code, 0, r.stderr);
    const conf = JSON.parse(r.stdout) as { local_pck_url: string; custom_request_options: { get_cert: { headers: Record<string, string>; params: Record<string, string> } }; pccs_url: string };
    for (const k of Object.keys(conf)) assert.ok(QCNL_KEYS.has(k), `QCNL reads ${k}`);
    assert.equal(conf.local_pck_url, `${server.url}/metadata/THIM/sgx/certification/v4/`);
    assert.equal(conf.pccs_url, `${server.url}/sgx/certification/v4/`);
    const { headers, params } = conf.custom_request_options.get_cert;
    const p = STANDIN_PLATFORMS[0];
    const q = `pckcert?qeid=${p.qeId}&encrypted_ppid=${p.encPpid}&cpusvn=0B0B0202FF0100000000000000000000&pcesvn=0D00&pceid=0000&${new URLSearchParams(params).toString()}`;
    const pck = await server.send('GET', `${new URL(conf.local_pck_url).pathname}${q}`, { headers });
    assert.equal(pck.status, 200, pck.text);
    assert.match(pck.json().pckCert, /^-----BEGIN CERTIFICATE-----/);
  });

  test('refuses http URLs, a server certificate as --ca, and unknown API versions', async () => {
    assert.equal((await run(['collateral', 'qcnl-config', '--url', 'http://conclave.example'])).code, 2);
    assert.equal((await run(['collateral', 'qcnl-config', '--url', server.url, '--ca', join(server.dataDir, 'tls', 'server.pem')])).code, 2);
    assert.equal((await run(['collateral', 'qcnl-config', '--url', server.url, '--api-version', '4.0'])).code, 2);
    const v30 = await run(['collateral', 'qcnl-config', '--url', server.url, '--api-version', '3.0', '--ca', server.caPath]);
    assert.equal(JSON.parse(v30.stdout).pccs_api_version, '3.0');
  });
});
