import { fail } from '../../core/errors.js';
import type { Action, Claim, ClaimProperty, ClaimValue, Condition, Expression, Policy, PolicyConfiguration, PropertyCondition, Rule } from './ast.js';
import { callFunction, type EvalValue } from './functions.js';
import { parsePolicy } from './parser.js';

/** Issuer of claims that the policy itself adds or issues (claim-rule-grammar §Claim). */
export const POLICY_ISSUER = 'AttestationPolicy';
/** Issuer of incoming claims that come without one. */
export const SERVICE_ISSUER = 'AttestationService';

export interface EvaluationOptions {
  /** Record a line per rule that fired (default true). */
  readonly trace?: boolean;
  /** Limits on the work of one evaluation (default {@link DEFAULT_EVALUATION_BUDGET}). */
  readonly budget?: EvaluationBudget;
}

/**
 * What one evaluation may cost. A rule's conditions are matched as a cartesian product of claims, so a
 * few rules that bind every claim (and add claims that later rules bind again) grow exponentially; the
 * budget stops them with `attestation.policy_budget` (400) instead of stalling the event loop. Steps make
 * the bound deterministic; the time limit is only a backstop for steps that are slow on their own.
 */
export interface EvaluationBudget {
  /** Claim tests, rule firings and function calls, all rules together. */
  readonly maxSteps: number;
  /** Distinct firings (binding combinations) of one rule. */
  readonly maxBindings: number;
  /** Claims in the working set: incoming plus those the policy adds or issues. */
  readonly maxClaims: number;
  /** Claims issued to the token. */
  readonly maxIssuedClaims: number;
  /**
   * Size of the issued claims, types and string values together, as the token carries them: the UTF-8 bytes
   * of their JSON (a control character counts 6, a non-ASCII one 2 to 4; a number or Boolean counts 8): what
   * the policy adds to the token's size. Issuing costs one step whatever the value, so without this a few
   * rules that copy a large claim (the TEE's runtime JSON) hundreds of times make a token of hundreds of MB.
   */
  readonly maxIssuedChars: number;
  /** Wall-clock backstop in milliseconds. */
  readonly maxMillis: number;
}

/**
 * Generous for real policies (every policy MAA's documentation publishes takes under a hundred steps on
 * their claim sets) and small enough that one evaluation cannot hold the event loop for long.
 */
export const DEFAULT_EVALUATION_BUDGET: EvaluationBudget = { maxSteps: 20_000, maxBindings: 2_048, maxClaims: 10_000, maxIssuedClaims: 1_000, maxIssuedChars: 4 * 1024 * 1024, maxMillis: 250 };

/** Steps one new binding costs (it allocates a map per slot). */
const BINDING_STEPS = 8;

/** Counts the work of one evaluation against its budget. */
class Meter {
  steps = 0;
  private readonly started = performance.now();
  readonly budget: EvaluationBudget;
  constructor(budget: EvaluationBudget) {
    this.budget = budget;
  }

  /** A policy function call: its cost grows with its arguments (JmesPath over a large document), so the clock is read every time. */
  call(rule: string, args: readonly EvalValue[]): void {
    let size = 0;
    for (const a of args) size += typeof a === 'string' ? a.length : Array.isArray(a) ? a.length : 1;
    this.step(rule, 1 + (size >> 10));
    if (performance.now() - this.started > this.budget.maxMillis) exceeded('time', this.budget.maxMillis, rule);
  }

  /** Work a function did beyond its arguments (a JmesPath query's operations, in units of WORK_UNIT): the clock is read every time. */
  work(rule: string, n: number): void {
    this.step(rule, n);
    if (performance.now() - this.started > this.budget.maxMillis) exceeded('time', this.budget.maxMillis, rule);
  }

  step(rule: string, n = 1): void {
    this.steps += n;
    if (this.steps > this.budget.maxSteps) exceeded('steps', this.budget.maxSteps, rule);
    // The clock is read once per 1024 steps: cheap, and still a bound on a slow step.
    if ((this.steps & 1023) < n && performance.now() - this.started > this.budget.maxMillis) exceeded('time', this.budget.maxMillis, rule);
  }
}

function exceeded(limit: 'steps' | 'bindings' | 'claims' | 'issuedClaims' | 'issuedChars' | 'time', max: number, rule: string): never {
  const unit = limit === 'time' ? `${max} ms` : `${max} ${limit === 'issuedClaims' ? 'issued claims' : limit === 'issuedChars' ? "issued claims' characters, as UTF-8 bytes of their JSON" : limit}`;
  throw fail('attestation.policy_budget', `the attestation policy exceeded its evaluation budget (${unit}) at ${rule}; simplify the rule's conditions (bind claims by type)`, { limit, max, rule });
}

