import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConclaveError } from '../../core/errors.js';
import { DEFAULT_POLICIES } from './defaults.js';
import {
  AUTHOR_SIGN_SAMPLE,
  CLAIM_RULE_GRAMMAR_RULES,
  POLICY_EXAMPLES,
  RULE_EXAMPLES,
  SGX_CUSTOM_TCB_BASELINE,
  SGX_DEFAULT,
  SGX_DEFAULT_2020,
  TPM_SYSTEM_GUARD,
  TPM_V1_1,
  TPM_V1_2,
} from './examples.test-data.js';
import { parsePolicy } from './parser.js';

function wrapRules(rules: string): string {
  return `version=1.2;\nauthorizationrules { => permit(); };\nissuancerules {\n${rules}\n};`;
}

/** Asserts a policy_syntax error at the given 1-based position. */
function rejects(text: string, line: number, column: number): void {
  assert.throws(
    () => parsePolicy(text),
    (e: unknown) => {
      assert.ok(e instanceof ConclaveError, `not a ConclaveError: ${String(e)}`);
      assert.equal(e.code, 'attestation.policy_syntax');
      assert.deepEqual({ line: e.detail?.line, column: e.detail?.column }, { line, column }, e.message);
      assert.equal(typeof e.detail?.near, 'string');
      return true;
    },
  );
}

describe('parsePolicy: every policy in the MAA documentation', () => {
  for (const ex of POLICY_EXAMPLES) {
    test(`${ex.name} parses`, () => {
      const p = parsePolicy(ex.text);
      assert.ok(p.authorizationRules.length > 0);
      assert.equal(p.text, ex.text);
    });
  }
  for (const ex of RULE_EXAMPLES) {
    test(`${ex.name} parses inside a policy`, () => {
      assert.ok(parsePolicy(wrapRules(ex.text)).issuanceRules.length > 0);
    });
  }
  for (const [type, text] of Object.entries(DEFAULT_POLICIES)) {
    test(`default ${type} policy parses`, () => {
      assert.equal(parsePolicy(text).authorizationRules[0]?.action.kind, 'permit');
    });
  }
});

describe('parsePolicy: structure', () => {
  test('SGX default: version 1.1, TCB identifier configuration, six issue rules binding c', () => {
    const p = parsePolicy(SGX_DEFAULT);
    assert.equal(p.version, '1.1');
    assert.deepEqual(p.configuration, { 'x-ms-sgx-tcbidentifier': 'azuredefault' });
    assert.equal(p.issuanceRules.length, 6);
    const r = p.issuanceRules[0]!;
    assert.equal(r.conditions[0]?.identifier, 'c');
    assert.deepEqual(r.conditions[0]?.properties[0], {
      property: 'type',
      operator: '==',
      operand: { kind: 'literal', value: 'x-ms-sgx-is-debuggable', at: { line: 9, column: 11 } },
    });
    assert.equal(r.action.kind, 'issue');
    assert.deepEqual(r.at, { line: 9, column: 2 });
  });

  test('TPM 1.1 configuration rules become typed values', () => {
    assert.deepEqual(parsePolicy(TPM_V1_1).configuration, { required_pcr_mask: 15, require_valid_aik_cert: false });
  });

  test('custom TCB baseline: typographic closing quote and capitalised section keyword', () => {
    const p = parsePolicy(SGX_CUSTOM_TCB_BASELINE);
    assert.equal(p.configuration['x-ms-sgx-tcbidentifier'], '11');
    assert.equal(p.issuanceRules.length, 6);
  });

  test('2020 default SGX policy with typographic quotes reads the same claim types', () => {
    const p = parsePolicy(SGX_DEFAULT_2020);
    const c = p.authorizationRules[0]!.conditions[0]!.properties[0]!;
    assert.deepEqual(c.operand, { kind: 'literal', value: '$is-debuggable', at: { line: 4, column: 11 } });
  });

  test('author-sign sample: `type=` reads as ==, rules without ; are accepted, issue(claim=c)', () => {
    const p = parsePolicy(AUTHOR_SIGN_SAMPLE);
    assert.equal(p.authorizationRules[0]!.conditions[0]!.properties[0]!.operator, '==');
    assert.equal(p.issuanceRules.length, 2);
    assert.deepEqual(p.issuanceRules[1]!.action, { kind: 'issue', claim: 'c' });
  });

  test('1.2: negation, functions, comments, positional type argument', () => {
    const p = parsePolicy(TPM_V1_2);
    assert.equal(p.issuanceRules[2]!.conditions[0]!.negated, true);
    const last = p.issuanceRules.at(-1)!;
    assert.equal(last.action.kind, 'issue');
    assert.deepEqual(last.action.kind === 'issue' ? last.action.type : undefined, { kind: 'literal', value: 'PlatformAttested', at: { line: 23, column: 51 } });
    const sg = parsePolicy(TPM_SYSTEM_GUARD).issuanceRules.at(-1)!;
    assert.deepEqual(
      sg.conditions.map((c) => c.identifier),
      [undefined, 'c1', 'c2'],
    );
  });

  test('claim-rule-grammar example: a later condition refers to an earlier identifier', () => {
    const p = parsePolicy(wrapRules(CLAIM_RULE_GRAMMAR_RULES));
    const operand = p.issuanceRules[0]!.conditions[1]!.properties[2]!.operand;
    assert.deepEqual(operand, { kind: 'property', identifier: 'F1', property: 'value', at: { line: 5, column: 57 } });
  });

  test('string escapes, hex, negative integers, keywords in any case', () => {
    const p = parsePolicy('VERSION=1.0;\nAuthorizationRules { [type=="a\\"b\\\\c\\u0041", value>=-3] && [type=="m", value==0x1F] => Permit(); };');
    const props = p.authorizationRules[0]!.conditions.flatMap((c) => c.properties.map((x) => (x.operand.kind === 'literal' ? x.operand.value : null)));
    assert.deepEqual(props, ['a"b\\cA', -3, 'm', 31]);
  });
});

