import { createEnvelope, sourceOf, type IntegrationEvent } from '@bstore/contracts';
import type { Reservation, ReservationEvent } from '../domain/reservation.ts';
import type { ReservationUnitOfWork } from './ports.ts';

/** Turns what the aggregate recorded into the integration events other services receive. */
export function toIntegrationEvent(reservation: Reservation, event: ReservationEvent): IntegrationEvent {
  const r = reservation.props;
  const base = { source: sourceOf('reservation'), subject: String(r.reservationId) };
  switch (event.type) {
    case 'ReservationRequested':
      return createEnvelope({
        ...base,
        type: 'ReservationRequested',
        data: {
          reservationId: r.reservationId,
          bookId: r.bookId,
          bookName: r.bookName ?? '',
          customerId: r.customerId,
          preferredLibraryId: r.preferredLibraryId,
          status: 'bookReserveReq',
        },
      });
    case 'ReservationRejected':
      return createEnvelope({
        ...base,
        type: 'ReservationRejected',
        data: {
          reservationId: r.reservationId,
          bookId: r.bookId,
          customerId: r.customerId,
          bookName: r.bookName,
          status: event.status,
          reason: event.reason,
        },
      });
    case 'ReservationCancelRequested':
      return createEnvelope({
        ...base,
        type: 'ReservationCancelRequested',
        data: { reservationId: r.reservationId, bookId: r.bookId, customerId: r.customerId, status: 'bookCancel' },
      });
    case 'ReservationWaitlisted':
      return createEnvelope({
        ...base,
        type: 'ReservationWaitlisted',
        data: {
          reservationId: r.reservationId,
          bookId: r.bookId,
          bookName: r.bookName ?? '',
          customerId: r.customerId,
          queueTicket: required(r.queueTicket, 'queueTicket'),
          status: 'bookWaiting',
        },
      });
    case 'ReservationCheckedOut':
      return createEnvelope({
        ...base,
        type: 'ReservationCheckedOut',
        data: {
          reservationId: r.reservationId,
          bookId: r.bookId,
          customerId: r.customerId,
          libraryId: r.libraryId,
          dueAt: required(r.dueAt, 'dueAt').toISOString(),
          status: 'bookLoaned',
        },
      });
    case 'ReservationReturned':
      return createEnvelope({
        ...base,
        type: 'ReservationReturned',
        data: { reservationId: r.reservationId, bookId: r.bookId, customerId: r.customerId, libraryId: r.libraryId, status: 'bookReturned' },
      });
    case 'ReservationExpired':
      return createEnvelope({
        ...base,
        type: 'ReservationExpired',
        data: {
          reservationId: r.reservationId,
          bookId: r.bookId,
          customerId: r.customerId,
          libraryId: r.libraryId,
          pickupBy: required(r.pickupBy, 'pickupBy').toISOString(),
          status: 'bookExpired',
        },
      });
  }
}

/** A field the transition that recorded the event has set. */
function required<T>(value: T | null, name: string): T {
  if (value === null) throw new Error(`the event needs ${name}, which is not set`);
  return value;
}

/** Saves the aggregate and writes its recorded events to the outbox, in the caller's transaction. */
export async function saveWithEvents(uow: ReservationUnitOfWork, reservation: Reservation): Promise<void> {
  await uow.reservations.save(reservation);
  for (const event of reservation.pullEvents()) await uow.outbox.add(toIntegrationEvent(reservation, event));
}
