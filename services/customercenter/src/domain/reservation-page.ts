import { STATUS_RANK, type ReservationStatus } from '@bstore/contracts';

/** The lifecycle events a page is built from. */
export const PAGE_EVENT_TYPES = [
  'ReservationRequested',
  'ReservationRejected',
  'ReservationAccepted',
  'ReservationCancelRequested',
  'ReservationCanceled',
  'ReservationWaitlisted',
  'CopyGranted',
  'ReservationCheckedOut',
  'ReservationReturned',
  'ReservationExpired',
] as const;

export type PageEventType = (typeof PAGE_EVENT_TYPES)[number];

/**
 * What one lifecycle event says about its reservation. Fields an event does not carry are null
 * (ReservationRequested, ReservationRejected, ReservationWaitlisted and CopyGranted know the book's
 * name, only ReservationAccepted the library, ReservationAccepted and ReservationExpired the pickup
 * deadline, ReservationCheckedOut the due date, ReservationWaitlisted and CopyGranted the ticket).
 */
export interface PageChange {
  readonly reservationId: number;
  readonly bookId: number;
  readonly customerId: string;
  readonly status: ReservationStatus;
  readonly bookName: string | null;
  readonly libraryId: number | null;
  readonly libraryName: string | null;
  /** Until when the held copy waits for pickup. */
  readonly pickupBy: Date | null;
  /** When the loan is due back. */
  readonly dueAt: Date | null;
  /** The reservation's ticket in its book's waiting line (smaller joined earlier). */
  readonly queueTicket: number | null;
  readonly eventId: string;
  readonly eventType: PageEventType;
  /** The envelope's CloudEvents `source`, e.g. `bstore/assignment`. */
  readonly source: string;
  readonly occurredAt: Date;
  /** The W3C trace id of the event's `traceparent` (see `traceIdOf`), null when it had none or a malformed one. */
  readonly traceId: string | null;
}

/** A patron's view of one reservation: the read model, built only from events. */
export interface ReservationPage {
  readonly reservationId: number;
  readonly bookId: number;
  readonly bookName: string | null;
  readonly customerId: string;
  readonly status: ReservationStatus;
  readonly libraryId: number | null;
  readonly libraryName: string | null;
  /** Until when the held copy waits on the branch's hold shelf (ReservationAccepted, or ReservationExpired), null if unknown. */
  readonly pickupBy: Date | null;
  /** When the loaned copy is due back (ReservationCheckedOut), null if not loaned. */
  readonly dueAt: Date | null;
  /**
   * The reservation's ticket in its book's waiting line (ReservationWaitlisted, CopyGranted):
   * internal, it orders the line; the API shows the place in line (`queuePositionOf`) instead.
   */
  readonly queueTicket: number | null;
  /** Time of the earliest event seen, so that the page does not depend on arrival order. */
  readonly createdAt: Date;
  /** Time of the latest event seen. */
  readonly updatedAt: Date;
}

/** One step of a reservation's history, as shown to the patron. */
export interface TimelineEntry {
  readonly eventId: string;
  readonly eventType: PageEventType;
  readonly status: ReservationStatus;
  /** The service that emitted the event (`assignment` for source `bstore/assignment`). */
  readonly service: string;
  readonly occurredAt: Date;
  /** The trace the event belongs to (32 lowercase hex), so an operator can open it in the tracing backend; null if unknown. */
  readonly traceId: string | null;
}

/** The service name in a CloudEvents source: its last path segment. */
export function serviceOf(source: string): string {
  const name = source.slice(source.lastIndexOf('/') + 1);
  return name.length > 0 ? name : source;
}

/**
 * The status after `current` meets `next`: the one further along the lifecycle, so a late event
 * never moves a page backwards. On equal rank the known status stays (two different terminal
 * statuses for one reservation do not happen in the lifecycle).
 */
export function advanceStatus(current: ReservationStatus, next: ReservationStatus): ReservationStatus {
  return STATUS_RANK[next] > STATUS_RANK[current] ? next : current;
}

