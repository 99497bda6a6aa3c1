/**
 * `api-version=2023-04-01-preview` (what Azure's TDX CVM tools send) is accepted on every attest route,
 * as every other MAA data-plane version is; an unknown version is refused before the evidence is read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simulateAzureCvm } from '../../../src/evidence/azure-vtpm/testing.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { MAA_API_VERSIONS } from '../../../src/server/attestation/plugin.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { TPM_INIT } from '../../helpers/tpm-client.js';

describe('MAA api-versions on the attest routes', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ simulate: true });
  });
  after(() => server.stop());

  /**
   * One body per route, made once for both tests (the simulated Azure CVM costs three RSA-2048 key
   * generations): the second test's requests are refused on the api-version before the evidence is read.
   */
  let made: Promise<[string, Record<string, unknown>, Record<string, string>][]> | undefined;
  const bodies = () => (made ??= makeBodies());
  async function makeBodies(): Promise<[string, Record<string, unknown>, Record<string, string>][]> {
    const tee = loadOrCreateSimulatedTee(server.dataDir);
    const runtimeData = new TextEncoder().encode('{"k":"v"}');
    const sgx = tee.evidence({ tee: 'sgx', runtimeData });
    const tdx = tee.evidence({ tee: 'tdx', runtimeData });
    const snp = tee.evidence({ tee: 'snp', runtimeData });
    const guest = simulateAzureCvm(tee.snp, { secureBoot: true }).guestInfo({});
    const auth = { authorization: `Bearer ${await server.adminToken()}` };
    return [
      ['SgxEnclave', sgx.body, {}],
      ['OpenEnclave', { report: sgx.body.quote, runtimeData: sgx.body.runtimeData }, {}],
      ['TdxVm', tdx.body, {}],
      ['SevSnpVm', snp.body, {}],
      ['AzureGuest', { AttestationInfo: guest.attestationInfo }, {}],
      ['Tpm', { data: Buffer.from(JSON.stringify({ payload: JSON.parse(TPM_INIT) })).toString('base64url') }, auth],
    ];
  }

  test('2023-04-01-preview is one of the accepted versions and every attest route answers it', async () => {
    assert.ok(MAA_API_VERSIONS.includes('2023-04-01-preview'));
    for (const [type, body, headers] of await bodies()) {
      const r = await server.send('POST', `/attest/${type}?api-version=2023-04-01-preview`, { headers, body });
      assert.equal(r.status, 200, `${type}: ${r.text}`);
      assert.ok(typeof r.json().token === 'string' || typeof r.json().data === 'string', type);
    }
  });

  test('an unknown or missing api-version is refused on every attest route', async () => {
    for (const [type, body, headers] of await bodies()) {
      for (const q of ['?api-version=2099-01-01', '']) {
        const r = await server.send('POST', `/attest/${type}${q}`, { headers, body });
        assert.equal(r.status, 400, `${type}${q}: ${r.text}`);
        assert.match(r.text, /api-version/, type);
      }
    }
  });
});
