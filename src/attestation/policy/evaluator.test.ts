import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConclaveError } from '../../core/errors.js';
import type { Claim } from './ast.js';
import { DEFAULT_POLICIES } from './defaults.js';
import { DEFAULT_EVALUATION_BUDGET, type EvaluationBudget, compilePolicy, evaluatePolicy, jsonBytes } from './evaluator.js';
import {
  AUTHOR_SIGN_DRAFT_DENY,
  AUTHOR_SIGN_SAMPLE,
  AUTHOR_SIGN_STEP_ISSUE,
  CLAIM_RULE_GRAMMAR_RULES,
  FUNCTIONS_IS_SUBSET_OF_RULES,
  FUNCTIONS_JMESPATH_LITERAL_RULES,
  FUNCTIONS_JSON_ARRAY_RULES,
  FUNCTIONS_JSON_TO_CLAIM_VALUE_RULES,
  FUNCTIONS_NOT_CONDITION_RULES,
  POLICY_EXAMPLES,
  SGX_CUSTOM,
  SGX_DEFAULT,
  SGX_KEY_ROTATION_DURING,
  SGX_SIGNED_JWS,
  TPM_KEY_ATTESTATION,
  TPM_SAMPLE_V1_2,
  TPM_V1_1,
  VBS_OPTIMUM_SECURITY,
} from './examples.test-data.js';
import { decodePolicyJws } from './jws.js';
import { parsePolicy } from './parser.js';

const MRSIGNER = '9fa48b1629bd246a1de3d38fb7df97f6554cd65d6b3b72e85b86848ae6b578ba';

function sgxClaims(over: Partial<Record<string, Claim['value']>> = {}): Claim[] {
  const base: Record<string, Claim['value']> = {
    'x-ms-sgx-is-debuggable': false,
    'x-ms-sgx-mrsigner': MRSIGNER,
    'x-ms-sgx-mrenclave': 'aa'.repeat(32),
    'x-ms-sgx-product-id': 1,
    'x-ms-sgx-svn': 0,
    'x-ms-attestation-type': 'sgx',
    ...over,
  };
  return Object.entries(base).map(([type, value]) => ({ type, value }));
}

/** Issued claims as `type=value` strings, the shape the assertions compare. */
function issued(text: string, claims: Claim[]): string[] {
  return evaluatePolicy(parsePolicy(text), claims).issued.map((c) => `${c.type}=${String(c.value)}`);
}

function withRules(rules: string): string {
  return `version=1.2;\nauthorizationrules { => permit(); };\nissuancerules {\n${rules}\n};`;
}

/** The incoming set after a permit-all policy whose issuance rules only add: read back through issue rules. */
function addedClaims(rules: string, claims: Claim[], types: string[]): string[] {
  const echo = types.map((t) => `c:[type=="${t}", issuer=="AttestationPolicy"] => issue(type="${t}", value=c.value);`).join('\n');
  return issued(withRules(`${rules}\n${echo}`), claims);
}

