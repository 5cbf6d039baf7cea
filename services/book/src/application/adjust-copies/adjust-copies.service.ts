import { DomainError } from '@bstore/platform/kernel';
import type { BookProps } from '../../domain/book.ts';
import { quantityChanged } from '../events.ts';
import type { BookTransactions } from '../ports.ts';
import { serveWaitingLine } from '../waiting-line.ts';

/**
 * Staff add copies of a title or withdraw available ones. Added copies go first to the book's
 * waiting line, oldest first, in the same transaction (ADR 0022); the rest go to stock. Only
 * available copies can be withdrawn: never one held or on loan.
 */
export class AdjustCopies {
  readonly #tx: BookTransactions;

  constructor(tx: BookTransactions) {
    this.#tx = tx;
  }

  execute(input: { bookId: number; delta: number }): Promise<BookProps> {
    return this.#tx.run(async (uow) => {
      const book = await uow.books.findForUpdate(input.bookId);
      if (!book) throw new DomainError('BOOK_NOT_FOUND', `book ${input.bookId} does not exist`, { bookId: input.bookId });
      const adjusted = book.adjustCopies(input.delta);
      await uow.books.save(adjusted);
      const after = input.delta > 0 ? await serveWaitingLine(uow, adjusted.props, 'copiesAdded') : adjusted.props;
      await uow.outbox.add(quantityChanged(after, input.delta > 0 ? 'copiesAdded' : 'copiesWithdrawn'));
      return after;
    });
  }
}
