import { fail } from '../../core/errors.js';

/**
 * A JMESPath interpreter (https://jmespath.org/specification.html) for the policy-1.2 `JmesPath()`
 * function: fields, sub-expressions, index and slice, list/object/flatten/filter projections, pipes,
 * `|| && !`, comparators, multi-select lists and hashes, `@`, literals and raw strings, and the built-in
 * functions that take no expression references. `equals_ignore_case(a, b)` is an MAA addition used in
 * Microsoft's TPM sample policies (tpm-attestation-sample-policies, ELAM rule).
 */
export function searchJmesPath(data: unknown, query: string, charge: Charge = standaloneCharge()): unknown {
  let ast = astCache.get(query);
  if (ast === undefined) {
    ast = new JmesParser(lex(query)).parse();
    if (astCache.size > 1024) astCache.clear();
    astCache.set(query, ast);
  }
  const w = new Work(charge);
  try {
    return interpret(ast, data, w);
  } catch (e) {
    // A long chain (a.a.a…) nests without recursion in the parser but recurses here.
    if (e instanceof RangeError) queryError('the expression or the document nests too deeply');
    throw e;
  }
}

/**
 * Charges a query's work, in units of {@link WORK_UNIT} operations (a node visited, compared or serialised, an
 * element copied, {@link CHARS_PER_OP} characters): the policy evaluator charges them to its step budget. Without
 * it a value that is small to build is huge to walk: "[@,@] | [@,@] | …" holds 2^n paths to one document, and
 * comparing, serialising or flattening it visits every path.
 */
export type Charge = (units: number) => void;

/** Operations per unit charged. */
export const WORK_UNIT = 256;
/** Characters of a string counted as one operation where a string is copied or serialised. */
const CHARS_PER_OP = 8;
/** The limit of a query run outside a policy evaluation (whose budget is the evaluator's). */
const STANDALONE_UNITS = 20_000;

function standaloneCharge(): Charge {
  let units = 0;
  return (n) => {
    units += n;
    if (units > STANDALONE_UNITS) throw fail('attestation.policy_budget', `JmesPath: the query exceeded its work limit (${STANDALONE_UNITS * WORK_UNIT} operations)`, { limit: 'steps', function: 'JmesPath' });
  };
}

class Work {
  private ops = 0;
  private readonly charge: Charge;
  constructor(charge: Charge) {
    this.charge = charge;
  }
  add(n: number): void {
    this.ops += n;
    if (this.ops >= WORK_UNIT) {
      const units = Math.floor(this.ops / WORK_UNIT);
      this.ops -= units * WORK_UNIT;
      this.charge(units);
    }
  }
  chars(s: string): void {
    this.add(1 + Math.floor(s.length / CHARS_PER_OP));
  }
}

/** JSON.stringify of a query's value, its every node charged first (a value shares nodes, its text does not). */
export function serialiseJmesValue(v: unknown, charge: Charge = standaloneCharge()): string {
  return serialise(v, new Work(charge));
}

function serialise(v: unknown, w: Work): string {
  const walk = (x: unknown): void => {
    if (typeof x === 'string') {
      w.chars(x);
      return;
    }
    w.add(1);
    if (Array.isArray(x)) for (const e of x) walk(e);
    else if (isObject(x)) for (const [k, e] of Object.entries(x)) {
      w.chars(k);
      walk(e);
    }
  };
  walk(v);
  return JSON.stringify(v);
}

/** How deeply a JMESPath expression may nest. */
const MAX_QUERY_DEPTH = 64;

/** Parsed queries keyed by query text (content-addressed, so sharing it is safe). */
const astCache = new Map<string, Node>();

function queryError(message: string): never {
  throw fail('attestation.policy_evaluation', `JmesPath: ${message}`, { function: 'JmesPath' });
}

type Tok =
  | { t: 'ident'; v: string; quoted: boolean }
  | { t: 'lit'; v: unknown }
  | { t: 'num'; v: number }
  | { t: 'p'; v: string }
  | { t: 'eof' };

const PUNCT = ['[?', '[]', '||', '&&', '==', '!=', '<=', '>=', '.', '*', '[', ']', '{', '}', '(', ')', ',', ':', '|', '<', '>', '!', '@', '&'];

