import type { Outbox, TransactionRunner } from '@bstore/platform/kernel';
import type { Book, BookProps } from '../domain/book.ts';
import type { Hold } from '../domain/hold.ts';

export type TakeCopyResult = { kind: 'taken'; book: BookProps } | { kind: 'out-of-stock'; book: BookProps } | { kind: 'not-found' };

export interface BookRepository {
  insert(book: Omit<BookProps, 'bookId'>): Promise<BookProps>;
  find(bookId: number): Promise<BookProps | null>;
  findByName(bookName: string): Promise<BookProps | null>;
  /**
   * Inserts the book unless one of that name exists, safely against a concurrent call for the
   * same name (replicas seeding at once). Null when it existed.
   */
  insertIfNameAbsent(book: Omit<BookProps, 'bookId'>): Promise<BookProps | null>;
  /** Loads the book and locks its row until the transaction ends. */
  findForUpdate(bookId: number): Promise<Book | null>;
  save(book: Book): Promise<void>;
  /** One atomic conditional decrement: takes a copy only if one is available. */
  takeCopy(bookId: number): Promise<TakeCopyResult>;
  /** Puts one copy back into stock: quantity + 1 (and locks the book's row). */
  returnCopy(bookId: number): Promise<BookProps>;
  list(query: { q?: string; limit: number; offset: number }): Promise<{ items: BookProps[]; total: number }>;
}

export interface HoldRepository {
  /** Inserts the hold unless the reservation already has one; false when it had. */
  insertIfAbsent(hold: Hold): Promise<boolean>;
  find(reservationId: number): Promise<Hold | null>;
  findForUpdate(reservationId: number): Promise<Hold | null>;
  save(hold: Hold): Promise<void>;
  /** A new place in line: larger than every ticket given before. */
  nextQueueTicket(): Promise<number>;
  /** The oldest waiting hold of the book (smallest ticket), if any. Read without a lock. */
  oldestWaiting(bookId: number): Promise<Hold | null>;
  /**
   * Turns a waiting hold into a held one, only if it is still waiting (one conditional statement,
   * which waits for a concurrent release of it); the granted hold, or null when it left the line.
   */
  grant(reservationId: number): Promise<Hold | null>;
  /** 1 + the holds of the book waiting with a smaller ticket. */
  queuePosition(bookId: number, queueTicket: number): Promise<number>;
}

/**
 * How many copies each patron holds or waits for (holds in status `held` or `waiting`), kept in the
 * transaction of every hold, release and check-out, so that no patron ever holds more than the
 * limit, whatever reservation believes.
 */
export interface CustomerCopiesRepository {
  /**
   * Counts one more copy for the patron if they hold fewer than `limit`; false when they hold
   * `limit` already (counted again from their holds, other than `forReservationId`'s, before saying so).
   */
  takeOne(customerId: string, limit: number, forReservationId: number): Promise<boolean>;
  /** One copy of the patron's went back, or was checked out (loans do not count), or they left a line. */
  giveBackOne(customerId: string): Promise<void>;
  /** Copies the patron holds now. */
  held(customerId: string): Promise<number>;
  /**
   * Locks the patron's row until the transaction ends (nothing when they have none). Taken before a
   * waiting hold's row, so that every path locks the patron before their hold (ADR 0022).
   */
  lock(customerId: string): Promise<void>;
}

/** The repositories and outbox of one transaction. */
export interface BookUnitOfWork {
  readonly books: BookRepository;
  readonly holds: HoldRepository;
  readonly customerCopies: CustomerCopiesRepository;
  readonly outbox: Outbox;
}

export type BookTransactions = TransactionRunner<BookUnitOfWork>;
