import { DomainError } from '@bstore/platform/kernel';
import { Hold } from '../../domain/hold.ts';
import type { BookProps } from '../../domain/book.ts';
import { quantityChanged } from '../events.ts';
import type { BookTransactions, BookUnitOfWork } from '../ports.ts';

export interface HoldCopyCommand {
  bookId: number;
  reservationId: number;
  customerId: string;
  /** With no copy available, join the book's waiting line instead of being refused (ADR 0022). */
  waitlist?: boolean;
}

export interface HoldCopyResult {
  reservationId: number;
  bookId: number;
  bookName: string;
  /** Copies still available after this hold. */
  quantity: number;
  /** False when this reservation already had the hold (a retried request). */
  created: boolean;
  /** `held`: a copy is taken; `waiting`: the reservation is in the book's line. */
  status: 'held' | 'waiting';
  /** While waiting: the place in line (1 = next) and the ticket that orders the line. */
  queuePosition: number | null;
  queueTicket: number | null;
}

export interface HoldLimits {
  /**
   * Copies one patron may hold (or wait for) at once: the same number as reservation's limit of
   * active reservations. Checked here too because book alone knows which copies have really come
   * back (ADR 0021): a cancelled reservation stops counting in reservation before its copy is returned.
   */
  maxHeldPerCustomer: number;
}

type Refusal = { kind: 'tooManyHeld'; held: number } | { kind: 'bookNotFound' };

/**
 * Takes one copy for a reservation — the synchronous step of the saga. Idempotent by
 * reservationId: a retry finds the hold of the first call and takes nothing more. The hold row is
 * written first (a concurrent retry waits on its key); then the patron's count and the book's
 * stock are each taken by one atomic conditional statement. No copy rolls everything back (the
 * reservation's ReservationRejected voids or releases the hold later) — unless the request asks
 * to wait: then, with the book's row locked (every freed copy locks it too, so none is missed),
 * the reservation joins the book's line and keeps its count (ADR 0022).
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
      if (!inserted) return this.#existing(cmd, uow);
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
      if (taken.kind === 'taken') return this.#held(uow, cmd, taken.book);
      if (!cmd.waitlist) {
        throw new DomainError('BOOK_OUT_OF_STOCK', `no copy of "${taken.book.bookName}" is available`, {
          bookId: cmd.bookId,
          bookName: taken.book.bookName,
        });
      }
      // Join the line under the book's row lock; a copy freed since the failed take is taken instead.
      const locked = await uow.books.findForUpdate(cmd.bookId);
      if (!locked) throw new Error(`book ${cmd.bookId} vanished`);
      if (locked.props.quantity > 0) {
        const retaken = await uow.books.takeCopy(cmd.bookId);
        if (retaken.kind !== 'taken') throw new Error(`book ${cmd.bookId} had a copy under its row lock and then none`);
        return this.#held(uow, cmd, retaken.book);
      }
      const ticket = await uow.holds.nextQueueTicket();
      await uow.holds.save(Hold.place(cmd).wait(ticket));
      return {
        reservationId: cmd.reservationId,
        bookId: cmd.bookId,
        bookName: locked.props.bookName,
        quantity: 0,
        created: true,
        status: 'waiting',
        queuePosition: await uow.holds.queuePosition(cmd.bookId, ticket),
        queueTicket: ticket,
      };
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

  async #held(uow: BookUnitOfWork, cmd: HoldCopyCommand, book: BookProps): Promise<HoldCopyResult> {
    await uow.outbox.add(quantityChanged(book, 'held'));
    return { reservationId: cmd.reservationId, bookId: book.bookId, bookName: book.bookName, quantity: book.quantity, created: true, status: 'held', queuePosition: null, queueTicket: null };
  }

  /** A retried request: answers what the first one got, taking nothing more. */
  async #existing(cmd: HoldCopyCommand, uow: BookUnitOfWork): Promise<HoldCopyResult | Refusal> {
    const existing = await uow.holds.find(cmd.reservationId);
    if (!existing) throw new Error(`hold ${cmd.reservationId} vanished`);
    const book = await uow.books.find(cmd.bookId);
    if (!book) return { kind: 'bookNotFound' };
    existing.assertReusableFor(cmd.bookId);
    const ticket = existing.props.queueTicket;
    const waiting = existing.status === 'waiting' && ticket !== null;
    return {
      reservationId: cmd.reservationId,
      bookId: book.bookId,
      bookName: book.bookName,
      quantity: book.quantity,
      created: false,
      status: waiting ? 'waiting' : 'held',
      queuePosition: waiting ? await uow.holds.queuePosition(cmd.bookId, ticket) : null,
      queueTicket: waiting ? ticket : null,
    };
  }
}