function lex(q: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < q.length && /[A-Za-z0-9_]/.test(q[j]!)) j++;
      out.push({ t: 'ident', v: q.slice(i, j), quoted: false });
      i = j;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(q[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < q.length && /[0-9]/.test(q[j]!)) j++;
      out.push({ t: 'num', v: Number(q.slice(i, j)) });
      i = j;
    } else if (c === '"') {
      let j = i + 1;
      while (j < q.length && q[j] !== '"') j += q[j] === '\\' ? 2 : 1;
      if (j >= q.length) queryError('unterminated quoted identifier');
      try {
        out.push({ t: 'ident', v: JSON.parse(q.slice(i, j + 1)) as string, quoted: true });
      } catch {
        queryError('malformed quoted identifier');
      }
      i = j + 1;
    } else if (c === "'") {
      let j = i + 1;
      let s = '';
      while (j < q.length && q[j] !== "'") {
        if (q[j] === '\\' && (q[j + 1] === "'" || q[j + 1] === '\\')) {
          s += q[j + 1];
          j += 2;
        } else {
          s += q[j];
          j++;
        }
      }
      if (j >= q.length) queryError('unterminated raw string');
      out.push({ t: 'lit', v: s });
      i = j + 1;
    } else if (c === '`') {
      let j = i + 1;
      let s = '';
      while (j < q.length && q[j] !== '`') {
        if (q[j] === '\\' && q[j + 1] === '`') {
          s += '`';
          j += 2;
        } else {
          s += q[j];
          j++;
        }
      }
      if (j >= q.length) queryError('unterminated literal');
      let v: unknown;
      try {
        v = JSON.parse(s.trim());
      } catch {
        v = s.trim();
      }
      out.push({ t: 'lit', v });
      i = j + 1;
    } else {
      const p = PUNCT.find((x) => q.startsWith(x, i));
      if (p === undefined) queryError(`unexpected character '${c}'`);
      out.push({ t: 'p', v: p });
      i += p.length;
    }
  }
  out.push({ t: 'eof' });
  return out;
}

type Node =
  | { k: 'field'; name: string }
  | { k: 'current' }
  | { k: 'literal'; v: unknown }
  | { k: 'sub'; l: Node; r: Node }
  | { k: 'index'; n: number }
  | { k: 'slice'; start: number | null; stop: number | null; step: number | null }
  | { k: 'project'; l: Node; r: Node }
  | { k: 'valueProject'; l: Node; r: Node }
  | { k: 'flatten'; l: Node }
  | { k: 'filter'; l: Node; r: Node; cond: Node }
  | { k: 'pipe'; l: Node; r: Node }
  | { k: 'or'; l: Node; r: Node }
  | { k: 'and'; l: Node; r: Node }
  | { k: 'not'; e: Node }
  | { k: 'cmp'; op: string; l: Node; r: Node }
  | { k: 'list'; items: Node[] }
  | { k: 'hash'; pairs: [string, Node][] }
  | { k: 'call'; name: string; args: Node[] }
  | { k: 'expref'; e: Node };

const BP: Record<string, number> = {
  eof: 0, ']': 0, ')': 0, '}': 0, ',': 0, ':': 0, ident: 0, lit: 0, num: 0,
  '|': 1, '||': 2, '&&': 3, '==': 5, '!=': 5, '<': 5, '<=': 5, '>': 5, '>=': 5,
  '[]': 9, '*': 20, '[?': 21, '.': 40, '!': 45, '{': 50, '[': 55, '(': 60,
};

const CURRENT: Node = { k: 'current' };

class JmesParser {
  private readonly toks: Tok[];
  private i = 0;

  constructor(toks: Tok[]) {
    this.toks = toks;
  }

  private peek(o = 0): Tok {
    return this.toks[Math.min(this.i + o, this.toks.length - 1)]!;
  }

  private key(o = 0): string {
    const t = this.peek(o);
    return t.t === 'p' ? t.v : t.t;
  }

  private bp(): number {
    return BP[this.key()] ?? 0;
  }

  private eat(p: string): void {
    if (this.key() !== p) queryError(`expected '${p}'`);
    this.i++;
  }

  parse(): Node {
    const n = this.expr(0);
    if (this.peek().t !== 'eof') queryError('unexpected token after the expression');
    return n;
  }

  private depth = 0;

  private expr(rbp: number): Node {
    // Nesting is bounded: the interpreter walks the tree recursively.
    if (++this.depth > MAX_QUERY_DEPTH) queryError(`the expression nests deeper than ${MAX_QUERY_DEPTH} levels`);
    let left = this.nud();
    while (rbp < this.bp()) left = this.led(left);
    this.depth--;
    return left;
  }

