import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isConclaveError } from '../../core/errors.js';
import { fixturePath, readFixtureJson, readFixtureText, skipWithoutFixtures } from '../../../test/fixtures.js';
import {
  canonicalReleasePolicy,
  canonicalReleasePolicyJson,
  type ClauseFailure,
  compileReleasePolicy,
  claimEquals,
  evaluateReleasePolicy,
  explainDecision,
  MAX_POLICY_NESTING,
  normalizeAuthority,
  parseReleasePolicy,
  parseReleasePolicyData,
  type ReleaseDecision,
  releasePolicyHash,
} from './policy.js';

const skip = skipWithoutFixtures();

/** The concept page publishes its policy as JSONC; strip `//` comments (whitespace-led, so URLs survive). */
function stripLineComments(text: string): string {
  return text.replace(/\s\/\/.*$/gm, '');
}

function policyFixture(name: string): unknown {
  const text = readFixtureText('skr-policies', name);
  return JSON.parse(name.endsWith('.jsonc') ? stripLineComments(text) : text);
}

function failuresOf(d: ReleaseDecision): readonly ClauseFailure[] {
  assert.equal(d.released, false, 'expected the policy to fail');
  return d.released ? [] : d.failures;
}

function expectInvalid(policy: unknown, path: string, reason: string): void {
  assert.throws(
    () => parseReleasePolicy(policy),
    (e: unknown) => {
      assert.ok(isConclaveError(e, 'release.policy_invalid'), String(e));
      assert.deepEqual(e.detail, { path, reason });
      return true;
    },
  );
}

const simple = (conditions: unknown[], authority = 'https://maa.example'): unknown => ({
  version: '1.0.0',
  anyOf: [{ authority, allOf: conditions }],
});

describe('parseReleasePolicy: published policies', { skip }, () => {
  const files = skip ? [] : readdirSync(fixturePath('skr-policies')).filter((f) => /\.jsonc?$/.test(f));

  test('the fixture folder holds the published policies', () => {
    assert.ok(files.length >= 17, `found ${files.length}`);
  });

  for (const f of files) {
    test(`accepts ${f} and its canonical form is a fixed point`, () => {
      const p = parseReleasePolicy(policyFixture(f));
      assert.ok(p.rules.length > 0);
      const canonical = canonicalReleasePolicyJson(p);
      assert.equal(canonicalReleasePolicyJson(parseReleasePolicy(canonical)), canonical);
    });
  }

  test('the version "0.2" import output is exactly AKV canonical JSON', () => {
    const text = readFixtureText('skr-policies', 'aks-cc-docs-importkey-output.version-0.2.json').trim();
    assert.equal(canonicalReleasePolicyJson(parseReleasePolicy(text)), text);
  });

  test('the legacy condition/value form is re-serialised as {claim, equals}', () => {
    const p = parseReleasePolicy(policyFixture('specs-7.4-ReleasePolicy-example.condition-value-form.json'));
    assert.deepEqual(canonicalReleasePolicy(p), {
      version: '1.0.0',
      anyOf: [
        {
          authority: 'http://localhost:8023/',
          allOf: [
            { claim: 'x-ms-sgx-mrsigner', equals: '86788fe40448f2a12e20bf8d5e7a1c3139bc5fdc1432b370c1da3489ab649a85' },
            { claim: 'x-ms-sgx-is-debuggable', equals: 'false' },
          ],
        },
      ],
    });
    const js = parseReleasePolicy(policyFixture('DERIVED-sdk-js-test-policy.condition-value-form.version-1.0.json'));
    assert.deepEqual(canonicalReleasePolicy(js), {
      version: '1.0',
      anyOf: [{ authority: '<AZURE_KEYVAULT_ATTESTATION_URI>', anyOf: [{ claim: 'sdk-test', equals: 'true' }] }],
    });
  });

  test('the swagger release example carries the same policy base64url-encoded', () => {
    const data =
      'eyAiYW55T2YiOiBbIHsgImFsbE9mIjogWyB7ICJjbGFpbSI6ICJ4LW1zLXNneC1tcnNpZ25lciIsICJjb25kaXRpb24iOiAiZXF1YWxzIiwgInZhbHVlIjogIjg2Nzg4ZmU0MDQ0OGYyYTEyZTIwYmY4ZDVlN2ExYzMxMzliYzVmZGMxNDMyYjM3MGMxZGEzNDg5YWI2NDlhODUiIH0sIHsgImNsYWltIjogIngtbXMtc2d4LWlzLWRlYnVnZ2FibGUiLCAiY29uZGl0aW9uIjogImVxdWFscyIsICJ2YWx1ZSI6ICJmYWxzZSIgfSBdLCAiYXV0aG9yaXR5IjogImh0dHA6Ly9sb2NhbGhvc3Q6ODAyMy8iIH0gXSB9';
    const fromData = parseReleasePolicyData(data);
    const fromFile = parseReleasePolicy(policyFixture('specs-7.4-ReleasePolicy-example.condition-value-form.json'));
    assert.equal(releasePolicyHash(fromData), releasePolicyHash(fromFile));
  });
});