export interface PolicyEvaluation {
  /** Whether an authorization rule permitted (the first permit()/deny() to fire decides; none ⇒ not permitted). */
  readonly permitted: boolean;
  /** The outgoing claim set: claims of `issue` actions in issuancerules, in order. Empty when not permitted. */
  readonly issued: Claim[];
  /** Property claims (`issueproperty` in issuancerules), e.g. `report_validity_in_minutes`, `omit_x5c`. */
  readonly properties: Record<string, unknown>;
  /** The configuration section's values (`x-ms-sgx-tcbidentifier`, `require_valid_aik_cert`, …). */
  readonly config: PolicyConfiguration;
  /** Human-readable record of which rules fired and what decided the authorization. */
  readonly trace: string[];
  /** Budget steps the evaluation used (see {@link EvaluationBudget}). */
  readonly steps: number;
}

interface WorkingClaim {
  readonly id: number;
  readonly type: string;
  readonly value: ClaimValue;
  readonly issuer: string;
}

/** One claim per named condition (slot), or `undefined` while that condition is unmatched. */
type Bindings = (WorkingClaim | undefined)[];

/**
 * What an action sees: the claim bound to each slot it names directly, and for identifiers inside
 * function arguments the set of every claim that satisfied that condition.
 */
interface Scope {
  readonly bound: Bindings;
  readonly sets: readonly (readonly WorkingClaim[])[];
  readonly meter: Meter;
  readonly rule: string;
}

type CompiledExpression = (s: Scope) => EvalValue;
type ClaimTest = (c: WorkingClaim, b: Bindings, m: Meter, rule: string) => boolean;

interface CompiledCondition {
  readonly slot: number;
  readonly negated: boolean;
  /** When the condition fixes `type == "literal"`, only claims of that type are scanned. */
  readonly type: string | undefined;
  readonly tests: readonly ClaimTest[];
}

interface CompiledRule {
  readonly label: string;
  readonly slots: number;
  /** Slots the action names outside function arguments: the rule fires once per distinct combination of them. */
  readonly directSlots: readonly number[];
  readonly conditions: readonly CompiledCondition[];
  readonly kind: Action['kind'];
  readonly run: (s: Scope, set: ClaimSet) => void;
}

/** A policy compiled to closures: parse once, evaluate on every attestation. */
export interface CompiledPolicy {
  readonly policy: Policy;
  readonly authorization: readonly CompiledRule[];
  readonly issuance: readonly CompiledRule[];
}

/** A property the policy issues, defined (not assigned: a type named `__proto__` would reach Object.prototype's setter). */
function setProperty(set: ClaimSet, type: string, value: unknown): void {
  Object.defineProperty(set.properties, type, { value, writable: true, enumerable: true, configurable: true });
}

/** The incoming claim set, indexed by type, plus what the policy produced. */
class ClaimSet {
  readonly all: WorkingClaim[] = [];
  readonly byType = new Map<string, WorkingClaim[]>();
  readonly issued: Claim[] = [];
  /** Characters of {@link issued} (see {@link EvaluationBudget.maxIssuedChars}). */
  issuedChars = 0;
  readonly properties: Record<string, unknown> = {};
  readonly meter: Meter;
  constructor(meter: Meter) {
    this.meter = meter;
  }

  add(type: string, value: ClaimValue, issuer: string, rule = 'incoming claims'): WorkingClaim {
    if (this.all.length >= this.meter.budget.maxClaims) exceeded('claims', this.meter.budget.maxClaims, rule);
    const c: WorkingClaim = { id: this.all.length, type, value, issuer };
    this.all.push(c);
    const list = this.byType.get(type);
    if (list) list.push(c);
    else this.byType.set(type, [c]);
    return c;
  }
}

const compiledCache = new WeakMap<Policy, CompiledPolicy>();

/** Compiles a parsed policy (memoised per Policy object). */
export function compilePolicy(policy: Policy): CompiledPolicy {
  let compiled = compiledCache.get(policy);
  if (!compiled) {
    compiled = {
      policy,
      authorization: policy.authorizationRules.map((r, i) => compileRule(r, `authorizationrules[${i}]`, 'authorization')),
      issuance: policy.issuanceRules.map((r, i) => compileRule(r, `issuancerules[${i}]`, 'issuance')),
    };
    compiledCache.set(policy, compiled);
  }
  return compiled;
}

