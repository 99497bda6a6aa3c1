/**
 * The wire's schema language: JSON Schema values (what /openapi.json publishes) that also carry the
 * TypeScript type of what they accept, so one definition documents a route, types its handler and
 * checks its input. Only the subset the routes need: objects, arrays, strings, numbers, booleans,
 * enums, unions, maps, and `unknown` for bodies whose shape a domain parser owns (a JWS, evidence).
 *
 * {@link check} validates untrusted values against a schema without recursion limits of its own: a
 * value nested deeper than {@link MAX_JSON_DEPTH} is refused before it is walked.
 */
import { type ErrorCode, fail } from '../core/errors.js';
import { MAX_JSON_DEPTH } from '../core/json.js';

/** A JSON Schema whose accepted values have type `T` (a phantom: never present at run time). */
export type Schema<T = unknown> = Readonly<Record<string, unknown>> & { readonly __type?: T };
export type Static<S> = S extends Schema<infer T> ? T : never;

interface Doc {
  readonly description?: string;
}

type Optional<S extends Schema> = S & { readonly __optional: true };
type Props = Record<string, Schema>;
type Required<P extends Props> = { [K in keyof P]: P[K] extends { __optional: true } ? never : K }[keyof P];
/** Optional members may be absent or null (AKV and MAA clients send `null` for what they leave unset). */
type ObjectOf<P extends Props> = { -readonly [K in Required<P>]: Static<P[K]> } & { -readonly [K in Exclude<keyof P, Required<P>>]?: Static<P[K]> | null };

const OPTIONAL = Symbol('optional');

export const S = {
  string: (o: Doc & { pattern?: string; minLength?: number; maxLength?: number; format?: string; contentMediaType?: string } = {}): Schema<string> => ({ type: 'string', ...o }),
  integer: (o: Doc & { minimum?: number; maximum?: number } = {}): Schema<number> => ({ type: 'integer', ...o }),
  number: (o: Doc = {}): Schema<number> => ({ type: 'number', ...o }),
  boolean: (o: Doc = {}): Schema<boolean> => ({ type: 'boolean', ...o }),
  null: (): Schema<null> => ({ type: 'null' }),
  enum: <const V extends readonly (string | number)[]>(values: V, o: Doc = {}): Schema<V[number]> => ({ enum: [...values], ...o }),
  array: <I extends Schema>(items: I, o: Doc & { maxItems?: number; minItems?: number } = {}): Schema<Static<I>[]> => ({ type: 'array', items, ...o }),
  /** An object; members not listed are allowed (clients send more than we read) unless `closed`. */
  object: <P extends Props>(properties: P, o: Doc & { closed?: boolean; maxProperties?: number } = {}): Schema<ObjectOf<P>> => {
    const { closed, ...rest } = o;
    const required = Object.entries(properties)
      .filter(([, s]) => !(OPTIONAL in s))
      .map(([k]) => k);
    return { type: 'object', properties, ...(required.length ? { required } : {}), ...(closed ? { additionalProperties: false } : {}), ...rest };
  },
  /** A map from names to values of one schema. */
  record: <V extends Schema>(values: V, o: Doc & { maxProperties?: number } = {}): Schema<Record<string, Static<V>>> => ({ type: 'object', additionalProperties: values, ...o }),
  anyOf: <A extends readonly Schema[]>(schemas: A, o: Doc = {}): Schema<Static<A[number]>> => ({ anyOf: [...schemas], ...o }),
  /** Any JSON value; its shape is a domain parser's business (described in `description`). */
  unknown: (o: Doc = {}): Schema<unknown> => ({ ...o }),
  optional: <T extends Schema>(s: T): Optional<T> => Object.defineProperty({ ...s }, OPTIONAL, { value: true, enumerable: false }) as Optional<T>,
};

/** Where a checked value came from, for the error: `body`, `query`, `params`. */
export type Part = 'body' | 'query' | 'params';

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** A compiled check: the first way `v` breaks the schema, as `path: reason`; undefined when it conforms. */
export type Checker = (v: unknown, path: string, depth?: number) => string | undefined;

