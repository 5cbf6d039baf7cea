import { Book, type NewBook } from '../../domain/book.ts';
import { quantityChanged } from '../events.ts';
import type { BookTransactions } from '../ports.ts';

/**
 * Adds each given book unless a book of that name exists: demo data that can run at every start.
 * Returns how many were added.
 */
export class SeedCatalogue {
  readonly #tx: BookTransactions;

  constructor(tx: BookTransactions) {
    this.#tx = tx;
  }

  async execute(books: readonly NewBook[]): Promise<number> {
    let added = 0;
    for (const input of books) {
      const book = Book.create(input);
      added += await this.#tx.run(async (uow) => {
        const created = await uow.books.insertIfNameAbsent(book);
        if (!created) return 0;
        await uow.outbox.add(quantityChanged(created, 'created'));
        return 1;
      });
    }
    return added;
  }
}
