import type { IntegrationEvent } from '@bstore/contracts';
import { PAGE_EVENT_TYPES, type PageChange, type PageEventType } from '../domain/reservation-page.ts';
import { traceIdOf } from '../domain/trace-context.ts';

/** One of the lifecycle events the read model consumes, discriminated by `type`. */
export type PageEvent = { [T in PageEventType]: IntegrationEvent<T> }[PageEventType];

export function isPageEvent(event: IntegrationEvent): event is PageEvent {
  return (PAGE_EVENT_TYPES as readonly string[]).includes(event.type);
}

/** What a lifecycle event says about its page; the fields it does not carry stay null. */
export function changeOf(event: PageEvent): PageChange {
  const common = {
    reservationId: event.data.reservationId,
    bookId: event.data.bookId,
    customerId: event.data.customerId,
    status: event.data.status,
    bookName: null,
    libraryId: null,
    libraryName: null,
    pickupBy: null,
    dueAt: null,
    queueTicket: null,
    eventId: event.id,
    eventType: event.type,
    source: event.source,
    occurredAt: new Date(event.time),
    traceId: traceIdOf(event.traceparent),
  };
  switch (event.type) {
    case 'ReservationRequested':
    case 'ReservationRejected':
      return { ...common, bookName: event.data.bookName };
    case 'ReservationAccepted':
      return {
        ...common,
        libraryId: event.data.libraryId,
        libraryName: event.data.libraryName,
        // Absent from events of versions before it: unknown, so null.
        pickupBy: event.data.pickupBy === undefined ? null : new Date(event.data.pickupBy),
      };
    case 'ReservationWaitlisted':
    case 'CopyGranted':
      return { ...common, bookName: event.data.bookName, queueTicket: event.data.queueTicket };
    case 'ReservationCheckedOut':
      return { ...common, dueAt: new Date(event.data.dueAt) };
    case 'ReservationExpired':
      // The deadline that passed: the same one ReservationAccepted set.
      return { ...common, pickupBy: new Date(event.data.pickupBy) };
    case 'ReservationCancelRequested':
    case 'ReservationCanceled':
    case 'ReservationReturned':
      return common;
  }
}
