import type { AssignmentUnitOfWork } from '../ports.ts';

/**
 * The copy left the branch's hold shelf (ReservationCheckedOut: the patron took it;
 * ReservationExpired: it was not picked up and went back): the assignment is closed, so the branch's
 * load (the active assignments the choice of a branch counts) goes down. Idempotent: an assignment
 * that is not `assigned` is left as it is, and none exists only for ids reused after a data loss.
 *
 * Runs inside the event consumer's transaction, beside the inbox record.
 */
export class CloseAssignment {
  async execute(cmd: { reservationId: number }, uow: AssignmentUnitOfWork): Promise<'closed' | 'nothing-to-close'> {
    const assignment = await uow.assignments.findForUpdate(cmd.reservationId);
    const closed = assignment?.close();
    if (!closed) return 'nothing-to-close';
    await uow.assignments.save(closed);
    return 'closed';
  }
}
