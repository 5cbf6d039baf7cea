import type { BookUnitOfWork } from '../ports.ts';
import { freeCopy } from '../waiting-line.ts';

/**
 * Staff checked the lent copy in (ReservationReturned): it goes to the oldest waiting reservation
 * of its book, or back to stock (ADR 0022). Idempotent: a hold not on loan is left as it is.
 */
export class TakeBackCopy {
  async execute(cmd: { reservationId: number; bookId: number }, uow: BookUnitOfWork): Promise<'returned' | 'nothing-to-return'> {
    const hold = await uow.holds.findForUpdate(cmd.reservationId);
    if (!hold || hold.props.bookId !== cmd.bookId) return 'nothing-to-return';
    const back = hold.giveBack();
    if (!back) return 'nothing-to-return';
    await uow.holds.save(back);
    await freeCopy(uow, back.props.bookId, 'returned');
    return 'returned';
  }
}
