/**
 * Schema validation at the edge: every route's path parameters, query and body are checked against its
 * wire schema (src/wire/) before its handler runs, so a handler reads values of the types the schema
 * declares (`RouteTypes`) and never a shape it did not expect.
 *
 * Order is the wire's: a route that authenticates declares its authentication in `config.auth`, which
 * runs first (an unauthenticated caller meets the 401, and the AKV challenge, whatever its body: the Azure
 * SDKs send the first request of the challenge flow with an empty one); then the input check; then the
 * handler, whose own call of the same authentication returns the result already computed ({@link authOnce}).
 *
 * A failed check is the route's typed 400: `request.invalid` naming the member, or the domain code the
 * route's schema names for that part (`WireRoute.invalid`: `key.invalid`, `role.invalid`, …), so AKV,
 * MAA and PCS callers see the error codes they saw before the check moved to the edge.
 *
 * The schemas are compiled once, when the route is registered (src/wire/schema.ts `compile`): per request
 * the check is a few closure calls, no walk of the schema.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions, preHandlerHookHandler } from 'fastify';
import { type ErrorCode, fail } from '../core/errors.js';
import { type Checker, type Part, type RouteTypes, type Schema, type WireRoute, compile } from '../wire/schema.js';

/** The compiled checks of a route's parts, made once per wire route. */
interface CompiledRoute {
  readonly params?: Checker;
  readonly query?: Checker;
  readonly body?: Checker;
  /** The body schema takes text: a body that arrives as bytes (application/octet-stream) is checked as its UTF-8 text. */
  readonly text: boolean;
}

const takesText = (s: Schema): boolean => s.type === 'string' || ((s.anyOf as Schema[] | undefined)?.some(takesText) ?? false);

const compiledRoutes = new WeakMap<WireRoute, CompiledRoute>();

function compiledRoute(route: WireRoute): CompiledRoute {
  let c = compiledRoutes.get(route);
  if (!c) {
    c = {
      ...(route.params ? { params: compile(route.params) } : {}),
      ...(route.query ? { query: compile(route.query) } : {}),
      ...(route.body ? { body: compile(route.body) } : {}),
      text: route.body ? takesText(route.body) : false,
    };
    compiledRoutes.set(route, c);
  }
  return c;
}

/** The code a failed check of `part` answers with: the route's domain code for it, else `request.invalid`. */
function codeFor(route: WireRoute, part: Part): ErrorCode {
  const invalid = route.invalid;
  if (invalid === undefined) return 'request.invalid';
  return typeof invalid === 'string' ? invalid : (invalid[part] ?? 'request.invalid');
}

function refuse(route: WireRoute, part: Part, bad: string): never {
  const field = bad.slice(0, bad.indexOf(':'));
  // `parameter`: a top-level member's own name, as the handlers name it (PCS answers InvalidPlatformManifest by it).
  const parameter = /^[a-z]+\.([^.[\]]+)$/.exec(field)?.[1];
  throw fail(codeFor(route, part), `invalid ${part}: ${bad}`, { field, ...(parameter ? { parameter } : {}) });
}

/** Checks the request's parts against the route's schemas; throws the route's typed 400 on the first violation. */
export function checkWire(route: WireRoute, request: FastifyRequest): void {
  const c = compiledRoute(route);
  // A text body (a JWS, a bundle) sent as application/octet-stream arrives as bytes: checked, and handed on, as its text.
  if (c.text && Buffer.isBuffer(request.body)) request.body = request.body.toString('utf8');
  let bad: string | undefined;
  if (c.params && (bad = c.params(request.params ?? {}, 'params'))) refuse(route, 'params', bad);
  if (c.query && (bad = c.query(request.query ?? {}, 'query'))) refuse(route, 'query', bad);
  // An optional body may be absent, or JSON `null`.
  if (c.body && !(route.bodyOptional && (request.body === undefined || request.body === null)) && (bad = c.body(request.body, 'body'))) refuse(route, 'body', bad);
}

/** A route's input as its wire schema types it, checked (what the edge hook does, for callers outside a route). */
export function wireInput<R extends WireRoute>(route: R, request: FastifyRequest): RouteTypes<R> {
  checkWire(route, request);
  return { Params: request.params, Querystring: request.query, Body: request.body } as RouteTypes<R>;
}

/** A route's authentication: throws its 401/403 (with the family's challenge), or returns what the handler needs. */
export type RouteAuth = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * `auth` computed once per request: the edge runs it before the input check, the handler calls it again
 * and gets the same result (a token is verified once). A failure is not remembered (the edge's failure
 * ends the request anyway).
 */
export function authOnce<A extends unknown[], T>(auth: (request: FastifyRequest, ...rest: A) => Promise<T>): (request: FastifyRequest, ...rest: A) => Promise<T> {
  const done = new WeakMap<FastifyRequest, T>();
  return async (request, ...rest) => {
    if (done.has(request)) return done.get(request) as T;
    const result = await auth(request, ...rest);
    done.set(request, result);
    return result;
  };
}

/** A route the edge checks: what tests enumerate to hold every route to its schema. */
export interface CheckedRoute {
  readonly method: string;
  readonly url: string;
  readonly wire: WireRoute;
  /** Whether its authentication runs before the check. */
  readonly authenticated: boolean;
}

const checkedRoutes = new WeakMap<FastifyInstance, readonly CheckedRoute[]>();

/** Every route registered on `app` under the edge check (installWireValidation), in registration order. */
export function wireRoutesOf(app: FastifyInstance): readonly CheckedRoute[] {
  return checkedRoutes.get(app) ?? [];
}

/** Routes the check does not cover: the hidden probes and pages (/healthz, /openapi.json, console assets). */
function exempt(route: RouteOptions): boolean {
  return (route.config as { hidden?: boolean } | undefined)?.hidden === true;
}

/**
 * Installs the edge check: each route, as it is registered, gets a preHandler that runs its declared
 * authentication, then its compiled wire check. A route that is neither hidden nor described by a wire
 * schema is refused at registration (the server does not start), so no route escapes the check.
 */
export function installWireValidation(app: FastifyInstance): void {
  const checked: CheckedRoute[] = [];
  checkedRoutes.set(app, checked);
  app.addHook('onRoute', (route: RouteOptions) => {
    if (exempt(route)) return;
    const config = route.config as { wire?: WireRoute; auth?: RouteAuth } | undefined;
    const wire = config?.wire;
    if (!wire) throw new Error(`route ${String(route.method)} ${route.url} has no wire schema (src/wire/)`);
    compiledRoute(wire);
    // A GET's HEAD twin is checked as the GET is (it runs the same handler), and listed once, as the GET.
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) if (method !== 'HEAD') checked.push({ method, url: route.url, wire, authenticated: config.auth !== undefined });
    const auth = config?.auth;
    const hook: preHandlerHookHandler = auth
      ? async function wireCheck(request, reply) {
          await auth(request, reply);
          checkWire(wire, request);
        }
      : async function wireCheck(request) {
          checkWire(wire, request);
        };
    const existing = route.preHandler;
    route.preHandler = existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook];
  });
}
