import type { EventHandlers } from '@bstore/platform';
import type { ReleaseHold } from '../../application/release-hold/release-hold.service.ts';
import { bookUnitOfWork } from '../db/unit-of-work.ts';
import type { BookTables } from '../db/schema.ts';

/** What book does with the events it receives: each ends a reservation's claim on its copy. */
export function bookEventHandlers(releaseHold: ReleaseHold): EventHandlers<BookTables> {
  return {
    ReservationCancelRequested: async (event, trx) => {
      const { reservationId, bookId, customerId } = event.data;
      await releaseHold.execute({ reservationId, bookId, customerId }, bookUnitOfWork(trx));
    },
    ReservationCanceled: async (event, trx) => {
      const { reservationId, bookId, customerId } = event.data;
      await releaseHold.execute({ reservationId, bookId, customerId }, bookUnitOfWork(trx));
    },
    ReservationRejected: async (event, trx) => {
      const { reservationId, bookId, customerId } = event.data;
      await releaseHold.execute({ reservationId, bookId, customerId }, bookUnitOfWork(trx));
    },
  };
}
