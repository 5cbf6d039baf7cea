import { Book, type BookProps, type NewBook } from '../../domain/book.ts';
import { quantityChanged } from '../events.ts';
import type { BookTransactions } from '../ports.ts';

/** Staff add a title with its first copies. */
export class CreateBook {
  readonly #tx: BookTransactions;

  constructor(tx: BookTransactions) {
    this.#tx = tx;
  }

  execute(input: NewBook): Promise<BookProps> {
    const book = Book.create(input);
    return this.#tx.run(async (uow) => {
      const created = await uow.books.insert(book);
      await uow.outbox.add(quantityChanged(created, 'created'));
      return created;
    });
  }
}