/**
 * Evaluates a policy against incoming claims (claim-rule-grammar; policy-version-1-0 §segments).
 *
 * Authorization rules run in order; `add` (and `issue`, which inside authorizationrules reaches only the
 * incoming set: "no claims can be issued from this section to the response token") feeds later rules;
 * the first `permit()` or `deny()` that fires decides, and when none fires the evidence is not authorized.
 * Only when permitted do the issuance rules run, all of them, in order.
 *
 * A condition holds when at least one claim satisfies it (`![…]`: when none does). A rule fires once per
 * distinct combination of the claims bound to the identifiers its action uses directly (`c.value`,
 * `claim=c`): the cartesian product of those conditions' matches. Inside a function argument an
 * identifier stands for the set of all claims that matched it, which is what the documented
 * `IsSubsetOf`/`ContainsOnlyValue` examples need (claim-rule-functions).
 */
export function evaluatePolicy(policy: Policy | CompiledPolicy | string, incomingClaims: readonly Claim[], opts: EvaluationOptions = {}): PolicyEvaluation {
  const compiled = typeof policy === 'string' ? compilePolicy(parsePolicy(policy)) : 'authorization' in policy ? policy : compilePolicy(policy);
  const tracing = opts.trace !== false;
  const trace: string[] = [];
  const set = new ClaimSet(new Meter(opts.budget ?? DEFAULT_EVALUATION_BUDGET));
  for (const c of incomingClaims) set.add(c.type, c.value, c.issuer ?? SERVICE_ISSUER);

  let decision: 'permit' | 'deny' | undefined;
  for (const rule of compiled.authorization) {
    const firings = fire(rule, set);
    if (firings.length === 0) continue;
    if (rule.kind === 'permit' || rule.kind === 'deny') {
      decision = rule.kind;
      if (tracing) trace.push(`${rule.label}: ${rule.kind}()`);
      break;
    }
    for (const f of firings) rule.run(f, set);
    if (tracing) trace.push(`${rule.label}: ${rule.kind}() ×${firings.length}`);
  }
  const config = compiled.policy.configuration;
  if (decision !== 'permit') {
    if (tracing) trace.push(decision === 'deny' ? 'not authorized: a deny() rule fired' : 'not authorized: no authorization rule permitted');
    return { permitted: false, issued: [], properties: {}, config, trace, steps: set.meter.steps };
  }
  for (const rule of compiled.issuance) {
    const firings = fire(rule, set);
    if (firings.length === 0) continue;
    for (const f of firings) rule.run(f, set);
    if (tracing) trace.push(`${rule.label}: ${rule.kind}() ×${firings.length}`);
  }
  return { permitted: true, issued: set.issued, properties: set.properties, config, trace, steps: set.meter.steps };
}

/**
 * The scopes a rule fires with. All bindings are collected before any action runs, so claims a rule
 * adds are visible to later rules only.
 */
function fire(rule: CompiledRule, set: ClaimSet): Scope[] {
  const f = new Firing(rule, set);
  f.step(0);
  const label = rule.label;
  const meter = set.meter;
  if (f.decisive) return f.fired ? [{ bound: [], sets: [], meter, rule: label }] : [];
  return [...f.groups.values()].map((g) => ({ bound: g.bound, sets: g.sets.map((m) => [...m.values()]), meter, rule: label }));
}

/**
 * The search of one {@link fire}: the conditions matched depth first, one claim bound per slot. A class
 * rather than closures made per call, as it runs for every rule of every evaluation.
 */
class Firing {
  readonly rule: CompiledRule;
  readonly set: ClaimSet;
  readonly decisive: boolean;
  readonly groups = new Map<string, { bound: Bindings; sets: Map<number, WorkingClaim>[] }>();
  readonly b: Bindings;
  fired = false;

  constructor(rule: CompiledRule, set: ClaimSet) {
    this.rule = rule;
    this.set = set;
    this.decisive = rule.kind === 'permit' || rule.kind === 'deny';
    this.b = new Array(rule.slots).fill(undefined);
  }

  complete(): void {
    this.fired = true;
    if (this.decisive) return;
    const { rule, b, groups } = this;
    const meter = this.set.meter;
    const key = rule.directSlots.map((s) => b[s]!.id).join(',');
    let g = groups.get(key);
    if (!g) {
      if (groups.size >= meter.budget.maxBindings) exceeded('bindings', meter.budget.maxBindings, rule.label);
      // A new binding allocates its claim sets: it weighs as much as several claim tests.
      meter.step(rule.label, BINDING_STEPS);
      g = { bound: b.slice(), sets: Array.from({ length: rule.slots }, () => new Map<number, WorkingClaim>()) };
      groups.set(key, g);
    }
    for (let s = 0; s < rule.slots; s++) g.sets[s]!.set(b[s]!.id, b[s]!);
  }

