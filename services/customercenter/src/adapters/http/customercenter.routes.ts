import type { ServerResponse } from 'node:http';
import { Type } from 'typebox';
import { RESERVATION_STATUSES } from '@bstore/contracts';
import { COMMON_PROBLEMS, ProblemSchema, requestContext, requireIdentity, type HttpApp } from '@bstore/platform';
import type { ReservationPageDetail } from '../../application/ports.ts';
import type { ViewReservationPages } from '../../application/view-reservation-pages/view-reservation-pages.service.ts';
import type { WatchReservationPages } from '../../application/watch-reservation-pages/watch-reservation-pages.service.ts';

export interface CustomerCenterRouteDeps {
  pages: ViewReservationPages;
  watch: WatchReservationPages;
  /** Interval of the SSE comment that keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
}

/** The error codes of this service and their HTTP statuses, in one place. */
export const customercenterErrorStatus: Record<string, number> = {
  RESERVATION_PAGE_NOT_FOUND: 404,
};

const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const CustomerId = Type.String({ pattern: '^[A-Za-z0-9._@-]{1,64}$', maxLength: 64 });
const Status = Type.Enum([...RESERVATION_STATUSES]);
const Time = Type.String({ format: 'date-time' });

/** What every route here can answer besides success: a bad query or path, and the common errors (401 without a token). */
const guarded = { 400: ProblemSchema, ...COMMON_PROBLEMS };

const TimelineEntrySchema = Type.Object({
  eventId: Type.String(),
  eventType: Type.String(),
  status: Status,
  service: Type.String({ description: 'the service that emitted the event' }),
  occurredAt: Time,
  traceId: Type.Union([Type.String({ pattern: '^[0-9a-f]{32}$' }), Type.Null()], {
    description: 'the W3C trace id of the event (its trace in the tracing backend), null when the event carried none',
  }),
});

const ReservationPageSchema = Type.Object({
  reservationId: Type.Integer(),
  bookId: Type.Integer(),
  bookName: Type.Union([Type.String(), Type.Null()], { description: 'null until ReservationRequested arrived' }),
  customerId: Type.String(),
  status: Status,
  libraryId: Type.Union([Type.Integer(), Type.Null()]),
  libraryName: Type.Union([Type.String(), Type.Null()]),
  pickupBy: Type.Union([Time, Type.Null()], {
    description: 'until when the held copy waits for pickup at the library (from ReservationAccepted, or the ReservationExpired that names it); null until known',
  }),
  dueAt: Type.Union([Time, Type.Null()], { description: 'when the loaned copy is due back (from ReservationCheckedOut); null unless it was loaned' }),
  queuePosition: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
    description: "place in the book's waiting line while bookWaiting (1 = next to get a copy); null in any other status",
  }),
  createdAt: Time,
  updatedAt: Time,
  timeline: Type.Array(TimelineEntrySchema, { description: 'oldest first' }),
});

const PageOfPages = Type.Object({
  items: Type.Array(ReservationPageSchema),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});

/** The JSON of a page, the same on every route and on the live stream. */
export function pageJson(page: ReservationPageDetail) {
  return {
    reservationId: page.reservationId,
    bookId: page.bookId,
    bookName: page.bookName,
    customerId: page.customerId,
    status: page.status,
    libraryId: page.libraryId,
    libraryName: page.libraryName,
    pickupBy: page.pickupBy?.toISOString() ?? null,
    dueAt: page.dueAt?.toISOString() ?? null,
    // The queue ticket is internal: the place in line is what a patron reads.
    queuePosition: page.queuePosition,
    createdAt: page.createdAt.toISOString(),
    updatedAt: page.updatedAt.toISOString(),
    timeline: page.timeline.map((e) => ({
      eventId: e.eventId,
      eventType: e.eventType,
      status: e.status,
      service: e.service,
      occurredAt: e.occurredAt.toISOString(),
      traceId: e.traceId,
    })),
  };
}

/** A stream whose client reads slower than this is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Customer center's HTTP adapter: the read model, for the page's owner or staff. Every page
 * carries its timeline, its deadlines and its place in line, in the list too.
 * GET /reservationPages/stream is Server-Sent Events.
 */
export async function customercenterRoutes(app: HttpApp, deps: CustomerCenterRouteDeps): Promise<void> {
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const streams = new Set<ServerResponse>();

  // Open streams never go idle, so the server's close would wait for them for ever.
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.get(
    '/reservationPages',
    {
      onRequest: requireIdentity,
      schema: {
        querystring: Type.Object(
          {
            status: Type.Optional(Status),
            customerId: Type.Optional(CustomerId),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: PageOfPages, ...guarded },
      },
    },
    async (request) => {
      const { status, customerId, limit, offset } = request.query;
      const result = await deps.pages.list(
        { ...(status ? { status } : {}), ...(customerId ? { customerId } : {}), limit, offset },
        requestContext(request),
      );
      return { items: result.items.map(pageJson), total: result.total, limit, offset };
    },
  );

  // Before /:reservationId, so that "stream" is never read as an id.
  app.get(
    '/reservationPages/stream',
    {
      onRequest: requireIdentity,
      // Checked against the Accept header by createHttpApp: a client that takes only JSON gets 406.
      config: { produces: ['text/event-stream'] },
      schema: {
        querystring: Type.Object({}, { additionalProperties: false }),
        response: {
          200: Type.String({
            description:
              "text/event-stream: `event: reservationPage` messages whose data is a page, sent when the page changes and when its place in its book's waiting line (`queuePosition`) moves",
          }),
          ...guarded,
        },
      },
    },
    async (request, reply) => {
      const viewer = requestContext(request); // verified before the stream opens (requireIdentity)
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      });

      const write = (chunk: string) => {
        if (res.writableEnded || res.destroyed) return;
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          request.log.warn({ customerId: viewer.customerId }, 'page stream client too slow; closing');
          res.destroy();
          return;
        }
        res.write(chunk);
      };
      const unwatch = deps.watch.watch(viewer, (page) => write(`event: reservationPage\ndata: ${JSON.stringify(pageJson(page))}\n\n`));
      const heartbeat = setInterval(() => write(': heartbeat\n\n'), heartbeatMs);
      heartbeat.unref();
      streams.add(res);
      res.on('close', () => {
        clearInterval(heartbeat);
        unwatch();
        streams.delete(res);
        request.log.debug({ customerId: viewer.customerId }, 'page stream closed');
      });
      // Sends the headers now: the client knows the stream is open, and watching has begun.
      write(': connected\n\n');
    },
  );

  app.get(
    '/reservationPages/:reservationId',
    {
      onRequest: requireIdentity,
      schema: { params: Type.Object({ reservationId: Id }, { additionalProperties: false }), response: { 200: ReservationPageSchema, ...guarded, 404: ProblemSchema } },
    },
    async (request) => pageJson(await deps.pages.get(request.params.reservationId, requestContext(request))),
  );
}
