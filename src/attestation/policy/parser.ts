import type {
  Action,
  ClaimProperty,
  ClaimValue,
  ComparisonOperator,
  Condition,
  Expression,
  Policy,
  PolicyConfiguration,
  PolicyVersion,
  PropertyCondition,
  Rule,
  SourcePosition,
} from './ast.js';
import { FUNCTION_ARITY } from './functions.js';
import { syntaxError, type Token, tokenize } from './lexer.js';

type Section = 'configurationrules' | 'authorizationrules' | 'issuancerules';

const SECTIONS: ReadonlySet<string> = new Set<Section>(['configurationrules', 'authorizationrules', 'issuancerules']);

const VERSIONS: ReadonlySet<string> = new Set<PolicyVersion>(['1.0', '1.1', '1.2']);

/** By lower-case name; a Map, so that a name such as `constructor` or `__proto__` finds nothing. */
const PROPERTIES: ReadonlyMap<string, ClaimProperty> = new Map([
  ['type', 'type'],
  ['value', 'value'],
  ['valuetype', 'valueType'],
  ['issuer', 'issuer'],
]);

const OPERATORS: ReadonlySet<string> = new Set(['==', '!=', '<', '<=', '>', '>=', '=']);

const ACTIONS = new Set(['permit', 'deny', 'issue', 'add', 'issueproperty']);

/** Largest integer a policy literal may hold; MAA integers are 64-bit, ours must stay exact in a double. */
const MAX_INTEGER = Number.MAX_SAFE_INTEGER;

/** How deeply function calls may nest in a policy (MAA's samples nest two). */
export const MAX_CALL_DEPTH = 16;

/**
 * Parses MAA attestation policy text (versions 1.0, 1.1, 1.2).
 *
 * Besides the documented grammar it accepts a few forms that Microsoft's own published sample policies
 * use and which are harmless: `=` for `==` inside a claim condition (author-sign-policy, 1.2 samples),
 * a missing `;` after a rule when the next rule or `}` follows (author-sign-policy), and a positional
 * first argument as the claim type (`issue("PlatformAttested", value=true)`, policy-version-1-2).
 * Throws `attestation.policy_syntax` with 1-based `{line, column, near}`.
 */
export function parsePolicy(text: string): Policy {
  if (typeof text !== 'string') syntaxError('policy text must be a string', { line: 1, column: 1 }, '');
  return new Parser(text, tokenize(text)).policy();
}

class Parser {
  private readonly text: string;
  private readonly tokens: Token[];
  private pos = 0;
  /** Function calls open at this point: nesting is bounded, as every later pass over the tree recurses. */
  private callDepth = 0;
  private version: PolicyVersion = '1.0';
  private section: Section = 'authorizationrules';