describe('parseReleasePolicy: canonical form and hash', () => {
  test('legacy spelling and whitespace do not change the hash; a value change does', () => {
    const modern = simple([{ claim: 'a', equals: 'x' }]);
    const legacy = `{ "anyOf": [ { "allOf": [ { "claim": "a", "condition": "equals", "value": "x" } ], "authority": "https://maa.example" } ] }`;
    assert.equal(releasePolicyHash(parseReleasePolicy(legacy)), releasePolicyHash(parseReleasePolicy(modern)));
    assert.notEqual(releasePolicyHash(parseReleasePolicy(simple([{ claim: 'a', equals: 'y' }]))), releasePolicyHash(parseReleasePolicy(modern)));
  });

  test('values keep their JSON type', () => {
    const p = parseReleasePolicy(simple([{ claim: 'svn', greater: 1 }, { claim: 'dbg', equals: false }]));
    assert.deepEqual(canonicalReleasePolicy(p), simple([{ claim: 'svn', greater: 1 }, { claim: 'dbg', equals: false }]));
  });
});

describe('parseReleasePolicy: malformed policies point at the offending part', () => {
  const cases: Array<[string, unknown, string, string]> = [
    ['not JSON', '{"anyOf":', '', 'json'],
    ['not an object', [], '', 'not_object'],
    ['unknown version', { version: '1.0.2', anyOf: [] }, '/version', 'unsupported_version'],
    ['no anyOf', { version: '1.0.0' }, '', 'anyof_missing'],
    ['empty anyOf', { version: '1.0.0', anyOf: [] }, '/anyOf', 'empty'],
    ['unknown top-level key', { version: '1.0.0', anyOf: [{}], extra: 1 }, '/extra', 'unknown_property'],
    ['authority missing', { anyOf: [{ allOf: [{ claim: 'a', equals: 'b' }] }] }, '/anyOf/0/authority', 'authority_missing'],
    ['authority with both allOf and anyOf', { anyOf: [{ authority: 'x', allOf: [], anyOf: [] }] }, '/anyOf/0', 'both_anyof_allof'],
    ['empty condition list', simple([]), '/anyOf/0/allOf', 'empty'],
    ['unknown operator', simple([{ claim: 'a', equals: 'b' }, { claim: 'b', matches: 'x' }]), '/anyOf/0/allOf/1/matches', 'unknown_property'],
    ['two operators', simple([{ claim: 'a', equals: 'b', notEquals: 'c' }]), '/anyOf/0/allOf/0/notEquals', 'multiple_operators'],
    ['no operator', simple([{ claim: 'a' }]), '/anyOf/0/allOf/0', 'operator_missing'],
    ['object value', simple([{ claim: 'a', equals: { x: 1 } }]), '/anyOf/0/allOf/0/equals', 'value_type'],
    ['null value', simple([{ claim: 'a', equals: null }]), '/anyOf/0/allOf/0/equals', 'value_type'],
    ['non-numeric ordering value', simple([{ claim: 'a', greater: 'abc' }]), '/anyOf/0/allOf/0/greater', 'value_not_numeric'],
    ['exists with a number', simple([{ claim: 'a', exists: 1 }]), '/anyOf/0/allOf/0/exists', 'value_type'],
    ['empty claim', simple([{ claim: '', equals: 'x' }]), '/anyOf/0/allOf/0/claim', 'claim_not_string'],
    ['array index in claim', simple([{ claim: 'x-ms-runtime.keys[0].kid', equals: 'x' }]), '/anyOf/0/allOf/0/claim', 'claim_path_invalid'],
    ['empty claim segment', simple([{ claim: 'a..b', equals: 'x' }]), '/anyOf/0/allOf/0/claim', 'claim_path_invalid'],
    [
      'authority inside a nested group',
      simple([{ claim: 'a', equals: 'b' }, { allOf: [{ claim: 'c', equals: 'd' }, { authority: 'y', anyOf: [{ claim: 'e', equals: 'f' }] }] }]),
      '/anyOf/0/allOf/1/allOf/1/authority',
      'nested_authority',
    ],
    ['legacy form with unknown condition', simple([{ claim: 'a', condition: 'like', value: 'x' }]), '/anyOf/0/allOf/0/condition', 'unknown_operator'],
    ['legacy form without value', simple([{ claim: 'a', condition: 'equals' }]), '/anyOf/0/allOf/0/value', 'value_missing'],
  ];
  for (const [name, policy, path, reason] of cases) test(name, () => expectInvalid(policy, path, reason));

  test('groups nested deeper than MAX_POLICY_NESTING are refused at the first level too deep, as text or as a value, however deep', () => {
    const nested = (levels: number) => `{"anyOf":[{"authority":"x","allOf":[${'{"allOf":['.repeat(levels)}{"claim":"a","equals":"b"}${']}'.repeat(levels)}]}]}`;
    const tooDeep = `/anyOf/0/allOf${'/0/allOf'.repeat(MAX_POLICY_NESTING - 1)}/0`;
    assert.doesNotThrow(() => parseReleasePolicy(nested(MAX_POLICY_NESTING - 1)));
    for (const levels of [MAX_POLICY_NESTING, 100_000]) {
      expectInvalid(nested(levels), tooDeep, 'too_deep');
      expectInvalid(JSON.parse(nested(Math.min(levels, 2000))), tooDeep, 'too_deep');
    }
    expectInvalid(nested(100_000).replaceAll('allOf', 'anyOf'), tooDeep.replaceAll('allOf', 'anyOf'), 'too_deep');
  });

  test('parseReleasePolicyData rejects bytes that are not base64url UTF-8', () => {
    assert.throws(() => parseReleasePolicyData('!!!'), (e: unknown) => isConclaveError(e, 'release.policy_invalid'));
  });
});

