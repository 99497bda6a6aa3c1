/**
 * The transparency log over HTTPS against the real server: every release decision logged, the release
 * response carrying its leaf hash, the public proof API with typed errors, and the SDK proving a
 * release's inclusion against a head signed by the log key (attestAndRelease({ requireInclusion })).
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashLeaf, verifyConsistency, verifyInclusion } from '../../../src/log/merkle.js';
import { checkTreeHead, parseTreeHeadWire } from '../../../src/log/tree-head.js';
import { nodePos } from '../../../src/storage/log-store.js';
import { attestAndRelease, checkReleaseEntry, type Credential, simSource, verifyLogInclusion } from '../../../src/sdk/index.js';
import { conclave } from '../../helpers/cli.js';
import { waitSequenced } from '../../helpers/log.js';
import { type TestServer, startTestServer } from '../../helpers/server.js';
import { createReleasableKey } from '../agent/helpers.js';
import { generateEcKeyPair } from '../../../src/core/keygen.js';

describe('transparency log: HTTP API and SDK inclusion proofs', () => {
  let server: TestServer;
  let admin: Credential;
  const get = async (path: string, auth = false) => {
    const r = await server.send('GET', path, auth ? { headers: { authorization: `Bearer ${await server.adminToken()}` } } : {});
    return { status: r.status, json: r.text ? (JSON.parse(r.text) as Record<string, any>) : {} };
  };

  before(async () => {
    server = await startTestServer({ simulate: true, logBatchMs: 10 });
    admin = JSON.parse(readFileSync(server.adminPath, 'utf8'));
    await createReleasableKey(server, 'skr-log');
  });
  after(async () => server?.stop());

  const release = (extra: Record<string, unknown> = {}) =>
    attestAndRelease({
      attestationUrl: server.url,
      vaultUrl: server.url,
      keyName: 'skr-log',
      source: simSource({ dataDir: server.dataDir, tee: 'snp' }),
      credential: admin,
      ca: readFileSync(server.caPath),
      trustStore: readFileSync(server.caPath, 'utf8'),
      ...extra,
    });

  test('attestAndRelease({ requireInclusion }) proves the release is in a head signed by the log key', async () => {
    const key = await get('/log/key');
    assert.equal(key.status, 200);
    assert.equal(key.json.alg, 'ES256');
    const released = await release({ requireInclusion: true, logKey: key.json.publicKey });
    assert.ok(released.inclusion, 'the inclusion comes back');
    assert.equal(released.inclusion.leafHash, released.log!.leafHash);
    const sth = parseTreeHeadWire(released.inclusion.sth);
    checkTreeHead(sth, createPublicKey(key.json.publicKey));
    assert.ok(verifyInclusion(Buffer.from(released.log!.leafHash, 'hex'), released.inclusion.leafIndex, sth.treeSize, released.inclusion.inclusionPath.map((h) => Buffer.from(h, 'hex')), sth.rootHash));
    const entry = JSON.parse(released.log!.entry);
    assert.equal(entry.operation, 'release');
    assert.equal(entry.result, 'success');
    assert.equal(entry.key, 'skr-log');
    assert.ok(!released.log!.entry.includes(String(released.jwk.d)), 'no key material in the log');
  });

  test('a head signed by another key is refused (log.signature_invalid); without a pinned key the published one is used', async () => {
    const other = generateEcKeyPair('P-256').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    await assert.rejects(release({ requireInclusion: true, logKey: other }), (e: { code?: string }) => e.code === 'log.signature_invalid');
    const unpinned = await release({ requireInclusion: true });
    assert.ok(unpinned.inclusion);
  });

  test('an entry that does not describe this release, or a leaf never logged, fails with log.proof_invalid', async () => {
    const released = await release();
    assert.ok(released.log, 'the receipt comes back without requireInclusion too');
    assert.throws(() => checkReleaseEntry(released.log!, { keyName: 'another-key', token: released.token }), (e: { code?: string }) => e.code === 'log.proof_invalid');
    assert.throws(() => checkReleaseEntry({ ...released.log!, entry: released.log!.entry.replace('"success"', '"denied"') }, { keyName: 'skr-log', token: released.token }), (e: { code?: string }) => e.code === 'log.proof_invalid');
    checkReleaseEntry(released.log!, { keyName: 'SKR-LOG', token: released.token });
    await assert.rejects(verifyLogInclusion('ab'.repeat(32), { vaultUrl: server.url, ca: readFileSync(server.caPath), timeoutMs: 100 }), (e: { code?: string }) => e.code === 'log.proof_invalid');
  });

  test('a denied release is logged too, with the clause that failed', async () => {
    const r = await server.send('POST', '/keys/skr-log/release?api-version=7.4', { headers: { authorization: `Bearer ${await server.adminToken()}` }, body: { target: 'not-a-token' } });
    assert.equal(r.status, 401);
    const size = await waitSequenced(server.ctx.db);
    const page = await get(`/log/entries?start=${size - 1}&end=${size - 1}`, true);
    assert.equal(page.status, 200);
    const [last] = page.json.entries as { index: number; leafHash: string; entry: string }[];
    assert.equal(hashLeaf(Buffer.from(last!.entry)).toString('hex'), last!.leafHash);
    const rec = JSON.parse(last!.entry);
    assert.equal(rec.operation, 'release');
    assert.equal(rec.result, 'denied');
    assert.equal(rec.code, 'release.token_invalid');
  });

  test('GET /log/sth, proofs and entries; bad ranges are typed 400s, an unknown leaf 404, entries need the administrator', async () => {
    const size = await waitSequenced(server.ctx.db);
    const sth = await get('/log/sth');
    assert.equal(sth.status, 200);
    const head = parseTreeHeadWire(sth.json);
    assert.ok(head.treeSize >= size);
    const entries = await get(`/log/entries?start=0&end=${head.treeSize + 5000}`, true);
    assert.equal(entries.json.entries.length, Math.min(head.treeSize, 1000));
    const leaf = entries.json.entries[1].leafHash as string;
    const proof = await get(`/log/proof/inclusion?leaf=${leaf}&size=${head.treeSize}`);
    assert.equal(proof.status, 200);
    assert.equal(proof.json.leafIndex, 1);
    assert.ok(verifyInclusion(Buffer.from(leaf, 'hex'), 1, head.treeSize, proof.json.inclusionPath.map((h: string) => Buffer.from(h, 'hex')), head.rootHash));
    const older = parseTreeHeadWire((await server.ctx.db.get<Record<string, unknown>>('SELECT tree_size AS "treeSize", timestamp_ms AS "timestamp", root_hash AS "rootHash", key_id AS "keyId", signature FROM log_heads WHERE tree_size > 0 ORDER BY tree_size LIMIT 1'))!);
    const c = await get(`/log/proof/consistency?from=${older.treeSize}&to=${head.treeSize}`);
    assert.equal(c.status, 200);
    assert.ok(verifyConsistency(older.treeSize, head.treeSize, older.rootHash, head.rootHash, c.json.consistencyPath.map((h: string) => Buffer.from(h, 'hex'))));
    for (const path of [
      '/log/entries?start=5&end=4',
      `/log/entries?start=${head.treeSize + 10}&end=${head.treeSize + 20}`,
      '/log/entries?start=-1&end=3',
      '/log/entries?start=abc&end=3',
      '/log/proof/consistency?from=0&to=1',
      `/log/proof/consistency?from=1&to=${head.treeSize + 1000}`,
      '/log/proof/consistency?from=3',
      `/log/proof/inclusion?leaf=${leaf}&size=${head.treeSize + 1000}`,
      '/log/proof/inclusion?leaf=xyz',
    ]) {
      const r = await get(path, true);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, 'log.range_invalid', path);
    }
    const unknown = await get(`/log/proof/inclusion?leaf=${'cd'.repeat(32)}`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'log.leaf_not_found');
    assert.equal((await get('/log/entries?start=0&end=1')).status, 401);
  });

  test('conclave log monitor: heads accepted over runs; another root seen for a size, or a missing consistency proof, is an alert (exit 1)', async () => {
    const keyFile = join(server.dataDir, 'log-key.pem');
    writeFileSync(keyFile, (await get('/log/key')).json.publicKey);
    const state = join(server.dataDir, 'monitor.json');
    const monitor = () => conclave(['log', 'monitor', '--url', server.url, '--log-key', keyFile, '--state', state, '--once', '--ca', server.caPath]);
    const first = await monitor();
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout.trim().split('\n').at(-1)!).kind, 'head');
    // A link planted where the state is staged is never written through (issue #23 item 7).
    const victim = join(server.dataDir, 'victim.txt');
    writeFileSync(victim, 'keep');
    symlinkSync(victim, `${state}.tmp`);
    await release();
    await waitSequenced(server.ctx.db);
    const grown = await monitor();
    assert.equal(grown.code, 0, grown.stderr);
    assert.equal(readFileSync(victim, 'utf8'), 'keep', 'the symlink target is untouched');
    assert.equal(statSync(state).mode & 0o777, 0o600);
    const line = JSON.parse(grown.stdout.trim().split('\n').at(-1)!);
    assert.equal(line.kind, 'head');
    assert.ok(line.grewFrom > 0 && line.sth.treeSize > line.grewFrom, grown.stdout);

    // The log cannot prove the next head extends the last one (the new entries and tree nodes are gone): an alert.
    const seen = line.sth.treeSize as number;
    await release();
    await waitSequenced(server.ctx.db);
    const nodes = await server.ctx.db.all<{ level: number; idx: number; hash: string }>('SELECT level, idx, hash FROM log_nodes');
    const added = await server.ctx.db.all<{ id: number; leaf_hash: string; entry: string; created_ms: number; idx: number }>('SELECT l.id, l.leaf_hash, l.entry, l.created_ms, i.idx FROM log_index i JOIN log_leaves l ON l.id = i.leaf_id WHERE i.idx >= ?', [seen]);
    await server.ctx.db.transaction(async (tx) => {
      await tx.run('DELETE FROM log_nodes');
      await tx.run('DELETE FROM log_index WHERE idx >= ?', [seen]);
      for (const e of added) await tx.run('DELETE FROM log_leaves WHERE id = ?', [e.id]);
    });
    const missing = await monitor();
    await server.ctx.db.transaction(async (tx) => {
      // SQLite keys each node by the position at which the tree completed it (migration 217).
      for (const n of nodes) {
        if (server.ctx.db.dialect === 'sqlite') await tx.run('INSERT INTO log_nodes (pos, level, idx, hash) VALUES (?, ?, ?, ?)', [nodePos({ level: Number(n.level), index: Number(n.idx) }), n.level, n.idx, n.hash]);
        else await tx.run('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)', [n.level, n.idx, n.hash]);
      }
      for (const e of added) {
        await tx.run('INSERT INTO log_leaves (id, leaf_hash, entry, created_ms) VALUES (?, ?, ?, ?)', [e.id, e.leaf_hash, e.entry, e.created_ms]);
        await tx.run('INSERT INTO log_index (idx, leaf_id) VALUES (?, ?)', [e.idx, e.id]);
      }
      // PostgreSQL's trigger marks every inserted leaf as waiting; these have their index back.
      if (server.ctx.db.dialect === 'postgres') for (const e of added) await tx.run('DELETE FROM log_pending WHERE id = ?', [e.id]);
    });
    assert.equal(missing.code, 1, missing.stdout);
    assert.match(missing.stdout, /"alert":"consistency_missing"/);
    assert.equal((await monitor()).code, 0, 'the restored log proves it again');

    // The monitor remembers another root for the size the log serves now: a fork.
    const now = (await get('/log/sth')).json;
    writeFileSync(state, JSON.stringify({ sth: { ...now, rootHash: 'ee'.repeat(32) } }));
    const forked = await monitor();
    assert.equal(forked.code, 1, forked.stdout);
    assert.match(forked.stdout, /"alert":"fork"/);
  });
});
