import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { IDENTITY } from '../wire/identity.js';

/** A registry per server instance (no global default registry), with request counts and latencies per route. */
export function createMetrics(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'conclave_' });
  return registry;
}

export function instrument(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({
    name: 'conclave_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'conclave_http_request_duration_seconds',
    help: 'HTTP request latency by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // The labelled children, looked up once per (method, route, status) instead of prom-client hashing
  // the label object on every observation; a callback hook (no promise per request).
  const counters = new Map<string, Counter.Internal>();
  const histograms = new Map<string, Histogram.Internal<'method' | 'route'>>();
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const method = request.method;
    const status = reply.statusCode;
    const key = `${method} ${status} ${route}`;
    let counter = counters.get(key);
    if (counter === undefined) counters.set(key, (counter = requests.labels({ method, route, status: String(status) })));
    const timing = `${method} ${route}`;
    let histogram = histograms.get(timing);
    if (histogram === undefined) histograms.set(timing, (histogram = latency.labels({ method, route })));
    counter.inc();
    histogram.observe(reply.elapsedTime / 1000);
    done();
  });
  app.get('/metrics', { config: { family: 'conclave', wire: IDENTITY.metrics }, schema: { summary: 'Prometheus metrics', tags: ['operations'] } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
