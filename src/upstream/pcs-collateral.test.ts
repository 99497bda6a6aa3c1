/**
 * fetchQuoteCollateral against a PCS-compatible service on 127.0.0.1 whose answers are malformed: each
 * failure is a typed error, never a bare exception (which the attestation service would answer as a 500).
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { fetchQuoteCollateral } from './pcs-collateral.js';

describe('fetchQuoteCollateral: malformed upstream answers are typed errors', () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      // Every route answers 200 with an issuer-chain header that is not valid percent-encoding.
      const chain = '-----BEGIN%20CERTIFICATE-----%ZZ';
      res.writeHead(200, { 'content-type': 'application/json', 'TCB-Info-Issuer-Chain': chain, 'SGX-Enclave-Identity-Issuer-Chain': chain, 'SGX-PCK-CRL-Issuer-Chain': chain });
      res.end(req.url?.includes('crl') ? '3000' : '{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('an issuer chain header that is not valid percent-encoding is collateral.malformed, not a URIError', async () => {
    await assert.rejects(
      fetchQuoteCollateral({ baseUrl: `${base}/sgx/certification/v4`, fmspc: '00906ED50000', tee: 'sgx', pckCa: 'platform', rootCaCrlUrl: `${base}/root.crl` }),
      (e: unknown) => {
        assert.ok(isConclaveError(e), `a typed error, not ${String(e)}`);
        assert.equal(e.code, 'collateral.malformed');
        return true;
      },
    );
  });
});
