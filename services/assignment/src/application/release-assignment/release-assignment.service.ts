import { Assignment } from '../../domain/assignment.ts';
import { reservationCanceled } from '../events.ts';
import type { AssignmentUnitOfWork } from '../ports.ts';

export interface ReleaseAssignmentCommand {
  reservationId: number;
  bookId: number;
  customerId: string;
}

/**
 * Ends a reservation's assignment on ReservationCancelRequested and announces it
 * (ReservationCanceled), at most once. When no assignment exists yet, a voided tombstone is
 * recorded so that a late ReservationRequested is not assigned; the cancellation is announced
 * all the same, so book gives the copy back and the reservation reaches bookCanceled.
 *
 * Runs inside the event consumer's transaction, beside the inbox record.
 */
export class ReleaseAssignment {
  async execute(cmd: ReleaseAssignmentCommand, uow: AssignmentUnitOfWork): Promise<'released' | 'voided' | 'nothing-to-release'> {
    let assignment = await uow.assignments.findForUpdate(cmd.reservationId);
    if (!assignment) {
      if (await uow.assignments.insertIfAbsent(Assignment.tombstone(cmd))) {
        await uow.outbox.add(reservationCanceled(cmd));
        return 'voided';
      }
      // A concurrent request inserted its assignment first: release that one instead.
      assignment = await uow.assignments.findForUpdate(cmd.reservationId);
      if (!assignment) throw new Error(`assignment of reservation ${cmd.reservationId} vanished`);
    }
    const released = assignment.release();
    if (!released) return 'nothing-to-release';
    await uow.assignments.save(released);
    await uow.outbox.add(reservationCanceled(released.props));
    return 'released';
  }
}
