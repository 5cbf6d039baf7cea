import { Type } from 'typebox';
import { BODY_PROBLEMS, COMMON_PROBLEMS, HttpProblem, ProblemSchema, requestContext, requireIdentity, requireRole, type HttpApp } from '@bstore/platform';
import { ReservationStatusSchema } from '@bstore/contracts';
import type { BrowseReservations } from '../../application/browse-reservations/browse-reservations.service.ts';
import type { CancelReservation } from '../../application/cancel-reservation/cancel-reservation.service.ts';
import type { LendAtDesk } from '../../application/lend-at-desk/lend-at-desk.service.ts';
import type { PlaceReservation } from '../../application/place-reservation/place-reservation.service.ts';
import type { ReservationProps } from '../../domain/reservation.ts';
import type { idempotencyHooks } from './idempotency.ts';

export interface ReservationRouteDeps {
  placeReservation: PlaceReservation;
  cancelReservation: CancelReservation;
  lendAtDesk: LendAtDesk;
  browse: BrowseReservations;
  /** Seconds a client should wait before retrying when book is unavailable. */
  retryAfterSeconds: number;
  /** Idempotency-Key support for POST /reservations. */
  idempotency: ReturnType<typeof idempotencyHooks>;
}

export const reservationErrorStatus: Record<string, number> = {
  RESERVATION_NOT_FOUND: 404,
  RESERVATION_NOT_CANCELLABLE: 409,
  TOO_MANY_ACTIVE_RESERVATIONS: 409,
  ACTIVE_RESERVATION_EXISTS: 409,
  RESERVATION_NOT_AWAITING_PICKUP: 409,
  RESERVATION_NOT_ON_LOAN: 409,
  INVALID_TRANSITION: 409,
  STAFF_ONLY: 403,
};

const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const Status = ReservationStatusSchema;
const ReservationParams = Type.Object({ reservationId: Id }, { additionalProperties: false });

