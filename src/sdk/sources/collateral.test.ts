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

describe('SDK collateral source: the product of the VCEK asked for', () => {
  let server: Server;
  let base = '';
  const asked: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from([0x30, 0x00]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** A version 3 report whose CPUID names Genoa (family 0x19, model 0x11). */
  const genoa = () => {
    const r = new Uint8Array(0x4a0);
    r[0] = 3;
    r[0x188] = 0x19;
    r[0x189] = 0x11;
    return r;
  };

  test('a configured product that the report CPUID contradicts is request.invalid, before anything is fetched, not a VCEK of the configured product asked for the chip of the report', async () => {
    asked.length = 0;
    await assert.rejects(fetchVcekChain(genoa(), { url: base, product: 'Milan' }), (e) => isConclaveError(e, 'request.invalid'));
    assert.equal(asked.length, 0, `nothing fetched: ${asked.join(", ")}`);
    // Agreeing, or a version 2 report (no CPUID): the configured product is asked for.
    await fetchVcekChain(genoa(), { url: base, product: 'Genoa' });
    const v2 = genoa();
    v2[0] = 2;
    await fetchVcekChain(v2, { url: base, product: 'Milan' });
    assert.deepEqual(
      asked.map((u) => u.split('/').slice(0, 4).join('/')),
      ['/vcek/v1/Genoa', '/vcek/v1/Genoa', '/vcek/v1/Milan', '/vcek/v1/Milan'],
    );
  });
});
