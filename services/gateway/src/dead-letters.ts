import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { COMMON_PROBLEMS, DEAD_LETTER_ID_PATTERN, DEAD_LETTER_LIST_QUERY, DeadLetterSchema, HttpProblem, ProblemSchema, ReplayOutcomeSchema, parseDeadLetterId, requireRole, type DeadLetterJson, type HttpApp } from '@bstore/platform/http';
import { withTraceHeaders } from '@bstore/platform/observability';
import { fromReplica, fromStartingReplica, upstreamHeaders, upstreamProblem, type Upstream, type UpstreamPools } from './upstreams.ts';

export interface DeadLetterGatewayOptions {
  /** The services' replicas: they share their service's database, so any one answers for it. */
  upstreams: UpstreamPools;
  /** Longest wait for one service's answer; a service slower than this is listed as failed. */
  timeoutMs: number;
}

/**
 * The merged list can reach this far (offset + limit) into the newest letters of all services:
 * each is asked for its newest `offset + limit`, in pages of its maximum. Deeper, page one service
 * with `?service=`.
 */
export const AGGREGATE_WINDOW = 1000;
const SERVICE_PAGE_MAX = 100;

/** The bearer token, passed to the services, which verify it and check the role again. */
const IDENTITY_HEADERS = ['authorization'] as const;

const FailureSchema = Type.Object({
  service: Type.String(),
  status: Type.Integer({ description: 'the HTTP status the service answered, or 502/503/504 from the gateway' }),
  code: Type.String(),
  detail: Type.String(),
});

const AggregateSchema = Type.Object({
  items: Type.Array(DeadLetterSchema),
  total: Type.Integer({ description: 'the letters of the services that answered' }),
  limit: Type.Integer(),
  offset: Type.Integer(),
  /** True when a service did not answer: its letters are missing from items and total. */
  partial: Type.Boolean(),
  failures: Type.Array(FailureSchema),
});

/** The gateway's own errors on these routes besides the common ones: rate limited (429), a service down, slow or broken (502, 503, 504). */
const EDGE_PROBLEMS = { ...COMMON_PROBLEMS, 429: ProblemSchema, 502: ProblemSchema, 504: ProblemSchema };

type Failure = { service: Upstream; status: number; code: string; detail: string };

class ServiceFailure extends Error {
  readonly failure: Failure;

  constructor(failure: Failure) {
    super(failure.detail);
    this.failure = failure;
  }
}

function isPage(body: unknown): body is { items: DeadLetterJson[]; total: number } {
  const page = body as { items?: unknown; total?: unknown } | null;
  return typeof page === 'object' && page !== null && Array.isArray(page.items) && typeof page.total === 'number';
}

/** Newest first; letters parked in the same millisecond by service, then highest number first. */
function newestFirst(a: DeadLetterJson, b: DeadLetterJson): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  return (parseDeadLetterId(b.id)?.id ?? 0) - (parseDeadLetterId(a.id)?.id ?? 0);
}

/**
 * The operator's dead letters through the gateway (staff only, checked here and again by each
 * service):
 * - `GET /admin/dead-letters?limit&offset&pending&service` merges the four services' lists, newest
 *   first; a service that does not answer is listed in `failures` (and `partial` is true) while the
 *   others' letters are still shown. Only when no service answered is the answer an error.
 * - `GET /admin/dead-letters/{id}` and `POST /admin/dead-letters/{id}/replay` go to the service the
 *   id names (`book-12` -> book), whose answer passes through unchanged.
 */
