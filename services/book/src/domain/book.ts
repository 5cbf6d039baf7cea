import { DomainError } from '@bstore/platform/kernel';

export interface BookProps {
  readonly bookId: number;
  readonly bookName: string;
  readonly author: string | null;
  readonly isbn: string | null;
  /** Copies available to reserve now. */
  readonly quantity: number;
  /** Copies the library owns: available, plus held for reservations, plus on loan. */
  readonly copies: number;
}

export interface NewBook {
  bookName: string;
  author?: string | null;
  isbn?: string | null;
  quantity: number;
}

/**
 * A title in the catalogue and its stock. Invariant: 0 <= quantity <= copies, and
 * copies - quantity is the number of copies held for reservations or on loan (holds `held` and
 * `loaned`). While a reservation waits in the book's line, quantity is 0 (ADR 0022).
 */
export class Book {
  readonly props: BookProps;

  private constructor(props: BookProps) {
    this.props = props;
  }

  static create(input: NewBook): Omit<BookProps, 'bookId'> {
    const bookName = input.bookName.trim();
    if (bookName.length === 0) throw new DomainError('INVALID_BOOK', 'bookName must not be blank');
    if (!Number.isInteger(input.quantity) || input.quantity < 0) {
      throw new DomainError('INVALID_BOOK', 'quantity must be a whole number of at least 0');
    }
    return { bookName, author: input.author?.trim() || null, isbn: input.isbn?.trim() || null, quantity: input.quantity, copies: input.quantity };
  }

  static restore(props: BookProps): Book {
    return new Book(props);
  }

  /**
   * Adds copies (delta > 0) or withdraws available ones (delta < 0). A held or lent copy cannot be
   * withdrawn: it belongs to a reservation until that ends or the copy is returned.
   */
  adjustCopies(delta: number): Book {
    if (!Number.isInteger(delta) || delta === 0) throw new DomainError('INVALID_DELTA', 'delta must be a non-zero whole number');
    if (this.props.quantity + delta < 0) {
      throw new DomainError(
        'NOT_ENOUGH_AVAILABLE_COPIES',
        `cannot withdraw ${-delta} copies of book ${this.props.bookId}: only ${this.props.quantity} available`,
        { bookId: this.props.bookId, available: this.props.quantity },
      );
    }
    return new Book({ ...this.props, quantity: this.props.quantity + delta, copies: this.props.copies + delta });
  }
}
