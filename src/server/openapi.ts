import type { FastifyInstance, RouteOptions } from 'fastify';
import type { Schema, WireRoute } from '../wire/schema.js';

interface Operation {
  summary?: string;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  tags?: string[];
}

/** A schema as OpenAPI 3.0 reads it: `{type: 'null'}` members become `nullable`. */
function openApiSchema(s: Schema): unknown {
  return JSON.parse(JSON.stringify(s), (_k, v) => {
    if (v && typeof v === 'object' && Array.isArray(v.anyOf)) {
      const rest = v.anyOf.filter((x: { type?: string }) => x?.type !== 'null');
      if (rest.length < v.anyOf.length) return rest.length === 1 ? { ...rest[0], nullable: true } : { ...v, anyOf: rest, nullable: true };
    }
    return v;
  });
}

/**
 * Collects every route as it is registered and serves an OpenAPI 3 document at /openapi.json, built from
 * the route's wire schemas (src/wire/: path parameters, query, body, answers by status), so the document
 * cannot drift from what the handlers read.
 */
export function collectOpenApi(app: FastifyInstance, info: { title: string; version: string }): void {
  const paths: Record<string, Record<string, Operation>> = {};
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url.includes('*') || route.method === 'HEAD' || (route.config as { hidden?: boolean } | undefined)?.hidden) return;
    // `::` is a literal colon in a fastify path (`/certificates::add`), not a parameter.
    const path = route.url.replace(/::/g, '\u0000').replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\u0000/g, ':');
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = (route.schema ?? {}) as { summary?: string; tags?: string[] };
    const wire = (route.config as { wire?: WireRoute } | undefined)?.wire;
    const props = (s: Schema | undefined) => ((s?.properties ?? {}) as Record<string, Schema>);
    const required = (s: Schema | undefined) => ((s?.required ?? []) as string[]);
    const params: unknown[] = [];
    for (const name of path.match(/\{([^}]+)\}/g) ?? []) {
      const n = name.slice(1, -1);
      params.push({ name: n, in: 'path', required: true, schema: openApiSchema(props(wire?.params)[n] ?? { type: 'string' }) });
    }
    for (const [n, s] of Object.entries(props(wire?.query))) {
      params.push({ name: n, in: 'query', required: required(wire?.query).includes(n), schema: openApiSchema(s) });
    }
    for (const m of methods) {
      const responses: Record<string, unknown> = {};
      for (const [status, r] of Object.entries(wire?.responses ?? {})) {
        responses[status] = { description: r.description, ...(r.schema || r.type ? { content: { [r.type ?? 'application/json']: r.schema ? { schema: openApiSchema(r.schema) } : {} } } : {}) };
      }
      const op: Operation = { responses: Object.keys(responses).length ? responses : { default: { description: 'see docs/api.md' } } };
      if (schema.summary) op.summary = schema.summary;
      if (schema.tags) op.tags = schema.tags;
      if (params.length) op.parameters = params;
      if (wire?.body) op.requestBody = { required: !wire.bodyOptional, content: { [wire.bodyType ?? 'application/json']: { schema: openApiSchema(wire.body) } } };
      (paths[path] ??= {})[m.toLowerCase()] = op;
    }
  });
  app.get('/openapi.json', { config: { hidden: true } }, async () => ({ openapi: '3.0.3', info, paths }));
}
