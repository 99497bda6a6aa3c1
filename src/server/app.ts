import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { ERROR_CATALOGUE, type ErrorCode, fail } from '../core/errors.js';
import { parseJsonText } from '../core/json.js';
import type { AppContext } from './context.js';
import { instrument } from './metrics.js';
import { collectOpenApi } from './openapi.js';
import { SERVICE_PLUGINS } from './services.js';
import { TOKEN_PATH } from './auth.js';
import { formEncoded, registerIdentityRoutes, tokenResponse } from './identity.js';
import { registerConsole } from './console/plugin.js';
import { type ErrorFamily, sendError } from './wire-errors.js';
import type { WireRoute } from '../wire/schema.js';
import { IDENTITY } from '../wire/identity.js';
import { type RouteAuth, installWireValidation } from './wire-input.js';

declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    tags?: string[];
  }
  interface FastifyContextConfig {
    /** Which wire shape errors of this route take. */
    family?: ErrorFamily;
    hidden?: boolean;
    /** The route's request and response schemas (src/wire/), checked at the edge and published in /openapi.json. */
    wire?: WireRoute;
    /** The route's authentication, run before its input is checked (server/wire-input.ts). */
    auth?: RouteAuth;
    /**
     * A GET that changes state (the PCCS refresh, the PCCS registration queue): the console session acts
     * on it only with the CSRF token, as on a write (server/console/csrf.ts).
     */
    changesState?: boolean;
  }
}

/** The error family of a URL that matched no route, so even a 404 speaks the caller's dialect. */
function familyOfPath(url: string): ErrorFamily {
  const path = url.split('?')[0] ?? '';
  if (/^\/(keys|deletedkeys|rng|providers|backup|restore)(\/|$)/i.test(path)) return 'akv';
  if (/^\/(attest|policies|certificates|certs)(\/|$)/i.test(path)) return 'maa';
  if (/^\/(sgx|tdx|vcek|vlek|metadata\/THIM)(\/|$)/i.test(path)) return 'pcs';
  return 'conclave';
}

export interface BuildOptions {
  readonly https: { key: string; cert: string };
  readonly logger: Logger;
}

/**
 * Socket timeouts of the HTTPS server: the whole request (headers and body) within `requestTimeoutMs`, the
 * headers and the TLS handshake within at most 60 s of it, checked every quarter of the headers' time, so a
 * client that trickles bytes, or sends none, is disconnected instead of holding a socket indefinitely
 * (fastify's own defaults turn node's request timeout off).
 */
export function socketTimeouts(requestTimeoutMs: number): { requestTimeout: number; headersTimeout: number; handshakeTimeout: number; connectionsCheckingInterval: number } {
  const headersTimeout = Math.min(requestTimeoutMs, 60_000);
  return { requestTimeout: requestTimeoutMs, headersTimeout, handshakeTimeout: headersTimeout, connectionsCheckingInterval: Math.max(50, Math.floor(headersTimeout / 4)) };
}

/**
 * The server's TLS: 1.3, or 1.2 with an ephemeral ECDHE key exchange and an AEAD cipher (node's default list
 * also admits AES-CBC suites, with their padding-oracle history, and AES-CCM-8's short tag). The TLS 1.3
 * suites are named too: a list without them would turn TLS 1.3 off.
 */
export const TLS_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
} as const;

/** The most parameters a form-encoded body may carry (the token endpoint's forms carry a handful). */
const MAX_FORM_PARAMETERS = 1000;

