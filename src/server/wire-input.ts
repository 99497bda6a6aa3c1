/**
 * A route's input as its wire schema types it (src/wire/): path parameters, query and body checked
 * against the route's schemas, a typed 400 (`request.invalid`, naming the member) otherwise. Handlers
 * call it after authentication, so an unauthenticated caller still meets the 401 (and the AKV
 * challenge) first, as the Azure SDKs expect.
 */
import type { FastifyRequest } from 'fastify';
import { type RouteTypes, type WireRoute, check } from '../wire/schema.js';

export function wireInput<R extends WireRoute>(route: R, request: FastifyRequest): RouteTypes<R> {
  const params = route.params ? check(route.params, request.params ?? {}, 'params') : request.params;
  const query = route.query ? check(route.query, request.query ?? {}, 'query') : request.query;
  const body = route.body ? check(route.body, request.body, 'body') : request.body;
  return { Params: params, Querystring: query, Body: body } as RouteTypes<R>;
}