describe('parsePolicy: rejections carry line and column', () => {
  test('missing ; after the version', () => rejects('version=1.0\nauthorizationrules { => permit(); };', 2, 1));
  test("missing ; after a section's }", () => rejects('version=1.0;\nauthorizationrules { => permit(); }\nissuancerules { };', 3, 1));
  test('missing ; between a rule and garbage', () => rejects('version=1.0;\nauthorizationrules {\n  => permit() deny();\n};', 3, 15));
  test('a claim property or argument that names a member of Object.prototype is unknown', () => {
    // Attack: PROPERTIES[name.toLowerCase()] read a plain object, so `constructor` and `__proto__` (already
    // lower case) found Object and Object.prototype there: `c.constructor`, `[__proto__=="x"]` parsed, and
    // a policy issuing `value=c.constructor` issued claims with no value.
    for (const name of ['constructor', '__proto__', 'CONSTRUCTOR', 'toString', 'hasOwnProperty']) {
      rejects(wrapRules(`c:[type=="x"] => issue(type="y", value=c.${name});`), 4, 42);
      rejects(wrapRules(`c:[${name}=="x"] => issue(type="y", value=1);`), 4, 4);
      rejects(wrapRules(`c:[type=="x"] => issue(type="y", ${name}="z");`), 4, 34);
    }
  });
  test('unknown operator =>', () => rejects('version=1.0;\nauthorizationrules { [type=>"x"] => permit(); };', 2, 27));
  test('unknown operator ~=', () => rejects('version=1.0;\nauthorizationrules { [type~="x"] => permit(); };', 2, 27));
  test('|| is not an operator between conditions', () => rejects('version=1.0;\nauthorizationrules { [type=="a"] || [type=="b"] => permit(); };', 2, 34));
  test('ordering operator on a string literal', () => rejects('version=1.0;\nauthorizationrules { [value<"x"] => permit(); };', 2, 28));
  test('unterminated string', () => rejects('version=1.0;\nauthorizationrules {\n  [type=="abc] => permit();\n};', 3, 10));
  test('unknown escape', () => rejects('version=1.0;\nauthorizationrules { [type=="a\\qb"] => permit(); };', 2, 31));
  test('bad version 2.0', () => rejects('version=2.0;\nauthorizationrules { => permit(); };', 1, 9));
  test('bad version 1', () => rejects('version=1;\nauthorizationrules { => permit(); };', 1, 9));
  test('no version', () => rejects('authorizationrules { => permit(); };', 1, 1));
  test('unknown section', () => rejects('version=1.0;\nauthorizationrules { => permit(); };\nfoorules { };', 3, 1));
  test('duplicate section', () => rejects('version=1.0;\nauthorizationrules { => permit(); };\nauthorizationrules { };', 3, 1));
  test('missing authorizationrules', () => rejects('version=1.0;\nissuancerules { };', 2, 19));
  test('unclosed section', () => rejects('version=1.0;\nauthorizationrules { => permit();\n', 3, 1));
  test('configurationrules need 1.1', () => rejects('version=1.0;\nconfigurationrules { };\nauthorizationrules { };', 2, 1));
  test('configuration rules take only literal issueproperty', () =>
    rejects('version=1.1;\nconfigurationrules { => issue(type="a", value=1); };\nauthorizationrules { };', 2, 22));
  test('configuration value types are checked', () =>
    rejects('version=1.1;\nconfigurationrules {\n => issueproperty(type="require_valid_aik_cert", value="no");\n};\nauthorizationrules { };', 3, 2));
  test('functions need 1.2', () => rejects('version=1.1;\nauthorizationrules { => add(type="a", value=AppendString("a", "b")); };', 2, 45));
  test('! needs 1.2', () => rejects('version=1.0;\nauthorizationrules { ![type=="a"] => permit(); };', 2, 22));
  test('unknown function', () => rejects('version=1.2;\nauthorizationrules { => add(type="a", value=Frobnicate("a")); };', 2, 45));
  test('function arity', () => rejects('version=1.2;\nauthorizationrules { => add(type="a", value=NegateBool(true, false)); };', 2, 45));
  test('permit() outside authorizationrules', () => rejects('version=1.0;\nauthorizationrules { };\nissuancerules { => permit(); };', 3, 20));
  test('identifier not bound', () => rejects('version=1.0;\nauthorizationrules { };\nissuancerules { => issue(type="a", value=d.value); };', 3, 42));
  test('identifier bound twice', () => rejects('version=1.0;\nauthorizationrules { c:[type=="a"] && c:[type=="b"] => permit(); };', 2, 39));
  test('issue without value', () => rejects('version=1.0;\nauthorizationrules { };\nissuancerules { => issue(type="a"); };', 3, 20));
  test('fractions are not claim values', () => rejects('version=1.0;\nauthorizationrules { [value==1.5] => permit(); };', 2, 30));
  test('unexpected character', () => rejects('version=1.0;\nauthorizationrules { # };', 2, 22));
  test('non-string input', () => assert.throws(() => parsePolicy(42 as unknown as string), { code: 'attestation.policy_syntax' }));
});

