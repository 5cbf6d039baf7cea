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

export interface HoldLimits {
  /**
   * Copies one patron may hold at once: the same number as reservation's limit of active
   * reservations. Checked here too because book alone knows which copies have really come back
   * (ADR 0021): a cancelled reservation stops counting in reservation before its copy is returned.
   */
  maxHeldPerCustomer: number;
}

type Refusal = { kind: 'tooManyHeld'; held: number } | { kind: 'bookNotFound' };

/**
 * Takes one copy for a reservation — the synchronous step of the saga. Idempotent by
 * reservationId: a retry finds the hold of the first call and takes nothing more. The hold row is
 * written first (a concurrent retry waits on its key); then the patron's count of held copies and
 * the book's stock are each taken by one atomic conditional statement. No copy rolls everything
 * back (the reservation's ReservationRejected voids or releases the hold later).
 *
 * A refusal that must outlive the request commits a `voided` hold: when the book does not exist
 * (an earlier attempt still queued here must not take a copy if a book with that id is created
 * later, since reservation forgets the reservation) and when the patron already holds the most
 * copies allowed (a late attempt must not take one when the count has gone down).
 */
export class HoldCopy {
  readonly #tx: BookTransactions;
  readonly #limits: HoldLimits;

  constructor(tx: BookTransactions, limits: HoldLimits) {
    this.#tx = tx;
    this.#limits = limits;
  }

  async execute(cmd: HoldCopyCommand): Promise<HoldCopyResult> {
    const outcome = await this.#tx.run(async (uow): Promise<HoldCopyResult | Refusal> => {
      const inserted = await uow.holds.insertIfAbsent(Hold.place(cmd));
      if (!inserted) {
        const existing = await uow.holds.find(cmd.reservationId);
        if (!existing) throw new Error(`hold ${cmd.reservationId} vanished`);
        const book = await uow.books.find(cmd.bookId);
        if (!book) return { kind: 'bookNotFound' };
        existing.assertReusableFor(cmd.bookId);
        return { reservationId: cmd.reservationId, bookId: book.bookId, bookName: book.bookName, quantity: book.quantity, created: false };
      }
      if (!(await uow.customerCopies.takeOne(cmd.customerId, this.#limits.maxHeldPerCustomer, cmd.reservationId))) {
        await uow.holds.save(Hold.voided(cmd));
        return { kind: 'tooManyHeld', held: await uow.customerCopies.held(cmd.customerId) };
      }
      const taken = await uow.books.takeCopy(cmd.bookId);
      if (taken.kind === 'not-found') {
        await uow.customerCopies.giveBackOne(cmd.customerId);
        await uow.holds.save(Hold.voided(cmd));
        return { kind: 'bookNotFound' };
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
    if ('created' in outcome) return outcome;
    if (outcome.kind === 'bookNotFound') throw new DomainError('BOOK_NOT_FOUND', `book ${cmd.bookId} does not exist`, { bookId: cmd.bookId });
    const limit = this.#limits.maxHeldPerCustomer;
    throw new DomainError(
      'TOO_MANY_HELD_COPIES',
      `customer ${cmd.customerId} already holds ${outcome.held} copies, the most allowed is ${limit}; a copy given back is counted once it is back`,
      { limit, held: outcome.held },
    );
  }
}
