/**
 * The wire's schema language: JSON Schema values (what /openapi.json publishes) that also carry the
 * TypeScript type of what they accept, so one definition documents a route, types its handler and
 * checks its input. Only the subset the routes need: objects, arrays, strings, numbers, booleans,
 * enums, unions, maps, and `unknown` for bodies whose shape a domain parser owns (a JWS, evidence).
 *
 * {@link check} validates untrusted values against a schema without recursion limits of its own: a
 * value nested deeper than {@link MAX_JSON_DEPTH} is refused before it is walked.
 */
import { fail } from '../core/errors.js';
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
type ObjectOf<P extends Props> = { -readonly [K in Required<P>]: Static<P[K]> } & { -readonly [K in Exclude<keyof P, Required<P>>]?: Static<P[K]> };

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

/** The first way `v` breaks `s`, as `path: reason`; undefined when it conforms. Depth-bounded. */
export function violation(s: Schema, v: unknown, path: string, depth = 0): string | undefined {
  if (depth > MAX_JSON_DEPTH) return `${path}: nests deeper than ${MAX_JSON_DEPTH} levels`;
  const anyOf = s.anyOf as Schema[] | undefined;
  if (anyOf) return anyOf.some((a) => violation(a, v, path, depth) === undefined) ? undefined : `${path}: matches none of the allowed forms`;
  const values = s.enum as unknown[] | undefined;
  if (values && !values.includes(v)) return `${path}: must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  const type = s.type as string | undefined;
  if (type) {
    const t = typeOf(v);
    if (!(t === type || (type === 'number' && t === 'integer'))) return `${path}: must be ${type === 'integer' || type === 'array' || type === 'object' ? 'an' : 'a'} ${type}`;
  }
  if (typeof v === 'string') {
    if (typeof s.maxLength === 'number' && v.length > s.maxLength) return `${path}: longer than ${s.maxLength} characters`;
    if (typeof s.minLength === 'number' && v.length < s.minLength) return `${path}: shorter than ${s.minLength} characters`;
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) return `${path}: has not the form ${s.pattern}`;
  }
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) return `${path}: below ${s.minimum}`;
    if (typeof s.maximum === 'number' && v > s.maximum) return `${path}: above ${s.maximum}`;
  }
  if (Array.isArray(v)) {
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) return `${path}: more than ${s.maxItems} items`;
    if (typeof s.minItems === 'number' && v.length < s.minItems) return `${path}: fewer than ${s.minItems} items`;
    if (s.items) {
      for (let i = 0; i < v.length; i++) {
        const bad = violation(s.items as Schema, v[i], `${path}[${i}]`, depth + 1);
        if (bad) return bad;
      }
    } else {
      for (let i = 0; i < v.length; i++) {
        const bad = violation({}, v[i], `${path}[${i}]`, depth + 1);
        if (bad) return bad;
      }
    }
  } else if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const k of (s.required ?? []) as string[]) if (o[k] === undefined) return `${path}.${k}: is required`;
    const keys = Object.keys(o);
    if (typeof s.maxProperties === 'number' && keys.length > s.maxProperties) return `${path}: more than ${s.maxProperties} members`;
    const extra = s.additionalProperties as Schema | boolean | undefined;
    for (const k of keys) {
      const sub = Object.hasOwn(props, k) ? props[k]! : extra === false ? undefined : typeof extra === 'object' ? extra : {};
      if (sub === undefined) return `${path}.${k}: is not a member this route accepts`;
      if (o[k] === undefined) continue;
      const bad = violation(sub, o[k], `${path}.${k}`, depth + 1);
      if (bad) return bad;
    }
  }
  return undefined;
}

/** `v` as the schema's type, or a typed 400 (`request.invalid`) naming the member and the reason. */
export function check<S extends Schema>(s: S, v: unknown, part: Part): Static<S> {
  const bad = violation(s, v, part);
  if (bad) throw fail('request.invalid', `invalid ${part}: ${bad}`, { field: bad.slice(0, bad.indexOf(':')) });
  return v as Static<S>;
}

/** One route on the wire: its path parameters, query, body and answers by status. */
export interface WireRoute<P extends Schema = Schema, Q extends Schema = Schema, B extends Schema = Schema> {
  readonly params?: P;
  readonly query?: Q;
  /** The request body; `null` for a route that takes none. */
  readonly body: B | null;
  /** Media type of the body when it is not JSON (`application/jose`, `application/octet-stream`). */
  readonly bodyType?: string;
  /** Answers by status; a media type other than JSON is named in `type`. */
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema?: Schema; readonly type?: string }>>;
}

/** Declares a route, keeping its schemas' types for {@link RouteTypes}. */
export const route = <P extends Schema = Schema<Record<string, string>>, Q extends Schema = Schema<Record<string, string>>, B extends Schema = Schema>(r: WireRoute<P, Q, B>): WireRoute<P, Q, B> => r;

/** The handler types of a route (fastify's RouteGenericInterface shape). */
export type RouteTypes<R> = R extends WireRoute<infer P, infer Q, infer B> ? { Params: Static<P>; Querystring: Static<Q>; Body: Static<B> } : never;
