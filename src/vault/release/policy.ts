/**
 * The AKV/MHSM key release policy language: parsing (with the legacy forms AKV still accepts), the
 * canonical form AKV echoes back, and evaluation against the claims of a verified attestation token.
 *
 * Grammar: MicrosoftDocs `includes/key-management-policy-grammar.md` (skr-maa-protocol.md §1.2–§1.4).
 * Comparison rules that the grammar leaves open are fixed here and documented in docs/release-policy.md.
 */
import { createHash } from 'node:crypto';
import { fromB64 } from '../../core/bytes.js';
import { fail } from '../../core/errors.js';

export const CLAIM_OPERATORS = ['equals', 'notEquals', 'less', 'lessOrEquals', 'greater', 'greaterOrEquals', 'exists'] as const;
export type ClaimOperator = (typeof CLAIM_OPERATORS)[number];

/** `value = JSON string | number | true | false` (GRAM EBNF); objects, arrays and null are not allowed. */
export type ClaimValue = string | number | boolean;

export type Combinator = 'anyOf' | 'allOf';

export interface ClaimCondition {
  readonly kind: 'claim';
  /** Dotted claim path as written in the policy (`x-ms-isolation-tee.x-ms-attestation-type`). */
  readonly claim: string;
  readonly operator: ClaimOperator;
  readonly value: ClaimValue;
}

export interface ConditionGroup {
  readonly kind: Combinator;
  readonly conditions: readonly Condition[];
}

export type Condition = ClaimCondition | ConditionGroup;

/** One entry of the top-level list: `{authority, allOf|anyOf}` — exactly one of the two (GRAM). */
export interface AuthorityRule {
  readonly authority: string;
  readonly kind: Combinator;
  readonly conditions: readonly Condition[];
}

export const RELEASE_POLICY_VERSIONS = ['1.0.0', '1.0', '0.2'] as const;
export type ReleasePolicyVersion = (typeof RELEASE_POLICY_VERSIONS)[number];

export interface ReleasePolicy {
  /** The version as written; `1.0.0` when the policy had none (the only documented value). */
  readonly version: ReleasePolicyVersion;
  /**
   * `anyOf` per the grammar; `allOf` only for the published-but-off-grammar docs example (SKREX CVM
   * Example 2), where every authority entry must match the issuer and hold.
   */
  readonly kind: Combinator;
  readonly rules: readonly AuthorityRule[];
}

/**
 * How deep condition lists may nest, the authority entry's list being the first. Published policies nest
 * two or three; the bound keeps parsing, evaluation and the canonical form (all recursive) off the end of
 * the stack for a policy that arrives as text or base64 (`release_policy.data`), which the request's own
 * JSON depth limit does not see.
 */
export const MAX_POLICY_NESTING = 16;

// ── parsing ───────────────────────────────────────────────────────────────────────────────────────

