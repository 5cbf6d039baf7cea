import type { EventHandlers } from '@bstore/platform';
import type { AssignLibrary } from '../../application/assign-library/assign-library.service.ts';
import type { ReleaseAssignment } from '../../application/release-assignment/release-assignment.service.ts';
import { assignmentUnitOfWork } from '../db/unit-of-work.ts';
import type { AssignmentTables } from '../db/schema.ts';

/** What assignment does with the events it receives: assign a branch, or release it. */
export function assignmentEventHandlers(assignLibrary: AssignLibrary, releaseAssignment: ReleaseAssignment): EventHandlers<AssignmentTables> {
  return {
    ReservationRequested: async (event, trx) => {
      const { reservationId, bookId, customerId, preferredLibraryId } = event.data;
      await assignLibrary.execute({ reservationId, bookId, customerId, preferredLibraryId }, assignmentUnitOfWork(trx));
    },
    ReservationCancelRequested: async (event, trx) => {
      const { reservationId, bookId, customerId } = event.data;
      await releaseAssignment.execute({ reservationId, bookId, customerId }, assignmentUnitOfWork(trx));
    },
  };
}