describe('evaluatePolicy: published SGX policies', () => {
  test('default SGX policy permits and issues the deprecated short names', () => {
    const r = evaluatePolicy(parsePolicy(SGX_DEFAULT), sgxClaims());
    assert.equal(r.permitted, true);
    assert.deepEqual(
      r.issued.map((c) => [c.type, c.value, c.issuer]),
      [
        ['is-debuggable', false, 'AttestationPolicy'],
        ['sgx-mrsigner', MRSIGNER, 'AttestationPolicy'],
        ['sgx-mrenclave', 'aa'.repeat(32), 'AttestationPolicy'],
        ['product-id', 1, 'AttestationPolicy'],
        ['svn', 0, 'AttestationPolicy'],
        ['tee', 'sgx', 'AttestationPolicy'],
      ],
    );
    assert.deepEqual(r.config, { 'x-ms-sgx-tcbidentifier': 'azuredefault' });
  });

  test('custom SGX policy: permit only a non-debuggable enclave of the right signer, product and SVN', () => {
    assert.deepEqual(issued(SGX_CUSTOM, sgxClaims()), [`custom-mrsigner=${MRSIGNER}`]);
    for (const over of [{ 'x-ms-sgx-is-debuggable': true }, { 'x-ms-sgx-svn': -1 }, { 'x-ms-sgx-product-id': 2 }, { 'x-ms-sgx-mrsigner': 'bb'.repeat(32) }]) {
      const r = evaluatePolicy(parsePolicy(SGX_CUSTOM), sgxClaims(over));
      assert.equal(r.permitted, false, JSON.stringify(over));
      assert.deepEqual(r.issued, []);
      assert.match(r.trace.at(-1)!, /no authorization rule permitted/);
    }
  });

  test('values compare with their types: product id "1" (string) is not 1 (integer)', () => {
    assert.equal(evaluatePolicy(parsePolicy(SGX_CUSTOM), sgxClaims({ 'x-ms-sgx-product-id': '1' })).permitted, false);
  });

  test('key rotation: either signer is permitted, a third is not', () => {
    const p = compilePolicy(parsePolicy(SGX_KEY_ROTATION_DURING));
    const claims = (signer: string): Claim[] => [
      { type: 'x-ms-sgx-is-debuggable', value: false },
      { type: 'x-ms-sgx-mrsigner', value: signer },
    ];
    assert.equal(evaluatePolicy(p, claims('mrsigner1')).permitted, true);
    const second = evaluatePolicy(p, claims('mrsigner2'));
    assert.equal(second.permitted, true);
    assert.match(second.trace[0]!, /authorizationrules\[1\].*permit/);
    assert.equal(evaluatePolicy(p, claims('mrsigner3')).permitted, false);
  });

  test('the signed sample (deny if debuggable, else permit) denies with a trace naming the rule', () => {
    const p = parsePolicy(decodePolicyJws(SGX_SIGNED_JWS).policyText);
    const denied = evaluatePolicy(p, [
      { type: '$is-debuggable', value: true },
      { type: '$sgx-mrsigner', value: 'ab' },
    ]);
    assert.equal(denied.permitted, false);
    assert.deepEqual(denied.trace, ['authorizationrules[0] (line 1): deny()', 'not authorized: a deny() rule fired']);
    const ok = evaluatePolicy(p, [
      { type: '$is-debuggable', value: false },
      { type: '$sgx-mrsigner', value: 'ab' },
    ]);
    assert.equal(ok.permitted, true);
    assert.deepEqual(
      ok.issued.map((c) => `${c.type}=${String(c.value)}`),
      ['NotDebuggable=false', 'is-debuggable=false', 'sgx-mrsigner=ab'],
    );
  });

  test('a draft policy whose only rule is deny() denies everything', () => {
    const r = evaluatePolicy(parsePolicy(AUTHOR_SIGN_DRAFT_DENY), sgxClaims());
    assert.equal(r.permitted, false);
    assert.match(r.trace.join('\n'), /deny\(\)/);
  });

  test('default policies of every type permit', () => {
    for (const text of Object.values(DEFAULT_POLICIES)) assert.equal(evaluatePolicy(text, sgxClaims()).permitted, true);
  });
});