function invalid(path: string, reason: string, message: string): never {
  throw fail('release.policy_invalid', `key release policy is invalid at '${path || '/'}': ${message}`, { path, reason });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const NUMERIC_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A finite number from a JSON number or a decimal numeric string; undefined otherwise. */
function numericOf(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && NUMERIC_TEXT.test(v.trim())) {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function parseClaimPath(claim: unknown, path: string): string {
  if (typeof claim !== 'string' || claim.length === 0) invalid(path, 'claim_not_string', 'claim must be a non-empty string');
  // GRAM §"claim": dot notation for objects; "Array specifications aren't presently supported".
  if (claim.split('.').some((s) => s.length === 0)) invalid(path, 'claim_path_invalid', `claim path '${claim}' has an empty segment`);
  if (/[[\]]/.test(claim)) invalid(path, 'claim_path_invalid', `claim path '${claim}' uses array indexing, which is not supported`);
  return claim;
}

function parseValue(operator: ClaimOperator, value: unknown, path: string): ClaimValue {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    invalid(path, 'value_type', `the value of '${operator}' must be a string, number or boolean`);
  }
  if (typeof value === 'number' && !Number.isFinite(value)) invalid(path, 'value_type', 'numeric value is not finite');
  if (operator === 'exists') {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    invalid(path, 'value_type', "the value of 'exists' must be true or false");
  }
  if (operator !== 'equals' && operator !== 'notEquals' && numericOf(value) === undefined) {
    invalid(path, 'value_not_numeric', `'${operator}' needs a numeric value`);
  }
  return value;
}

function isOperator(k: string): k is ClaimOperator {
  return (CLAIM_OPERATORS as readonly string[]).includes(k);
}

function parseClaimCondition(o: Record<string, unknown>, path: string): ClaimCondition {
  const claim = parseClaimPath(o.claim, `${path}/claim`);
  // Legacy form `{claim, condition: "equals", value}` [SPEC74 ReleasePolicy-example; JSTEST 2021]; AKV
  // re-serialises it as `{claim, equals: value}` [JSTEST comment].
  if ('condition' in o) {
    for (const k of Object.keys(o)) {
      if (k !== 'claim' && k !== 'condition' && k !== 'value') invalid(`${path}/${k}`, 'unknown_property', `unexpected property '${k}'`);
    }
    const op = o.condition;
    if (typeof op !== 'string' || !isOperator(op)) invalid(`${path}/condition`, 'unknown_operator', `unknown condition '${String(op)}'`);
    if (!('value' in o)) invalid(`${path}/value`, 'value_missing', 'legacy condition form needs a value');
    return { kind: 'claim', claim, operator: op, value: parseValue(op, o.value, `${path}/value`) };
  }
  let operator: ClaimOperator | undefined;
  for (const k of Object.keys(o)) {
    if (k === 'claim') continue;
    if (!isOperator(k)) invalid(`${path}/${k}`, 'unknown_property', `unexpected property '${k}' (operators: ${CLAIM_OPERATORS.join(', ')})`);
    if (operator !== undefined) invalid(`${path}/${k}`, 'multiple_operators', `a claim condition takes exactly one operator, found '${operator}' and '${k}'`);
    operator = k;
  }
  if (operator === undefined) invalid(path, 'operator_missing', `claim condition for '${claim}' has no operator`);
  return { kind: 'claim', claim, operator, value: parseValue(operator, o[operator], `${path}/${operator}`) };
}

/** `nesting`: how many condition lists hold this one's conditions, itself included (the authority entry's is 1). */
function parseConditionList(v: unknown, path: string, nesting: number): Condition[] {
  if (!Array.isArray(v)) invalid(path, 'not_array', 'expected an array of conditions');
  // "one is required" [GRAM]
  if (v.length === 0) invalid(path, 'empty', 'a condition list needs at least one condition');
  return v.map((c, i) => parseCondition(c, `${path}/${i}`, nesting));
}

/** Exactly one of `anyOf`/`allOf` [GRAM: "both aren't allowed together"]. */
function groupKind(o: Record<string, unknown>, path: string): Combinator | undefined {
  const hasAny = 'anyOf' in o;
  const hasAll = 'allOf' in o;
  if (hasAny && hasAll) invalid(path, 'both_anyof_allof', "anyOf and allOf are not allowed together");
  return hasAny ? 'anyOf' : hasAll ? 'allOf' : undefined;
}

function parseCondition(c: unknown, path: string, nesting: number): Condition {
  if (!isObject(c)) invalid(path, 'not_object', 'a condition must be a JSON object');
  const kind = groupKind(c, path);
  if (kind === undefined) return parseClaimCondition(c, path);
  if (nesting >= MAX_POLICY_NESTING) invalid(path, 'too_deep', `condition groups nest deeper than ${MAX_POLICY_NESTING} levels`);
  for (const k of Object.keys(c)) {
    if (k === 'authority') invalid(`${path}/authority`, 'nested_authority', 'authority is only allowed on the top-level entries');
    if (k !== kind) invalid(`${path}/${k}`, 'unknown_property', `unexpected property '${k}' next to ${kind}`);
  }
  return { kind, conditions: parseConditionList(c[kind], `${path}/${kind}`, nesting + 1) };
}

function parseAuthorityRule(r: unknown, path: string): AuthorityRule {
  if (!isObject(r)) invalid(path, 'not_object', 'an authority entry must be a JSON object');
  const authority = r.authority;
  if (typeof authority !== 'string' || authority.trim().length === 0) invalid(`${path}/authority`, 'authority_missing', 'authority must be a non-empty string');
  const kind = groupKind(r, path);
  if (kind === undefined) invalid(path, 'conditions_missing', 'an authority entry needs allOf or anyOf');
  for (const k of Object.keys(r)) {
    if (k !== 'authority' && k !== kind) invalid(`${path}/${k}`, 'unknown_property', `unexpected property '${k}'`);
  }
  return { authority, kind, conditions: parseConditionList(r[kind], `${path}/${kind}`, 1) };
}

/**
 * Parses a release policy (a JSON value or its text) into the one canonical structure.
 * Accepts version `1.0.0`, the legacy `1.0` and `0.2`, no version, and the legacy
 * `{claim, condition, value}` condition form. Throws `release.policy_invalid` with `{path, reason}`
 * (a JSON pointer into the policy) on anything else.
 */
export function parseReleasePolicy(json: unknown): ReleasePolicy {
  let doc = json;
  if (typeof json === 'string') {
    try {
      doc = JSON.parse(json);
    } catch (e) {
      invalid('', 'json', `not valid JSON (${(e as Error).message})`);
    }
  }
  if (!isObject(doc)) invalid('', 'not_object', 'the policy must be a JSON object');
  let version: ReleasePolicyVersion = '1.0.0';
  if ('version' in doc) {
    const v = doc.version;
    if (typeof v !== 'string' || !(RELEASE_POLICY_VERSIONS as readonly string[]).includes(v)) {
      invalid('/version', 'unsupported_version', `unsupported version ${JSON.stringify(v)} (accepted: ${RELEASE_POLICY_VERSIONS.join(', ')})`);
    }
    version = v as ReleasePolicyVersion;
  }
  const kind = groupKind(doc, '');
  if (kind === undefined) invalid('', 'anyof_missing', 'the policy needs a top-level anyOf of authority entries');
  for (const k of Object.keys(doc)) {
    if (k !== 'version' && k !== kind) invalid(`/${k}`, 'unknown_property', `unexpected top-level property '${k}'`);
  }
  const list = doc[kind];
  if (!Array.isArray(list)) invalid(`/${kind}`, 'not_array', 'expected an array of authority entries');
  if (list.length === 0) invalid(`/${kind}`, 'empty', 'the policy needs at least one authority entry');
  return { version, kind, rules: list.map((r, i) => parseAuthorityRule(r, `/${kind}/${i}`)) };
}

/**
 * Decodes the REST `release_policy.data` field (base64url of the policy JSON, GRAM §"Encoding key
 * release policy") and parses it. Both base64 alphabets and optional padding are accepted, as producers
 * differ (skr-maa-protocol.md §1.1).
 */
export function parseReleasePolicyData(data: string): ReleasePolicy {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(fromB64(data, 'release_policy.data'));
  } catch {
    invalid('', 'encoding', 'release_policy.data is not base64url-encoded UTF-8');
  }
  return parseReleasePolicy(text);
}