const compiled = new WeakMap<Schema, Checker>();

/** Any value nested no deeper than the limit (what `S.unknown()` and a member no schema names accept). */
const anything: Checker = (v, path, depth = 0) => {
  if (depth > MAX_JSON_DEPTH) return `${path}: nests deeper than ${MAX_JSON_DEPTH} levels`;
  if (v === null || typeof v !== 'object') return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x !== null && typeof x === 'object') {
        const bad = anything(x, `${path}[${i}]`, depth + 1);
        if (bad) return bad;
      }
    }
    return undefined;
  }
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    const x = (v as Record<string, unknown>)[k];
    if (x !== null && typeof x === 'object') {
      const bad = anything(x, `${path}.${k}`, depth + 1);
      if (bad) return bad;
    }
  }
  return undefined;
};

/**
 * The schema compiled once into a closure (regular expressions built, members looked up in a Map): what
 * the edge runs per request, with no walk of the schema itself. Cached per schema object.
 */
export function compile(s: Schema): Checker {
  let c = compiled.get(s);
  if (!c) {
    c = build(s);
    compiled.set(s, c);
  }
  return c;
}

function build(s: Schema): Checker {
  const anyOf = s.anyOf as Schema[] | undefined;
  if (anyOf) {
    const alts = anyOf.map(compile);
    return (v, path, depth = 0) => {
      if (depth > MAX_JSON_DEPTH) return `${path}: nests deeper than ${MAX_JSON_DEPTH} levels`;
      for (const a of alts) if (a(v, path, depth) === undefined) return undefined;
      return `${path}: matches none of the allowed forms`;
    };
  }
  const steps: Checker[] = [];
  const values = s.enum as unknown[] | undefined;
  if (values) {
    const reason = `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
    steps.push((v, path) => (values.includes(v) ? undefined : `${path}: ${reason}`));
  }
  const type = s.type as string | undefined;
  if (type) {
    const reason = `must be ${type === 'integer' || type === 'array' || type === 'object' ? 'an' : 'a'} ${type}`;
    steps.push((v, path) => {
      const t = typeOf(v);
      return t === type || (type === 'number' && t === 'integer') ? undefined : `${path}: ${reason}`;
    });
  }
  const { maxLength, minLength, pattern } = s as { maxLength?: unknown; minLength?: unknown; pattern?: unknown };
  if (typeof maxLength === 'number' || typeof minLength === 'number' || typeof pattern === 'string') {
    const re = typeof pattern === 'string' ? new RegExp(pattern, 'u') : undefined;
    steps.push((v, path) => {
      if (typeof v !== 'string') return undefined;
      if (typeof maxLength === 'number' && v.length > maxLength) return `${path}: longer than ${maxLength} characters`;
      if (typeof minLength === 'number' && v.length < minLength) return `${path}: shorter than ${minLength} characters`;
      if (re && !re.test(v)) return `${path}: has not the form ${pattern as string}`;
      return undefined;
    });
  }
  const { minimum, maximum } = s as { minimum?: unknown; maximum?: unknown };
  if (typeof minimum === 'number' || typeof maximum === 'number') {
    steps.push((v, path) => {
      if (typeof v !== 'number') return undefined;
      if (typeof minimum === 'number' && v < minimum) return `${path}: below ${minimum}`;
      if (typeof maximum === 'number' && v > maximum) return `${path}: above ${maximum}`;
      return undefined;
    });
  }
  const { maxItems, minItems } = s as { maxItems?: unknown; minItems?: unknown };
  const items = s.items ? compile(s.items as Schema) : anything;
  const props = new Map(Object.entries((s.properties ?? {}) as Record<string, Schema>).map(([k, p]) => [k, compile(p)]));
  const required = (s.required ?? []) as string[];
  const optional = new Set(Object.entries((s.properties ?? {}) as Record<string, Schema>).filter(([, p]) => OPTIONAL in p).map(([k]) => k));
  const maxProperties = s.maxProperties as number | undefined;
  const extra = s.additionalProperties as Schema | boolean | undefined;
  const rest: Checker | undefined = extra === false ? undefined : typeof extra === 'object' ? compile(extra) : anything;
  const structure: Checker = (v, path, depth = 0) => {
    if (v === null || typeof v !== 'object') return undefined;
    if (Array.isArray(v)) {
      if (typeof maxItems === 'number' && v.length > maxItems) return `${path}: more than ${maxItems} items`;
      if (typeof minItems === 'number' && v.length < minItems) return `${path}: fewer than ${minItems} items`;
      for (let i = 0; i < v.length; i++) {
        const bad = items(v[i], `${path}[${i}]`, depth + 1);
        if (bad) return bad;
      }
      return undefined;
    }
    const o = v as Record<string, unknown>;
    for (const k of required) if (o[k] === undefined) return `${path}.${k}: is required`;
    const keys = Object.keys(o);
    if (typeof maxProperties === 'number' && keys.length > maxProperties) return `${path}: more than ${maxProperties} members`;
    for (const k of keys) {
      const sub = props.get(k) ?? rest;
      if (sub === undefined) return `${path}.${k}: is not a member this route accepts`;
      const x = o[k];
      if (x === undefined || (x === null && optional.has(k))) continue;
      const bad = sub(x, `${path}.${k}`, depth + 1);
      if (bad) return bad;
    }
    return undefined;
  };
  return (v, path, depth = 0) => {
    if (depth > MAX_JSON_DEPTH) return `${path}: nests deeper than ${MAX_JSON_DEPTH} levels`;
    for (const step of steps) {
      const bad = step(v, path, depth);
      if (bad) return bad;
    }
    return structure(v, path, depth);
  };
}

/** The first way `v` breaks `s`, as `path: reason`; undefined when it conforms. Depth-bounded. */
export function violation(s: Schema, v: unknown, path: string, depth = 0): string | undefined {
  return compile(s)(v, path, depth);
}

/** `v` as the schema's type, or a typed 400 (`code`, default `request.invalid`) naming the member and the reason. */
export function check<S extends Schema>(s: S, v: unknown, part: Part, code: ErrorCode = 'request.invalid'): Static<S> {
  const bad = compile(s)(v, part);
  if (bad) throw fail(code, `invalid ${part}: ${bad}`, { field: bad.slice(0, bad.indexOf(':')) });
  return v as Static<S>;
}

/** One route on the wire: its path parameters, query, body and answers by status. */
export interface WireRoute<P extends Schema = Schema, Q extends Schema = Schema, B extends Schema = Schema> {
  readonly params?: P;
  readonly query?: Q;
  /** The request body; `null` for a route that takes none. */
  readonly body: B | null;
  /** The body may be absent (MAA's policy reset: no body is the unsigned reset). */
  readonly bodyOptional?: boolean;
  /** Media type of the body when it is not JSON (`application/jose`, `application/octet-stream`). */
  readonly bodyType?: string;
  /**
   * The code a failed input check answers with, for the route or per part, where the route's domain names
   * its own (`key.invalid`, `role.invalid`, …); `request.invalid` otherwise.
   */
  readonly invalid?: ErrorCode | Readonly<Partial<Record<Part, ErrorCode>>>;
  /** Answers by status; a media type other than JSON is named in `type`. */
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema?: Schema; readonly type?: string }>>;
}

/** Declares a route, keeping its schemas' types for {@link RouteTypes}. */
export const route = <P extends Schema = Schema<Record<string, string>>, Q extends Schema = Schema<Record<string, string>>, B extends Schema = Schema>(r: WireRoute<P, Q, B>): WireRoute<P, Q, B> => r;

/** Path parameters and query values are strings or absent, never null (only a JSON body can say null). */
type Present<T> = { [K in keyof T]: Exclude<T[K], null> };
/** The handler types of a route (fastify's RouteGenericInterface shape). */
export type RouteTypes<R> = R extends WireRoute<infer P, infer Q, infer B> ? { Params: Present<Static<P>>; Querystring: Present<Static<Q>>; Body: Static<B> } : never;
