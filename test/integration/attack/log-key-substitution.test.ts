/**
 * docs/security.md, "What access to the store can and cannot achieve": a store writer without the master
 * key cannot rewrite the audit history unnoticed, because `GET /admin/vault/audit/verify` checks every
 * head against the log key. The server holds that key (sealed under the master key, or in the token); a
 * certificate row in `service_keys` is only a copy of its public half that anyone who can write the store
 * can replace or add. Here the attacker rewrites a log entry (the creation of key `evidence` now names
 * `innocent`), recomputes the leaf, the stored nodes and every head, signs the heads with a key of its
 * own, and plants that key's certificate as a log-key row, replacing the software key's or adding the
 * token key's. The verification must still fail: the heads are not signed by the server's log key.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { createPublicKey, KeyObject, sign, webcrypto } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import { hashLeafText, rootOf } from '../../../src/log/merkle.js';
import { encodeTreeHead, logKeyId } from '../../../src/log/tree-head.js';
import { waitSequenced } from '../../helpers/log.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

describe('a log key planted in the store does not vouch for a rewritten log', () => {
  let server: TestServer;
  const admin = async () => ({ authorization: `Bearer ${await server.adminToken()}` });
  const verify = async () => {
    const r = await server.send('GET', '/admin/vault/audit/verify', { headers: await admin() });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    return JSON.parse(r.text) as { ok: boolean; code?: string };
  };

  before(async () => {
    server = await startTestServer({ logBatchMs: 5 });
    const r = await server.send('POST', '/keys/evidence/create?api-version=7.4', { headers: await admin(), body: { kty: 'EC', crv: 'P-256' } });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    await waitSequenced(server.ctx.db);
  });
  after(() => server?.stop());

  test('heads re-signed by a key whose certificate the attacker wrote into service_keys fail verification', async () => {
    const db = server.ctx.db;
    assert.equal((await verify()).ok, true, 'the untouched log verifies (the baseline)');

    // The attacker's log key and a self-signed certificate over it, as the server writes its own.
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=transparency log',
      notBefore: new Date(Date.now() - 3600_000),
      notAfter: new Date(Date.now() + 86400_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      keys,
    });
    const privateKey = KeyObject.from(keys.privateKey);
    const publicKey = createPublicKey(privateKey);

    // Rewrite the entry, then everything derived from it: leaf hashes, stored nodes, heads.
    const leaves = await db.all<{ idx: number; id: number; entry: string }>('SELECT i.idx, l.id, l.entry FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id ORDER BY i.idx');
    const target = leaves.find((l) => l.entry.includes('"key":"evidence"') && l.entry.includes('"operation":"create'));
    assert.ok(target, `the creation of key evidence is logged: ${leaves.map((l) => l.entry.slice(0, 80)).join(' | ')}`);
    const forged = target.entry.replace('"key":"evidence"', '"key":"innocent"');
    await db.run('UPDATE log_leaves SET entry = ?, leaf_hash = ? WHERE id = ?', [forged, hashLeafText(forged).toString('hex'), target.id]);
    const hashes = leaves.map((l) => hashLeafText(l.id === target.id ? forged : l.entry));
    for (const n of await db.all<{ level: number; idx: number }>('SELECT level, idx FROM log_nodes')) {
      const width = 2 ** Number(n.level);
      await db.run('UPDATE log_nodes SET hash = ? WHERE level = ? AND idx = ?', [rootOf(hashes.slice(Number(n.idx) * width, (Number(n.idx) + 1) * width)).toString('hex'), n.level, n.idx]);
    }
    for (const h of await db.all<{ tree_size: number; timestamp_ms: number }>('SELECT tree_size, timestamp_ms FROM log_heads')) {
      const head = { treeSize: Number(h.tree_size), timestamp: Number(h.timestamp_ms), rootHash: rootOf(hashes.slice(0, Number(h.tree_size))) };
      const signature = sign('sha256', encodeTreeHead(head), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      await db.run('UPDATE log_heads SET root_hash = ?, key_id = ?, signature = ? WHERE tree_size = ?', [head.rootHash.toString('hex'), logKeyId(publicKey), signature.toString('base64'), h.tree_size]);
    }
    const rewritten = await verify();
    assert.equal(rewritten.ok, false, 'the rewritten log is not signed by any key the store pins: refused');
    assert.equal(rewritten.code, 'log.signature_invalid');

    // Adding a certificate row (the token log key's, on a server without --hsm) …
    await db.run('INSERT INTO service_keys (name, alg, sealed_private, cert_der, created_at) VALUES (?, ?, ?, ?, ?)', ['pkcs11:log-signing', 'RS256', Buffer.alloc(0), Buffer.from(cert.rawData), 1]);
    const added = await verify();
    assert.equal(added.ok, false, `a certificate row written into the store made the server vouch for a rewritten log: ${JSON.stringify(added)}`);
    assert.equal(added.code, 'log.signature_invalid');
    await db.run("DELETE FROM service_keys WHERE name = 'pkcs11:log-signing'");

    // … or replacing the software log key's certificate.
    const original = await db.get<{ cert_der: Uint8Array }>("SELECT cert_der FROM service_keys WHERE name = 'log-signing'");
    await db.run("UPDATE service_keys SET cert_der = ? WHERE name = 'log-signing'", [Buffer.from(cert.rawData)]);
    const replaced = await verify();
    assert.equal(replaced.ok, false, `a replaced certificate row made the server vouch for a rewritten log: ${JSON.stringify(replaced)}`);
    assert.equal(replaced.code, 'log.signature_invalid');
    await db.run("UPDATE service_keys SET cert_der = ? WHERE name = 'log-signing'", [Buffer.from(original!.cert_der)]);
  });
});
