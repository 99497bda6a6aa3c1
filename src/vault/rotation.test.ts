import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { addDuration, DEFAULT_ROTATION_POLICY, deserializeRotationPolicy, dueAt, parseDuration, parseRotationPolicy, rotatedExpiry, rotationPolicyWire, serializeRotationPolicy } from './rotation.js';

const T0 = Date.UTC(2025, 0, 31, 12, 0, 0) / 1000;
const DAY = 86400;

function refused(body: unknown, field: RegExp): void {
  assert.throws(
    () => parseRotationPolicy(body, T0),
    (e: unknown) => isConclaveError(e, 'key.invalid') && field.test(String(e.detail?.field)),
  );
}

describe('ISO 8601 durations', () => {
  test('components', () => {
    assert.deepEqual(parseDuration('P1Y2M3W4DT5H6M7S', 'f'), { text: 'P1Y2M3W4DT5H6M7S', years: 1, months: 2, days: 25, seconds: 5 * 3600 + 6 * 60 + 7 });
    assert.equal(parseDuration('p90d', 'f').days, 90);
  });
  for (const bad of ['', 'P', 'PT', '90D', 'P1.5D', 'P-1D', 'P1DT', 'P1H', 'P1D2M', 42, null]) {
    test(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => parseDuration(bad, 'f'), (e: unknown) => isConclaveError(e, 'key.invalid')));
  }
  test('calendar arithmetic clamps the day of month', () => {
    assert.equal(new Date(addDuration(T0, parseDuration('P1M', 'f')) * 1000).toISOString(), '2025-02-28T12:00:00.000Z');
    assert.equal(new Date(addDuration(T0, parseDuration('P1Y1M', 'f')) * 1000).toISOString(), '2026-02-28T12:00:00.000Z');
    assert.equal(new Date(addDuration(T0, parseDuration('P1M', 'f'), -1) * 1000).toISOString(), '2024-12-31T12:00:00.000Z');
    assert.equal(addDuration(T0, parseDuration('P10DT1H', 'f')), T0 + 10 * DAY + 3600);
  });
});

describe('rotation policy', () => {
  const body = {
    lifetimeActions: [
      { trigger: { timeAfterCreate: 'P90D' }, action: { type: 'rotate' } },
      { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } },
    ],
    attributes: { expiryTime: 'P1Y' },
  };

  test('parses, normalises the action case, round-trips through storage and the wire', () => {
    const p = parseRotationPolicy(body, T0);
    assert.equal(p.lifetimeActions[0]!.type, 'Rotate');
    assert.deepEqual(deserializeRotationPolicy(serializeRotationPolicy(p)), p);
    const wire = rotationPolicyWire('https://v/keys/k', p);
    assert.deepEqual(wire, {
      id: 'https://v/keys/k/rotationpolicy',
      lifetimeActions: [
        { trigger: { timeAfterCreate: 'P90D' }, action: { type: 'Rotate' } },
        { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } },
      ],
      attributes: { expiryTime: 'P1Y', created: T0, updated: T0 },
    });
  });

  test('no actions: AKV default (Notify 30 days before expiry)', () => {
    assert.deepEqual(parseRotationPolicy({ lifetimeActions: [] }, T0).lifetimeActions, DEFAULT_ROTATION_POLICY.lifetimeActions);
  });

  test('error paths name the field', () => {
    refused(null, /^body$/);
    refused({ lifetimeActions: {} }, /^lifetimeActions$/);
    refused({ lifetimeActions: [{ trigger: { timeAfterCreate: 'P90D' }, action: { type: 'Delete' } }] }, /action$/);
    refused({ lifetimeActions: [{ trigger: { timeAfterCreate: 'ninety days' }, action: { type: 'Rotate' } }] }, /timeAfterCreate$/);
    refused({ lifetimeActions: [{ trigger: {}, action: { type: 'Rotate' } }] }, /trigger$/);
    refused({ lifetimeActions: [{ trigger: { timeAfterCreate: 'P9D', timeBeforeExpiry: 'P9D' }, action: { type: 'Rotate' } }] }, /trigger$/);
    refused({ lifetimeActions: [{ trigger: { timeAfterCreate: 'P6D' }, action: { type: 'Rotate' } }] }, /timeAfterCreate$/);
    refused({ lifetimeActions: [{ trigger: { timeAfterCreate: 'P30D' }, action: { type: 'Notify' } }] }, /trigger$/);
    refused({ attributes: { expiryTime: 'P27D' } }, /expiryTime$/);
    refused({ attributes: { expiryTime: 'P60D' }, lifetimeActions: [{ trigger: { timeAfterCreate: 'P55D' }, action: { type: 'Rotate' } }] }, /timeAfterCreate$/);
    refused({ attributes: { expiryTime: 'P60D' }, lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P60D' }, action: { type: 'Rotate' } }] }, /timeBeforeExpiry$/);
    const twice = { trigger: { timeAfterCreate: 'P9D' }, action: { type: 'Rotate' } };
    refused({ lifetimeActions: [twice, twice] }, /lifetimeActions\[1\]/);
    refused({ lifetimeActions: [twice, twice, twice] }, /^lifetimeActions$/);
  });

  test('due times: after creation, before expiry, and none without an expiry to count back from', () => {
    const p = parseRotationPolicy(body, T0);
    assert.equal(dueAt(p, 'Rotate', { created: T0 }), T0 + 90 * DAY);
    assert.equal(dueAt(p, 'Notify', { created: T0 }), undefined);
    assert.equal(dueAt(p, 'Notify', { created: T0, exp: T0 + 100 * DAY }), T0 + 70 * DAY);
    const before = parseRotationPolicy({ lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P7D' }, action: { type: 'Rotate' } }] }, T0);
    assert.equal(dueAt(before, 'Rotate', { created: T0, exp: T0 + 30 * DAY }), T0 + 23 * DAY);
    assert.equal(rotatedExpiry(p, T0), addDuration(T0, parseDuration('P1Y', 'f')));
    assert.equal(rotatedExpiry(before, T0), undefined);
  });
});
