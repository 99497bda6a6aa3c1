import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { AMD_ASK_GENOA_PEM, AMD_ARK_GENOA_PEM } from '../evidence/snp/roots.js';
import { fetchCertChain, fetchCrl, fetchVcek } from './kds.js';

test('KDS client: PEM cert_chain, DER CRL, 404 and 5xx mapped to codes', async () => {
  const server = createServer((req, res) => {
    if (req.url === '/vcek/v1/Genoa/cert_chain') res.writeHead(200).end(AMD_ASK_GENOA_PEM + AMD_ARK_GENOA_PEM);
    else if (req.url === '/vcek/v1/Genoa/crl') res.writeHead(200).end(Buffer.from([0x30, 0x00]));
    else if (req.url?.startsWith('/vcek/v1/Milan/')) res.writeHead(503).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const chain = await fetchCertChain({ baseUrl }, 'Genoa');
    assert.equal(chain.length, 2);
    assert.deepEqual(await fetchCrl({ baseUrl }, 'Genoa'), Uint8Array.from([0x30, 0x00]));
    const tcb = { bootloader: 1, tee: 0, snp: 1, microcode: 1 };
    await assert.rejects(fetchVcek({ baseUrl }, 'Genoa', new Uint8Array(64), tcb), (e: unknown) => isConclaveError(e, 'collateral.not_found'));
    await assert.rejects(fetchVcek({ baseUrl }, 'Milan', new Uint8Array(64), tcb), (e: unknown) => isConclaveError(e, 'upstream.unavailable'));
    await assert.rejects(fetchCertChain({ baseUrl: 'http://127.0.0.1:1' }, 'Genoa'), (e: unknown) => isConclaveError(e, 'upstream.unavailable'));
  } finally {
    server.close();
  }
});
