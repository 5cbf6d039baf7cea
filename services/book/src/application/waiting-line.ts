import type { BookProps } from '../domain/book.ts';
import { copyGranted, quantityChanged } from './events.ts';
import type { BookUnitOfWork } from './ports.ts';

/** What freed a copy, as CopyGranted tells it. */
export type FreeCause = 'released' | 'returned' | 'copiesAdded';

/**
 * The waiting line's one rule (ADR 0022): a copy that becomes free goes first to the oldest waiting
 * reservation of its title, in the transaction that frees it. Called with the book's row locked
 * (by the statement that put the copy into stock), so no newcomer takes the copy ahead of the line
 * and no reservation joins the line unseen: joining it locks the same row.
 *
 * Grants while copies are available and reservations wait; each grant takes one copy from stock,
 * makes the waiting hold `held` (only if it is still waiting: a reservation that left the line
 * meanwhile is skipped) and announces CopyGranted. Returns the book after the grants.
 */
export async function serveWaitingLine(uow: BookUnitOfWork, book: BookProps, cause: FreeCause): Promise<BookProps> {
  let current = book;
  while (current.quantity > 0) {
    const next = await uow.holds.oldestWaiting(current.bookId);
    if (!next) break;
    const granted = await uow.holds.grant(next.props.reservationId);
    // It left the line between the read and the grant (its release committed first): look again.
    if (!granted) continue;
    const taken = await uow.books.takeCopy(current.bookId);
    if (taken.kind !== 'taken') throw new Error(`book ${current.bookId} had a copy under its row lock and then none`);
    current = taken.book;
    await uow.outbox.add(copyGranted(granted, current, cause));
  }
  return current;
}

/**
 * One copy is free again (a release or a return): it goes to the line, or back to stock, and the
 * stock's change is announced when there is one.
 */
export async function freeCopy(uow: BookUnitOfWork, bookId: number, cause: Exclude<FreeCause, 'copiesAdded'>): Promise<BookProps> {
  const inStock = await uow.books.returnCopy(bookId);
  const after = await serveWaitingLine(uow, inStock, cause);
  if (after.quantity !== inStock.quantity - 1) await uow.outbox.add(quantityChanged(after, cause === 'returned' ? 'returned' : 'released'));
  return after;
}
