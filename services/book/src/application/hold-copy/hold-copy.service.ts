import { DomainError } from '@bstore/platform/kernel';
import { Hold } from '../../domain/hold.ts';
import { quantityChanged } from '../events.ts';
import type { BookTransactions } from '../ports.ts';

export interface HoldCopyCommand {
  bookId: number;
  reservationId: number;
  customerId: string;
}

export interface HoldCopyResult {
  reservationId: number;
  bookId: number;
  bookName: string;
  /** Copies still available after this hold. */
  quantity: number;
  /** False when this reservation already had the hold (a retried request). */
  created: boolean;
}

/**
 * Takes one copy for a reservation — the synchronous step of the saga. Idempotent by
 * reservationId: a retry finds the hold of the first call and takes nothing more. The hold row is
 * written first (a concurrent retry waits on its key), then one atomic conditional decrement takes
 * the copy; no copy or no book throws, and the transaction rolls the hold back.
 */
export class HoldCopy {
  readonly #tx: BookTransactions;

  constructor(tx: BookTransactions) {
    this.#tx = tx;
  }

  execute(cmd: HoldCopyCommand): Promise<HoldCopyResult> {
    return this.#tx.run(async (uow) => {
      const inserted = await uow.holds.insertIfAbsent(Hold.place(cmd));
      if (!inserted) {
        const existing = await uow.holds.find(cmd.reservationId);
        if (!existing) throw new Error(`hold ${cmd.reservationId} vanished`);
        existing.assertReusableFor(cmd.bookId);
        const book = await uow.books.find(cmd.bookId);
        if (!book) throw new DomainError('BOOK_NOT_FOUND', `book ${cmd.bookId} does not exist`, { bookId: cmd.bookId });
        return { reservationId: cmd.reservationId, bookId: book.bookId, bookName: book.bookName, quantity: book.quantity, created: false };
      }
      const taken = await uow.books.takeCopy(cmd.bookId);
      if (taken.kind === 'not-found') {
        throw new DomainError('BOOK_NOT_FOUND', `book ${cmd.bookId} does not exist`, { bookId: cmd.bookId });
      }
      if (taken.kind === 'out-of-stock') {
        throw new DomainError('BOOK_OUT_OF_STOCK', `no copy of "${taken.book.bookName}" is available`, {
          bookId: cmd.bookId,
          bookName: taken.book.bookName,
        });
      }
      await uow.outbox.add(quantityChanged(taken.book, 'held'));
      return { reservationId: cmd.reservationId, bookId: taken.book.bookId, bookName: taken.book.bookName, quantity: taken.book.quantity, created: true };
    });
  }
}
