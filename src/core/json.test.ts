import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from './errors.js';
import { MAX_JSON_DEPTH, canonicalJson, jsonTextTooDeep, parseJsonText } from './json.js';

describe('bounded JSON', () => {
  test('depth is counted from the text, brackets in strings and escapes excluded', () => {
    assert.equal(jsonTextTooDeep('[[1]]', 2), false);
    assert.equal(jsonTextTooDeep('[[[1]]]', 2), true);
    assert.equal(jsonTextTooDeep('{"a":"[[[[[[\\"[[["}', 1), false);
    assert.equal(jsonTextTooDeep(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`), false);
    assert.equal(jsonTextTooDeep(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`), true);
  });

  test('a document a million levels deep is refused with a typed error, fast and without recursion', () => {
    const deep = '['.repeat(1_000_000);
    assert.throws(() => parseJsonText(deep, 'body'), (e) => isConclaveError(e, 'request.invalid') && /deeper than 64/.test(e.message));
    assert.throws(() => parseJsonText('{', 'body', 'attestation.policy_evaluation'), (e) => isConclaveError(e, 'attestation.policy_evaluation'));
    assert.deepEqual(parseJsonText('{"a":[1,{"b":2}]}', 'body'), { a: [1, { b: 2 }] });
  });
});

test('canonicalJson gives the same text as the entries-sort-join form it replaced, on random values', () => {
  const reference = (v: unknown): string => {
    if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
    if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : reference(x))).join(',')}]`;
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${reference(x)}`).join(',')}}`;
  };
  let seed = 0x2026;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const keys = ['a', 'B', 'b', 'aa', 'é', 'É', '😀', '\u2028', '"q"', '10', '9', '', 'x-ms-runtime', '__proto_'];
  const value = (depth: number): unknown => {
    switch (rnd(depth > 3 ? 6 : 9)) {
      case 0: return null;
      case 1: return rnd(2) === 0;
      case 2: return rnd(1e6) / (rnd(3) + 1) - 500;
      case 3: return keys[rnd(keys.length)]! + String.fromCharCode(rnd(0x3000));
      case 4: return undefined;
      case 5: return Number.NaN;
      case 6: case 7: return Object.fromEntries(Array.from({ length: rnd(6) }, () => [keys[rnd(keys.length)]!, value(depth + 1)]));
      default: return Array.from({ length: rnd(5) }, () => value(depth + 1));
    }
  };
  for (let i = 0; i < 3000; i++) {
    const v = value(0);
    assert.equal(canonicalJson(v), reference(v));
  }
});
