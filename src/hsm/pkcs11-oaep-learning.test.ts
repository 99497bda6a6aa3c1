/**
 * tryOaep (src/hsm/pkcs11-cipher.ts) learns that the token lacks an OAEP hash only from a refusal that can
 * be the hash's: never for a hash that already worked on the connection, and, with a probe, only when the
 * probe (the mechanism on data the request has no part in) is refused too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Connection } from './pkcs11-common.js';
import { tryOaep } from './pkcs11-cipher.js';

const refused = () => Promise.reject(new Error('CKR_ARGUMENTS_BAD'));
const conn = (known: [string, boolean][]) => ({ oaep: new Map(known) }) as unknown as Connection;

test('a refusal of a hash that already worked on the connection is the request\'s error, not learnt', async () => {
  const c = conn([['sha1', true]]);
  await assert.rejects(tryOaep(c, 'sha1', refused), /CKR_ARGUMENTS_BAD/);
  assert.equal(c.oaep.get('sha1'), true);
});

test('a refusal whose probe works is the request\'s error, and the hash is known to work', async () => {
  const c = conn([]);
  await assert.rejects(tryOaep(c, 'sha256', refused, async () => undefined), /CKR_ARGUMENTS_BAD/);
  assert.equal(c.oaep.get('sha256'), true);
  assert.deepEqual(await tryOaep(c, 'sha256', async () => 7), { ok: true, value: 7 });
});

test('a refusal whose probe is refused too is learnt for the connection', async () => {
  const c = conn([]);
  assert.deepEqual(await tryOaep(c, 'sha256', refused, refused), { ok: false });
  assert.equal(c.oaep.get('sha256'), false);
  assert.deepEqual(await tryOaep(c, 'sha256', async () => 7), { ok: false });
});

test('an error that is no parameter refusal goes on and teaches nothing', async () => {
  const c = conn([]);
  await assert.rejects(tryOaep(c, 'sha256', () => Promise.reject(new Error('CKR_ENCRYPTED_DATA_INVALID')), refused), /CKR_ENCRYPTED_DATA_INVALID/);
  assert.equal(c.oaep.has('sha256'), false);
});
