import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
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

  test('depth read from the text is the depth of the parsed value, for every limit, on random values whose strings and keys are full of brackets, quotes and backslashes', () => {
    // A string's brackets are no depth, and an escaped quote (or an escaped backslash before a quote) does
    // not end the string: compared with the depth of the value itself, each limit from 0 to one above it.
    const text = fc.array(fc.constantFrom('[', ']', '{', '}', '"', '\\', '\\"', 'a', ':', ',', '\n', '\u2028'), { maxLength: 12 }).map((a) => a.join(''));
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', maxDepth: 10 },
        text,
        fc.integer(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(text, tie('value'), { maxKeys: 3 }),
      ),
    }));
    const depthOf = (v: unknown): number =>
      v === null || typeof v !== 'object' ? 0 : 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)).map(depthOf));
    fc.assert(
      fc.property(value, fc.constantFrom(undefined, 1, '\t'), (v, indent) => {
        const json = JSON.stringify(v, null, indent);
        const depth = depthOf(JSON.parse(json));
        for (let limit = 0; limit <= depth + 1; limit++) assert.equal(jsonTextTooDeep(json, limit), depth > limit, `${json} at limit ${limit}`);
      }),
      { numRuns: 2000 },
    );
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

test('canonicalJson is byte-identical to the implementation before its quoted-key cache, on random and adversarial values', () => {
  // The implementation as of 80896ea, kept verbatim: the audit log's leaf hashes and the claims hash of
  // every release already issued were computed with it.
  const previous = (v: unknown): string => {
    if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
    if (Array.isArray(v)) {
      let out = '[';
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (i > 0) out += ',';
        out += x === undefined ? 'null' : previous(x);
      }
      return `${out}]`;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    let out = '{';
    let first = true;
    for (const k of keys) {
      const x = o[k];
      if (x === undefined) continue;
      if (!first) out += ',';
      first = false;
      out += `${JSON.stringify(k)}:${previous(x)}`;
    }
    return `${out}}`;
  };
  let seed = 0x5eed;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const units = [0x0, 0x1f, 0x22, 0x5c, 0x7f, 0xe9, 0x2028, 0x2029, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xfeff, 0xffff];
  const text = (): string => {
    let s = '';
    for (let i = rnd(12); i > 0; i--) s += String.fromCharCode(rnd(3) === 0 ? units[rnd(units.length)]! : rnd(3) === 0 ? rnd(0x10000) : 0x20 + rnd(0x5f));
    if (rnd(8) === 0) s += '\ud83d\ude00'; // a surrogate pair
    return s;
  };
  const fixedKeys = ['a', 'B', 'b', 'aa', '', '0', '1', '10', '9', '01', '-1', '1.5', '4294967295', '4294967294', '__proto__', 'constructor', 'toString', 'x-ms-runtime', '\ud800', '\udc00', '\ud83d\ude00', 'é', 'e\u0301', '"', '\\', 'k'.repeat(65), 'k'.repeat(64)];
  const numbers = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 5e-324, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, -Number.MAX_VALUE, Number.NaN, Infinity, -Infinity, 123456789.125];
  const key = () => (rnd(3) === 0 ? text() : fixedKeys[rnd(fixedKeys.length)]!);
  const value = (depth: number): unknown => {
    switch (rnd(depth > 4 ? 6 : 10)) {
      case 0: return null;
      case 1: return rnd(2) === 0;
      case 2: return rnd(2) === 0 ? numbers[rnd(numbers.length)] : (rnd(2e6) - 1e6) / (rnd(7) + 1);
      case 3: return text();
      case 4: return undefined;
      case 5: return fixedKeys[rnd(fixedKeys.length)];
      case 6: case 7: {
        const o: Record<string, unknown> = {};
        for (let i = rnd(7); i > 0; i--) Object.defineProperty(o, key(), { value: value(depth + 1), enumerable: true, configurable: true, writable: true });
        return o;
      }
      default: return Array.from({ length: rnd(6) }, () => value(depth + 1));
    }
  };
  const cases: unknown[] = [
    JSON.parse('{"__proto__":{"a":1},"b":[1,{"__proto__":null}]}'),
    { b: 1, a: { d: [undefined, null, { z: undefined }], c: -0 }, '10': 'ten', '9': 'nine', '1e3': 1e3 },
    Object.assign(Object.create({ inherited: 1 }), { own: 2 }),
    { fn: () => 1, sym: Symbol('s'), [Symbol('k')]: 1, date: new Date(0), boxed: new String('ab'), num: new Number(3), re: /x/g },
    { toJSON: () => 'ignored', a: 1 },
    [[[[[]]]], {}, [{}], ''],
  ];
  // More distinct short keys than the cache holds: the keys after it is full are quoted each time.
  const many: Record<string, number> = {};
  for (let i = 0; i < 5000; i++) many[`key-${(i * 7919) % 5000}`] = i;
  cases.push(many, many);
  for (let i = 0; i < 4000; i++) cases.push(value(0));
  for (const v of [...cases, ...cases]) assert.equal(canonicalJson(v), previous(v));
});
