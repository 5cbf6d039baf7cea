import type { Transaction } from 'kysely';
import type { EventHandlers } from '@bstore/platform';
import type { ReservationStatus } from '@bstore/contracts/statuses';
import type { NoticeKind, ReservationFacts } from '../../domain/notice.ts';
import type { RecordReservationEvent } from '../../application/record-reservation-event.ts';
import { notificationUnitOfWork } from '../db/notification.store.ts';
import type { NotificationTables } from '../db/schema.ts';

interface Common {
  reservationId: number;
  bookId: number;
  customerId: string;
}

const facts = (data: Common, status: ReservationStatus, more: Partial<ReservationFacts> = {}): ReservationFacts => ({
  reservationId: data.reservationId,
  customerId: data.customerId,
  bookId: data.bookId,
  status,
  bookName: null,
  libraryName: null,
  pickupBy: null,
  dueAt: null,
  ...more,
});

/**
 * What the notification service does with each lifecycle event: records what it says of the
 * reservation and makes the notice it tells the patron, if any, still true (issue 20).
 */
export function notificationEventHandlers(record: RecordReservationEvent): EventHandlers<NotificationTables> {
  const apply = (trx: Transaction<NotificationTables>, what: ReservationFacts, notice: NoticeKind | null) =>
    record.execute({ facts: what, notice }, notificationUnitOfWork(trx)).then(() => undefined);
  return {
    ReservationRequested: (e, trx) => apply(trx, facts(e.data, 'bookReserveReq', { bookName: e.data.bookName }), null),
    ReservationWaitlisted: (e, trx) => apply(trx, facts(e.data, 'bookWaiting', { bookName: e.data.bookName }), null),
    CopyGranted: (e, trx) => apply(trx, facts(e.data, 'bookReserveReq', { bookName: e.data.bookName }), 'turnCame'),
    ReservationAccepted: (e, trx) =>
      apply(trx, facts(e.data, 'bookReserved', { libraryName: e.data.libraryName, pickupBy: e.data.pickupBy ? new Date(e.data.pickupBy) : null }), 'readyForPickup'),
    ReservationCancelRequested: (e, trx) => apply(trx, facts(e.data, 'bookCancel'), null),
    ReservationCanceled: (e, trx) => apply(trx, facts(e.data, 'bookCanceled'), 'cancelled'),
    ReservationRejected: (e, trx) => apply(trx, facts(e.data, e.data.status, { bookName: e.data.bookName }), 'refused'),
    ReservationAssignmentFailed: (e, trx) => apply(trx, facts(e.data, 'rejected'), 'refused'),
    ReservationCheckedOut: (e, trx) => apply(trx, facts(e.data, 'bookLoaned', { dueAt: new Date(e.data.dueAt) }), null),
    ReservationReturned: (e, trx) => apply(trx, facts(e.data, 'bookReturned'), null),
    ReservationExpired: (e, trx) => apply(trx, facts(e.data, 'bookExpired', { pickupBy: new Date(e.data.pickupBy) }), 'expired'),
  };
}
