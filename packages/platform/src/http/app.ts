import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBodyParser, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics, Histogram } from 'prom-client';
import { DomainError } from '../kernel/errors.ts';
import { Type } from 'typebox';
import { COMMON_PROBLEMS, HttpProblem, ProblemSchema, problemBody, type ProblemBody } from './problem.ts';
import { MAX_JSON_DEPTH, jsonDeeperThan, validatorCompiler } from './validation.ts';
import { JSON_MEDIA_TYPES, RouteMethods, acceptable } from './method-and-accept.ts';

export { ANY_MEDIA_TYPE, JSON_MEDIA_TYPES } from './method-and-accept.ts';
import { registerOpenApi } from './openapi.ts';
import { registerAuthentication } from './request-context.ts';
import type { ServiceAuth } from '../auth/service-auth.ts';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { runWithLogFields } from '../log-context.ts';
import { SAGA_CORRELATION } from '@bstore/contracts';
import { ServiceTracing, tagCorrelation } from '../tracing.ts';

export type HttpApp = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger, TypeBoxTypeProvider>;

/**
 * A named readiness check: it fails by throwing. It may resolve to a short detail (e.g. a circuit
 * breaker's state, `"open"`), shown instead of `"up"`; a check that resolves counts as up either way.
 */
export type ReadinessCheck = () => Promise<void | string>;

export interface HttpAppOptions {
  service: string;
  logger: Logger;
  /** HTTP status of each domain error code this service can raise. */
  errorStatus?: Record<string, number>;
  /** Named checks behind GET /health/ready; a check fails by throwing. */
  readiness?: Record<string, ReadinessCheck>;
  bodyLimit?: number;
  /** The version in the OpenAPI document's `info` (default: the platform package's). */
  version?: string;
  /**
   * Verifies bearer tokens on every request (requestContext reads the result). Without it every
   * request is anonymous. The gateway registers it itself, after its rate limits.
   */
  auth?: ServiceAuth;
  /** The service's tracing: a SERVER span per request (default: ids only, nothing exported). */
  tracing?: ServiceTracing;
}

const FASTIFY_CODES: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'EMPTY_BODY' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'INVALID_CONTENT_LENGTH' },
};

/**
 * The header a service process's waiting room (the launcher's: it listens, but its database, the
 * bus or its schema is not there yet) sets on its 503 answers, with the value `starting`: nothing
 * was done with the request, so a gateway may send it to another replica.
 */
export const REPLICA_STATE_HEADER = 'bstore-replica-state';

/** A readiness probe must answer quickly even when a dependency hangs instead of refusing. */
const READINESS_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Whether a parsed JSON value holds U+0000 in any string or key (bodies are at most MAX_JSON_DEPTH deep). */
function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([key, v]) => key.includes('\u0000') || containsNul(v));
  return false;
}

/**
 * The answer to a request Node's HTTP parser refuses before Fastify sees it (a malformed request
 * line, a header too large): problem+json too, written on the socket, which is then closed.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  // As Node's own handler does: no second answer on a socket whose request was already answered
  // (a bad URL answered 400, then the parser fails on the rest of the same request).
  const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || answering?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [status, code, detail] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', 'the request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'the request took too long to arrive']
        : [400, 'MALFORMED_REQUEST', 'the request is not valid HTTP'];
  const body = JSON.stringify(problemBody(status, code, detail));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

const QUIET_ROUTES = new Set(['/health/live', '/health/ready', '/metrics']);
/** Probes and scrapes get no span: they would bury the traces of real work. */
const UNTRACED_URL = /^\/(health\/(live|ready)|metrics)(\?|$)/;

/**
 * A SERVER span for every request but probes and scrapes, with `@fastify/otel` (Fastify's official
 * OpenTelemetry instrumentation) on the service's own tracer provider: the caller's `traceparent`
 * is its parent, and it is the active span while the request runs, so outgoing calls and event
 * envelopes carry its context. One span a request, named `METHOD /route/{param}`: hooks and the
 * handler get none of their own. Called before any other hook, so the span covers them all.
 */
function instrumentRequests(app: HttpApp, tracing: ServiceTracing): void {
  const instrumentation = new FastifyOtelInstrumentation({
    instrumentHooks: false,
    instrumentHandler: false,
    ignorePaths: ({ url }) => UNTRACED_URL.test(url),
    requestHook: (span, request) => span.updateName(`${request.method} ${(request.routeOptions.url ?? 'unmatched').replace(/:(\w+)/g, '{$1}')}`),
  });
  instrumentation.setTracerProvider(tracing.provider);
  // Applied to the root instance at once (as the library does when it registers itself on
  // initialization): `register` would run it after the hooks below.
  instrumentation.plugin()(app as unknown as FastifyInstance, {}, () => {});
}

