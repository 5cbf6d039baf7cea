import { Hold } from '../../domain/hold.ts';
import { quantityChanged } from '../events.ts';
import type { BookUnitOfWork } from '../ports.ts';

export interface ReleaseHoldCommand {
  reservationId: number;
  bookId: number;
  customerId: string;
}

/**
 * Gives a reservation's copy back to stock, at most once: on ReservationCancelRequested (the
 * patron cancelled: the copy comes back without waiting for assignment, ADR 0021), on
 * ReservationCanceled (assignment's confirmation; kept so that a cancellation still releases the
 * copy if its request was handled by a version of book that ignored it), and on ReservationRejected
 * (the reservation failed after the copy may have been taken, for instance when the hold's answer
 * was lost to a timeout, or no library could serve it). The patron's count of held copies goes
 * down with it. When no hold exists yet, a
 * voided hold is recorded so that a hold request still in flight takes no copy.
 *
 * Runs inside the event consumer's transaction, beside the inbox record.
 */
export class ReleaseHold {
  async execute(cmd: ReleaseHoldCommand, uow: BookUnitOfWork): Promise<'released' | 'voided' | 'nothing-to-release'> {
    let hold = await uow.holds.findForUpdate(cmd.reservationId);
    if (!hold) {
      if (await uow.holds.insertIfAbsent(Hold.voided(cmd))) return 'voided';
      // A hold committed between our read and our insert: release that one.
      hold = await uow.holds.findForUpdate(cmd.reservationId);
      if (!hold) throw new Error(`hold ${cmd.reservationId} vanished`);
    }
    // A hold of another book is another reservation's (ids reused after a data loss): not ours to release.
    if (hold.props.bookId !== cmd.bookId) return 'nothing-to-release';
    const released = hold.release();
    if (!released) return 'nothing-to-release';
    await uow.holds.save(released);
    await uow.customerCopies.giveBackOne(hold.props.customerId);
    const book = await uow.books.returnCopy(released.props.bookId);
    await uow.outbox.add(quantityChanged(book, 'released'));
    return 'released';
  }
}
