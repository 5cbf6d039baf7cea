import type { EventHandlers } from '@bstore/platform';
import type { ApplyAssignmentOutcome } from '../../application/apply-assignment/apply-assignment.service.ts';
import { reservationUnitOfWork } from '../db/unit-of-work.ts';
import type { ReservationTables } from '../db/schema.ts';

export function reservationEventHandlers(apply: ApplyAssignmentOutcome): EventHandlers<ReservationTables> {
  return {
    ReservationAccepted: async (event, trx) => {
      const { reservationId, libraryId, libraryName, pickupBy } = event.data;
      await apply.accepted({ reservationId, libraryId, libraryName, occurredAt: new Date(event.time), ...(pickupBy ? { pickupBy } : {}) }, reservationUnitOfWork(trx));
    },
    CopyGranted: async (event, trx) => {
      const { reservationId, bookName, queueTicket } = event.data;
      await apply.granted({ reservationId, bookName, queueTicket }, reservationUnitOfWork(trx));
    },
    ReservationCanceled: async (event, trx) => {
      await apply.canceled({ reservationId: event.data.reservationId }, reservationUnitOfWork(trx));
    },
    ReservationAssignmentFailed: async (event, trx) => {
      await apply.failed({ reservationId: event.data.reservationId, reason: event.data.reason }, reservationUnitOfWork(trx));
    },
  };
}