describe('normalizeAuthority', () => {
  const same: Array<[string, string]> = [
    ['https://sharedeus2.eus2.attest.azure.net/', 'https://sharedeus2.eus2.attest.azure.net'],
    ['HTTPS://SharedEUS2.eus2.Attest.Azure.Net', 'https://sharedeus2.eus2.attest.azure.net'],
    ['https://maa.example:443/', 'https://maa.example'],
    ['my.attestation.com', 'https://my.attestation.com'],
    ['http://localhost:8023/', 'http://localhost:8023'],
    ['https://<your MAA endpoint>.attest.azure.net/', 'https://<your maa endpoint>.attest.azure.net'],
  ];
  for (const [a, b] of same) test(`${a} ≡ ${b}`, () => assert.equal(normalizeAuthority(a), normalizeAuthority(b)));

  const different: Array<[string, string]> = [
    ['https://maa.example', 'http://maa.example'],
    ['https://maa.example:8443', 'https://maa.example'],
    ['https://maa.example/a', 'https://maa.example/A'],
    ['https://maa.example//', 'https://maa.example'],
    ['https://maa.example.evil', 'https://maa.example'],
  ];
  for (const [a, b] of different) test(`${a} ≢ ${b}`, () => assert.notEqual(normalizeAuthority(a), normalizeAuthority(b)));
});

