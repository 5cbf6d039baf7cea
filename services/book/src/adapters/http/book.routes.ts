import { Type } from 'typebox';
import { BODY_PROBLEMS, COMMON_PROBLEMS, INTERNAL_ROUTE, ProblemSchema, requireRole, type HttpApp } from '@bstore/platform';
import type { AdjustCopies } from '../../application/adjust-copies/adjust-copies.service.ts';
import type { BrowseCatalogue } from '../../application/browse-catalogue/browse-catalogue.service.ts';
import type { CreateBook } from '../../application/create-book/create-book.service.ts';
import type { HoldCopy } from '../../application/hold-copy/hold-copy.service.ts';
import type { BookProps } from '../../domain/book.ts';

export interface BookRouteDeps {
  createBook: CreateBook;
  adjustCopies: AdjustCopies;
  holdCopy: HoldCopy;
  catalogue: BrowseCatalogue;
}

/** The error codes of this service and their HTTP statuses, in one place. */
export const bookErrorStatus: Record<string, number> = {
  INVALID_BOOK: 400,
  INVALID_DELTA: 400,
  BOOK_NOT_FOUND: 404,
  BOOK_OUT_OF_STOCK: 409,
  NOT_ENOUGH_AVAILABLE_COPIES: 409,
  HOLD_RELEASED: 409,
  HOLD_CONFLICT: 409,
  TOO_MANY_HELD_COPIES: 409,
};

const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });
const CustomerId = Type.String({ pattern: '^[A-Za-z0-9._@-]{1,64}$', maxLength: 64 });
const BookParams = Type.Object({ bookId: Id }, { additionalProperties: false });

const BookSchema = Type.Object({
  bookId: Type.Integer(),
  bookName: Type.String(),
  author: Type.Union([Type.String(), Type.Null()]),
  isbn: Type.Union([Type.String(), Type.Null()]),
  quantity: Type.Integer({ description: 'copies available to reserve now' }),
  copies: Type.Integer({ description: 'copies owned: available, plus held for reservations, plus on loan' }),
});

const BookPage = Type.Object({
  items: Type.Array(BookSchema),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});

const HoldSchema = Type.Object({
  reservationId: Type.Integer(),
  bookId: Type.Integer(),
  bookName: Type.String(),
  quantity: Type.Integer(),
  status: Type.Union([Type.Literal('held'), Type.Literal('waiting')]),
  /** While waiting: the place in line (1 = next) and the ticket that orders the line. */
  queuePosition: Type.Union([Type.Integer(), Type.Null()]),
  queueTicket: Type.Union([Type.Integer(), Type.Null()]),
});

const toJson = (b: BookProps) => b;

/**
 * Book's HTTP adapter. Public: the catalogue. Staff (requireRole): books and copies. Internal: the
 * hold, called by reservation only; the gateway does not publish it.
 */
export async function bookRoutes(app: HttpApp, deps: BookRouteDeps): Promise<void> {
  app.get(
    '/books',
    {
      schema: {
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ maxLength: 100 })),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: BookPage, 400: ProblemSchema, ...COMMON_PROBLEMS },
      },
    },
    async (request) => {
      const { q, limit, offset } = request.query;
      const page = await deps.catalogue.list({ ...(q ? { q } : {}), limit, offset });
      return { items: page.items.map(toJson), total: page.total, limit, offset };
    },
  );

  app.get(
    '/books/:bookId',
    { schema: { params: BookParams, response: { 200: BookSchema, 400: ProblemSchema, 404: ProblemSchema, ...COMMON_PROBLEMS } } },
    async (request) => toJson(await deps.catalogue.get(request.params.bookId)),
  );

  app.post(
    '/books',
    {
      onRequest: requireRole('staff'),
      schema: {
        body: Type.Object(
          {
            bookName: Type.String({ minLength: 1, maxLength: 300 }),
            author: Type.Optional(Type.String({ maxLength: 200 })),
            isbn: Type.Optional(Type.String({ pattern: '^[0-9Xx-]{10,17}$', maxLength: 17 })),
            quantity: Type.Integer({ minimum: 0, maximum: 100_000 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: BookSchema, 400: ProblemSchema, 403: ProblemSchema, ...COMMON_PROBLEMS, ...BODY_PROBLEMS },
      },
    },
    async (request, reply) => {
      const book = await deps.createBook.execute(request.body);
      return reply.status(201).header('location', `/books/${book.bookId}`).send(toJson(book));
    },
  );

  app.post(
    '/books/:bookId/copies',
    {
      onRequest: requireRole('staff'),
      schema: {
        params: BookParams,
        body: Type.Object({ delta: Type.Integer({ minimum: -100_000, maximum: 100_000 }) }, { additionalProperties: false }),
        // 409: fewer copies available than the delta takes away.
        response: { 200: BookSchema, 400: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema, ...COMMON_PROBLEMS, ...BODY_PROBLEMS },
      },
    },
    async (request) => toJson(await deps.adjustCopies.execute({ bookId: request.params.bookId, delta: request.body.delta })),
  );

  // Internal: reservation's synchronous call. PUT because it is idempotent by reservationId.
  app.put(
    '/books/:bookId/holds/:reservationId',
    {
      // Only a service token (reservation's) is accepted here, never a user's: see docs/security.md.
      config: INTERNAL_ROUTE,
      schema: {
        // Internal (reservation's synchronous call), never published by the gateway: kept out of the API documents.
        hide: true,
        params: Type.Object({ bookId: Id, reservationId: Id }, { additionalProperties: false }),
        // waitlist: with no copy available, join the book's waiting line (answer `waiting`) instead of 409.
        body: Type.Object({ customerId: CustomerId, waitlist: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        // 401: no service token (a user's is never one); 409: out of stock, the patron holds the most copies allowed, or the hold released or held for another.
        response: { 200: HoldSchema, 201: HoldSchema, 400: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema, ...COMMON_PROBLEMS, ...BODY_PROBLEMS },
      },
    },
    async (request, reply) => {
      const held = await deps.holdCopy.execute({ ...request.params, customerId: request.body.customerId, waitlist: request.body.waitlist === true });
      return reply.status(held.created ? 201 : 200).send({
        reservationId: held.reservationId,
        bookId: held.bookId,
        bookName: held.bookName,
        quantity: held.quantity,
        status: held.status,
        queuePosition: held.queuePosition,
        queueTicket: held.queueTicket,
      });
    },
  );
}