describe('evaluatePolicy: TPM and VBS policies', () => {
  const vbs: Claim[] = [
    ['aikValidated', true],
    ['tpmVersion', 2],
    ['secureBootEnabled', true],
    ['iommuEnabled', true],
    ['bootDebuggingDisabled', true],
    ['notSafeMode', true],
    ['notWinPE', true],
    ['vbsEnabled', true],
    ['vbsReportPresent', true],
    ['enclaveAuthorId', 'BDfK4lN9i5sHdrYbEebO09Iy6TCPYOIa2rL9kePalZg'],
    ['enclaveImageId', 'GRcSAAEFIBMABRQDEgEiBQ'],
    ['enclaveOwnerId', 'ECAwQEExIREAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['enclaveFamilyId', '_v4AAAAAAAAAAAAAAAAAAA'],
    ['enclaveSvn', 3],
    ['enclavePlatformSvn', 1],
    ['enclaveFlags', 0],
  ].map(([type, value]) => ({ type: type as string, value: value as Claim['value'] }));

  test('VBS optimum security: permits the documented enclave, issues the custom claim, sets omit_x5c', () => {
    const r = evaluatePolicy(parsePolicy(VBS_OPTIMUM_SECURITY), [...vbs, { type: 'aas-ehd', value: 'ZWhk', issuer: 'CustomClaim' }]);
    assert.equal(r.permitted, true);
    assert.deepEqual(r.issued, [{ type: 'aas-ehd', value: 'ZWhk', issuer: 'CustomClaim' }]);
    assert.deepEqual(r.properties, { omit_x5c: true });
  });

  test('VBS optimum security denies a missing claim, a low platform SVN, or a claim from the wrong issuer', () => {
    const p = compilePolicy(parsePolicy(VBS_OPTIMUM_SECURITY));
    assert.equal(evaluatePolicy(p, vbs.filter((c) => c.type !== 'enclaveFlags')).permitted, false);
    assert.equal(evaluatePolicy(p, vbs.map((c) => (c.type === 'enclavePlatformSvn' ? { ...c, value: 0 } : c))).permitted, false);
    assert.equal(evaluatePolicy(p, vbs.map((c) => (c.type === 'tpmVersion' ? { ...c, issuer: 'CustomClaim' } : c))).permitted, false);
  });

  test('TPM 1.1: configuration map and both PlatformAttested outcomes', () => {
    const p = compilePolicy(parsePolicy(TPM_V1_1));
    const claims = (aik: boolean): Claim[] => [
      { type: 'aikValidated', value: aik },
      { type: 'secureBootEnabled', value: true },
      { type: 'bootDebuggingDisabled', value: true },
      { type: 'notSafeMode', value: true },
    ];
    const good = evaluatePolicy(p, claims(true));
    assert.deepEqual(good.config, { required_pcr_mask: 15, require_valid_aik_cert: false });
    assert.deepEqual(good.issued, [{ type: 'PlatformAttested', value: true, issuer: 'AttestationPolicy' }]);
    assert.deepEqual(evaluatePolicy(p, claims(false)).issued, [{ type: 'PlatformAttested', value: false, issuer: 'AttestationPolicy' }]);
  });

  test('author-sign steps: unconditioned issue of an integer', () => {
    assert.deepEqual(issued(AUTHOR_SIGN_STEP_ISSUE, [{ type: 'secureBootEnabled', value: true }]), ['SecurityLevelValue=100']);
    assert.equal(evaluatePolicy(AUTHOR_SIGN_STEP_ISSUE, [{ type: 'secureBootEnabled', value: false }]).permitted, false);
  });

  test('author-sign sample: issue(claim=c) copies the claim with its issuer', () => {
    const r = evaluatePolicy(parsePolicy(AUTHOR_SIGN_SAMPLE), [
      { type: 'secureBootEnabled', value: true },
      { type: 'notSafeMode', value: true },
    ]);
    assert.deepEqual(r.issued, [
      { type: 'secureBootEnabled', value: true, issuer: 'AttestationService' },
      { type: 'notSafeMode', value: true, issuer: 'AttestationService' },
    ]);
  });

  const events = (codeIntegrity: boolean[]): string =>
    JSON.stringify({
      Events: [
        {
          EventTypeString: 'EV_EFI_VARIABLE_DRIVER_CONFIG',
          PcrIndex: 7,
          ProcessedData: { VariableGuid: '8BE4DF61-93CA-11D2-AA0D-00E098032B8C', UnicodeName: 'SecureBoot', VariableData: 'AQ' },
        },
        ...codeIntegrity.map((ci, i) => ({
          EventTypeString: 'EV_EVENT_TAG',
          PcrIndex: i === 0 ? 12 : 13,
          ProcessedData: {
            EVENT_TRUSTBOUNDARY: {
              EVENT_CODEINTEGRITY: ci,
              ...(i === 0
                ? {
                    EVENT_BITLOCKER_UNLOCK: { Value: 1 },
                    EVENT_LOADEDMODULE_AGGREGATION: [{ EVENT_IMAGEVALIDATED: true, EVENT_FILEPATH: '\\Windows\\System32\\drivers\\WdBoot.sys' }],
                  }
                : {}),
            },
          },
        })),
      ],
    });

  test('TPM 1.2 sample: JmesPath over the event log yields the boot-security claims', () => {
    const p = compilePolicy(parsePolicy(TPM_SAMPLE_V1_2));
    const r = evaluatePolicy(p, [
      { type: 'aikValidated', value: true },
      { type: 'events', value: events([true, true]) },
    ]);
    assert.deepEqual(
      r.issued.map((c) => `${c.type}=${String(c.value)}`),
      ['aikValidated=true', 'SecureBootEnabled=true', 'CodeIntegrityEnabled=true', 'BitlockerStatus=true', 'ELAMDriverLoaded=true'],
    );
    const mixed = evaluatePolicy(p, [
      { type: 'aikValidated', value: true },
      { type: 'events', value: events([true, false]) },
    ]);
    assert.ok(mixed.issued.some((c) => c.type === 'CodeIntegrityEnabled' && c.value === false));
    const none = evaluatePolicy(p, [{ type: 'aikValidated', value: false }]);
    assert.deepEqual(
      none.issued.map((c) => `${c.type}=${String(c.value)}`),
      ['aikValidated=false', 'SecureBootEnabled=false', 'CodeIntegrityEnabled=false', 'BitlockerStatus=false', 'ELAMDriverLoaded=false'],
    );
  });

  test('TPM key attestation: issue() inside authorizationrules feeds the decision but not the token', () => {
    const p = compilePolicy(parsePolicy(TPM_KEY_ATTESTATION));
    const key = (objAttr: number): Claim[] => [{ type: 'x-ms-tpm-request-key', value: JSON.stringify({ jwk: { kty: 'RSA' }, info: { tpm_certify: { obj_attr: objAttr } } }) }];
    const ok = evaluatePolicy(p, key(50));
    assert.equal(ok.permitted, true);
    assert.deepEqual(ok.issued, []);
    assert.equal(evaluatePolicy(p, key(49)).permitted, false);
  });
});

describe('evaluatePolicy: rule semantics', () => {
  test('claim-rule-grammar: F1 binds, a later condition compares with F1.value, issue(claim=C2)', () => {
    const text = withRules(CLAIM_RULE_GRAMMAR_RULES);
    const same = evaluatePolicy(text, [
      { type: 'OSName', value: 'Windows', issuer: 'CustomClaim' },
      { type: 'OSName', value: 'Windows' },
    ]);
    assert.deepEqual(same.properties, { report_validity_in_minutes: 1440 });
    assert.deepEqual(same.issued, [{ type: 'OSName', value: 'Windows', issuer: 'AttestationService' }]);
    const differ = evaluatePolicy(text, [
      { type: 'OSName', value: 'Windows', issuer: 'CustomClaim' },
      { type: 'OSName', value: 'Linux' },
    ]);
    assert.deepEqual(differ.properties, {});
    assert.deepEqual(differ.issued, []);
  });

  test('issueproperty keeps a property named like a member of Object.prototype, by type= or by claim=', () => {
    // Attack (a draft policy needs no credential): properties[type] = value on a plain object, so a property
    // named __proto__ went to Object.prototype's __proto__ setter instead of the bag, and was lost.
    const byType = evaluatePolicy(withRules('=> issueproperty(type="__proto__", value="p");\n=> issueproperty(type="toString", value="t");\n=> issueproperty(type="constructor", value="c");'), []);
    assert.equal(Object.getPrototypeOf(byType.properties), Object.prototype);
    assert.equal(JSON.stringify(byType.properties), '{"__proto__":"p","toString":"t","constructor":"c"}');
    const byClaim = evaluatePolicy(withRules('c:[type=="__proto__"] => issueproperty(claim=c);'), [{ type: '__proto__', value: 'v' }]);
    assert.equal(Object.getPrototypeOf(byClaim.properties), Object.prototype);
    assert.equal(JSON.stringify(byClaim.properties), '{"__proto__":"v"}');
  });

  test('a rule fires once per combination of directly used bindings (cartesian product)', () => {
    const claims: Claim[] = [
      { type: 'a', value: 'a1' },
      { type: 'a', value: 'a2' },
      { type: 'b', value: 'b1' },
      { type: 'b', value: 'b2' },
    ];
    assert.deepEqual(issued(withRules('c1:[type=="a"] && c2:[type=="b"] => issue(type=c1.value, value=c2.value);'), claims), ['a1=b1', 'a1=b2', 'a2=b1', 'a2=b2']);
    assert.deepEqual(issued(withRules('c:[type=="a"] => issue(type="x", value=c.value);'), claims), ['x=a1', 'x=a2']);
    // An unnamed condition only has to hold; it does not multiply.
    assert.deepEqual(issued(withRules('[type=="a"] && c:[type=="b"] => issue(type="y", value=c.value);'), claims), ['y=b1', 'y=b2']);
    // A named condition the action does not use does not multiply either.
    assert.deepEqual(issued(withRules('d:[type=="a"] && c:[type=="b"] => issue(type="z", value=c.value);'), claims), ['z=b1', 'z=b2']);
  });

  test('claim-rule-functions: identifiers inside function arguments stand for all matching claims', () => {
    const claims: Claim[] = [
      { type: 'Subset', value: 'abc' },
      { type: 'Subset', value: 100 },
      { type: 'Superset', value: true },
      { type: 'Superset', value: 'abc' },
      { type: 'Superset', value: 100 },
    ];
    assert.deepEqual(addedClaims(FUNCTIONS_IS_SUBSET_OF_RULES, claims, ['IsSubset']), ['IsSubset=true']);
    const notSubset = claims.map((c) => (c.value === 100 && c.type === 'Superset' ? { ...c, value: 101 } : c));
    assert.deepEqual(addedClaims(FUNCTIONS_IS_SUBSET_OF_RULES, notSubset, ['IsSubset']), ['IsSubset=false']);
    const set = [
      { type: 'Set', value: 100 },
      { type: 'Set', value: 101 },
    ];
    assert.deepEqual(addedClaims('c:[type=="Set"] => add(type="Result", value=ContainsOnlyValue(c.value, 100));', set, ['Result']), ['Result=false']);
    assert.deepEqual(addedClaims('c:[type=="Set"] => add(type="Result", value=ContainsOnlyValue(c.value, 100));', [set[0]!], ['Result']), ['Result=true']);
  });

  test('claim-rule-functions: JmesPath, JsonToClaimValue (scalars, arrays, null), AppendString, NegateBool', () => {
    assert.deepEqual(addedClaims(FUNCTIONS_JMESPATH_LITERAL_RULES, [], ['JmesPathResult']), ['JmesPathResult="bar"']);
    assert.deepEqual(
      addedClaims(
        'c1:[type=="JsonData"] && c2:[type=="JmesPathQuery"] => add(type="JmesPathResult", value=JmesPath(c1.value, c2.value));',
        [
          { type: 'JsonData', value: '{"values": [0,1,2,3,4]}' },
          { type: 'JmesPathQuery', value: 'values[2]' },
        ],
        ['JmesPathResult'],
      ),
      ['JmesPathResult=2'],
    );
    const scalars = evaluatePolicy(withRules(`${FUNCTIONS_JSON_TO_CLAIM_VALUE_RULES}\nc:[type=="IntegerResult"] && b:[type=="BooleanResult"] && s:[type=="StringResult"] => issue(type="all", value=AppendString(s.value, "!"));\nc:[type=="IntegerResult", value==100] && b:[type=="BooleanResult", value==true] => issue(type="typed", value=NegateBool(b.value));`), [
      { type: 'JsonIntegerData', value: '100' },
      { type: 'JsonBooleanData', value: 'true' },
      { type: 'JsonStringData', value: '"abc"' },
    ]);
    assert.deepEqual(
      scalars.issued.map((c) => [c.type, c.value]),
      [
        ['all', 'abc!'],
        ['typed', false],
      ],
    );
    assert.deepEqual(addedClaims(FUNCTIONS_JSON_ARRAY_RULES, [{ type: 'JsonData', value: '[0, "abc", true]' }], ['Result']), ['Result=0', 'Result=abc', 'Result=true']);
    assert.deepEqual(addedClaims(FUNCTIONS_JSON_ARRAY_RULES, [{ type: 'JsonData', value: 'null' }], ['Result']), []);
  });

  test('function errors are attestation.policy_evaluation', () => {
    for (const [value, fn] of [
      ['{"a": 1}', 'JsonToClaimValue'],
      ['1.5', 'JsonToClaimValue'],
      ['not json', 'JsonToClaimValue'],
      ['[[1]]', 'JsonToClaimValue'],
    ] as const) {
      assert.throws(() => evaluatePolicy(withRules(`c:[type=="j"] => add(type="r", value=${fn}(c.value));`), [{ type: 'j', value }]), { code: 'attestation.policy_evaluation' });
    }
    assert.throws(() => evaluatePolicy(withRules('=> add(type="r", value=AppendString("a", 1));'), []), { code: 'attestation.policy_evaluation' });
    assert.throws(() => evaluatePolicy(withRules('=> add(type="r", value=JmesPath("{}", "a[?"));'), []), { code: 'attestation.policy_evaluation' });
  });

  test('! condition: Claim3 is added only when absent', () => {
    const base: Claim[] = [
      { type: 'Claim1', value: 100 },
      { type: 'Claim2', value: 200 },
    ];
    assert.deepEqual(addedClaims(FUNCTIONS_NOT_CONDITION_RULES, base, ['Claim3']), ['Claim3=300']);
    assert.deepEqual(
      evaluatePolicy(withRules(`${FUNCTIONS_NOT_CONDITION_RULES}\nc:[type=="Claim3"] => issue(type="seen", value=c.value);`), [...base, { type: 'Claim3', value: 1 }]).issued,
      [{ type: 'seen', value: 1, issuer: 'AttestationPolicy' }],
    );
  });

  test('add() feeds later rules but not the token; a rule does not see its own additions', () => {
    const r = evaluatePolicy(withRules('c:[type=="n"] => add(type="n", value=1);\n=> add(type="t", value=7);\nc:[type=="t"] => issue(type="u", value=c.value);'), [{ type: 'n', value: 0 }]);
    assert.deepEqual(r.issued, [{ type: 'u', value: 7, issuer: 'AttestationPolicy' }]);
  });

  test('authorization add() feeds a later permit; the first decisive rule wins', () => {
    const text = 'version=1.0;\nauthorizationrules {\n c:[type=="x"] => add(type="ok", value=c.value);\n [type=="ok", value==true] => permit();\n => deny();\n};';
    assert.equal(evaluatePolicy(text, [{ type: 'x', value: true }]).permitted, true);
    assert.equal(evaluatePolicy(text, [{ type: 'x', value: false }]).permitted, false);
  });

  test('issuer, valueType and != conditions', () => {
    const text = withRules('c:[type=="v", valueType=="Integer", value!=3, issuer!="CustomClaim"] => issue(type="hit", value=c.value);');
    assert.deepEqual(
      issued(text, [
        { type: 'v', value: 1 },
        { type: 'v', value: 3 },
        { type: 'v', value: '1' },
        { type: 'v', value: 2, issuer: 'CustomClaim' },
      ]),
      ['hit=1'],
    );
  });

  test('evaluation of random claim sets throws nothing but ConclaveErrors and is deterministic', () => {
    const p = compilePolicy(parsePolicy(TPM_SAMPLE_V1_2));
    const claim = fc.record({
      type: fc.constantFrom('events', 'aikValidated', 'boolProperties', 'efiConfigVariables'),
      value: fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.json()),
    });
    fc.assert(
      fc.property(fc.array(claim, { maxLength: 6 }), (claims) => {
        try {
          const a = evaluatePolicy(p, claims);
          assert.deepEqual(evaluatePolicy(p, claims), a);
        } catch (e) {
          if (!(e instanceof ConclaveError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('evaluation budget (#14 item 3)', () => {
  const many = (n: number): Claim[] => Array.from({ length: n }, (_, i) => ({ type: `t${i}`, value: `v${i}` }));
  const STALL = 'version=1.0; authorizationrules { c1:[type != ""] && c2:[type != ""] && c3:[type != ""] && c4:[type != ""] && [type == "never"] => permit(); => permit(); };';
  const GROW =
    'version=1.0; authorizationrules { => permit(); }; issuancerules { c1:[type != ""] && c2:[type != ""] => add(type=c1.type, value=c2.value); c1:[type != ""] && c2:[type != ""] => add(type=c1.type, value=c2.value); c1:[type != ""] && c2:[type != ""] => issue(type=c1.type, value=c2.value); };';
  const budget = (over: Partial<EvaluationBudget>): EvaluationBudget => ({ ...DEFAULT_EVALUATION_BUDGET, maxMillis: 60_000, ...over });
  const limitOf = (e: unknown) => e instanceof ConclaveError && e.code === 'attestation.policy_budget' && (e.detail as { limit: string }).limit;

  test('a rule that enumerates N⁴ combinations stops at exactly the step limit (deterministic, not by time)', () => {
    for (const maxSteps of [1_000, 50_000]) {
      assert.throws(() => evaluatePolicy(STALL, many(40), { budget: budget({ maxSteps }) }), (e) => limitOf(e) === 'steps' && (e as ConclaveError).detail?.max === maxSteps);
    }
    assert.throws(() => evaluatePolicy(STALL, many(40)), (e) => limitOf(e) === 'steps' && /authorizationrules\[0\]/.test((e as Error).message));
    // With few claims the same rule is cheap and fits: the budget limits work, not syntax.
    assert.equal(evaluatePolicy(STALL, many(5)).permitted, true);
  });

  test('rules that feed each other claims stop at the binding, claim or issued-claim limit', () => {
    // With the default budget, 'time' is the backstop a heavily loaded machine may reach first.
    assert.throws(() => evaluatePolicy(GROW, many(40)), (e) => ['bindings', 'steps', 'claims', 'time'].includes(String(limitOf(e))));
    assert.throws(() => evaluatePolicy(GROW, many(10), { budget: budget({ maxSteps: 1e9, maxBindings: 1e9, maxClaims: 2_000 }) }), (e) => limitOf(e) === 'claims');
    // Two claims already take the issue rule past the limit (with five, the add rules grew claims for 7 s of CPU first).
    assert.throws(() => evaluatePolicy(GROW, many(2), { budget: budget({ maxSteps: 1e9, maxBindings: 1e9, maxClaims: 1e9, maxIssuedClaims: 50 }) }), (e) => limitOf(e) === 'issuedClaims');
    assert.throws(() => evaluatePolicy(GROW, many(40), { budget: budget({ maxSteps: 1e9, maxBindings: 100 }) }), (e) => limitOf(e) === 'bindings');
  });

  test("the issued claims' characters are budgeted: one large claim issued many times, or as the type, stops at the limit", () => {
    const big = [{ type: 'big', value: 'x'.repeat(10_000) }, ...many(30)];
    const copies = 'version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type=="big"] && d:[issuer=="AttestationService"] => issue(type="copy", value=c.value, issuer=d.type); };';
    assert.throws(() => evaluatePolicy(copies, big, { budget: budget({ maxIssuedChars: 100_000 }) }), (e) => limitOf(e) === 'issuedChars' && /issued claims' characters/.test((e as Error).message));
    const asType = 'version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type=="big"] && d:[issuer=="AttestationService"] => issue(type=c.value, value=d.type); };';
    assert.throws(() => evaluatePolicy(asType, big, { budget: budget({ maxIssuedChars: 100_000 }) }), (e) => limitOf(e) === 'issuedChars');
    // Within the limit (and with the default one) the same rule issues every copy.
    assert.equal(evaluatePolicy(copies, big, { budget: budget({ maxIssuedChars: 1_000_000 }) }).issued.length, 31);
    assert.equal(evaluatePolicy(copies, big).issued.length, 31);
  });

  test('a JmesPath query that doubles its document at every pipe is budgeted (compare, serialise, to_string, flatten), not run to the end', () => {
    // Attack (anonymous, in a draft): the JMESPath interpreter did no metered work, and a call cost steps by its
    // arguments' size only. "[@,@] | [@,@] | …" is a value of 2^n paths to one document: comparing two of them
    // visits every path (n = 40 held the event loop for hours), serialising one as JmesPath's result (or
    // to_string) writes every path, and flattening one allocates every path.
    const doubling = (n: number) => Array.from({ length: n }, () => '[@,@]').join(' | ');
    const call = (query: string) => `version=1.2; authorizationrules { => permit(); }; issuancerules { => issue(type="n", value=JmesPath("{}", "${query}")); };`;
    const compare = call(`[${doubling(26)}, ${doubling(26)}] | [0] == [1]`);
    const serialise = call(doubling(22));
    const stringified = call(`length(to_string(${doubling(22)}))`);
    const flatten = call(`${doubling(21)}${'[]'.repeat(21)} | length(@)`);
    for (const policy of [compare, serialise, stringified, flatten]) {
      assert.throws(() => evaluatePolicy(policy, []), (e) => ['steps', 'time'].includes(String(limitOf(e))), policy.slice(90, 160));
    }
    // A query of ordinary size still answers.
    assert.deepEqual(evaluatePolicy(call(`${doubling(3)} | length(@)`), []).issued.map((c) => c.value), ['2']);
  });

  test("the issued claims' size is what the token serialises: UTF-8 bytes of their JSON", () => {
    for (const s of ['', 'plain', 'quote " and \\', '\u0001\u001f\n', 'é€😀', '\ud800 lone', 'lone \udc00', '\udbff\udfff', 'x'.repeat(1000)]) {
      assert.equal(jsonBytes(s), Buffer.byteLength(JSON.stringify(s)), JSON.stringify(s));
    }
    // 100 control characters count 600 bytes, not 100 characters.
    const ctl = [{ type: 'ctl', value: '\u0001'.repeat(100) }];
    const issue = 'version=1.0; authorizationrules { => permit(); }; issuancerules { c:[type=="ctl"] => issue(type="copy", value=c.value); };';
    assert.throws(() => evaluatePolicy(issue, ctl, { budget: budget({ maxIssuedChars: 500 }) }), (e) => limitOf(e) === 'issuedChars');
    assert.equal(evaluatePolicy(issue, ctl, { budget: budget({ maxIssuedChars: 700 }) }).issued.length, 1);
  });

  test('the time limit is a backstop', () => {
    assert.throws(() => evaluatePolicy(STALL, many(40), { budget: budget({ maxSteps: 1e12, maxMillis: 5 }) }), (e) => limitOf(e) === 'time');
  });

  test("every published policy uses under 1% of the default step budget on MAA's claim set", () => {
    for (const ex of POLICY_EXAMPLES) {
      let r: ReturnType<typeof evaluatePolicy>;
      try {
        r = evaluatePolicy(ex.text, sgxClaims());
      } catch (e) {
        if (e instanceof ConclaveError && e.code !== 'attestation.policy_budget') continue; // a sample for another TEE's claims
        throw e;
      }
      assert.ok(r.steps < DEFAULT_EVALUATION_BUDGET.maxSteps / 100, `${ex.name}: ${r.steps} steps`);
    }
  });
});