describe('claimEquals: AKV type handling', () => {
  const rows: Array<[unknown, string | number | boolean, boolean]> = [
    [false, 'false', true],
    [false, 'False', true],
    [true, 'false', false],
    [0, '0', true],
    [0, '0.0', true],
    [1, '0', false],
    ['0', 0, true],
    ['false', false, true],
    ['abc', 'abc', true],
    ['ABC', 'abc', false],
    [1, true, false],
    [0, false, false],
    [null, 'null', false],
    [{ a: 1 }, '[object Object]', false],
    [['a'], 'a', false],
  ];
  for (const [actual, expected, result] of rows) {
    test(`${JSON.stringify(actual)} equals ${JSON.stringify(expected)} → ${result}`, () => assert.equal(claimEquals(actual, expected), result));
  }
});

describe('evaluateReleasePolicy: operators', () => {
  const claims = { svn: 5, svnText: '5', name: 'sevsnpvm', dbg: false, nested: { deep: { v: 2 } } };
  const one = (cond: Record<string, unknown>) => evaluateReleasePolicy(parseReleasePolicy(simple([{ claim: 'svn', ...cond }])), claims, 'https://maa.example');
  const rows: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['equals', { equals: 5 }, { equals: 6 }],
    ['notEquals', { notEquals: 6 }, { notEquals: 5 }],
    ['less', { less: 6 }, { less: 5 }],
    ['lessOrEquals', { lessOrEquals: 5 }, { lessOrEquals: 4 }],
    ['greater', { greater: 4 }, { greater: 5 }],
    ['greaterOrEquals', { greaterOrEquals: 5 }, { greaterOrEquals: '6' }],
    ['exists', { exists: true }, { exists: false }],
  ];
  for (const [op, pass, failing] of rows) {
    test(`${op} passes`, () => assert.equal(one(pass).released, true));
    test(`${op} fails and names the clause`, () => {
      const f = failuresOf(one(failing));
      assert.equal(f.length, 1);
      assert.deepEqual({ claim: f[0]?.claim, condition: f[0]?.condition, reason: f[0]?.reason, actual: f[0]?.actual, path: f[0]?.path }, {
        claim: 'svn',
        condition: op,
        reason: 'mismatch',
        actual: 5,
        path: '/anyOf/0/allOf/0',
      });
    });
  }

  test('ordering accepts numeric strings on either side and fails closed on text', () => {
    const p = parseReleasePolicy(simple([{ claim: 'svnText', greater: 4 }]));
    assert.equal(evaluateReleasePolicy(p, claims, 'https://maa.example').released, true);
    const text = parseReleasePolicy(simple([{ claim: 'name', greater: 1 }]));
    assert.equal(failuresOf(evaluateReleasePolicy(text, claims, 'https://maa.example'))[0]?.reason, 'mismatch');
  });

  test('a missing claim fails every operator but exists:false, with reason missing', () => {
    for (const op of ['equals', 'notEquals', 'less', 'lessOrEquals', 'greater', 'greaterOrEquals']) {
      const p = parseReleasePolicy(simple([{ claim: 'absent', [op]: 1 }]));
      const f = failuresOf(evaluateReleasePolicy(p, claims, 'https://maa.example'));
      assert.deepEqual([f[0]?.reason, f[0]?.actual], ['missing', undefined], op);
    }
    assert.equal(failuresOf(evaluateReleasePolicy(parseReleasePolicy(simple([{ claim: 'absent', exists: true }])), claims, 'https://maa.example'))[0]?.reason, 'missing');
    assert.equal(evaluateReleasePolicy(parseReleasePolicy(simple([{ claim: 'absent', exists: false }])), claims, 'https://maa.example').released, true);
  });

  test('dotted paths walk objects', () => {
    const p = parseReleasePolicy(simple([{ claim: 'nested.deep.v', equals: '2' }]));
    assert.equal(evaluateReleasePolicy(p, claims, 'https://maa.example').released, true);
    const q = parseReleasePolicy(simple([{ claim: 'nested.deep', equals: '2' }]));
    assert.equal(evaluateReleasePolicy(q, claims, 'https://maa.example').released, false);
  });

  test('a top-level claim named like a dotted path does not shadow the nested claim it names', () => {
    // An attestation policy may issue a claim of any name, 'x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable' too,
    // while the service sets the nested x-ms-isolation-tee object from the evidence, where a policy cannot
    // override it: the evidence's value decides; the whole-name key only where the path names nothing nested.
    const shadowed = {
      'x-ms-isolation-tee': { 'x-ms-sevsnpvm-is-debuggable': true },
      'x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable': false,
      'flat.only': 'yes',
    };
    const p = parseReleasePolicy(simple([{ claim: 'x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable', equals: 'false' }]));
    const d = evaluateReleasePolicy(p, shadowed, 'https://maa.example');
    assert.equal(d.released, false);
    assert.equal(failuresOf(d)[0]?.actual, true);
    const q = parseReleasePolicy(simple([{ claim: 'flat.only', equals: 'yes' }]));
    assert.equal(evaluateReleasePolicy(q, shadowed, 'https://maa.example').released, true);
  });

  test('nested anyOf/allOf: every failed clause is reported', () => {
    const p = parseReleasePolicy(
      simple([
        { claim: 'dbg', equals: 'true' },
        { anyOf: [{ claim: 'name', equals: 'tdxvm' }, { allOf: [{ claim: 'svn', greater: 9 }, { claim: 'name', exists: true }] }] },
        { claim: 'svn', equals: '5' },
      ]),
    );
    const f = failuresOf(evaluateReleasePolicy(p, claims, 'https://maa.example'));
    assert.deepEqual(
      f.map((x) => x.path),
      ['/anyOf/0/allOf/0', '/anyOf/0/allOf/1/anyOf/0', '/anyOf/0/allOf/1/anyOf/1/allOf/0'],
    );
    const ok = parseReleasePolicy(simple([{ anyOf: [{ claim: 'name', equals: 'tdxvm' }, { allOf: [{ claim: 'svn', greater: 1 }, { claim: 'name', exists: true }] }] }]));
    assert.equal(evaluateReleasePolicy(ok, claims, 'https://maa.example').released, true);
  });

  test('only entries of the matching authority count; another issuer fails with reason authority', () => {
    const p = parseReleasePolicy({
      version: '1.0.0',
      anyOf: [
        { authority: 'https://other.example', allOf: [{ claim: 'svn', equals: 5 }] },
        { authority: 'https://maa.example/', allOf: [{ claim: 'svn', equals: 6 }] },
        { authority: 'https://MAA.example', anyOf: [{ claim: 'svn', equals: 5 }] },
      ],
    });
    const d = evaluateReleasePolicy(p, claims, 'https://maa.example');
    assert.equal(d.released, true);
    assert.equal(d.released && d.authority, 'https://MAA.example');
    const f = failuresOf(evaluateReleasePolicy(p, claims, 'https://attacker.example'));
    assert.deepEqual(f.map((x) => [x.reason, x.claim, x.actual]), [['authority', 'iss', 'https://attacker.example']]);
  });

  test('top-level allOf needs every entry to match the issuer and hold', () => {
    const p = parseReleasePolicy({
      version: '1.0.0',
      allOf: [
        { authority: 'https://maa.example', allOf: [{ claim: 'svn', equals: 5 }] },
        { authority: 'https://other.example', allOf: [{ claim: 'svn', equals: 5 }] },
      ],
    });
    const f = failuresOf(evaluateReleasePolicy(p, claims, 'https://maa.example'));
    assert.deepEqual(f.map((x) => [x.reason, x.path]), [['authority', '/allOf/1/authority']]);
  });

  test('explainDecision is one line naming authority, claim, expectation and actual value', () => {
    const p = parseReleasePolicy(simple([{ claim: 'dbg', equals: 'true' }, { claim: 'absent', equals: 'x' }]));
    const line = explainDecision(evaluateReleasePolicy(p, claims, 'https://maa.example'));
    assert.equal(line, 'authority https://maa.example: claim dbg expected equals "true", actual false; authority https://maa.example: claim absent expected equals "x", actual (absent)');
    assert.ok(!line.includes('\n'));
  });
});

