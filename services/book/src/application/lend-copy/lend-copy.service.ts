import type { BookUnitOfWork } from '../ports.ts';

/**
 * Staff checked the held copy out to the patron (ReservationCheckedOut): the copy is on loan, and
 * no longer counts among the copies the patron holds (loans do not count against the limit).
 * Idempotent: a hold that is not held (a duplicate event) is left as it is.
 */
export class LendCopy {
  async execute(cmd: { reservationId: number; bookId: number }, uow: BookUnitOfWork): Promise<'lent' | 'nothing-to-lend'> {
    const hold = await uow.holds.findForUpdate(cmd.reservationId);
    if (!hold || hold.props.bookId !== cmd.bookId) return 'nothing-to-lend';
    const lent = hold.lend();
    if (!lent) return 'nothing-to-lend';
    await uow.holds.save(lent);
    await uow.customerCopies.giveBackOne(hold.props.customerId);
    return 'lent';
  }
}