  private nud(): Node {
    const t = this.peek();
    this.i++;
    if (t.t === 'lit') return { k: 'literal', v: t.v };
    if (t.t === 'ident') {
      if (!t.quoted && this.key() === '(') return this.call(t.v);
      return { k: 'field', name: t.v };
    }
    if (t.t === 'num' || t.t === 'eof') return queryError('unexpected token');
    switch (t.v) {
      case '*':
        return { k: 'valueProject', l: CURRENT, r: this.projectionRhs(BP['*']!) };
      case '!':
        return { k: 'not', e: this.expr(BP['!']!) };
      case '@':
        return CURRENT;
      case '&':
        return { k: 'expref', e: this.expr(0) };
      case '(': {
        const e = this.expr(0);
        this.eat(')');
        return e;
      }
      case '[]':
        return { k: 'project', l: { k: 'flatten', l: CURRENT }, r: this.projectionRhs(BP['[]']!) };
      case '[?':
        return this.filter(CURRENT);
      case '{':
        return this.hash();
      case '[': {
        if (this.key() === 'num' || this.key() === ':') return this.indexOrSlice(CURRENT);
        if (this.key() === '*' && this.key(1) === ']') {
          this.i += 2;
          return { k: 'project', l: CURRENT, r: this.projectionRhs(BP['*']!) };
        }
        return this.list();
      }
      default:
        return queryError(`unexpected '${t.v}'`);
    }
  }

  private led(left: Node): Node {
    const k = this.key();
    this.i++;
    switch (k) {
      case '.':
        if (this.key() === '*') {
          this.i++;
          return { k: 'valueProject', l: left, r: this.projectionRhs(BP['.']!) };
        }
        return { k: 'sub', l: left, r: this.dotRhs(BP['.']!) };
      case '|':
        return { k: 'pipe', l: left, r: this.expr(BP['|']!) };
      case '||':
        return { k: 'or', l: left, r: this.expr(BP['||']!) };
      case '&&':
        return { k: 'and', l: left, r: this.expr(BP['&&']!) };
      case '==':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        return { k: 'cmp', op: k, l: left, r: this.expr(BP[k]!) };
      case '[]':
        return { k: 'project', l: { k: 'flatten', l: left }, r: this.projectionRhs(BP['[]']!) };
      case '[?':
        return this.filter(left);
      case '[':
        if (this.key() === 'num' || this.key() === ':') return this.indexOrSlice(left);
        if (this.key() === '*' && this.key(1) === ']') {
          this.i += 2;
          return { k: 'project', l: left, r: this.projectionRhs(BP['*']!) };
        }
        return queryError("expected an index, slice or '*' after '['");
      default:
        return queryError(`unexpected '${k}'`);
    }
  }

  private call(name: string): Node {
    this.eat('(');
    const args: Node[] = [];
    while (this.key() !== ')') {
      args.push(this.expr(0));
      if (this.key() === ',') this.i++;
      else break;
    }
    this.eat(')');
    return { k: 'call', name, args };
  }

  private filter(left: Node): Node {
    const cond = this.expr(0);
    this.eat(']');
    return { k: 'filter', l: left, r: this.projectionRhs(BP['[?']!), cond };
  }

  private indexOrSlice(left: Node): Node {
    const parts: (number | null)[] = [null, null, null];
    let idx = 0;
    while (this.key() !== ']') {
      const t = this.peek();
      if (t.t === 'num') {
        parts[idx] = t.v;
        this.i++;
      } else if (this.key() === ':') {
        idx++;
        if (idx > 2) queryError('too many colons in slice');
        this.i++;
      } else queryError('malformed index or slice');
    }
    this.eat(']');
    if (idx === 0) {
      const n: Node = { k: 'index', n: parts[0]! };
      return left === CURRENT ? n : { k: 'sub', l: left, r: n };
    }
    if (parts[2] === 0) queryError('slice step cannot be 0');
    const s: Node = { k: 'slice', start: parts[0]!, stop: parts[1]!, step: parts[2]! };
    return { k: 'project', l: left === CURRENT ? s : { k: 'sub', l: left, r: s }, r: this.projectionRhs(BP['*']!) };
  }

  private projectionRhs(rbp: number): Node {
    if (this.bp() < 10) return CURRENT;
    const k = this.key();
    if (k === '[' || k === '[?') return this.expr(rbp);
    if (k === '.') {
      this.i++;
      return this.dotRhs(rbp);
    }
    return queryError('unexpected token after a projection');
  }