  step(i: number): void {
    if (this.decisive && this.fired) return;
    const conditions = this.rule.conditions;
    if (i === conditions.length) {
      this.complete();
      return;
    }
    const { set, b } = this;
    const meter = set.meter;
    const label = this.rule.label;
    const cond = conditions[i]!;
    const candidates = cond.type === undefined ? set.all : (set.byType.get(cond.type) ?? []);
    if (cond.slot < 0) {
      let found = false;
      for (const c of candidates) {
        meter.step(label);
        if (satisfies(cond, c, b, meter, label)) {
          found = true;
          break;
        }
      }
      if (found !== cond.negated) this.step(i + 1);
      return;
    }
    const n = candidates.length;
    for (let k = 0; k < n; k++) {
      const c = candidates[k]!;
      meter.step(label);
      if (!satisfies(cond, c, b, meter, label)) continue;
      b[cond.slot] = c;
      this.step(i + 1);
      if (this.decisive && this.fired) return;
    }
    b[cond.slot] = undefined;
  }
}

function satisfies(cond: CompiledCondition, c: WorkingClaim, b: Bindings, m: Meter, rule: string): boolean {
  for (const t of cond.tests) if (!t(c, b, m, rule)) return false;
  return true;
}

function compileRule(rule: Rule, label: string, section: 'authorization' | 'issuance'): CompiledRule {
  const slotOf = new Map<string, number>();
  for (const c of rule.conditions) if (c.identifier !== undefined) slotOf.set(c.identifier, slotOf.size);
  const direct = new Set<number>();
  const a = rule.action;
  if (a.kind !== 'permit' && a.kind !== 'deny') {
    if (a.claim !== undefined) direct.add(slotOf.get(a.claim)!);
    for (const e of [a.type, a.value, a.valueType, a.issuer]) if (e?.kind === 'property') direct.add(slotOf.get(e.identifier)!);
  }
  return {
    label: `${label} (line ${rule.at.line})`,
    slots: slotOf.size,
    directSlots: [...direct].sort((x, y) => x - y),
    conditions: rule.conditions.map((c) => compileCondition(c, slotOf)),
    kind: a.kind,
    run: compileAction(a, slotOf, section),
  };
}

function compileCondition(c: Condition, slotOf: ReadonlyMap<string, number>): CompiledCondition {
  let type: string | undefined;
  const tests: ClaimTest[] = [];
  for (const p of c.properties) {
    if (type === undefined && p.property === 'type' && p.operator === '==' && p.operand.kind === 'literal' && typeof p.operand.value === 'string') {
      type = p.operand.value;
      continue;
    }
    tests.push(compilePropertyCondition(p, slotOf));
  }
  return { slot: c.identifier === undefined ? -1 : slotOf.get(c.identifier)!, negated: c.negated, type, tests };
}

function propertyOf(c: WorkingClaim, p: ClaimProperty): ClaimValue {
  switch (p) {
    case 'type':
      return c.type;
    case 'value':
      return c.value;
    case 'issuer':
      return c.issuer;
    case 'valueType':
      return typeof c.value === 'boolean' ? 'Boolean' : typeof c.value === 'number' ? 'Integer' : 'String';
  }
}

/**
 * `==`/`!=` compare like-typed values (a Boolean claim never equals the string "true"); `<`, `<=`, `>`,
 * `>=` hold only between integers (claim-rule-grammar operator table).
 */
function compare(op: PropertyCondition['operator'], a: ClaimValue, b: ClaimValue): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    default:
      if (typeof a !== 'number' || typeof b !== 'number') return false;
      return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  }
}

function compilePropertyCondition(p: PropertyCondition, slotOf: ReadonlyMap<string, number>): ClaimTest {
  const operand = compileExpression(p.operand, slotOf, false);
  const { property, operator } = p;
  if (p.operand.kind === 'literal') {
    const v = p.operand.value;
    return (c) => compare(operator, propertyOf(c, property), v);
  }
  return (c, b, meter, rule) => {
    const right = operand({ bound: b, sets: [], meter, rule });
    if (right === null) return false;
    const left = propertyOf(c, property);
    // A set operand (JsonToClaimValue of an array) is satisfied by any member.
    if (Array.isArray(right)) return (right as readonly ClaimValue[]).some((r) => compare(operator, left, r));
    return compare(operator, left, right as ClaimValue);
  };
}

