import type { FastifyInstance, RouteOptions } from 'fastify';

interface Operation {
  summary?: string;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  tags?: string[];
}

/**
 * Collects every route as it is registered and serves an OpenAPI 3 document at /openapi.json, built from
 * the same JSON Schemas Fastify validates with, so the document cannot drift from the routes.
 */
export function collectOpenApi(app: FastifyInstance, info: { title: string; version: string }): void {
  const paths: Record<string, Record<string, Operation>> = {};
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url.includes('*') || route.method === 'HEAD' || (route.config as { hidden?: boolean } | undefined)?.hidden) return;
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = (route.schema ?? {}) as { summary?: string; tags?: string[]; params?: { properties?: Record<string, unknown> }; querystring?: { properties?: Record<string, unknown>; required?: string[] }; body?: unknown };
    const params: unknown[] = [];
    for (const name of path.match(/\{([^}]+)\}/g) ?? []) {
      const n = name.slice(1, -1);
      params.push({ name: n, in: 'path', required: true, schema: schema.params?.properties?.[n] ?? { type: 'string' } });
    }
    for (const [n, s] of Object.entries(schema.querystring?.properties ?? {})) {
      params.push({ name: n, in: 'query', required: schema.querystring?.required?.includes(n) ?? false, schema: s });
    }
    for (const m of methods) {
      const op: Operation = { responses: { default: { description: 'see docs/api.md' } } };
      if (schema.summary) op.summary = schema.summary;
      if (schema.tags) op.tags = schema.tags;
      if (params.length) op.parameters = params;
      if (schema.body) op.requestBody = { content: { 'application/json': { schema: schema.body } } };
      (paths[path] ??= {})[m.toLowerCase()] = op;
    }
  });
  app.get('/openapi.json', { config: { hidden: true } }, async () => ({ openapi: '3.0.3', info, paths }));
}
