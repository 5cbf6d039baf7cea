import { createEnvelope, sourceOf, type EventData, type IntegrationEvent } from '@bstore/contracts';
import type { BookProps } from '../domain/book.ts';

export function quantityChanged(book: BookProps, reason: EventData<'QuantityChanged'>['reason']): IntegrationEvent<'QuantityChanged'> {
  return createEnvelope({
    type: 'QuantityChanged',
    source: sourceOf('book'),
    subject: String(book.bookId),
    data: { bookId: book.bookId, quantity: book.quantity, copies: book.copies, reason },
  });
}