describe('evaluateReleasePolicy: real MAA claims against published policies', { skip }, () => {
  const azureGuest = (): Record<string, unknown> => readFixtureJson('maa-claims', 'azurevm-sevsnp-sharedeus2-2024-12.payload.json');
  const sevsnp = (): Record<string, unknown> => readFixtureJson('maa-claims', 'docs-sevsnpvm-sample.payload.json');

  test('the CVM data-disk policy (x-ms-isolation-tee.*) releases to the real AzureGuest token', () => {
    const claims = azureGuest();
    const d = evaluateReleasePolicy(parseReleasePolicy(policyFixture('cvm-datadisk-skr-policy.json')), claims, claims.iss as string);
    assert.equal(d.released, true, d.released ? '' : explainDecision(d));
    // The policy writes the authority with a trailing slash; MAA's iss has none.
    assert.equal(d.released && d.authority, 'https://sharedeus2.eus2.attest.azure.net/');
  });

  test('a mutated isolation-tee claim is named in the failure', () => {
    const claims = azureGuest();
    (claims['x-ms-isolation-tee'] as Record<string, unknown>)['x-ms-compliance-status'] = 'azure-noncompliant';
    const f = failuresOf(evaluateReleasePolicy(parseReleasePolicy(policyFixture('cvm-datadisk-skr-policy.json')), claims, claims.iss as string));
    assert.deepEqual(
      f.map((x) => [x.claim, x.condition, x.expected, x.actual, x.reason]),
      [['x-ms-isolation-tee.x-ms-compliance-status', 'equals', 'azure-compliant-cvm', 'azure-noncompliant', 'mismatch']],
    );
    assert.match(explainDecision({ released: false, failures: f, trace: { path: '', kind: 'policy', result: false } }), /x-ms-isolation-tee\.x-ms-compliance-status/);
  });

  test('the CVM default (OS disk) policy addresses top-level claims, which an AzureGuest token lacks', () => {
    const claims = azureGuest();
    const f = failuresOf(evaluateReleasePolicy(parseReleasePolicy(policyFixture('cvm-default-skr-policy.json')), claims, claims.iss as string));
    assert.deepEqual(
      f.map((x) => [x.claim, x.reason, x.actual]),
      [
        ['x-ms-compliance-status', 'missing', undefined],
        ['x-ms-attestation-type', 'mismatch', 'azurevm'],
        ['x-ms-attestation-type', 'mismatch', 'azurevm'],
      ],
    );
  });

  test('the CVM default policy releases to a top-level sevsnpvm token from a listed region', () => {
    const claims = sevsnp();
    const policy = parseReleasePolicy(policyFixture('cvm-default-skr-policy.json'));
    assert.equal(evaluateReleasePolicy(policy, claims, 'https://sharedeus2.eus2.attest.azure.net').released, true);
    // Its own issuer (a sandbox instance) is not one of the 60 shared authorities.
    assert.equal(failuresOf(evaluateReleasePolicy(policy, claims, claims.iss as string))[0]?.reason, 'authority');
    claims['x-ms-attestation-type'] = 'sgx';
    const f = failuresOf(evaluateReleasePolicy(policy, claims, 'https://sharedeus2.eus2.attest.azure.net'));
    assert.deepEqual(f.map((x) => [x.claim, x.expected]), [['x-ms-attestation-type', 'tdxvm'], ['x-ms-attestation-type', 'sevsnpvm']]);
  });

  test('string "false"/"0" in the sidecar policy match JSON false/0 claims', () => {
    const claims = sevsnp();
    const text = JSON.stringify(policyFixture('DERIVED-sidecar-tests-skr-key.py-policy.json'))
      .replace('<sha256 hex of security policy>', claims['x-ms-sevsnpvm-hostdata'] as string)
      .replace('azure-compliant-uvm', 'azure-compliant-cvm');
    const d = evaluateReleasePolicy(parseReleasePolicy(text), claims, 'https://<attestation_endpoint>');
    assert.equal(d.released, true, d.released ? '' : explainDecision(d));
    claims['x-ms-sevsnpvm-is-debuggable'] = true;
    claims['x-ms-sevsnpvm-vmpl'] = 2;
    const f = failuresOf(evaluateReleasePolicy(parseReleasePolicy(text), claims, 'https://<attestation_endpoint>'));
    assert.deepEqual(f.map((x) => [x.claim, x.actual]), [['x-ms-sevsnpvm-is-debuggable', true], ['x-ms-sevsnpvm-vmpl', 2]]);
  });
});

