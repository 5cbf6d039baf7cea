import { Type } from 'typebox';
import { BODY_PROBLEMS, COMMON_PROBLEMS, ProblemSchema, requireRole, type HttpApp } from '@bstore/platform';
import type { BrowseAssignments } from '../../application/browse-assignments/browse-assignments.service.ts';
import type { BrowseLibraries } from '../../application/browse-libraries/browse-libraries.service.ts';
import type { CreateLibrary } from '../../application/create-library/create-library.service.ts';
import type { AssignmentRecord } from '../../application/ports.ts';
import { LIBRARY_ADDRESS_MAX, LIBRARY_NAME_MAX } from '../../domain/library.ts';

export interface AssignmentRouteDeps {
  createLibrary: CreateLibrary;
  libraries: BrowseLibraries;
  assignments: BrowseAssignments;
}

/** The error codes of this service and their HTTP statuses, in one place. */
export const assignmentErrorStatus: Record<string, number> = {
  INVALID_LIBRARY: 400,
  LIBRARY_EXISTS: 409,
  NO_LIBRARY_AVAILABLE: 503,
};

const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647 });

const LibrarySchema = Type.Object({
  libraryId: Type.Integer(),
  name: Type.String(),
  address: Type.Union([Type.String(), Type.Null()]),
});

const LibraryWithLoad = Type.Object({
  libraryId: Type.Integer(),
  name: Type.String(),
  address: Type.Union([Type.String(), Type.Null()]),
  activeAssignments: Type.Integer({ description: 'reservations the branch serves now' }),
});

const AssignmentSchema = Type.Object({
  assignmentId: Type.Integer(),
  reservationId: Type.Integer(),
  bookId: Type.Integer(),
  customerId: Type.String(),
  libraryId: Type.Union([Type.Integer(), Type.Null()]),
  libraryName: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('assigned'), Type.Literal('released'), Type.Literal('voided'), Type.Literal('failed'), Type.Literal('closed')]),
  createdAt: Type.String({ format: 'date-time' }),
});

const AssignmentPage = Type.Object({
  items: Type.Array(AssignmentSchema),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});

const toJson = (a: AssignmentRecord) => ({
  assignmentId: a.assignmentId,
  reservationId: a.reservationId,
  bookId: a.bookId,
  customerId: a.customerId,
  libraryId: a.libraryId,
  libraryName: a.libraryName,
  status: a.status,
  createdAt: a.createdAt.toISOString(),
});

/**
 * Assignment's HTTP adapter. Public: the library branches. Staff (requireRole): new branches and the
 * assignments. Assignments themselves are made by events only.
 */
export async function assignmentRoutes(app: HttpApp, deps: AssignmentRouteDeps): Promise<void> {
  app.get('/libraries', { schema: { response: { 200: Type.Object({ items: Type.Array(LibraryWithLoad) }), ...COMMON_PROBLEMS } } }, async () => {
    const loads = await deps.libraries.list();
    return { items: loads.map((l) => ({ ...l.library, activeAssignments: l.activeAssignments })) };
  });

  app.post(
    '/libraries',
    {
      onRequest: requireRole('staff'),
      schema: {
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: LIBRARY_NAME_MAX }),
            address: Type.Optional(Type.String({ maxLength: LIBRARY_ADDRESS_MAX })),
          },
          { additionalProperties: false },
        ),
        response: { 201: LibrarySchema, 400: ProblemSchema, 403: ProblemSchema, 409: ProblemSchema, ...COMMON_PROBLEMS, ...BODY_PROBLEMS },
      },
    },
    async (request, reply) => reply.status(201).send(await deps.createLibrary.execute(request.body)),
  );

  app.get(
    '/assignments',
    {
      onRequest: requireRole('staff'),
      schema: {
        querystring: Type.Object(
          {
            reservationId: Type.Optional(Id),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: AssignmentPage, 400: ProblemSchema, 403: ProblemSchema, ...COMMON_PROBLEMS },
      },
    },
    async (request) => {
      const { reservationId, limit, offset } = request.query;
      const page = await deps.assignments.list({ ...(reservationId !== undefined ? { reservationId } : {}), limit, offset });
      return { items: page.items.map(toJson), total: page.total, limit, offset };
    },
  );
}
