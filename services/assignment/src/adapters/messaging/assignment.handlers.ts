import type { EventHandlers } from '@bstore/platform';
import type { AssignLibrary } from '../../application/assign-library/assign-library.service.ts';
import type { CloseAssignment } from '../../application/close-assignment/close-assignment.service.ts';
import type { ReleaseAssignment } from '../../application/release-assignment/release-assignment.service.ts';
import { assignmentUnitOfWork } from '../db/unit-of-work.ts';
import type { AssignmentTables } from '../db/schema.ts';

/** What assignment does with the events it receives: assign a branch, release it, or close it once the copy left the shelf. */
export function assignmentEventHandlers(assignLibrary: AssignLibrary, releaseAssignment: ReleaseAssignment, closeAssignment: CloseAssignment): EventHandlers<AssignmentTables> {
  return {
    ReservationRequested: async (event, trx) => {
      const { reservationId, bookId, customerId, preferredLibraryId } = event.data;
      await assignLibrary.execute({ reservationId, bookId, customerId, preferredLibraryId }, assignmentUnitOfWork(trx));
    },
    ReservationCancelRequested: async (event, trx) => {
      const { reservationId, bookId, customerId } = event.data;
      await releaseAssignment.execute({ reservationId, bookId, customerId }, assignmentUnitOfWork(trx));
    },
    ReservationCheckedOut: async (event, trx) => {
      await closeAssignment.execute({ reservationId: event.data.reservationId }, assignmentUnitOfWork(trx));
    },
    ReservationExpired: async (event, trx) => {
      await closeAssignment.execute({ reservationId: event.data.reservationId }, assignmentUnitOfWork(trx));
    },
  };
}