function compileExpression(e: Expression, slotOf: ReadonlyMap<string, number>, inFunction: boolean): CompiledExpression {
  switch (e.kind) {
    case 'literal': {
      const v = e.value;
      return () => v;
    }
    case 'property': {
      const slot = slotOf.get(e.identifier)!;
      const p = e.property;
      if (inFunction) {
        return (s) => {
          const claims = s.sets[slot];
          if (claims === undefined || claims.length === 0) {
            const c = s.bound[slot];
            return c === undefined ? null : propertyOf(c, p);
          }
          return claims.length === 1 ? propertyOf(claims[0]!, p) : claims.map((c) => propertyOf(c, p));
        };
      }
      return (s) => {
        const c = s.bound[slot];
        return c === undefined ? null : propertyOf(c, p);
      };
    }
    case 'call': {
      const args = e.args.map((a) => compileExpression(a, slotOf, true));
      const name = e.name;
      return (s) => {
        const values = args.map((a) => a(s));
        s.meter.call(s.rule, values);
        return callFunction(name, values, (n) => s.meter.work(s.rule, n));
      };
    }
  }
}

/**
 * UTF-8 bytes of a string's JSON text (JSON.stringify's escapes: 6 for a control character or a lone
 * surrogate, 2 for \b \t \n \f \r, '"' and '\\'), counted up to `stop` and no further (the caller is over its budget then).
 */
export function jsonBytes(s: string, stop = Number.POSITIVE_INFINITY): number {
  let n = 2;
  for (let i = 0; i < s.length && n <= stop; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20) n += c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c === 0x22 || c === 0x5c) n += 2;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else if (c >= 0xd800 && c < 0xe000) n += 6;
    else n += 3;
  }
  return n;
}

function scalarString(v: EvalValue): string | undefined {
  if (v === null || Array.isArray(v)) return undefined;
  return String(v);
}

function compileAction(a: Action, slotOf: ReadonlyMap<string, number>, section: 'authorization' | 'issuance'): (s: Scope, set: ClaimSet) => void {
  if (a.kind === 'permit' || a.kind === 'deny') return () => {};
  const claimSlot = a.claim === undefined ? undefined : slotOf.get(a.claim)!;
  const type = a.type ? compileExpression(a.type, slotOf, false) : undefined;
  const value = a.value ? compileExpression(a.value, slotOf, false) : undefined;
  const issuerExpr = a.issuer ? compileExpression(a.issuer, slotOf, false) : undefined;
  const kind = a.kind;
  const emit = (s: Scope, set: ClaimSet, t: string, v: ClaimValue, issuer: string): void => {
    set.add(t, v, issuer, s.rule);
    if (kind === 'issue' && section === 'issuance') {
      if (set.issued.length >= s.meter.budget.maxIssuedClaims) exceeded('issuedClaims', s.meter.budget.maxIssuedClaims, s.rule);
      const room = s.meter.budget.maxIssuedChars - set.issuedChars;
      set.issuedChars += jsonBytes(t, room) + (typeof v === 'string' ? jsonBytes(v, room) : 8);
      if (set.issuedChars > s.meter.budget.maxIssuedChars) exceeded('issuedChars', s.meter.budget.maxIssuedChars, s.rule);
      set.issued.push({ type: t, value: v, issuer });
    }
  };
  return (s, set) => {
    s.meter.step(s.rule);
    if (claimSlot !== undefined) {
      const c = s.bound[claimSlot]!;
      if (kind === 'issueproperty') setProperty(set, c.type, c.value);
      emit(s, set, c.type, c.value, c.issuer);
      return;
    }
    const t = scalarString(type!(s));
    const v = value!(s);
    // The empty claim value (JSON null) makes add/issue a no-op (claim-rule-functions §JsonToClaimValue).
    if (t === undefined || v === null) return;
    const issuer = (issuerExpr ? scalarString(issuerExpr(s)) : undefined) ?? POLICY_ISSUER;
    if (kind === 'issueproperty') setProperty(set, t, v);
    // A set value becomes one claim per member, all with the same type (claim-rule-functions §JsonToClaimValue).
    if (Array.isArray(v)) for (const m of v as readonly ClaimValue[]) emit(s, set, t, m, issuer);
    else emit(s, set, t, v as ClaimValue, issuer);
  };
}