  private dotRhs(rbp: number): Node {
    const k = this.key();
    if (k === 'ident' || k === '*') return this.expr(rbp);
    if (k === '[') {
      this.i++;
      return this.list();
    }
    if (k === '{') {
      this.i++;
      return this.hash();
    }
    return queryError("expected an identifier, '[', '{' or '*' after '.'");
  }

  private list(): Node {
    const items: Node[] = [];
    for (;;) {
      items.push(this.expr(0));
      if (this.key() === ']') break;
      this.eat(',');
    }
    this.eat(']');
    return { k: 'list', items };
  }

  private hash(): Node {
    const pairs: [string, Node][] = [];
    for (;;) {
      const t = this.peek();
      if (t.t !== 'ident') queryError('expected a key in a multi-select hash');
      this.i++;
      this.eat(':');
      pairs.push([t.v, this.expr(0)]);
      if (this.key() === '}') break;
      this.eat(',');
    }
    this.eat('}');
    return { k: 'hash', pairs };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return true;
}

function deepEqual(a: unknown, b: unknown, w: Work): boolean {
  w.add(1);
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i], w));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k], w));
  }
  return false;
}

function sliceOf(arr: unknown[], start: number | null, stop: number | null, step: number | null): unknown[] {
  const s = step ?? 1;
  const len = arr.length;
  const clamp = (v: number | null, dflt: number, lo: number, hi: number): number => {
    if (v === null) return dflt;
    const x = v < 0 ? v + len : v;
    return Math.min(Math.max(x, lo), hi);
  };
  const out: unknown[] = [];
  if (s > 0) {
    for (let i = clamp(start, 0, 0, len), e = clamp(stop, len, 0, len); i < e; i += s) out.push(arr[i]);
  } else {
    for (let i = clamp(start, len - 1, -1, len - 1), e = clamp(stop, -1, -1, len - 1); i > e; i += s) out.push(arr[i]);
  }
  return out;
}

function interpret(n: Node, v: unknown, w: Work): unknown {
  w.add(1);
  switch (n.k) {
    case 'field':
      return isObject(v) ? (Object.hasOwn(v, n.name) ? v[n.name] : null) : null;
    case 'current':
      return v;
    case 'literal':
      return n.v;
    case 'sub': {
      const l = interpret(n.l, v, w);
      return l === null ? null : interpret(n.r, l, w);
    }
    case 'index': {
      if (!Array.isArray(v)) return null;
      const i = n.n < 0 ? v.length + n.n : n.n;
      return i >= 0 && i < v.length ? v[i] : null;
    }
    case 'slice':
      if (!Array.isArray(v)) return null;
      w.add(v.length);
      return sliceOf(v, n.start, n.stop, n.step);
    case 'project': {
      const base = interpret(n.l, v, w);
      if (!Array.isArray(base)) return null;
      return collect(base, n.r, w);
    }
    case 'valueProject': {
      const base = interpret(n.l, v, w);
      if (!isObject(base)) return null;
      w.add(Object.keys(base).length);
      return collect(Object.values(base), n.r, w);
    }
    case 'flatten': {
      const base = interpret(n.l, v, w);
      if (!Array.isArray(base)) return null;
      const out: unknown[] = [];
      for (const e of base) {
        if (Array.isArray(e)) {
          w.add(e.length);
          for (const x of e) out.push(x);
        } else out.push(e);
      }
      return out;
    }
    case 'filter': {
      const base = interpret(n.l, v, w);
      if (!Array.isArray(base)) return null;
      return collect(
        base.filter((e) => truthy(interpret(n.cond, e, w))),
        n.r,
        w,
      );
    }
    case 'pipe':
      return interpret(n.r, interpret(n.l, v, w), w);
    case 'or': {
      const l = interpret(n.l, v, w);
      return truthy(l) ? l : interpret(n.r, v, w);
    }
    case 'and': {
      const l = interpret(n.l, v, w);
      return truthy(l) ? interpret(n.r, v, w) : l;
    }
    case 'not':
      return !truthy(interpret(n.e, v, w));
    case 'cmp': {
      const l = interpret(n.l, v, w);
      const r = interpret(n.r, v, w);
      if (n.op === '==') return deepEqual(l, r, w);
      if (n.op === '!=') return !deepEqual(l, r, w);
      if (typeof l !== 'number' || typeof r !== 'number') return null;
      return n.op === '<' ? l < r : n.op === '<=' ? l <= r : n.op === '>' ? l > r : l >= r;
    }
    case 'list':
      return v === null ? null : n.items.map((e) => interpret(e, v, w));
    case 'hash': {
      if (v === null) return null;
      const out: Record<string, unknown> = {};
      for (const [k, e] of n.pairs) out[k] = interpret(e, v, w);
      return out;
    }
    case 'expref':
      return queryError('expression references are not supported');
    case 'call':
      return callBuiltin(
        n.name,
        n.args.map((a) => interpret(a, v, w)),
        w,
      );
  }
}