// ── canonical form ────────────────────────────────────────────────────────────────────────────────

function canonicalCondition(c: Condition): object {
  if (c.kind === 'claim') return { claim: c.claim, [c.operator]: c.value };
  return { [c.kind]: c.conditions.map(canonicalCondition) };
}

/**
 * The policy as AKV echoes it back: `version` first, then the top-level list; each entry `authority`
 * then its `allOf`/`anyOf`; each condition `{claim, <operator>: value}` (the legacy `condition/value`
 * form re-serialised). Values keep their JSON type. Key order follows the `"version":"0.2"` import
 * output (fixture `aks-cc-docs-importkey-output.version-0.2.json`).
 */
export function canonicalReleasePolicy(p: ReleasePolicy): object {
  return {
    version: p.version,
    [p.kind]: p.rules.map((r) => ({ authority: r.authority, [r.kind]: r.conditions.map(canonicalCondition) })),
  };
}

/** The canonical policy serialised as compact JSON (the bytes stored and returned in `release_policy.data`). */
export function canonicalReleasePolicyJson(p: ReleasePolicy): string {
  return JSON.stringify(canonicalReleasePolicy(p));
}

/** base64url(SHA-256(canonical JSON)): equal for policies that differ only in legacy spelling or whitespace. */
export function releasePolicyHash(p: ReleasePolicy): string {
  return createHash('sha256').update(canonicalReleasePolicyJson(p)).digest('base64url');
}