const CLIENT_ERROR_REASONS: Readonly<Record<number, string>> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * A request node's HTTP parser refuses before it is a request (headers over maxHeaderSize, a line that does
 * not parse, a request not received in time): answered on the socket in the error shape every family
 * shares, `{"error":{"code","message"}}` (no URL is known to pick a family by), then the socket is closed.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request.timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? 'request.headers_too_large' : 'request.invalid';
  const status = ERROR_CATALOGUE[code].status;
  const message = code === 'request.timeout' ? 'the request was not received within the request timeout' : code === 'request.headers_too_large' ? 'the request line and headers exceed the size limit' : 'the request could not be parsed as HTTP/1.1';
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${CLIENT_ERROR_REASONS[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy();
}

/**
 * The connection timeout's verdict on a socket on which nothing moved either way for twice the request
 * timeout: closed, unless its request's answer is still being made with nothing of ours waiting unsent
 * (a handler waiting on a slow upstream is the server's wait, not the client's; once the answer is written
 * the timer runs again, so a client that does not read it is still closed).
 */
function onIdleSocket(socket: Socket): void {
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (res != null && !res.writableEnded && socket.writableLength === 0) return;
  socket.destroy();
}

export async function buildApp(ctx: AppContext, opts: BuildOptions): Promise<FastifyInstance> {
  const timeouts = socketTimeouts(ctx.config.requestTimeoutMs);
  const app = Fastify({
    https: { ...opts.https, ...TLS_OPTIONS, ...timeouts },
    requestTimeout: timeouts.requestTimeout,
    // A socket on which nothing moves either way (a client that stopped reading its answers) is closed
    // after twice the request timeout, unless a handler is still at work on it (onIdleSocket, below).
    connectionTimeout: 2 * timeouts.requestTimeout,
    loggerInstance: opts.logger,
    bodyLimit: ctx.config.bodyLimit,
    genReqId: () => randomUUID(),
    // Request and response lines are debug events (below): at the default level, info, the hot paths write
    // no log line per request.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    clientErrorHandler,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, caseSensitive: false },
    // A path the router refuses (a bad %-escape, a parameter over its length limit) gets the route family's
    // typed error like any other bad input, not the framework's own body.
    frameworkErrors: (err, request, reply) => sendError(familyOfPath(request.url), err, request, reply),
  }) as unknown as FastifyInstance;
  app.server.on('timeout', onIdleSocket);

  // Azure SDKs send an empty body with content-type application/json on the unauthenticated first
  // request of the challenge flow; that must reach the 401, not fail JSON parsing.
  app.removeContentTypeParser('application/json');
  // Bodies nested deeper than MAX_JSON_DEPTH are refused here, at the edge, before any handler (or
  // JSON.stringify of the body in a log line) can recurse into them.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, parseJsonText(text, 'request body'));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  // A parameter given twice becomes an array, so a route can refuse it (RFC 6749 §3.2) instead of
  // silently taking one of the values. Constant work per parameter, and at most MAX_FORM_PARAMETERS of
  // them: a body that repeats one parameter without end is refused, not gathered.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const form: Record<string, string | string[]> = Object.create(null);
    let count = 0;
    for (const [name, value] of new URLSearchParams(body as string)) {
      if (++count > MAX_FORM_PARAMETERS) {
        done(fail('request.invalid', `the form body has more than ${MAX_FORM_PARAMETERS} parameters`, { maxParameters: MAX_FORM_PARAMETERS }), undefined);
        return;
      }
      const seen = form[name];
      if (seen === undefined) form[name] = value;
      else if (Array.isArray(seen)) seen.push(value);
      else form[name] = [seen, value];
    }
    done(null, form);
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // A callback hook (no promise and no microtask per request, on every route).
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-ms-request-id', request.id);
    const clientRequestId = request.headers['x-ms-client-request-id'];
    if (typeof clientRequestId === 'string') reply.header('x-ms-client-request-id', clientRequestId);
    // A query parameter given twice reaches a handler as an array, which no route takes: refused here,
    // once for every route, rather than by each handler that reads the query as strings.
    const q = (request.query ?? {}) as Record<string, unknown>;
    for (const name in q) {
      if (Object.hasOwn(q, name) && Array.isArray(q[name])) {
        done(fail('request.invalid', `the query parameter ${name.slice(0, 64)} is given more than once`, { parameter: name.slice(0, 64) }));
        return;
      }
    }
    done();
  });

  if (opts.logger.isLevelEnabled('debug')) {
    app.addHook('onRequest', async (request) => request.log.debug({ req: request }, 'incoming request'));
    app.addHook('onResponse', async (request, reply) => request.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed'));
  }

  app.setErrorHandler((err, request, reply) => sendError(request.routeOptions.config?.family ?? familyOfPath(request.url), err, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendError(familyOfPath(request.url), fail('request.not_found', `no route for ${request.method} ${request.url.split('?')[0]}`), request, reply),
  );

  collectOpenApi(app, { title: 'Conclave', version: '0.1.0' });
  installWireValidation(app);
  instrument(app, ctx.metrics);

  app.get('/healthz', { config: { hidden: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { hidden: true } }, async (_req, reply) => {
    const failed: string[] = [];
    for (const [name, check] of ctx.readiness) {
      try {
        await check();
      } catch {
        failed.push(name);
      }
    }
    reply.status(failed.length ? 503 : 200);
    return { status: failed.length ? 'unavailable' : 'ready', failed };
  });

  app.post(TOKEN_PATH, { config: { family: 'oauth', wire: IDENTITY.token, auth: formEncoded }, schema: { summary: 'OAuth2 client-credentials token endpoint' } }, async (request, reply) => tokenResponse(ctx, request, reply));

  registerIdentityRoutes(app, ctx);
  await registerConsole(app, ctx, { sessions: ctx.consoleSessions });
  for (const name of ctx.config.services) {
    await app.register(async (scope) => SERVICE_PLUGINS[name](scope, ctx));
  }
  return app;
}
