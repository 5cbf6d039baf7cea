import { Assignment } from '../../domain/assignment.ts';
import { chooseLibrary } from '../../domain/library-assignment.policy.ts';
import { reservationAccepted, reservationAssignmentFailed } from '../events.ts';
import type { AssignmentUnitOfWork } from '../ports.ts';

export interface AssignLibraryCommand {
  reservationId: number;
  bookId: number;
  customerId: string;
  preferredLibraryId: number | null;
}

/**
 * Gives a requested reservation a library branch and announces it (ReservationAccepted, with the
 * pickup deadline of the branch's hold shelf: now + the pickup period, ADR 0022), once per
 * reservation: when the reservation already has a row — assigned, released, failed, or a tombstone
 * left by a cancellation that overtook the request — nothing happens. The unique reservation_id
 * makes a concurrent second attempt a no-op too.
 *
 * When no branch exists at all, the reservation cannot be served: that is recorded (`failed`) and
 * announced (ReservationAssignmentFailed), so reservation rejects it and book gets its copy back,
 * instead of the event being retried for minutes and parked while the copy stays held (ADR 0021).
 *
 * Runs inside the event consumer's transaction, beside the inbox record.
 */
export class AssignLibrary {
  readonly #pickupPeriodMs: number;

  /** `pickupPeriodMs`: how long the copy waits on the branch's hold shelf (ReservationAccepted's pickupBy). */
  constructor(options: { pickupPeriodMs: number }) {
    this.#pickupPeriodMs = options.pickupPeriodMs;
  }

  async execute(cmd: AssignLibraryCommand, uow: AssignmentUnitOfWork): Promise<'assigned' | 'failed' | 'already-recorded'> {
    // No lookup first: the insert below finds an existing assignment itself (ON CONFLICT DO
    // NOTHING), so the common case, a first request, costs one round trip less; a repeat only
    // pays for the library load it then does not use.
    // Counted in this transaction; a concurrent replica may pick the same branch, which only
    // skews the balance a little — no invariant rests on it.
    const loads = await uow.libraries.listWithLoad();
    if (loads.length === 0) {
      const failed = await uow.assignments.insertIfAbsent(Assignment.failed(cmd));
      if (!failed) return 'already-recorded';
      await uow.outbox.add(reservationAssignmentFailed(failed, 'no library branch exists to serve the reservation'));
      return 'failed';
    }
    const library = chooseLibrary(loads, cmd.preferredLibraryId);
    const inserted = await uow.assignments.insertIfAbsent(Assignment.assign(cmd, library));
    if (!inserted) return 'already-recorded';
    // Announced once (the insert above is once per reservation), so the deadline never moves.
    await uow.outbox.add(reservationAccepted(inserted, library, new Date(Date.now() + this.#pickupPeriodMs)));
    return 'assigned';
  }
}
