/**
 * The SDK's collateral source reads a THIM (Azure IMDS) or KDS answer it does not control: whatever that
 * service sends, the failure is the SDK's typed `sdk.http_error`, never a bare SyntaxError or TypeError.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isConclaveError } from '../../core/errors.js';
import { fetchVcekChain } from './collateral.js';

describe('SDK collateral source: a hostile THIM answer', () => {
  let server: Server;
  let base = '';
  let answer = '';
  before(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  for (const [what, body] of [
    ['not JSON', '<html>maintenance</html>'],
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['fields that are not strings', '{"vcekCert":1,"certificateChain":{}}'],
  ] as const) {
    test(`${what} → sdk.http_error`, async () => {
      answer = body;
      await assert.rejects(fetchVcekChain(new Uint8Array(0x4a0), { url: base, kind: 'thim' }), (e) => isConclaveError(e, 'sdk.http_error'));
    });
  }
});