export async function deadLetterGatewayRoutes(app: HttpApp, options: DeadLetterGatewayOptions): Promise<void> {
  const services = Object.keys(options.upstreams) as Upstream[];

  const identity = (request: FastifyRequest): Record<string, string> => {
    const headers: Record<string, string> = withTraceHeaders({ 'x-request-id': request.id });
    for (const name of IDENTITY_HEADERS) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    return headers;
  };

  /** The newest `offset + limit` letters of one service (or exactly its page, with `exact`). */
  const collect = async (service: Upstream, request: FastifyRequest, query: { limit: number; offset: number; pending: boolean; exact: boolean }) => {
    const signal = AbortSignal.timeout(options.timeoutMs);
    const items: DeadLetterJson[] = [];
    let total = 0;
    const want = query.exact ? query.limit : query.offset + query.limit;
    for (let from = query.exact ? query.offset : 0; items.length < want; from += SERVICE_PAGE_MAX) {
      const limit = Math.min(SERVICE_PAGE_MAX, want - items.length);
      const path = `/admin/dead-letters?limit=${limit}&offset=${from}${query.pending ? '&pending=true' : ''}`;
      let res: Response;
      let body: unknown;
      try {
        res = await options.upstreams[service].attempt((base) => fetch(`${base}${path}`, { headers: identity(request), signal }), fromStartingReplica);
        body = await res.json().catch(() => undefined);
      } catch (err) {
        const timedOut = (err as { name?: unknown }).name === 'TimeoutError';
        const problem = timedOut
          ? new HttpProblem(504, 'UPSTREAM_TIMEOUT', `the ${service} service did not answer in time`)
          : upstreamProblem(service, err);
        throw new ServiceFailure({ service, status: problem.status, code: problem.code, detail: problem.message });
      }
      if (!res.ok || !isPage(body)) {
        const problem = body as { code?: unknown; detail?: unknown } | undefined;
        throw new ServiceFailure({
          service,
          status: res.ok ? 502 : res.status,
          code: typeof problem?.code === 'string' ? problem.code : 'BAD_GATEWAY',
          detail: typeof problem?.detail === 'string' ? problem.detail : `the ${service} service gave an invalid answer`,
        });
      }
      items.push(...body.items);
      total = body.total;
      if (body.items.length < limit) break;
    }
    return { items, total };
  };

  app.get(
    '/admin/dead-letters',
    {
      onRequest: requireRole('staff'),
      schema: {
        querystring: Type.Object(
          {
            ...DEAD_LETTER_LIST_QUERY,
            service: Type.Optional(Type.Union(services.map((s) => Type.Literal(s)))),
          },
          { additionalProperties: false },
        ),
        response: { 200: AggregateSchema, 400: ProblemSchema, 403: ProblemSchema, ...EDGE_PROBLEMS },
      },
    },
    async (request) => {
      const { limit, offset, pending = false, service } = request.query;
      const exact = service !== undefined;
      if (!exact && offset + limit > AGGREGATE_WINDOW) {
        throw new HttpProblem(400, 'AGGREGATE_WINDOW_EXCEEDED', `offset + limit may be at most ${AGGREGATE_WINDOW} across all services; page one service with ?service=`);
      }
      const asked = exact ? [service] : services;
      const answers = await Promise.allSettled(asked.map((s) => collect(s, request, { limit, offset, pending, exact })));
      const failures: Failure[] = [];
      const items: DeadLetterJson[] = [];
      let total = 0;
      answers.forEach((answer, i) => {
        if (answer.status === 'fulfilled') {
          items.push(...answer.value.items);
          total += answer.value.total;
        } else {
          const failure = answer.reason instanceof ServiceFailure
            ? answer.reason.failure
            : { service: asked[i]!, status: 502, code: 'BAD_GATEWAY', detail: String(answer.reason) };
          request.log.warn({ failure }, 'dead letters of a service could not be listed');
          failures.push(failure);
        }
      });
      if (failures.length === asked.length) {
        const only = failures.length === 1 ? failures[0] : undefined;
        throw new HttpProblem(only?.status ?? 503, only?.code ?? 'UPSTREAM_UNAVAILABLE', only?.detail ?? 'no service answered', {
          extensions: { failures, ...(only ? { service: only.service } : {}) },
          headers: { 'retry-after': '5' },
        });
      }
      items.sort(newestFirst);
      return { items: exact ? items : items.slice(offset, offset + limit), total, limit, offset, partial: failures.length > 0, failures };
    },
  );

  const IdParams = Type.Object({ id: Type.String({ pattern: DEAD_LETTER_ID_PATTERN, maxLength: 80 }) }, { additionalProperties: false });

  /** Sends the request to the service the id names; its answer (or a 502/503/504 naming it) goes back as it is. */
  const forward = (suffix: string) => async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const { id } = request.params;
    const owner = parseDeadLetterId(id)?.service;
    if (owner === undefined || !services.includes(owner as Upstream)) {
      throw new HttpProblem(404, 'DEAD_LETTER_NOT_FOUND', `no dead letter ${id}: its prefix names no service`, { extensions: { deadLetterId: id } });
    }
    const upstream = owner as Upstream;
    return fromReplica(
      reply,
      options.upstreams[upstream],
      `/admin/dead-letters/${id}${suffix}`,
      {
        timeout: options.timeoutMs,
        // A replay takes no body: whatever came is not passed on.
        ...(request.method === 'POST' ? { body: null } : {}),
        rewriteRequestHeaders: (_req, headers) => upstreamHeaders(headers, request.id),
      },
      (r, error) => {
        request.log.warn({ err: error, upstream }, 'upstream failed');
        r.send(upstreamProblem(upstream, error));
      },
    );
  };

  // The owning service's answer passes through as it is: these describe it (and the gateway's own errors).
  const forwarded = { 400: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema, ...EDGE_PROBLEMS };
  app.get('/admin/dead-letters/:id', { onRequest: requireRole('staff'), schema: { params: IdParams, response: { 200: DeadLetterSchema, ...forwarded } } }, forward(''));
  app.post(
    '/admin/dead-letters/:id/replay',
    {
      onRequest: requireRole('staff'),
      // 409: replayed before or failing again; 422: the event is malformed; 413: a body over the limit (it is not passed on).
      schema: { params: IdParams, response: { 200: ReplayOutcomeSchema, ...forwarded, 409: ProblemSchema, 413: ProblemSchema, 422: ProblemSchema } },
    },
    forward('/replay'),
  );
}