function collect(items: unknown[], rhs: Node, w: Work): unknown[] {
  const out: unknown[] = [];
  for (const e of items) {
    const r = interpret(rhs, e, w);
    if (r !== null && r !== undefined) out.push(r);
  }
  return out;
}

function typeOf(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v;
}

function arity(name: string, args: unknown[], n: number): void {
  if (args.length !== n) queryError(`${name}() takes ${n} argument(s)`);
}

function callBuiltin(name: string, args: unknown[], w: Work): unknown {
  const [a, b] = args;
  // Each builtin's work grows with its arguments: strings by their length, arrays and objects by their members.
  for (const x of args) {
    if (typeof x === 'string') w.chars(x);
    else if (Array.isArray(x)) w.add(x.length);
    else if (isObject(x)) w.add(Object.keys(x).length);
  }
  switch (name) {
    case 'length':
      arity(name, args, 1);
      if (typeof a === 'string') return [...a].length;
      if (Array.isArray(a)) return a.length;
      if (isObject(a)) return Object.keys(a).length;
      return queryError('length() needs a string, array or object');
    case 'equals_ignore_case':
      arity(name, args, 2);
      return typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
    case 'contains':
      arity(name, args, 2);
      if (typeof a === 'string') return typeof b === 'string' && a.includes(b);
      if (Array.isArray(a)) return a.some((x) => deepEqual(x, b, w));
      return queryError('contains() needs a string or array');
    case 'starts_with':
    case 'ends_with':
      arity(name, args, 2);
      if (typeof a !== 'string' || typeof b !== 'string') return queryError(`${name}() needs strings`);
      return name === 'starts_with' ? a.startsWith(b) : a.endsWith(b);
    case 'keys':
    case 'values':
      arity(name, args, 1);
      if (!isObject(a)) return queryError(`${name}() needs an object`);
      return name === 'keys' ? Object.keys(a) : Object.values(a);
    case 'type':
      arity(name, args, 1);
      return typeOf(a);
    case 'to_string':
      arity(name, args, 1);
      return typeof a === 'string' ? a : serialise(a, w);
    case 'to_number': {
      arity(name, args, 1);
      if (typeof a === 'number') return a;
      const x = typeof a === 'string' ? Number(a) : Number.NaN;
      return typeof a === 'string' && a.trim() !== '' && Number.isFinite(x) ? x : null;
    }
    case 'not_null':
      return args.find((x) => x !== null && x !== undefined) ?? null;
    case 'abs':
      arity(name, args, 1);
      return typeof a === 'number' ? Math.abs(a) : queryError('abs() needs a number');
    case 'reverse':
      arity(name, args, 1);
      if (typeof a === 'string') return [...a].reverse().join('');
      if (Array.isArray(a)) return [...a].reverse();
      return queryError('reverse() needs a string or array');
    case 'join':
      arity(name, args, 2);
      if (typeof a !== 'string' || !Array.isArray(b) || !b.every((x) => typeof x === 'string')) return queryError('join() needs a string and an array of strings');
      // The result repeats the separator between every pair: charged by the text it writes.
      for (const x of b as string[]) w.chars(x);
      w.add(Math.floor((a.length * b.length) / CHARS_PER_OP));
      return b.join(a);
    case 'sum':
    case 'max':
    case 'min':
    case 'sort': {
      arity(name, args, 1);
      if (!Array.isArray(a)) return queryError(`${name}() needs an array`);
      const nums = a.every((x) => typeof x === 'number');
      const strs = a.every((x) => typeof x === 'string');
      if (!nums && !strs) return queryError(`${name}() needs an array of numbers or of strings`);
      if (name === 'sum') return nums ? (a as number[]).reduce((s, x) => s + x, 0) : queryError('sum() needs numbers');
      w.add(a.length * Math.ceil(Math.log2(a.length + 1)));
      const sorted = [...(a as (number | string)[])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      if (name === 'sort') return sorted;
      if (sorted.length === 0) return null;
      return name === 'min' ? sorted[0] : sorted[sorted.length - 1];
    }
    default:
      return queryError(`unknown function ${name}()`);
  }
}