/** A stored policy parsed, with its hash: derived from its text alone, so kept by that text. */
export interface CompiledReleasePolicy {
  readonly policy: ReleasePolicy;
  readonly hash: string;
}

const compiledPolicies = new Map<string, CompiledReleasePolicy>();
const COMPILED_POLICY_LIMIT = 1024;

/**
 * {@link parseReleasePolicy} and {@link releasePolicyHash} of a stored policy text, done once per text
 * (a release decides on every request; the key's policy changes rarely). Invalid text throws each time.
 */
export function compileReleasePolicy(json: string): CompiledReleasePolicy {
  let c = compiledPolicies.get(json);
  if (c === undefined) {
    const policy = parseReleasePolicy(json);
    c = Object.freeze({ policy, hash: releasePolicyHash(policy) });
    if (compiledPolicies.size >= COMPILED_POLICY_LIMIT) compiledPolicies.clear();
    compiledPolicies.set(json, c);
  }
  return c;
}

// ── authority matching ────────────────────────────────────────────────────────────────────────────

/**
 * Normalises an authority or `iss` for comparison: scheme and host lower-cased, the default port
 * dropped, one trailing `/` removed, `https://` assumed when no scheme is given (GRAM shows
 * `my.attestation.com`). MAA's `iss` has no trailing slash while Azure's CVM policy writes one; both
 * release in production (skr-maa-protocol.md §1.4).
 */
export function normalizeAuthority(authority: string): string {
  let n = normalizedAuthorities.get(authority);
  if (n === undefined) {
    n = normalizeAuthorityOnce(authority);
    if (normalizedAuthorities.size >= 1024) normalizedAuthorities.clear();
    normalizedAuthorities.set(authority, n);
  }
  return n;
}

/** Authorities seen, normalised (a release compares the token's issuer with the trusted ones and the policy's). */
const normalizedAuthorities = new Map<string, string>();

function normalizeAuthorityOnce(authority: string): string {
  const trimmed = authority.trim();
  const withScheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(trimmed) ? trimmed : `https://${trimmed}`;
  let out: string;
  try {
    const u = new URL(withScheme);
    // WHATWG URL lower-cases scheme and host and drops the scheme's default port.
    out = `${u.protocol}//${u.username ? `${u.username}@` : ''}${u.host}${u.pathname}${u.search}${u.hash}`;
  } catch {
    const m = /^([^:]+):\/\/([^/]*)(.*)$/.exec(withScheme);
    out = m ? `${m[1]?.toLowerCase()}://${m[2]?.toLowerCase().replace(/:443$/, '')}${m[3]}` : withScheme;
  }
  return out.endsWith('/') ? out.slice(0, -1) : out;
}

export function authoritiesMatch(a: string, b: string): boolean {
  return normalizeAuthority(a) === normalizeAuthority(b);
}

// ── evaluation ────────────────────────────────────────────────────────────────────────────────────

export interface ClauseFailure {
  /** The policy authority whose entry failed (the token issuer for an authority failure). */
  readonly authority: string;
  /** JSON pointer of the failing clause in the canonical policy. */
  readonly path: string;
  /** The claim path, or `iss` for an authority failure. */
  readonly claim: string;
  /** The operator, or `authority`. */
  readonly condition: ClaimOperator | 'authority';
  readonly expected: unknown;
  readonly actual: unknown;
  readonly reason: 'missing' | 'mismatch' | 'authority';
}

