import { Hold } from '../../domain/hold.ts';
import type { BookUnitOfWork } from '../ports.ts';
import { freeCopy } from '../waiting-line.ts';

export interface ReleaseHoldCommand {
  reservationId: number;
  bookId: number;
  customerId: string;
}

export type ReleaseResult = 'released' | 'left-line' | 'voided' | 'nothing-to-release';

/**
 * Ends a reservation's claim on a copy, at most once: on ReservationCancelRequested (the patron
 * cancelled: the copy comes back without waiting for assignment, ADR 0021), on ReservationCanceled
 * (assignment's confirmation; kept so that a cancellation still releases the copy if its request was
 * handled by a version of book that ignored it), on ReservationRejected (the reservation failed
 * after the copy may have been taken, for instance when the hold's answer was lost to a timeout, or
 * no library could serve it) and on ReservationExpired (not picked up by its deadline).
 *
 * A held copy becomes free: it goes to the oldest waiting reservation of the book, or back to
 * stock (ADR 0022). A waiting reservation leaves the line. Either way the patron's count goes down.
 * A copy on loan is not released here (only its return frees it). When no hold exists yet, a voided
 * hold is recorded so that a hold request still in flight takes no copy.
 *
 * Runs inside the event consumer's transaction, beside the inbox record.
 */
export class ReleaseHold {
  async execute(cmd: ReleaseHoldCommand, uow: BookUnitOfWork): Promise<ReleaseResult> {
    // A waiting hold: lock its patron first. A grant locks the book and then the waiting hold, and a
    // new hold of the same patron locks the patron and then the book; taking the waiting hold before
    // the patron would close that circle (a deadlock). A held hold keeps the order of a new hold
    // (hold, patron, book), and a hold not yet there must not lock the patron first (an insert of
    // it in flight holds its key and waits for the patron).
    const seen = await uow.holds.find(cmd.reservationId);
    if (seen?.status === 'waiting') await uow.customerCopies.lock(seen.props.customerId);
    let hold = await uow.holds.findForUpdate(cmd.reservationId);
    if (!hold) {
      if (await uow.holds.insertIfAbsent(Hold.voided(cmd))) return 'voided';
      // A hold committed between our read and our insert: release that one.
      hold = await uow.holds.findForUpdate(cmd.reservationId);
      if (!hold) throw new Error(`hold ${cmd.reservationId} vanished`);
    }
    // A hold of another book is another reservation's (ids reused after a data loss): not ours to release.
    if (hold.props.bookId !== cmd.bookId) return 'nothing-to-release';
    const { hold: released, effect } = hold.release();
    if (effect === 'nothing') return 'nothing-to-release';
    await uow.holds.save(released);
    await uow.customerCopies.giveBackOne(hold.props.customerId);
    if (effect === 'leftLine') return 'left-line';
    await freeCopy(uow, released.props.bookId, 'released');
    return 'released';
  }
}