describe('parseReleasePolicy: properties', () => {
  const claimName = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,2}$/);
  const value = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean());
  const claimCondition = fc.oneof(
    fc.record({ claim: claimName, op: fc.constantFrom('equals', 'notEquals'), v: value }).map(({ claim, op, v }) => ({ claim, [op]: v })),
    fc.record({ claim: claimName, op: fc.constantFrom('less', 'lessOrEquals', 'greater', 'greaterOrEquals'), v: fc.integer() }).map(({ claim, op, v }) => ({ claim, [op]: v })),
    fc.record({ claim: claimName, exists: fc.boolean() }),
  );
  const { condition } = fc.letrec<{ condition: unknown }>((tie) => ({
    condition: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      claimCondition,
      fc.record({ anyOf: fc.array(tie('condition'), { minLength: 1, maxLength: 3 }) }),
      fc.record({ allOf: fc.array(tie('condition'), { minLength: 1, maxLength: 3 }) }),
    ),
  }));
  const policy = fc.record({
    version: fc.constantFrom('1.0.0', '1.0', '0.2'),
    anyOf: fc.array(
      fc.tuple(fc.webUrl(), fc.constantFrom('anyOf', 'allOf'), fc.array(condition, { minLength: 1, maxLength: 3 })).map(([authority, k, c]) => ({ authority, [k]: c })),
      { minLength: 1, maxLength: 3 },
    ),
  });

  test('a grammatical policy parses, and its canonical form equals the input and is a fixed point', () => {
    fc.assert(
      fc.property(policy, (p) => {
        const parsed = parseReleasePolicy(JSON.stringify(p));
        assert.deepEqual(canonicalReleasePolicy(parsed), JSON.parse(JSON.stringify(p)));
        assert.equal(releasePolicyHash(parseReleasePolicy(canonicalReleasePolicyJson(parsed))), releasePolicyHash(parsed));
      }),
      { numRuns: 200 },
    );
  });

  test('arbitrary JSON either parses or fails with release.policy_invalid and a JSON pointer', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), policy.map((p) => JSON.parse(JSON.stringify(p).replace(/"equals"/, '"eq"')))), (v) => {
        try {
          parseReleasePolicy(v);
        } catch (e) {
          assert.ok(isConclaveError(e, 'release.policy_invalid'), String(e));
          assert.equal(typeof e.detail?.path, 'string');
          assert.ok(e.detail?.path === '' || String(e.detail?.path).startsWith('/'));
        }
      }),
      { numRuns: 300 },
    );
  });

  test('evaluation never throws on arbitrary claims', () => {
    fc.assert(
      fc.property(policy, fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue()), (p, claims) => {
        const d = evaluateReleasePolicy(parseReleasePolicy(p), claims as Record<string, unknown>, p.anyOf[0]?.authority ?? '');
        assert.equal(typeof explainDecision(d), 'string');
      }),
      { numRuns: 200 },
    );
  });
});

describe('compiled release policies (#20)', () => {
  const text = JSON.stringify({ version: '1.0.0', anyOf: [{ authority: 'https://a.test', allOf: [{ claim: 'x-ms-attestation-type', equals: 'sevsnpvm' }] }] });
  test('a stored text is parsed and hashed once: the same result, equal to parse + hash', () => {
    const c = compileReleasePolicy(text);
    assert.equal(compileReleasePolicy(text), c);
    assert.deepEqual(c.policy, parseReleasePolicy(text));
    assert.equal(c.hash, releasePolicyHash(parseReleasePolicy(text)));
    assert.ok(Object.isFrozen(c));
  });
  test('an invalid text throws every time (nothing remembered)', () => {
    for (let i = 0; i < 2; i++) assert.throws(() => compileReleasePolicy('{"anyOf": []}'), (e) => isConclaveError(e));
  });
});
