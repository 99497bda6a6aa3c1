import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { test } from 'node:test';
import { EMPTY_ROOT, hashLeaf } from './merkle.js';
import { checkTreeHead, encodeTreeHead, logKeyId, parseTreeHeadWire, signTreeHead, treeHeadSignedBy, treeHeadToWire } from './tree-head.js';
import { generateEcKeyPair, generateRsaKeyPair } from '../core/keygen.js';

const ec = generateEcKeyPair('P-256');
const rsa = generateRsaKeyPair(2048);
const p384 = generateEcKeyPair('P-384');
const signer = (k: typeof ec, p1363: boolean) => ({ keyId: logKeyId(k.publicKey), publicKey: k.publicKey, sign: async (d: Uint8Array) => sign('sha256', d, p1363 ? { key: k.privateKey, dsaEncoding: 'ieee-p1363' } : k.privateKey) });
const head = { treeSize: 2 ** 40 + 1, timestamp: Date.UTC(2026, 11, 6), rootHash: hashLeaf(Buffer.from('x')) };

test('TreeHeadDataV2 (RFC 9162 §4.9): uint64 timestamp, uint64 size, 1-byte length + root, empty extensions', () => {
  const b = encodeTreeHead(head);
  assert.equal(b.length, 51);
  assert.equal(b.readBigUInt64BE(0), BigInt(head.timestamp));
  assert.equal(b.readBigUInt64BE(8), BigInt(head.treeSize));
  assert.equal(b[16], 32);
  assert.deepEqual(b.subarray(17, 49), head.rootHash);
  assert.equal(b.readUInt16BE(49), 0);
});

test('a head verifies with the key that signed it (P-256 or RSA), and not with another key, size, time or root', async () => {
  for (const k of [signer(ec, true), signer(rsa, false)]) {
    const sth = await signTreeHead(head, k);
    checkTreeHead(sth, k.publicKey);
    assert.ok(!treeHeadSignedBy({ ...sth, treeSize: sth.treeSize + 1 }, k.publicKey));
    assert.ok(!treeHeadSignedBy({ ...sth, timestamp: sth.timestamp + 1 }, k.publicKey));
    assert.ok(!treeHeadSignedBy({ ...sth, rootHash: EMPTY_ROOT }, k.publicKey));
  }
  const sth = await signTreeHead(head, signer(ec, true));
  const other = generateEcKeyPair('P-256');
  assert.throws(() => checkTreeHead(sth, other.publicKey), (e: { code?: string }) => e.code === 'log.signature_invalid');
  // Signed by another key but naming the log key: the signature check catches it.
  const forged = { ...(await signTreeHead(head, signer(other, true))), keyId: logKeyId(ec.publicKey) };
  assert.throws(() => checkTreeHead(forged, ec.publicKey), (e: { code?: string }) => e.code === 'log.signature_invalid');
  // The algorithm follows the trusted key: a P-384 key, or a DER ECDSA signature, is refused.
  assert.ok(!treeHeadSignedBy(await signTreeHead(head, signer(p384, true)), p384.publicKey));
  assert.ok(!treeHeadSignedBy(await signTreeHead(head, signer(ec, false)), ec.publicKey));
});

test('the wire form round-trips and is parsed strictly', async () => {
  const sth = await signTreeHead(head, signer(ec, true));
  const wire = treeHeadToWire(sth);
  assert.deepEqual(parseTreeHeadWire(JSON.parse(JSON.stringify(wire))), sth);
  for (const bad of [null, [], { ...wire, treeSize: -1 }, { ...wire, treeSize: 1.5 }, { ...wire, rootHash: 'AB'.repeat(32) }, { ...wire, rootHash: '00' }, { ...wire, keyId: 1 }, { ...wire, signature: '' }, { ...wire, signature: 'a b' }]) {
    assert.throws(() => parseTreeHeadWire(bad), (e: { code?: string }) => e.code === 'log.head_malformed', JSON.stringify(bad));
  }
});
