/**
 * The JMESPath interpreter behind policy-1.2's JmesPath(), case by case against the semantics of the
 * JMESPath specification (https://jmespath.org/specification.html): null propagation, projections
 * stopping at a pipe, slices, filters, comparisons only between like values, and typed errors.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../../core/errors.js';
import { searchJmesPath } from './jmespath.js';

const doc = {
  a: { b: { c: 'v' }, list: [0, 1, 2, 3, 4, 5] },
  people: [
    { name: 'ann', age: 30, tags: ['x'] },
    { name: 'bob', age: 20, tags: ['y', 'z'] },
    { name: 'cy', age: 40 },
  ],
  nested: [
    [1, 2],
    [3, [4]],
  ],
  obj: { one: { n: 1 }, two: { n: 2 }, three: { m: 3 } },
  'with space': 'quoted',
  t: true,
  f: false,
  empty: [],
  s: 'Hello',
};
const q = (expr: string, data: unknown = doc) => searchJmesPath(data, expr);
const fails = (expr: string, data: unknown = doc) =>
  assert.throws(
    () => q(expr, data),
    (e) => isConclaveError(e, 'attestation.policy_evaluation') && e.status === 400,
    expr,
  );

describe('JMESPath', () => {
  test('fields and sub-expressions; a missing member is null, and null propagates', () => {
    assert.equal(q('a.b.c'), 'v');
    assert.equal(q('a.x.c'), null);
    assert.equal(q('"with space"'), 'quoted');
    assert.equal(q('s.length'), null, 'a field of a string is null');
    assert.deepEqual(q('@'), doc);
  });

  test('index and slice, negative ones from the end', () => {
    assert.equal(q('a.list[0]'), 0);
    assert.equal(q('a.list[-1]'), 5);
    assert.equal(q('a.list[10]'), null);
    assert.deepEqual(q('a.list[1:3]'), [1, 2]);
    assert.deepEqual(q('a.list[::2]'), [0, 2, 4]);
    assert.deepEqual(q('a.list[::-1]'), [5, 4, 3, 2, 1, 0]);
    assert.deepEqual(q('a.list[-2:]'), [4, 5]);
    assert.equal(q('a.b[0]'), null, 'an index of an object is null');
  });

  test('list, object and flatten projections drop nulls; a pipe stops the projection', () => {
    assert.deepEqual(q('people[*].name'), ['ann', 'bob', 'cy']);
    assert.deepEqual(q('people[*].tags[0]'), ['x', 'y']);
    assert.deepEqual(q('obj.*.n'), [1, 2]);
    assert.deepEqual(q('nested[]'), [1, 2, 3, [4]]);
    assert.deepEqual(q('nested[][]'), [1, 2, 3, 4]);
    assert.equal(q('people[*].name | [0]'), 'ann');
    assert.deepEqual(q('people[*].name[0]'), [], 'without the pipe, [0] applies to each name (a string): nulls, dropped');
    assert.equal(q('s[*]'), null, 'a projection of a non-array is null');
  });

  test('filters compare like values; ordering comparisons of other types are null', () => {
    assert.deepEqual(q("people[?age > `25`].name"), ['ann', 'cy']);
    assert.deepEqual(q("people[?name == 'bob'].age"), [20]);
    assert.deepEqual(q('people[?tags].name'), ['ann', 'bob'], 'a filter keeps truthy results');
    assert.deepEqual(q('people[?!tags].name'), ['cy']);
    assert.equal(q("s < 'z'"), null);
    assert.equal(q('`1` == `1.0`'), true);
    assert.equal(q('a.b == a.b'), true, 'objects compare deeply');
    assert.equal(q("`[1,2]` != `[2,1]`"), true);
  });

  test('or, and, not with JMESPath truthiness (empty list, object and string are false)', () => {
    assert.deepEqual(q('empty || a.list'), [0, 1, 2, 3, 4, 5]);
    assert.equal(q('t && s'), 'Hello');
    assert.equal(q('f && s'), false);
    assert.equal(q('!empty'), true);
    assert.equal(q("!''"), true);
    assert.equal(q('missing || `"fallback"`'), 'fallback');
  });

  test('multi-select lists and hashes, literals and raw strings', () => {
    assert.deepEqual(q('[a.b.c, s]'), ['v', 'Hello']);
    assert.deepEqual(q('{c: a.b.c, n: `3`}'), { c: 'v', n: 3 });
    assert.deepEqual(q('people[*].[name, age]'), [
      ['ann', 30],
      ['bob', 20],
      ['cy', 40],
    ]);
    assert.equal(q('missing.[a, b]'), null, 'a multi-select on null is null');
    assert.deepEqual(q('`{"k": [1, true, null]}`'), { k: [1, true, null] });
    assert.equal(q("'raw \\' quote'"), "raw ' quote");
  });

  test('built-in functions', () => {
    assert.equal(q('length(people)'), 3);
    assert.equal(q('length(s)'), 5);
    assert.deepEqual(q('keys(a.b)'), ['c']);
    assert.deepEqual(q('values(a.b)'), ['v']);
    assert.equal(q("contains(people[*].name, 'bob')"), true);
    assert.equal(q("starts_with(s, 'He')"), true);
    assert.equal(q("ends_with(s, 'lo')"), true);
    assert.deepEqual(q('sort(people[*].age)'), [20, 30, 40]);
    assert.equal(q('max(people[*].age)'), 40);
    assert.equal(q('min(people[*].name)'), 'ann');
    assert.equal(q('sum(a.list)'), 15);
    assert.equal(q("join('-', people[*].name)"), 'ann-bob-cy');
    assert.deepEqual(q('reverse(a.list[:3])'), [2, 1, 0]);
    assert.equal(q('type(a)'), 'object');
    assert.equal(q("to_number('42')"), 42);
    assert.equal(q("to_number('x')"), null);
    assert.equal(q('to_string(`[1]`)'), '[1]');
    assert.equal(q('not_null(missing, a.b.c)'), 'v');
    assert.equal(q('abs(`-3`)'), 3);
    assert.equal(q("equals_ignore_case(s, 'hELLO')"), true, "MAA's addition");
  });

  test('bad queries and bad arguments are typed policy-evaluation errors, never crashes', () => {
    for (const bad of ['a.', 'a[', '[?a', '{a}', 'a ||', 'unknown_fn(a)', 'length(a, b)', 'sum(people)', 'abs(s)', 'keys(a.list)', 'sort_by(people, &age)']) fails(bad);
    let deep = 'a';
    for (let i = 0; i < 100; i++) deep = `(${deep})`;
    fails(deep);
  });

  test('a deeply nested document is refused, not a stack overflow', () => {
    let data: unknown = 1;
    for (let i = 0; i < 30_000; i++) data = { a: data };
    fails(`${'a.'.repeat(29_999)}a`, data);
  });
});
