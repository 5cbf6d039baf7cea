import type { BookUnitOfWork } from '../ports.ts';
import { freeCopy } from '../waiting-line.ts';

/**
 * Staff checked the lent copy in (ReservationReturned): it goes to the oldest waiting reservation
 * of its book, or back to stock (ADR 0022). A return that overtook its check-out frees the copy
 * all the same (the late check-out then finds it released). Idempotent: a hold released already is
 * left as it is.
 */
export class TakeBackCopy {
  async execute(cmd: { reservationId: number; bookId: number }, uow: BookUnitOfWork): Promise<'returned' | 'nothing-to-return'> {
    const hold = await uow.holds.findForUpdate(cmd.reservationId);
    if (!hold || hold.props.bookId !== cmd.bookId) return 'nothing-to-return';
    const back = hold.giveBack();
    if (!back) return 'nothing-to-return';
    await uow.holds.save(back.hold);
    // The return overtook its check-out: the count still had the copy, which the check-out would have given back.
    if (back.wasHeld) await uow.customerCopies.giveBackOne(hold.props.customerId);
    await freeCopy(uow, back.hold.props.bookId, 'returned');
    return 'returned';
  }
}
