import replyFrom from '@fastify/reply-from';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ANY_MEDIA_TYPE, HttpProblem, type HttpApp } from '@bstore/platform/http';
import { deadLetterGatewayRoutes } from './dead-letters.ts';
import { fromReplica, tagReservationOf, upstreamHeaders, upstreamProblem, type Upstream, type UpstreamPools } from './upstreams.ts';

export type { Upstream } from './upstreams.ts';

export interface GatewayRoutesOptions {
  /** Each upstream's replicas (upstreams.ts): a request goes to the next in turn. */
  upstreams: UpstreamPools;
  /** Longest wait for an upstream's answer before 504. */
  timeoutMs: number;
  /** Longest silence on a Server-Sent Events stream (the services send a heartbeat more often). */
  streamIdleTimeoutMs: number;
}

/** Which service owns which public path prefix (design §10). */
export const ROUTES: ReadonlyArray<{ prefix: string; upstream: Upstream; stream?: boolean }> = [
  { prefix: '/reservations', upstream: 'reservation' },
  { prefix: '/books', upstream: 'book' },
  { prefix: '/libraries', upstream: 'assignment' },
  { prefix: '/assignments', upstream: 'assignment' },
  { prefix: '/reservationPages/stream', upstream: 'customercenter', stream: true },
  { prefix: '/reservationPages', upstream: 'customercenter' },
  { prefix: '/notifications', upstream: 'notification' },
];

const SAFE_PATH = /^(\/[A-Za-z0-9_-]+)*\/?$/;

/**
 * The gateway's proxy: each public path goes to the service that owns it, bodies pass through
 * untouched, and an upstream that is down (503), slow (504) or broken (502) becomes a
 * problem+json naming the service, never a hang.
 */
export async function gatewayRoutes(app: HttpApp, options: GatewayRoutesOptions): Promise<void> {
  await app.register(replyFrom, {
    // A replica that does not accept the connection within 2 s is passed over (a host gone without
    // a reset would otherwise hold each request for undici's default 10 s).
    undici: { connections: 64, pipelining: 1, headersTimeout: options.timeoutMs, bodyTimeout: options.streamIdleTimeoutMs, connect: { timeout: 2000 } },
  });

  // Bodies are forwarded as they came; the owning service validates them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  // The public paths hold only words, numbers and slashes. Anything else (dot segments, percent
  // escapes, empty segments) could be read differently here and upstream — `/books/7/./holds/1`
  // would slip past the hold block below — so it is refused before routing.
  app.addHook('onRequest', async (request) => {
    // Everything after the first "?" is the query (a second "?" is part of it, and checked too).
    const mark = request.url.indexOf('?');
    const path = mark < 0 ? request.url : request.url.slice(0, mark);
    const query = mark < 0 ? '' : request.url.slice(mark + 1);
    if (!SAFE_PATH.test(path)) throw new HttpProblem(400, 'INVALID_PATH', 'the path may contain only letters, digits, "-", "_" and single slashes');
    tagReservationOf(path);
    try {
      decodeURIComponent(query);
    } catch {
      throw new HttpProblem(400, 'INVALID_QUERY', 'the query string has a malformed percent-escape');
    }
  });

  // Server-Sent Events never end by themselves: at shutdown they are ended here, or closing the
  // gateway would wait for them forever.
  const streams = new Set<FastifyReply['raw']>();
  app.addHook('preClose', async () => {
    for (const raw of streams) raw.destroy();
    streams.clear();
  });

  for (const route of ROUTES) {
    const pool = options.upstreams[route.upstream];
    const handler = (request: FastifyRequest, reply: FastifyReply) => {
      if (route.stream) {
        streams.add(reply.raw);
        reply.raw.once('close', () => streams.delete(reply.raw));
      }
      // A replica that refused the connection, or is still starting, did nothing: the next one takes it.
      return fromReplica(
        reply,
        pool,
        request.url,
        {
          timeout: route.stream ? options.streamIdleTimeoutMs : options.timeoutMs,
          // The raw bytes and their content type, as the client sent them (never re-encoded).
          ...(Buffer.isBuffer(request.body) ? { body: request.body, contentType: request.headers['content-type'] ?? 'application/octet-stream' } : {}),
          // One request id end to end: the service logs the gateway's, and the client gets it back
          // even from a service that would answer with another.
          rewriteRequestHeaders: (_req, headers) => upstreamHeaders(headers, request.id),
          rewriteHeaders: (headers) => {
            // A reservation just made is named by its Location: the gateway's lines name it too.
            tagReservationOf(headers.location);
            return { ...headers, 'x-request-id': request.id };
          },
        },
        (r, error) => {
          request.log.warn({ err: error, upstream: route.upstream }, 'upstream failed');
          r.send(upstreamProblem(route.upstream, error));
        },
      );
    };
    // The owning service answers 405 and 406 itself (through this proxy): nothing is refused here.
    const passThrough = { config: { produces: [ANY_MEDIA_TYPE] } };
    app.all(route.prefix, passThrough, handler);
    app.all(`${route.prefix}/*`, passThrough, handler);
  }

  // Internal routes are not published: only reservation may take a hold, from inside.
  app.all('/books/:bookId/holds/*', async (request) => {
    throw new HttpProblem(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });

  // The operator's dead letters: every service's in one list, a replay routed by the id's prefix.
  await deadLetterGatewayRoutes(app, options);

  // What an operator looks at first: is every service up?
  app.get('/health/upstreams', async (_request, reply) => {
    const ready = async (url: string) => {
      try {
        return (await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(1000) })).ok;
      } catch {
        return false;
      }
    };
    const checks = await Promise.all(
      Object.values(options.upstreams).map(async (pool) => {
        const states = await Promise.all(pool.urls.map(ready));
        const up = states.filter(Boolean).length;
        return { name: pool.name, state: up > 0 ? ('up' as const) : ('down' as const), replicas: { up, total: states.length } };
      }),
    );
    // A service is up while one of its replicas is ready; how many are is in `replicas`.
    const services = Object.fromEntries(checks.map((c) => [c.name, c.state]));
    const replicas = Object.fromEntries(checks.map((c) => [c.name, c.replicas]));
    const up = checks.every((c) => c.state === 'up');
    return reply.status(up ? 200 : 503).send({ status: up ? 'up' : 'degraded', services, replicas });
  });
}