/** The saga's correlation id in a route's params (`/reservations/:reservationId`), before validation. */
function correlationParam(request: FastifyRequest): number | undefined {
  const raw = (request.params as Record<string, unknown> | undefined)?.[SAGA_CORRELATION.field];
  return typeof raw === 'string' && /^[1-9]\d{0,14}$/.test(raw) ? Number(raw) : undefined;
}

const LiveSchema = Type.Object({ status: Type.Literal('up') });
const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('draining')]),
  checks: Type.Record(Type.String(), Type.String(), { description: 'each check: "up", "down" or its detail (e.g. a circuit\'s state)' }),
});

/**
 * A Fastify instance with what every bstore service shares: strict schema validation, RFC 9457
 * problem+json for every error (never a stack trace or SQL), request ids, health and metrics.
 * Routes are registered by the service's http adapter; the instance is not listening yet.
 *
 * @example
 * const app = createHttpApp({ service: 'book', logger, errorStatus: { BOOK_NOT_FOUND: 404 } });
 * await app.register(bookRoutes, { useCases });
 */
export function createHttpApp(options: HttpAppOptions): HttpApp {
  const app = Fastify({
    loggerInstance: options.logger,
    // One line per request, written by the onResponse hook below, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(given) ? given : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true },
    clientErrorHandler: answerClientError,
    // A request arriving while the server closes gets a problem+json 503 (below), not Fastify's own JSON.
    return503OnClosing: false,
    // Errors Fastify raises before routing (a malformed URL) get the same problem+json.
    frameworkErrors: (err, request, rawReply) => {
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 400;
      const code = err.code === 'FST_ERR_BAD_URL' ? 'MALFORMED_URL' : 'MALFORMED_REQUEST';
      const reply = rawReply as unknown as FastifyReply;
      void reply
        .status(status)
        .type('application/problem+json')
        .send({ ...problemBody(status, code, err.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid' : err.message), instance: request.url.split('?')[0] });
    },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as HttpApp;

  instrumentRequests(app, options.tracing ?? new ServiceTracing(options.service));
  // Each request's log lines carry its own fields (the saga's correlation id) from here on: the
  // rest of its hooks and its handler run inside this context.
  app.addHook('onRequest', (request, _reply, done) => {
    runWithLogFields({}, () => {
      const id = correlationParam(request);
      if (id !== undefined) tagCorrelation(id);
      done();
    });
  });
  app.setValidatorCompiler(validatorCompiler);
  // Every path's methods, for 405: recorded before any route is added.
  const routeMethods = new RouteMethods();
  app.addHook('onRoute', (route) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) routeMethods.add(String(method), route.url);
  });
  // JSON bodies only (text/plain and the like are 415), nested at most MAX_JSON_DEPTH deep: a deeper
  // body is refused before it is parsed, as JSON.parse would overflow the stack on it (a 500).
  // Fastify's default JSON parser is the callback form (it calls `done` and returns nothing); its
  // type also admits the promise form, which it never is.
  const parseJson = app.getDefaultJsonParser('error', 'error') as Exclude<FastifyBodyParser<string>, (...args: never[]) => Promise<unknown>>;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (jsonDeeperThan(text, MAX_JSON_DEPTH)) {
      done(new HttpProblem(400, 'BODY_TOO_DEEP', `the JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    parseJson(request, text, (err, value) => {
      // PostgreSQL text cannot hold U+0000: refused here, once, instead of a 500 from the database.
      if (!err && containsNul(value)) done(new HttpProblem(400, 'NUL_CHARACTER', 'text in the body may not contain the NUL character (U+0000)'), undefined);
      else done(err, value);
    });
  });
  // Before any route: the OpenAPI document is collected from the routes as they are registered.
  registerOpenApi(app as unknown as FastifyInstance, { service: options.service, ...(options.version ? { version: options.version } : {}) });

  const errorStatus = options.errorStatus ?? {};
  const sendProblem = (request: FastifyRequest, reply: FastifyReply, body: ProblemBody, headers: Record<string, string> = {}) =>
    reply.status(body.status).headers(headers).type('application/problem+json').send({ ...body, instance: request.url.split('?')[0] });

  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (err instanceof HttpProblem) {
      return sendProblem(request, reply, problemBody(err.status, err.code, err.message, err.extensions, err.title), err.headers);
    }
    if (err instanceof DomainError) {
      const status = errorStatus[err.code] ?? 400;
      return sendProblem(request, reply, problemBody(status, err.code, err.message, { ...err.details }));
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const errors = fe.validation.map((v) => ({
        in: fe.validationContext ?? 'request',
        path: v.instancePath || '/',
        message: v.keyword === 'additionalProperties' ? `unknown property ${JSON.stringify((v.params as { additionalProperty?: string }).additionalProperty)}` : (v.message ?? 'is invalid'),
      }));
      const first = errors[0];
      const detail = first ? `${first.in}${first.path === '/' ? '' : first.path} ${first.message}` : 'the request is invalid';
      return sendProblem(request, reply, problemBody(400, 'VALIDATION_FAILED', detail, { errors }));
    }
    const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (known) return sendProblem(request, reply, problemBody(known.status, known.code, fe.message));
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      // Fastify's own messages are safe to show; another library's might carry anything.
      const detail =
        fe instanceof SyntaxError || /JSON/i.test(fe.message) ? 'the body is not valid JSON' : fe.code?.startsWith('FST_') ? fe.message : 'the request could not be processed';
      return sendProblem(request, reply, problemBody(fe.statusCode, 'MALFORMED_REQUEST', detail));
    }
    request.log.error({ err }, 'unhandled error');
    return sendProblem(request, reply, problemBody(500, 'INTERNAL_ERROR', 'an unexpected error occurred; it has been logged'));
  });

  // A known path with a method it does not serve is a 405 naming those it does; an unknown path a
  // 404, and so is what a route that serves the method finds missing (a static file, say).
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = routeMethods.allowedMethods(path);
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      const allow = allowed.join(', ');
      return sendProblem(request, reply, problemBody(405, 'METHOD_NOT_ALLOWED', `${path} does not serve ${request.method}; it serves ${allow}`, { allow: allowed }), { allow });
    }
    return sendProblem(request, reply, problemBody(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${path}`));
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) {
      throw new HttpProblem(503, 'SHUTTING_DOWN', 'this instance is shutting down; retry, another one will answer', { headers: { connection: 'close', 'retry-after': '1' } });
    }
    // PostgreSQL text cannot hold U+0000: a %00 in a path or query is refused here, not a 500 later.
    if (request.url.includes('%00')) throw new HttpProblem(400, 'NUL_CHARACTER', 'the URL may not contain the NUL character (%00)');
    // 406 when the Accept header allows nothing the route answers with (routes say what in `config.produces`).
    if (request.is404) return;
    const produces = request.routeOptions.config.produces ?? JSON_MEDIA_TYPES;
    if (!acceptable(request.headers.accept, produces)) {
      throw new HttpProblem(406, 'NOT_ACCEPTABLE', `this route answers ${produces.join(' or ')}; the Accept header allows none of them`, {
        extensions: { produces: [...produces] },
      });
    }
  });
  if (options.auth) registerAuthentication(app as unknown as FastifyInstance, options.auth);

  // Metrics: one registry per service, so five services in one process stay apart.
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: 'http_server_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  app.decorate('metrics', registry);

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    if (QUIET_ROUTES.has(route)) return;
    httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    request.log.info({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  // Once shutdown begins, readiness fails first, so load balancers stop sending work here while
  // in-flight requests finish.
  let draining = false;
  app.decorate('markDraining', () => {
    draining = true;
  });
  const readiness = new Map(Object.entries(options.readiness ?? {}));
  app.decorate('addReadinessCheck', (name: string, check: ReadinessCheck) => {
    readiness.set(name, check);
  });

  // In a plugin, so that they are added (and documented) once @fastify/swagger has loaded.
  void app.register(async (scope) => {
    scope.get('/health/live', { schema: { response: { 200: LiveSchema, ...COMMON_PROBLEMS } } }, async () => ({ status: 'up' }));
    // 503 is a check down or draining (ReadySchema), or a problem once the instance is closing.
    const readyResponse = { 200: ReadySchema, ...COMMON_PROBLEMS, 503: Type.Union([ReadySchema, ProblemSchema]) };
    scope.get('/health/ready', { schema: { response: readyResponse } }, async (_request, reply) => {
      if (draining) return reply.status(503).send({ status: 'draining', checks: {} });
      const checks: Record<string, string> = {};
      let ok = true;
      for (const [name, check] of readiness) {
        try {
          const detail = await withTimeout(check(), READINESS_TIMEOUT_MS, `${name} did not answer within ${READINESS_TIMEOUT_MS} ms`);
          checks[name] = typeof detail === 'string' ? detail : 'up';
        } catch (err) {
          ok = false;
          checks[name] = 'down';
          app.log.warn({ err, check: name }, 'readiness check failed');
        }
      }
      return reply.status(ok ? 200 : 503).send({ status: ok ? 'up' : 'down', checks });
    });
    const metricsResponse = { 200: Type.String({ description: 'Prometheus text exposition format' }), ...COMMON_PROBLEMS };
    scope.get('/metrics', { config: { produces: ['text/plain'] }, schema: { response: metricsResponse } }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  });

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
    /** Makes GET /health/ready answer 503 `draining` from now on (the first step of a shutdown). */
    markDraining(): void;
    /** Adds a named check to GET /health/ready (a launcher adds the bus's). */
    addReadinessCheck(name: string, check: ReadinessCheck): void;
  }
}
