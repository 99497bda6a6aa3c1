import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { S, type Static, check, compile, violation } from './schema.js';

const BODY = S.object({ kty: S.string(), key_size: S.optional(S.integer({ minimum: 1024 })), tags: S.optional(S.record(S.string())), ops: S.optional(S.array(S.enum(['sign', 'verify']))) });

test('an object schema lists its required members and types its values', () => {
  assert.deepEqual(BODY.required, ['kty']);
  const v: Static<typeof BODY> = check(BODY, { kty: 'RSA', key_size: 2048, extra: true }, 'body');
  assert.equal(v.kty, 'RSA');
  // @ts-expect-error kty is a string
  const n: number = v.kty;
  assert.ok(n);
});

test('violations name the member and the reason', () => {
  assert.equal(violation(BODY, { kty: 'RSA' }, 'body'), undefined);
  assert.equal(violation(BODY, {}, 'body'), 'body.kty: is required');
  assert.equal(violation(BODY, { kty: 5 }, 'body'), 'body.kty: must be a string');
  assert.equal(violation(BODY, { kty: 'RSA', key_size: 1.5 }, 'body'), 'body.key_size: must be an integer');
  assert.equal(violation(BODY, { kty: 'RSA', key_size: 512 }, 'body'), 'body.key_size: below 1024');
  assert.equal(violation(BODY, { kty: 'RSA', tags: { a: 1 } }, 'body'), 'body.tags.a: must be a string');
  assert.match(violation(BODY, { kty: 'RSA', ops: ['sign', 'wrap'] }, 'body')!, /^body\.ops\[1\]: must be one of/);
  assert.equal(violation(BODY, [], 'body'), 'body: must be an object');
  assert.equal(violation(S.object({ a: S.string() }, { closed: true }), { a: 'x', b: 1 }, 'q'), 'q.b: is not a member this route accepts');
  assert.equal(violation(S.anyOf([S.string(), S.null()]), null, 'x'), undefined);
  assert.match(violation(S.anyOf([S.string(), S.null()]), 1, 'x')!, /none of the allowed forms/);
  assert.equal(violation(S.string({ pattern: '^[0-9a-f]{4}$' }), 'zzzz', 'p'), 'p: has not the form ^[0-9a-f]{4}$');
});

test('a value nested too deep is refused without walking it all, as a typed 400', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  assert.match(violation(S.unknown(), deep, 'body')!, /nests deeper than/);
  assert.throws(
    () => check(S.object({ a: S.unknown() }), { a: deep }, 'body'),
    (e) => isConclaveError(e, 'request.invalid') && e.status === 400 && /invalid body: body\.a/.test(e.message),
  );
});

test('a schema compiles once into a checker that agrees with the schema, optional members null included', () => {
  assert.equal(compile(BODY), compile(BODY), 'compiled once, cached per schema');
  assert.equal(compile(BODY)({ kty: 'RSA', key_size: null, tags: null }, 'body'), undefined, 'an optional member may be null');
  assert.equal(compile(BODY)({ kty: null }, 'body'), 'body.kty: must be a string', 'a required one may not');
  const S2 = S.object({ id: S.string({ pattern: '^[0-9]+$', maxLength: 3 }), n: S.optional(S.number()), list: S.optional(S.array(S.integer(), { maxItems: 2 })) }, { closed: true, maxProperties: 3 });
  assert.equal(violation(S2, { id: '12' }, 'q'), undefined);
  assert.equal(violation(S2, { id: '1234' }, 'q'), 'q.id: longer than 3 characters');
  assert.equal(violation(S2, { id: 'ab' }, 'q'), 'q.id: has not the form ^[0-9]+$');
  assert.equal(violation(S2, { id: '1', n: 1.5 }, 'q'), undefined, 'an integer-valued or fractional number is a number');
  assert.equal(violation(S2, { id: '1', list: [1, 2, 3] }, 'q'), 'q.list: more than 2 items');
  assert.equal(violation(S2, { id: '1', list: [1, 'x'] }, 'q'), 'q.list[1]: must be an integer');
  assert.equal(violation(S2, { id: '1', n: 1, list: [], x: 1 }, 'q'), 'q: more than 3 members');
});
