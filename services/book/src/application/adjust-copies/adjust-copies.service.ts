import { DomainError } from '@bstore/platform/kernel';
import type { BookProps } from '../../domain/book.ts';
import { quantityChanged } from '../events.ts';
import type { BookTransactions } from '../ports.ts';

/** Staff add copies of a title or withdraw available ones. */
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
      await uow.outbox.add(quantityChanged(adjusted.props, input.delta > 0 ? 'copiesAdded' : 'copiesWithdrawn'));
      return adjusted.props;
    });
  }
}
