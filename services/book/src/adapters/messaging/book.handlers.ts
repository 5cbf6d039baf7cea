import type { Transaction } from 'kysely';
import type { EventHandlers } from '@bstore/platform';
import type { LendCopy } from '../../application/lend-copy/lend-copy.service.ts';
import type { ReleaseHold } from '../../application/release-hold/release-hold.service.ts';
import type { TakeBackCopy } from '../../application/take-back-copy/take-back-copy.service.ts';
import { bookUnitOfWork } from '../db/unit-of-work.ts';
import type { BookTables } from '../db/schema.ts';

export interface BookEventUseCases {
  releaseHold: ReleaseHold;
  lendCopy: LendCopy;
  takeBackCopy: TakeBackCopy;
}

/**
 * What book does with the events it receives: a reservation that ends gives its copy (or its place
 * in line) back, a check-out lends the copy, a return frees it.
 */
export function bookEventHandlers(useCases: BookEventUseCases): EventHandlers<BookTables> {
  const release = async (event: { data: { reservationId: number; bookId: number; customerId: string } }, trx: Transaction<BookTables>): Promise<void> => {
    const { reservationId, bookId, customerId } = event.data;
    await useCases.releaseHold.execute({ reservationId, bookId, customerId }, bookUnitOfWork(trx));
  };
  return {
    ReservationCancelRequested: release,
    ReservationCanceled: release,
    ReservationRejected: release,
    ReservationExpired: release,
    ReservationCheckedOut: async (event, trx) => {
      await useCases.lendCopy.execute({ reservationId: event.data.reservationId, bookId: event.data.bookId }, bookUnitOfWork(trx));
    },
    ReservationReturned: async (event, trx) => {
      await useCases.takeBackCopy.execute({ reservationId: event.data.reservationId, bookId: event.data.bookId }, bookUnitOfWork(trx));
    },
  };
}
