import { Type } from 'typebox';
import { COMMON_PROBLEMS, ProblemSchema, requestContext, requireIdentity, type HttpApp } from '@bstore/platform';
import { NOTICE_KINDS } from '../../domain/notice.ts';
import type { Notice } from '../../application/ports.ts';
import type { ViewNotices } from '../../application/view-notices.ts';

export interface NotificationRouteDeps {
  notices: ViewNotices;
}

/** The error codes of this service and their HTTP statuses, in one place. */
export const notificationErrorStatus: Record<string, number> = {
  NOTICE_NOT_FOUND: 404,
};

const NoticeId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const CustomerId = Type.String({ pattern: '^[A-Za-z0-9._@-]{1,64}$', maxLength: 64 });
const Time = Type.String({ format: 'date-time' });
const guarded = { 400: ProblemSchema, ...COMMON_PROBLEMS };

const NoticeSchema = Type.Object({
  noticeId: Type.Integer(),
  customerId: Type.String(),
  reservationId: Type.Integer(),
  kind: Type.Enum([...NOTICE_KINDS], {
    description:
      'turnCame (a copy came to the patron in the waiting line), readyForPickup (with libraryName and deadline = pickup by), pickupTomorrow, expired, loanDueSoon (due in two days), overdue, refused, cancelled',
  }),
  bookId: Type.Integer(),
  bookName: Type.Union([Type.String(), Type.Null()]),
  libraryName: Type.Union([Type.String(), Type.Null()]),
  deadline: Type.Union([Time, Type.Null()], { description: 'the deadline the notice is about: pickup by, or due back; null when it has none' }),
  createdAt: Time,
  readAt: Type.Union([Time, Type.Null()]),
});

/** The JSON of a notice, the same on every route. */
export function noticeJson(notice: Notice) {
  return {
    noticeId: notice.noticeId,
    customerId: notice.customerId,
    reservationId: notice.reservationId,
    kind: notice.kind,
    bookId: notice.bookId,
    bookName: notice.bookName,
    libraryName: notice.libraryName,
    deadline: notice.deadline?.toISOString() ?? null,
    createdAt: notice.createdAt.toISOString(),
    readAt: notice.readAt?.toISOString() ?? null,
  };
}

/**
 * The notification service's HTTP adapter: a patron's notices, newest first, with the unread
 * count; marking one or all read. A patron sees only their own (another's is 404); staff read any
 * patron's.
 */
export async function notificationRoutes(app: HttpApp, deps: NotificationRouteDeps): Promise<void> {
  app.get(
    '/notifications',
    {
      onRequest: requireIdentity,
      schema: {
        querystring: Type.Object(
          {
            customerId: Type.Optional(CustomerId),
            unread: Type.Optional(Type.Boolean({ description: 'only unread notices' })),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(NoticeSchema, { description: 'newest first' }),
            total: Type.Integer({ description: 'notices matching the query' }),
            unread: Type.Integer({ description: "the patron's unread notices (all patrons' for staff without customerId)" }),
            limit: Type.Integer(),
            offset: Type.Integer(),
          }),
          ...guarded,
        },
      },
    },
    async (request) => {
      const { customerId, unread, limit, offset } = request.query;
      const result = await deps.notices.list({ ...(customerId ? { customerId } : {}), ...(unread ? { unreadOnly: true } : {}), limit, offset }, requestContext(request));
      return { items: result.items.map(noticeJson), total: result.total, unread: result.unread, limit, offset };
    },
  );

  app.post(
    '/notifications/read',
    {
      onRequest: requireIdentity,
      schema: {
        response: { 200: Type.Object({ marked: Type.Integer({ description: 'notices marked read by this call' }) }), ...guarded },
      },
    },
    async (request) => ({ marked: await deps.notices.markAllRead(requestContext(request)) }),
  );

  app.get(
    '/notifications/:noticeId',
    {
      onRequest: requireIdentity,
      schema: { params: Type.Object({ noticeId: NoticeId }), response: { 200: NoticeSchema, ...guarded } },
    },
    async (request) => noticeJson(await deps.notices.get(request.params.noticeId, requestContext(request))),
  );

  app.patch(
    '/notifications/:noticeId',
    {
      onRequest: requireIdentity,
      schema: {
        params: Type.Object({ noticeId: NoticeId }),
        body: Type.Object({ read: Type.Literal(true) }, { additionalProperties: false }),
        response: { 200: NoticeSchema, ...guarded },
      },
    },
    async (request) => noticeJson(await deps.notices.markRead(request.params.noticeId, requestContext(request))),
  );
}
