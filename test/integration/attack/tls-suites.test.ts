/**
 * The server's TLS: TLS 1.3, or TLS 1.2 with an ephemeral (EC)DHE key exchange and an AEAD cipher only.
 * CBC suites (with their padding-oracle history: Lucky Thirteen and kin) and TLS 1.0/1.1 must not be
 * negotiable, whatever the client offers; every client Conclave names (Azure's SDKs, Intel's QPL over
 * libcurl, browsers) offers the AEAD suites.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connect, type SecureVersion } from 'node:tls';
import { startTestServer, type TestServer } from '../../helpers/server.js';

describe('TLS versions and cipher suites', () => {
  let server: TestServer;
  let port: number;
  let ca: Buffer;
  before(async () => {
    server = await startTestServer({ simulate: true });
    port = Number(new URL(server.url).port);
    ca = readFileSync(server.caPath);
  });
  after(() => server?.stop());

  /** The cipher the handshake settled on, or the handshake's error. */
  const handshake = (opts: { ciphers?: string; minVersion?: SecureVersion; maxVersion?: SecureVersion }) =>
    new Promise<{ cipher?: string; version?: string | null; error?: string }>((resolve) => {
      // @SECLEVEL=0 lets this client offer the old versions and suites at all; the server must refuse them.
      const ciphers = opts.ciphers && `${opts.ciphers}:@SECLEVEL=0`;
      const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...opts, ciphers }, () => {
        const r = { cipher: s.getCipher().standardName, version: s.getProtocol() };
        s.end();
        resolve(r);
      });
      s.once('error', (e) => resolve({ error: e.message }));
    });

  test('TLS 1.3 and TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305 are served', async () => {
    assert.equal((await handshake({})).version, 'TLSv1.3');
    for (const c of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
      const r = await handshake({ ciphers: c, maxVersion: 'TLSv1.2' });
      assert.equal(r.version, 'TLSv1.2', `${c}: ${r.error}`);
    }
  });

  for (const c of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-CCM8']) {
    test(`TLS 1.2 with ${c} (no AEAD, or an 8-byte tag) is refused`, async () => {
      const r = await handshake({ ciphers: c, maxVersion: 'TLSv1.2' });
      assert.ok(r.error, `negotiated ${r.cipher} over ${r.version}`);
    });
  }

  for (const v of ['TLSv1', 'TLSv1.1'] as const) {
    test(`${v} is refused`, async () => {
      const r = await handshake({ ciphers: 'ALL', minVersion: v, maxVersion: v });
      assert.ok(r.error, `negotiated ${r.cipher} over ${r.version}`);
    });
  }
});
