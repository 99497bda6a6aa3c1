import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from './errors.js';
import { MAX_JSON_DEPTH, jsonTextTooDeep, parseJsonText } from './json.js';

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
