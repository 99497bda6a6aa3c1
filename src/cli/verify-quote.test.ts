import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fixturePath, readFixture, readFixtureJson, skipWithoutFixtures } from '../../test/fixtures.js';
import { derToPem, pemToDer } from '../core/x509.js';
import { encodeQuote, parseQuote } from '../evidence/dcap/index.js';
import { verifyQuoteCommand } from './verify-quote.js';

const skip = skipWithoutFixtures();

/** Runs the command with stdout/stderr captured. */
async function run(quote: string, opts: Parameters<typeof verifyQuoteCommand>[1]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await verifyQuoteCommand(quote, opts, { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } });
  return { code, out: out.join(''), err: err.join('') };
}

describe('conclave verify quote', { skip }, () => {
  if (skip) return;
  const dir = 'intel/sgx-v3-phala';

  test('verified quote: exit 0 and the result JSON', async () => {
    const r = await run(fixturePath(dir, 'quote.bin'), { collateral: fixturePath(dir, 'collateral.orig.json'), at: '2025-06-20T00:00:00Z' });
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { verified: boolean; status: string };
    assert.equal(j.verified, true);
    assert.equal(j.status, 'ConfigurationAndSWHardeningNeeded');
  });

  test('the quote file may be binary, hex, 0x-hex (as dcap-qvl and Automata publish quotes) or base64, with line breaks', async () => {
    const quote = readFixture(dir, 'quote.bin');
    const work = mkdtempSync(join(tmpdir(), 'conclave-quote-forms-'));
    const hex = quote.toString('hex');
    const forms: Record<string, string | Buffer> = {
      binary: quote,
      hex,
      '0x-hex': `0x${hex}\n`,
      'hex in lines': `${hex.replace(/(.{64})/g, '$1\n')}\n`,
      base64: quote.toString('base64').replace(/(.{76})/g, '$1\r\n'),
      base64url: quote.toString('base64url'),
    };
    for (const [name, content] of Object.entries(forms)) {
      const file = join(work, name);
      writeFileSync(file, content);
      const r = await run(file, { collateral: fixturePath(dir, 'collateral.orig.json'), at: '2025-06-20T00:00:00Z' });
      assert.equal(r.code, 0, `${name}: ${r.out}${r.err}`);
      assert.equal(JSON.parse(r.out).status, 'ConfigurationAndSWHardeningNeeded', name);
    }
  });

  test('failed verification: exit 1 with an error code', async () => {
    const r = await run(fixturePath(dir, 'quote.bin'), { collateral: fixturePath(dir, 'collateral.orig.json'), at: '2025-09-01T00:00:00Z' });
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.out).error.code, 'collateral.expired');
  });

  test('usage and I/O errors: exit 2', async () => {
    assert.equal((await run(fixturePath(dir, 'quote.bin'), {})).code, 2);
    assert.equal((await run(fixturePath(dir, 'quote.bin'), { collateral: 'x', pccs: 'http://127.0.0.1:1' })).code, 2);
    assert.equal((await run(fixturePath(dir, 'quote.bin'), { collateral: fixturePath(dir, 'collateral.orig.json'), freshness: 'lax' })).code, 2);
    assert.equal((await run('/nonexistent/quote.bin', { collateral: fixturePath(dir, 'collateral.orig.json') })).code, 2);
  });

  test('hex-encoded quote file is accepted', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'conclave-quote-'));
    const f = join(tmp, 'quote.hex');
    writeFileSync(f, readFixture(dir, 'quote.bin').toString('hex'));
    const r = await run(f, { collateral: fixturePath(dir, 'collateral.orig.json'), at: '2025-06-20T00:00:00Z' });
    assert.equal(r.code, 0, r.out + r.err);
  });

  test('--pccs fetches the collateral from a PCCS-compatible server (v4 routes, hex CRLs)', async () => {
    const tdx = 'intel/tdx-v4-phala';
    const col = readFixtureJson<Record<string, string>>(tdx, 'collateral.orig.json');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push(url.pathname + url.search);
      const send = (body: string, headers: Record<string, string>): void => {
        res.writeHead(200, headers);
        res.end(body);
      };
      if (url.pathname === '/tdx/certification/v4/tcb') {
        send(readFixture(tdx, 'tcb_info_response.json').toString('utf8'), { 'TCB-Info-Issuer-Chain': encodeURIComponent(col.tcb_info_issuer_chain!) });
      } else if (url.pathname === '/tdx/certification/v4/qe/identity') {
        send(readFixture(tdx, 'qe_identity_response.json').toString('utf8'), { 'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(col.qe_identity_issuer_chain!) });
      } else if (url.pathname === '/sgx/certification/v4/pckcrl' && url.searchParams.get('ca') === 'platform') {
        send(col.pck_crl!, { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(col.pck_crl_issuer_chain!) });
      } else if (url.pathname === '/sgx/certification/v4/rootcacrl') {
        send(col.root_ca_crl!, {});
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await run(fixturePath(tdx, 'quote.bin'), { pccs: `http://127.0.0.1:${port}/sgx/certification/v4/`, at: '2025-06-20T00:00:00Z' });
      assert.equal(r.code, 0, r.out + r.err);
      assert.equal(JSON.parse(r.out).status, 'UpToDate');
      assert.ok(seen.some((s) => s === '/tdx/certification/v4/tcb?fmspc=B0C06F000000'));
    } finally {
      server.close();
    }
  });

  test('--pccs has one total deadline (--timeout): a slow-drip PCCS ends the command with exit 2', { timeout: 20_000 }, async () => {
    const timers = new Set<NodeJS.Timeout>();
    // Every route answers 200 and then sends one byte a second: no socket is ever idle for long.
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      const t = setInterval(() => res.write(' '), 1000);
      timers.add(t);
      res.on('close', () => {
        clearInterval(t);
        timers.delete(t);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await run(fixturePath('intel/tdx-v4-phala', 'quote.bin'), { pccs: `http://127.0.0.1:${port}/`, timeout: '2' });
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.err, /within|deadline/);
      assert.equal((await run(fixturePath('intel/tdx-v4-phala', 'quote.bin'), { pccs: `http://127.0.0.1:${port}/`, timeout: 'soon' })).code, 2);
    } finally {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      server.close();
    }
  });
  test('--pccs: a PCK chain over the bound (a fourth certificate, or more than 32 KiB) is quote.pck_chain_invalid before any collateral is fetched', async () => {
    const quote = parseQuote(readFixture('intel/tdx-v4-phala', 'quote.bin'));
    const pem = Buffer.from(quote.signatureData.certificationData.data).toString('latin1').replace(/\0+$/, '');
    const chain = pemToDer(pem);
    const work = mkdtempSync(join(tmpdir(), 'conclave-quote-chain-'));
    let requests = 0;
    const server = createServer((_req, res) => {
      requests++;
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      for (const [what, text] of [
        ['the root twice', `${pem}${derToPem(chain[chain.length - 1]!)}`],
        ['33 KiB of padding after the chain', `${pem}${' '.repeat(33 * 1024)}`],
      ] as const) {
        const file = join(work, 'quote.bin');
        const data = new Uint8Array(Buffer.from(`${text}\0`, 'latin1'));
        writeFileSync(file, encodeQuote({ ...quote, signatureData: { ...quote.signatureData, certificationData: { ...quote.signatureData.certificationData, data } } }));
        const r = await run(file, { pccs: `http://127.0.0.1:${port}/`, at: '2025-06-20T00:00:00Z' });
        assert.equal(r.code, 1, `${what}: ${r.out}${r.err}`);
        assert.equal(JSON.parse(r.out).error.code, 'quote.pck_chain_invalid', what);
        assert.equal(requests, 0, `${what}: nothing was asked of the PCCS`);
      }
    } finally {
      server.close();
    }
  });
});
