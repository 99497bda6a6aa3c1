import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { integrityOf, rowText } from './row-mac.js';

const key = randomBytes(32);
let hmacs = 0;
const mac = (purpose: string, text: string) => {
  hmacs++;
  return createHmac('sha256', key).update(purpose).update('\0').update(text).digest('hex');
};
const refused = (f: () => void) => assert.throws(f, (e: { code?: string }) => e.code === 'store.integrity');

test('a row read again passes without another HMAC; a changed row under a remembered MAC is refused', () => {
  const integrity = integrityOf(mac);
  const row = ['k', 'v1', 1, new Uint8Array([1, 2, 3])];
  const stored = integrity.compute('vault-key-version', row)!;
  integrity.check('vault-key-version', row, stored, 'k');
  const before = hmacs;
  integrity.check('vault-key-version', ['k', 'v1', 1, new Uint8Array([1, 2, 3])], stored, 'k');
  assert.equal(hmacs, before, 'the remembered row is not hashed again');
  // The remembered MAC over another text (a column changed, the row's MAC kept): refused, every time.
  refused(() => integrity.check('vault-key-version', ['k', 'v1', 1, new Uint8Array([1, 2, 4])], stored, 'k'));
  refused(() => integrity.check('vault-key-version', ['k', 'v1', 0, new Uint8Array([1, 2, 3])], stored, 'k'));
  // The same MAC under another purpose is another object's: refused.
  refused(() => integrity.check('vault-role-assignment', row, stored, 'k'));
  // No MAC, or a MAC with a byte changed: refused.
  refused(() => integrity.check('vault-key-version', row, null, 'k'));
  refused(() => integrity.check('vault-key-version', row, `${stored.slice(0, -1)}${stored.endsWith('0') ? '1' : '0'}`, 'k'));
  // And the genuine row still passes after the refusals.
  integrity.check('vault-key-version', row, stored, 'k');
});

test('remembered rows are per MAC function: a row verified under one key is checked afresh under another', () => {
  const a = integrityOf(mac);
  const other = randomBytes(32);
  const b = integrityOf((p, t) => createHmac('sha256', other).update(p).update('\0').update(t).digest('hex'));
  const row = ['authority', 'https://a.example'];
  const stored = a.compute('vault-authority', row)!;
  a.check('vault-authority', row, stored, 'a');
  refused(() => b.check('vault-authority', row, stored, 'a'));
  assert.equal(rowText(row), '["authority","https://a.example"]');
});
