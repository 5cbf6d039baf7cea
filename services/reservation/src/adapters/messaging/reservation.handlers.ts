import type { EventHandlers } from '@bstore/platform';
import type { ApplyAssignmentOutcome } from '../../application/apply-assignment/apply-assignment.service.ts';
import { reservationUnitOfWork } from '../db/unit-of-work.ts';
import type { ReservationTables } from '../db/schema.ts';

export function reservationEventHandlers(apply: ApplyAssignmentOutcome): EventHandlers<ReservationTables> {
  return {
    ReservationAccepted: async (event, trx) => {
      const { reservationId, libraryId, libraryName } = event.data;
      await apply.accepted({ reservationId, libraryId, libraryName }, reservationUnitOfWork(trx));
    },
    ReservationCanceled: async (event, trx) => {
      await apply.canceled({ reservationId: event.data.reservationId }, reservationUnitOfWork(trx));
    },
    ReservationAssignmentFailed: async (event, trx) => {
      await apply.failed({ reservationId: event.data.reservationId, reason: event.data.reason }, reservationUnitOfWork(trx));
    },
  };
}
