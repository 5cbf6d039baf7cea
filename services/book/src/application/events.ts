import { createEnvelope, sourceOf, type EventData, type IntegrationEvent } from '@bstore/contracts';
import type { BookProps } from '../domain/book.ts';
import type { Hold } from '../domain/hold.ts';

export function quantityChanged(book: BookProps, reason: EventData<'QuantityChanged'>['reason']): IntegrationEvent<'QuantityChanged'> {
  return createEnvelope({
    type: 'QuantityChanged',
    source: sourceOf('book'),
    subject: String(book.bookId),
    data: { bookId: book.bookId, quantity: book.quantity, copies: book.copies, reason },
  });
}

/** A freed copy went to a waiting reservation: its subject is the reservation, like the saga's events. */
export function copyGranted(hold: Hold, book: BookProps, cause: EventData<'CopyGranted'>['cause']): IntegrationEvent<'CopyGranted'> {
  const h = hold.props;
  return createEnvelope({
    type: 'CopyGranted',
    source: sourceOf('book'),
    subject: String(h.reservationId),
    data: {
      reservationId: h.reservationId,
      bookId: h.bookId,
      bookName: book.bookName,
      customerId: h.customerId,
      queueTicket: h.queueTicket ?? 1,
      cause,
      status: 'bookReserveReq',
    },
  });
}