export interface TraceNode {
  readonly path: string;
  readonly kind: 'policy' | 'authority' | Combinator | 'claim';
  readonly result: boolean;
  readonly authority?: string;
  /** For authority entries: whether the entry's authority matches the token issuer. */
  readonly authorityMatched?: boolean;
  readonly claim?: string;
  readonly condition?: ClaimOperator;
  readonly expected?: ClaimValue;
  readonly actual?: unknown;
  readonly children?: readonly TraceNode[];
}

export type ReleaseDecision =
  | { readonly released: true; readonly authority: string; readonly trace: TraceNode }
  | { readonly released: false; readonly failures: readonly ClauseFailure[]; readonly trace: TraceNode };

/**
 * Looks up a dotted claim path: objects only, no array traversal (GRAM). Null counts as absent. The nested
 * claim the path names decides where there is one (the attestation service sets x-ms-isolation-tee,
 * x-ms-runtime and the like from the evidence, and a policy cannot override them); a top-level key of the
 * whole name, which any attestation policy can issue, only where the path names nothing nested.
 */
export function lookupClaim(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let cur: unknown = claims;
  for (const seg of path.split('.')) {
    if (!isObject(cur) || !Object.hasOwn(cur, seg)) return Object.hasOwn(claims, path) ? (claims[path] ?? undefined) : undefined;
    cur = cur[seg];
  }
  return cur ?? undefined;
}

/**
 * `equals` across JSON types. Same type: strict equality (strings case-sensitive). Different types:
 * boolean ↔ string matches `"true"`/`"false"` (any case, as .NET prints `True`), number ↔ string
 * matches a decimal string of the same value — production MHSM releases `{"equals":"false"}` against
 * a JSON `false` claim and `{"equals":"0"}` against `0` (skr-maa-protocol.md §1.4).
 */
export function claimEquals(actual: unknown, expected: ClaimValue): boolean {
  if (typeof actual === typeof expected) return actual === expected;
  if (typeof actual === 'boolean' && typeof expected === 'string') return expected.toLowerCase() === String(actual);
  if (typeof actual === 'string' && typeof expected === 'boolean') return actual.toLowerCase() === String(expected);
  const numberVsString =
    (typeof actual === 'number' && typeof expected === 'string') || (typeof actual === 'string' && typeof expected === 'number');
  if (!numberVsString) return false;
  const a = numericOf(actual);
  return a !== undefined && a === numericOf(expected);
}

function compareOrdered(op: 'less' | 'lessOrEquals' | 'greater' | 'greaterOrEquals', actual: unknown, expected: ClaimValue): boolean {
  // Ordering is numeric only; a non-numeric claim fails closed rather than comparing text.
  const a = numericOf(actual);
  const e = numericOf(expected);
  if (a === undefined || e === undefined) return false;
  switch (op) {
    case 'less':
      return a < e;
    case 'lessOrEquals':
      return a <= e;
    case 'greater':
      return a > e;
    case 'greaterOrEquals':
      return a >= e;
  }
}

interface NodeResult {
  readonly trace: TraceNode;
  readonly failures: ClauseFailure[];
}

function evaluateClaim(c: ClaimCondition, claims: Readonly<Record<string, unknown>>, path: string, authority: string): NodeResult {
  const actual = lookupClaim(claims, c.claim);
  let ok: boolean;
  let reason: ClauseFailure['reason'] = 'mismatch';
  if (c.operator === 'exists') {
    ok = (actual !== undefined) === c.value;
    if (!ok && actual === undefined) reason = 'missing';
  } else if (actual === undefined) {
    // "If a specified claim isn't present, its condition is considered to haven't been met." [GRAM]
    ok = false;
    reason = 'missing';
  } else if (c.operator === 'equals') {
    ok = claimEquals(actual, c.value);
  } else if (c.operator === 'notEquals') {
    ok = !claimEquals(actual, c.value);
  } else {
    ok = compareOrdered(c.operator, actual, c.value);
  }
  const trace: TraceNode = { path, kind: 'claim', result: ok, claim: c.claim, condition: c.operator, expected: c.value, actual };
  const failures: ClauseFailure[] = ok ? [] : [{ authority, path, claim: c.claim, condition: c.operator, expected: c.value, actual, reason }];
  return { trace, failures };
}

