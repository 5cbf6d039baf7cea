import { DomainError } from '@bstore/platform/kernel';
import type { BookProps } from '../../domain/book.ts';
import type { BookRepository } from '../ports.ts';

/** Read side of the catalogue: one book, or a page of books matching a search. */
export class BrowseCatalogue {
  readonly #books: BookRepository;

  constructor(books: BookRepository) {
    this.#books = books;
  }

  async get(bookId: number): Promise<BookProps> {
    const book = await this.#books.find(bookId);
    if (!book) throw new DomainError('BOOK_NOT_FOUND', `book ${bookId} does not exist`, { bookId });
    return book;
  }

  list(query: { q?: string; limit: number; offset: number }): Promise<{ items: BookProps[]; total: number }> {
    return this.#books.list(query);
  }
}