describe('parsePolicy: property tests', () => {
  const onlyConclaveErrors = (text: string): void => {
    try {
      parsePolicy(text);
    } catch (e) {
      if (!(e instanceof ConclaveError) || e.code !== 'attestation.policy_syntax') throw e;
      assert.ok(Number.isInteger(e.detail?.line) && Number.isInteger(e.detail?.column));
    }
  };

  test('random strings throw nothing but policy_syntax ConclaveErrors', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), onlyConclaveErrors), { numRuns: 2000 });
  });

  test('random token soups throw nothing but policy_syntax ConclaveErrors', () => {
    const token = fc.constantFrom(
      'version', '=', '1.0', '1.2', ';', 'authorizationrules', 'issuancerules', 'configurationrules', '{', '}', '[', ']', '(', ')',
      'c', 'c1', ':', 'type', 'value', 'issuer', '==', '!=', '<', '>=', '&&', '!', '"x"', '"', '5', 'true', '=>', 'permit', 'deny',
      'issue', 'add', 'issueproperty', 'claim', ',', '.', 'JmesPath', 'AppendString', '//', '\n', ' ', '\\', '0x', '-',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (ts) => onlyConclaveErrors(ts.join(''))),
      { numRuns: 3000 },
    );
  });

  test('mutations of published policies throw nothing but policy_syntax ConclaveErrors', () => {
    const texts = POLICY_EXAMPLES.map((e) => e.text);
    fc.assert(
      fc.property(fc.constantFrom(...texts), fc.nat(), fc.nat({ max: 20 }), fc.string({ maxLength: 5 }), (t, at, cut, insert) => {
        const i = at % (t.length + 1);
        onlyConclaveErrors(t.slice(0, i) + insert + t.slice(i + cut));
      }),
      { numRuns: 3000 },
    );
  });
});