const ReservationSchema = Type.Object({
  reservationId: Type.Integer(),
  bookId: Type.Integer(),
  bookName: Type.Union([Type.String(), Type.Null()]),
  customerId: Type.String(),
  status: Status,
  preferredLibraryId: Type.Union([Type.Integer(), Type.Null()]),
  libraryId: Type.Union([Type.Integer(), Type.Null()]),
  libraryName: Type.Union([Type.String(), Type.Null()]),
  pickupBy: Type.Union([Type.String({ format: 'date-time', description: 'bookReserved: the copy waits for pickup until then' }), Type.Null()]),
  dueAt: Type.Union([Type.String({ format: 'date-time', description: 'bookLoaned: the loan is due then (overdue after)' }), Type.Null()]),
  queuePosition: Type.Union([Type.Integer({ minimum: 1, description: "bookWaiting: the place in the book's line, 1 = next" }), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

function toJson(r: ReservationProps) {
  return {
    reservationId: r.reservationId,
    bookId: r.bookId,
    bookName: r.bookName,
    customerId: r.customerId,
    status: r.status,
    preferredLibraryId: r.preferredLibraryId,
    libraryId: r.libraryId,
    libraryName: r.libraryName,
    pickupBy: r.pickupBy?.toISOString() ?? null,
    dueAt: r.dueAt?.toISOString() ?? null,
    queuePosition: r.status === 'bookWaiting' ? r.queuePosition : null,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/** A bad request, another customer's or no such reservation, a change its state forbids; and the common errors (401 without a token). */
const errors = { 400: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema, ...COMMON_PROBLEMS };

export async function reservationRoutes(app: HttpApp, deps: ReservationRouteDeps): Promise<void> {
  app.post(
    '/reservations',
    {
      schema: {
        body: Type.Object(
          {
            bookId: Id,
            preferredLibraryId: Type.Optional(Type.Union([Id, Type.Null()])),
            waitlist: Type.Optional(Type.Boolean({ description: "with no copy available, join the book's waiting line (201 bookWaiting) instead of 409 bookOutOfStock" })),
          },
          { additionalProperties: false },
        ),
        // 403: a staff token (patrons reserve); 409: out of stock, too many active, one of this book already active, or the Idempotency-Key in use;
        // 422: the Idempotency-Key reused with another body; 503: book unavailable or its circuit open.
        response: { 201: ReservationSchema, 403: ProblemSchema, 422: ProblemSchema, ...errors, ...BODY_PROBLEMS },
      },
      // Patrons reserve for themselves (design §10); a librarian's token is refused before anything is read.
      onRequest: requireRole('customer'),
      preHandler: deps.idempotency.preHandler,
      onSend: deps.idempotency.onSend,
    },
    async (request, reply) => {
      const { customerId } = requestContext(request);
      const idempotency = deps.idempotency.claimOf(request);
      const result = await deps.placeReservation.execute({ ...request.body, customerId, ...(idempotency ? { idempotency } : {}) });
      switch (result.kind) {
        case 'reserved':
          return reply.status(201).header('location', `/reservations/${result.reservation.reservationId}`).send(toJson(result.reservation));
        case 'outOfStock':
          throw new HttpProblem(409, 'BOOK_OUT_OF_STOCK', `no copy of book ${request.body.bookId} is available`, {
            extensions: { reservationId: result.reservation.reservationId, bookId: request.body.bookId, reservationStatus: 'bookOutOfStock' },
          });
        case 'tooManyHeld':
          // Book's count: copies of cancelled reservations count until they are back (ADR 0021).
          throw new HttpProblem(
            409,
            'TOO_MANY_ACTIVE_RESERVATIONS',
            `you already hold ${result.held ?? 'the most'} copies, the most allowed is ${result.limit ?? 'reached'}; a copy you gave up counts until it is back in stock, so retry in a moment`,
            { extensions: { ...(result.limit !== null ? { limit: result.limit } : {}), ...(result.held !== null ? { active: result.held } : {}) }, headers: { 'retry-after': '1' } },
          );
        case 'bookNotFound':
          throw new HttpProblem(404, 'BOOK_NOT_FOUND', `book ${request.body.bookId} does not exist`, { extensions: { bookId: request.body.bookId } });
        case 'unavailable':
          throw new HttpProblem(503, 'BOOK_SERVICE_UNAVAILABLE', 'the book service did not answer; nothing was reserved, please retry', {
            extensions: { service: 'book', reservationId: result.reservation.reservationId, reservationStatus: 'rejected' },
            headers: { 'retry-after': String(deps.retryAfterSeconds) },
          });
        case 'bookCircuitOpen': {
          // Book has been failing and calls to it are paused (ADR 0013). Nothing was stored, or, for a
          // retry whose key names a reservation still pending, that reservation is left as it is.
          const retryAfter = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
          if (result.pendingReservationId !== undefined) {
            throw new HttpProblem(503, 'BOOK_CIRCUIT_OPEN', 'the book service is failing and calls to it are paused; your reservation waits for it, please retry later with the same key', {
              extensions: { service: 'book', reservationId: result.pendingReservationId, reservationStatus: 'pending' },
              headers: { 'retry-after': retryAfter },
            });
          }
          throw new HttpProblem(503, 'BOOK_CIRCUIT_OPEN', 'the book service is failing and calls to it are paused; nothing was reserved, please retry later', {
            extensions: { service: 'book' },
            headers: { 'retry-after': retryAfter },
          });
        }
        case 'retry':
          // Nothing is held for this request: its reservation was refused meanwhile, or its key was taken over.
          throw new HttpProblem(
            409,
            'IDEMPOTENCY_KEY_IN_USE',
            result.reason === 'keyTakenOver'
              ? 'another request with this Idempotency-Key took it over; retry shortly'
              : 'this request\'s reservation was withdrawn while it waited for book; retry shortly',
            { headers: { 'retry-after': '1' } },
          );
      }
    },
  );

  app.get(
    '/reservations',
    {
      onRequest: requireIdentity,
      schema: {
        querystring: Type.Object(
          {
            status: Type.Optional(Status),
            customerId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._@-]{1,64}$', maxLength: 64 })),
            libraryId: Type.Optional(Id),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(ReservationSchema), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }),
          400: ProblemSchema,
          ...COMMON_PROBLEMS,
        },
      },
    },
    async (request) => {
      const { status, customerId, libraryId, limit, offset } = request.query;
      const page = await deps.browse.list(
        { limit, offset, ...(status ? { status } : {}), ...(customerId ? { customerId } : {}), ...(libraryId !== undefined ? { libraryId } : {}) },
        requestContext(request),
      );
      return { items: page.items.map(toJson), total: page.total, limit, offset };
    },
  );

  app.get(
    '/reservations/:reservationId',
    { onRequest: requireIdentity, schema: { params: ReservationParams, response: { 200: ReservationSchema, 400: ProblemSchema, 404: ProblemSchema, ...COMMON_PROBLEMS } } },
    async (request) => toJson(await deps.browse.get(request.params.reservationId, requestContext(request))),
  );

  app.patch(
    '/reservations/:reservationId',
    {
      onRequest: requireIdentity,
      schema: {
        params: ReservationParams,
        body: Type.Object(
          {
            status: Type.String({
              maxLength: 40,
              description: 'bookCancel (the patron or staff cancel; 202), bookLoaned (staff check the copy out; 200), bookReturned (staff check it in; 200)',
            }),
          },
          { additionalProperties: false },
        ),
        // 403: a patron asking for a staff action; 409: the reservation's state does not allow the change.
        response: {
          200: ReservationSchema,
          202: Type.Object({ reservationId: Type.Integer(), status: Type.Literal('bookCancel') }),
          403: ProblemSchema,
          ...errors,
          ...BODY_PROBLEMS,
        },
      },
    },
    async (request, reply) => {
      const cmd = { reservationId: request.params.reservationId, requester: requestContext(request) };
      switch (request.body.status) {
        case 'bookCancel': {
          const r = await deps.cancelReservation.execute(cmd);
          return reply.status(202).send({ reservationId: r.reservationId, status: 'bookCancel' as const });
        }
        case 'bookLoaned':
          return reply.status(200).send(toJson(await deps.lendAtDesk.checkOut(cmd)));
        case 'bookReturned':
          return reply.status(200).send(toJson(await deps.lendAtDesk.checkIn(cmd)));
        default:
          throw new HttpProblem(
            400,
            'STATUS_CHANGE_NOT_ALLOWED',
            `only {"status":"bookCancel"}, and for staff {"status":"bookLoaned"} (check-out) and {"status":"bookReturned"} (check-in), are accepted; other statuses change through the lifecycle, not by request`,
          );
      }
    },
  );
}