function evaluateGroup(
  kind: Combinator,
  conditions: readonly Condition[],
  claims: Readonly<Record<string, unknown>>,
  path: string,
  authority: string,
): { result: boolean; children: TraceNode[]; failures: ClauseFailure[] } {
  const results = conditions.map((c, i) => evaluateCondition(c, claims, `${path}/${kind}/${i}`, authority));
  const result = kind === 'allOf' ? results.every((r) => r.trace.result) : results.some((r) => r.trace.result);
  // A failed allOf reports its failed members; a failed anyOf reports all of them (each one failed).
  const failures = result ? [] : results.flatMap((r) => r.failures);
  return { result, children: results.map((r) => r.trace), failures };
}

function evaluateCondition(c: Condition, claims: Readonly<Record<string, unknown>>, path: string, authority: string): NodeResult {
  if (c.kind === 'claim') return evaluateClaim(c, claims, path, authority);
  const g = evaluateGroup(c.kind, c.conditions, claims, path, authority);
  return { trace: { path, kind: c.kind, result: g.result, children: g.children }, failures: g.failures };
}

/**
 * Evaluates a policy against the claims of an already verified token issued by `issuer`. Only the
 * entries whose authority matches the issuer are evaluated (GRAM: authority plays the role of `iss`);
 * under the top-level `anyOf` one passing entry releases. Every failed clause is reported.
 */
export function evaluateReleasePolicy(policy: ReleasePolicy, claims: Readonly<Record<string, unknown>>, issuer: string): ReleaseDecision {
  const iss = normalizeAuthority(issuer);
  const entries: TraceNode[] = [];
  const failures: ClauseFailure[] = [];
  let passedAuthority: string | undefined;
  let anyMatched = false;
  let allPassed = true;
  policy.rules.forEach((rule, i) => {
    const path = `/${policy.kind}/${i}`;
    const matched = normalizeAuthority(rule.authority) === iss;
    if (!matched) {
      allPassed = false;
      entries.push({ path, kind: 'authority', result: false, authority: rule.authority, authorityMatched: false });
      if (policy.kind === 'allOf') {
        failures.push({ authority: rule.authority, path: `${path}/authority`, claim: 'iss', condition: 'authority', expected: rule.authority, actual: issuer, reason: 'authority' });
      }
      return;
    }
    anyMatched = true;
    const g = evaluateGroup(rule.kind, rule.conditions, claims, path, rule.authority);
    entries.push({ path, kind: 'authority', result: g.result, authority: rule.authority, authorityMatched: true, children: [{ path: `${path}/${rule.kind}`, kind: rule.kind, result: g.result, children: g.children }] });
    if (g.result) passedAuthority ??= rule.authority;
    else {
      allPassed = false;
      failures.push(...g.failures);
    }
  });
  const released = policy.kind === 'anyOf' ? passedAuthority !== undefined : allPassed;
  const trace: TraceNode = { path: '', kind: 'policy', result: released, children: entries };
  if (released) return { released: true, authority: passedAuthority ?? issuer, trace };
  if (!anyMatched && policy.kind === 'anyOf') {
    failures.push({ authority: issuer, path: '', claim: 'iss', condition: 'authority', expected: policy.rules.map((r) => r.authority), actual: issuer, reason: 'authority' });
  }
  return { released: false, failures, trace };
}

function show(v: unknown): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

/** One line for humans and logs, e.g. `authority https://x: claim c expected equals "false", actual true`. */
export function explainDecision(decision: ReleaseDecision): string {
  if (decision.released) return `released: authority ${decision.authority} satisfied`;
  return decision.failures
    .map((f) => {
      if (f.reason === 'authority') {
        const expected = Array.isArray(f.expected) ? `one of ${f.expected.length} policy authorities` : show(f.expected);
        return `issuer ${f.actual as string} matches no authority of the policy (expected ${expected})`;
      }
      return `authority ${f.authority}: claim ${f.claim} expected ${f.condition} ${show(f.expected)}, actual ${show(f.actual)}`;
    })
    .join('; ');
}