  constructor(text: string, tokens: Token[]) {
    this.text = text;
    this.tokens = tokens;
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private isPunct(p: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'punct' && t.text === p;
  }

  private isKeyword(word: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'ident' && t.text.toLowerCase() === word;
  }

  private fail(message: string, t: Token = this.peek()): never {
    return syntaxError(message, t, t.kind === 'eof' ? '<end of policy>' : this.text.slice(this.offsetOf(t), this.offsetOf(t) + 30).split('\n')[0]!);
  }

  private offsetOf(t: Token): number {
    let line = 1;
    let i = 0;
    while (line < t.line && i < this.text.length) {
      if (this.text[i] === '\n') line++;
      i++;
    }
    return i + t.column - 1;
  }

  private expectPunct(p: string, what?: string): Token {
    if (!this.isPunct(p)) this.fail(`expected '${p}'${what ? ` ${what}` : ''}`);
    return this.next();
  }

  policy(): Policy {
    if (!this.isKeyword('version')) this.fail("a policy must start with 'version=<major>.<minor>;'");
    this.next();
    this.expectPunct('=', "after 'version'");
    const v = this.peek();
    if (v.kind !== 'number' || !VERSIONS.has(v.text)) this.fail('unsupported policy version (supported: 1.0, 1.1, 1.2)', v);
    this.next();
    this.version = v.text as PolicyVersion;
    this.expectPunct(';', 'after the version');

    const rules: Partial<Record<Section, Rule[]>> = {};
    while (this.peek().kind !== 'eof') {
      const name = this.peek();
      const key = name.kind === 'ident' ? name.text.toLowerCase() : '';
      if (!SECTIONS.has(key)) this.fail('expected configurationrules, authorizationrules or issuancerules', name);
      const section = key as Section;
      if (rules[section]) this.fail(`duplicate ${section} section`, name);
      if (section === 'configurationrules' && this.version === '1.0') this.fail('configurationrules need policy version 1.1 or later', name);
      this.next();
      this.section = section;
      this.expectPunct('{', `to open ${section}`);
      const list: Rule[] = [];
      while (!this.isPunct('}')) {
        if (this.peek().kind === 'eof') this.fail(`'}' expected to close ${section}`);
        list.push(this.rule());
      }
      this.next();
      this.expectPunct(';', `after the closing '}' of ${section}`);
      rules[section] = list;
    }
    if (!rules.authorizationrules) this.fail('the policy has no authorizationrules section');
    const configurationRules = rules.configurationrules ?? [];
    return {
      version: this.version,
      configurationRules,
      authorizationRules: rules.authorizationrules,
      issuanceRules: rules.issuancerules ?? [],
      configuration: configurationOf(configurationRules),
      text: this.text,
    };
  }

  private rule(): Rule {
    const start = this.peek();
    const at: SourcePosition = { line: start.line, column: start.column };
    const conditions: Condition[] = [];
    const bound = new Set<string>();
    if (!this.isPunct('=>')) {
      for (;;) {
        conditions.push(this.condition(bound));
        if (!this.isPunct('&&')) break;
        this.next();
      }
    }
    if (!this.isPunct('=>')) this.fail(conditions.length ? "expected '&&' or '=>'" : "expected a claim condition '[…]' or '=>'");
    this.next();
    const action = this.action(bound);
    if (this.section === 'configurationrules' && (conditions.length > 0 || action.kind !== 'issueproperty')) {
      this.fail('configurationrules hold only unconditioned issueproperty(type=…, value=…) rules', start);
    }
    if (this.isPunct(';')) this.next();
    else if (!this.isPunct('}') && !this.startsRule()) this.fail("expected ';' after the rule");
    return { conditions, action, at };
  }

  private startsRule(): boolean {
    const t = this.peek();
    if (t.kind === 'punct') return t.text === '[' || t.text === '!' || t.text === '=>';
    return t.kind === 'ident' && this.isPunct(':', 1);
  }

  private condition(bound: Set<string>): Condition {
    const start = this.peek();
    let negated = false;
    if (this.isPunct('!')) {
      if (this.version !== '1.2') this.fail("the '!' condition operator needs policy version 1.2");
      negated = true;
      this.next();
    }
    let identifier: string | undefined;
    if (this.peek().kind === 'ident') {
      const id = this.next();
      if (negated) this.fail('a negated condition cannot bind an identifier', id);
      this.expectPunct(':', 'after the claim identifier');
      if (bound.has(id.text)) this.fail(`identifier '${id.text}' is bound twice in this rule`, id);
      identifier = id.text;
    }
    this.expectPunct('[', 'to open the claim condition');
    const properties: PropertyCondition[] = [];
    if (!this.isPunct(']')) {
      for (;;) {
        properties.push(this.propertyCondition(bound));
        if (!this.isPunct(',')) break;
        this.next();
      }
    }
    this.expectPunct(']', 'to close the claim condition');
    if (identifier !== undefined) bound.add(identifier);
    return { identifier, negated, properties, at: { line: start.line, column: start.column } };
  }

  private propertyCondition(bound: Set<string>): PropertyCondition {
    const name = this.peek();
    const property = name.kind === 'ident' ? PROPERTIES.get(name.text.toLowerCase()) : undefined;
    if (!property) this.fail('expected a claim property: type, value, valueType or issuer', name);
    this.next();
    const op = this.peek();
    if (op.kind !== 'punct' || !OPERATORS.has(op.text)) this.fail('unknown comparison operator (use ==, !=, <, <=, >, >=)', op);
    this.next();
    const operator = (op.text === '=' ? '==' : op.text) as ComparisonOperator;
    const operand = this.expression(bound);
    if (operator !== '==' && operator !== '!=' && operand.kind === 'literal' && typeof operand.value !== 'number') {
      this.fail(`operator ${operator} compares integers only`, op);
    }
    return { property, operator, operand };
  }

  private expression(bound: ReadonlySet<string>): Expression {
    const t = this.peek();
    const at = { line: t.line, column: t.column };
    if (t.kind === 'string') {
      this.next();
      return { kind: 'literal', value: t.text, at };
    }
    if (t.kind === 'number') {
      this.next();
      return { kind: 'literal', value: this.integer(t), at };
    }
    if (t.kind === 'ident') {
      const lower = t.text.toLowerCase();
      if ((lower === 'true' || lower === 'false') && !this.isPunct('.', 1) && !this.isPunct('(', 1)) {
        this.next();
        return { kind: 'literal', value: lower === 'true', at };
      }
      if (this.isPunct('(', 1)) return this.call(bound);
      if (this.isPunct('.', 1)) {
        this.next();
        this.next();
        const p = this.peek();
        const property = p.kind === 'ident' ? PROPERTIES.get(p.text.toLowerCase()) : undefined;
        if (!property) this.fail('expected type, value, valueType or issuer after the claim identifier', p);
        if (!bound.has(t.text)) this.fail(`identifier '${t.text}' is not bound by an earlier condition of this rule`, t);
        this.next();
        return { kind: 'property', identifier: t.text, property, at };
      }
    }
    return this.fail('expected a string, integer, true, false, claim property or function call');
  }

  private call(bound: ReadonlySet<string>): Expression {
    const name = this.next();
    const at = { line: name.line, column: name.column };
    const canonical = Object.keys(FUNCTION_ARITY).find((f) => f.toLowerCase() === name.text.toLowerCase());
    if (canonical === undefined) this.fail(`unknown function '${name.text}'`, name);
    if (this.version !== '1.2') this.fail('functions need policy version 1.2', name);
    if (this.callDepth >= MAX_CALL_DEPTH) this.fail(`function calls nest deeper than ${MAX_CALL_DEPTH} levels`, name);
    this.callDepth++;
    this.expectPunct('(');
    const args: Expression[] = [];
    if (!this.isPunct(')')) {
      for (;;) {
        args.push(this.expression(bound));
        if (!this.isPunct(',')) break;
        this.next();
      }
    }
    this.expectPunct(')', `to close the call of ${canonical}`);
    this.callDepth--;
    if (args.length !== FUNCTION_ARITY[canonical]) this.fail(`${canonical} takes ${FUNCTION_ARITY[canonical]} argument(s), not ${args.length}`, name);
    return { kind: 'call', name: canonical, args, at };
  }

  private integer(t: Token): number {
    if (t.text.includes('.')) this.fail('fractions are not claim values (integers only)', t);
    const negative = t.text.startsWith('-');
    const digits = negative ? t.text.slice(1) : t.text;
    const magnitude = /^0x/i.test(digits) ? Number.parseInt(digits.slice(2), 16) : Number.parseInt(digits, 10);
    if (!Number.isSafeInteger(magnitude) || magnitude > MAX_INTEGER) this.fail('integer literal out of range', t);
    return negative ? -magnitude : magnitude;
  }

  private action(bound: ReadonlySet<string>): Action {
    const name = this.peek();
    const kind = name.kind === 'ident' ? name.text.toLowerCase() : '';
    if (!ACTIONS.has(kind)) this.fail('expected an action: permit(), deny(), issue(…), add(…) or issueproperty(…)', name);
    this.next();
    if ((kind === 'permit' || kind === 'deny') && this.section !== 'authorizationrules') {
      this.fail(`${kind}() is allowed only in authorizationrules`, name);
    }
    this.expectPunct('(', `after ${kind}`);
    if (kind === 'permit' || kind === 'deny') {
      this.expectPunct(')', `${kind}() takes no arguments`);
      return { kind };
    }
    const args: { claim?: string; type?: Expression; value?: Expression; valueType?: Expression; issuer?: Expression } = {};
    let first = true;
    while (!this.isPunct(')')) {
      const t = this.peek();
      if (t.kind === 'ident' && this.isPunct('=', 1)) {
        const arg = t.text.toLowerCase();
        this.next();
        this.next();
        if (arg === 'claim') {
          const id = this.peek();
          if (id.kind !== 'ident' || !bound.has(id.text)) this.fail('claim= needs an identifier bound by a condition of this rule', id);
          this.next();
          args.claim = id.text;
        } else {
          const property = PROPERTIES.get(arg);
          if (!property) this.fail(`unknown argument '${t.text}' (type, value, valueType, issuer or claim)`, t);
          if (args[property] !== undefined) this.fail(`argument '${t.text}' given twice`, t);
          args[property] = this.expression(bound);
        }
      } else if (first) {
        args.type = this.expression(bound);
      } else {
        this.fail("expected 'name=' for this argument");
      }
      first = false;
      if (!this.isPunct(',')) break;
      this.next();
    }
    this.expectPunct(')', `to close ${kind}(…)`);
    if (args.claim === undefined && (args.type === undefined || args.value === undefined)) {
      this.fail(`${kind}(…) needs type= and value=, or claim=`, name);
    }
    if (args.claim !== undefined && (args.type !== undefined || args.value !== undefined)) this.fail(`${kind}(claim=…) takes no type= or value=`, name);
    if (this.section === 'configurationrules' && (args.type?.kind !== 'literal' || args.value?.kind !== 'literal')) {
      this.fail('configuration rules take literal type and value', name);
    }
    return { kind: kind as 'issue' | 'add' | 'issueproperty', ...args };
  }
}

function configurationOf(rules: readonly Rule[]): PolicyConfiguration {
  const config: Record<string, ClaimValue> = {};
  for (const r of rules) {
    const a = r.action;
    if (a.kind === 'issueproperty' && a.type?.kind === 'literal' && a.value?.kind === 'literal') config[String(a.type.value)] = a.value.value;
  }
  checkConfiguration(config, rules);
  return config;
}

function checkConfiguration(config: Record<string, ClaimValue>, rules: readonly Rule[]): void {
  const at = (name: string): SourcePosition =>
    rules.find((r) => r.action.kind === 'issueproperty' && r.action.type?.kind === 'literal' && r.action.type.value === name)?.at ?? { line: 1, column: 1 };
  const expect = (name: string, type: 'boolean' | 'number' | 'string'): void => {
    if (name in config && typeof config[name] !== type) syntaxError(`configuration ${name} must be a ${type === 'number' ? 'integer' : type}`, at(name), name);
  };
  expect('require_valid_aik_cert', 'boolean');
  expect('required_pcr_mask', 'number');
  expect('x-ms-sgx-tcbidentifier', 'string');
}