/** The page a single change describes. */
export function pageOf(change: PageChange): ReservationPage {
  return {
    reservationId: change.reservationId,
    bookId: change.bookId,
    bookName: change.bookName,
    customerId: change.customerId,
    status: change.status,
    libraryId: change.libraryId,
    libraryName: change.libraryName,
    pickupBy: change.pickupBy,
    dueAt: change.dueAt,
    queueTicket: change.queueTicket,
    createdAt: change.occurredAt,
    updatedAt: change.occurredAt,
  };
}

/**
 * Merges what is known with what arrived. Known values are never replaced by null, the status
 * only moves forward, and the times widen; so merging the same changes in any order, or one twice,
 * gives the same page. Storage adapters implement exactly this rule (the PostgreSQL adapter in its
 * upsert) and their tests check them against it.
 */
export function mergePages(known: ReservationPage, incoming: ReservationPage): ReservationPage {
  return {
    reservationId: known.reservationId,
    bookId: known.bookId,
    bookName: known.bookName ?? incoming.bookName,
    customerId: known.customerId,
    status: advanceStatus(known.status, incoming.status),
    libraryId: known.libraryId ?? incoming.libraryId,
    libraryName: known.libraryName ?? incoming.libraryName,
    pickupBy: known.pickupBy ?? incoming.pickupBy,
    dueAt: known.dueAt ?? incoming.dueAt,
    queueTicket: known.queueTicket ?? incoming.queueTicket,
    createdAt: incoming.createdAt < known.createdAt ? incoming.createdAt : known.createdAt,
    updatedAt: incoming.updatedAt > known.updatedAt ? incoming.updatedAt : known.updatedAt,
  };
}

/**
 * The page after one event, whatever came before it.
 *
 * @example
 * const page = applyChange(null, accepted);   // bookReserved, library known, book name not yet
 * const later = applyChange(page, requested); // still bookReserved, now with the book name
 */
export function applyChange(page: ReservationPage | null, change: PageChange): ReservationPage {
  if (page && page.reservationId !== change.reservationId) {
    throw new Error(`change for reservation ${change.reservationId} applied to page ${page.reservationId}`);
  }
  return page ? mergePages(page, pageOf(change)) : pageOf(change);
}

/** The timeline entry of a change: the status the event itself carries, not the page's. */
export function timelineEntryOf(change: PageChange): TimelineEntry {
  return {
    eventId: change.eventId,
    eventType: change.eventType,
    status: change.status,
    service: serviceOf(change.source),
    occurredAt: change.occurredAt,
    traceId: change.traceId,
  };
}

/** Timeline order: by event time, then by event id (UUID v7, itself time-ordered). */
export function compareTimelineEntries(a: TimelineEntry, b: TimelineEntry): number {
  const byTime = a.occurredAt.getTime() - b.occurredAt.getTime();
  if (byTime !== 0) return byTime;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

/**
 * A page's place in its book's waiting line: for a `bookWaiting` page, 1 + the number of
 * `bookWaiting` pages of the same book with a smaller queue ticket (1 = next to get a copy); null
 * for a page in any other status. The stores compute it at read time by this rule (`pages`: at
 * least every waiting page of the book).
 */
export function queuePositionOf(page: ReservationPage, pages: readonly ReservationPage[]): number | null {
  if (page.status !== 'bookWaiting' || page.queueTicket === null) return null;
  const ticket = page.queueTicket;
  return 1 + pages.filter((p) => p.bookId === page.bookId && p.status === 'bookWaiting' && p.queueTicket !== null && p.queueTicket < ticket).length;
}

/**
 * Whether the event `eventId` moved its page into or out of `bookWaiting`, judged from the page's
 * timeline read after the event was stored: the status its other entries make (what the page was
 * without it) against the status with it. Then the other waiting pages of the book changed place
 * in line. The page's status is the fold of its entries' statuses by `advanceStatus`, whatever
 * their order, so this needs no record of the status before.
 */
export function movedThroughWaiting(timeline: readonly TimelineEntry[], eventId: string): boolean {
  const own = timeline.find((entry) => entry.eventId === eventId);
  if (!own) return false;
  let before: ReservationStatus | null = null;
  for (const entry of timeline) if (entry.eventId !== eventId) before = before === null ? entry.status : advanceStatus(before, entry.status);
  const after = before === null ? own.status : advanceStatus(before, own.status);
  return (before === 'bookWaiting') !== (after === 'bookWaiting');
}
