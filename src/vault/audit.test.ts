import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AuditRecord, auditHash, canonicalJson, GENESIS_HASH, type StoredAuditRow, verifyAuditChain } from './audit.js';

function chain(n: number): StoredAuditRow[] {
  const rows: StoredAuditRow[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const rec: AuditRecord = { seq, time: new Date(seq * 1000).toISOString(), principal: 'p', operation: 'get', key: `k${seq}`, result: 'success', status: 200 };
    const record = canonicalJson(rec);
    const hash = auditHash(prev, record);
    rows.push({ seq, record, prevHash: prev, hash });
    prev = hash;
  }
  return rows;
}

describe('audit chain', () => {
  test('an intact chain verifies', () => {
    const r = verifyAuditChain(chain(5));
    assert.equal(r.ok, true);
    assert.equal(r.count, 5);
  });
  test('a changed record is found', () => {
    const rows = chain(5);
    rows[2] = { ...rows[2]!, record: rows[2]!.record.replace('"k3"', '"kX"') };
    const r = verifyAuditChain(rows);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.badSeq, 3);
  });
  test('a changed record with a recomputed hash breaks the next link', () => {
    const rows = chain(5);
    const record = rows[1]!.record.replace('"k2"', '"kX"');
    rows[1] = { ...rows[1]!, record, hash: auditHash(rows[1]!.prevHash, record) };
    const r = verifyAuditChain(rows);
    assert.equal(!r.ok && r.badSeq, 3);
  });
  test('a deleted record is found', () => {
    const rows = chain(5);
    rows.splice(1, 1);
    const r = verifyAuditChain(rows);
    assert.equal(!r.ok && r.badSeq, 2);
  });
  test('swapped records are found', () => {
    const rows = chain(5);
    const a = rows[1]!;
    const b = rows[2]!;
    rows[1] = { ...b, seq: 2 };
    rows[2] = { ...a, seq: 3 };
    const r = verifyAuditChain(rows);
    assert.equal(!r.ok && r.badSeq, 2);
  });
  test('canonical JSON sorts keys and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: undefined, c: [1, 'x'] } }), '{"a":{"c":[1,"x"]},"b":1}');
  });
});
