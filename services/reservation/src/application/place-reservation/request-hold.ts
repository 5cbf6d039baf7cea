import type { ReservationProps } from '../../domain/reservation.ts';
import { saveWithEvents } from '../events.ts';
import type { BookAvailability, BookClient, Clock, HoldOutcome, ReservationTransactions } from '../ports.ts';

export type DriveResult =
  | { kind: 'reserved'; reservation: ReservationProps }
  | { kind: 'outOfStock'; reservation: ReservationProps }
  | { kind: 'bookNotFound' }
  /** The patron holds the most copies allowed, counting copies not yet back (book's count, ADR 0021). */
  | { kind: 'tooManyHeld'; held: number | null; limit: number | null }
  | { kind: 'unavailable'; reservation: ReservationProps }
  /** The reservation was deleted meanwhile (by the sweep or another request): what book answered this drive. */
  | { kind: 'gone'; outcome: HoldOutcome };

/** The answer for a reservation somebody else (the request or the sweep) already moved on. */
export function decided(reservation: ReservationProps): DriveResult {
  switch (reservation.status) {
    case 'bookOutOfStock':
      return { kind: 'outOfStock', reservation };
    case 'rejected':
      return { kind: 'unavailable', reservation };
    default:
      return { kind: 'reserved', reservation };
  }
}

/**
 * The pivot of the saga: ask book for a copy, then record the answer and its event in one
 * transaction. Used by PlaceReservation right after the reservation is stored, and by the
 * recovery sweep for reservations a crash left `pending` (book's hold is idempotent by
 * reservationId, so asking twice takes one copy).
 */
export class RequestHold {
  readonly #tx: ReservationTransactions;
  readonly #book: BookClient;
  readonly #clock: Clock;

  constructor(tx: ReservationTransactions, book: BookClient, clock: Clock) {
    this.#tx = tx;
    this.#book = book;
    this.#clock = clock;
  }

  /** Whether book may be called now (its circuit is not open); asked before a reservation is stored. */
  availability(): BookAvailability {
    return this.#book.availability?.() ?? { callable: true };
  }

  async drive(reservation: ReservationProps): Promise<DriveResult> {
    const outcome = await this.#book.hold({
      bookId: reservation.bookId,
      reservationId: reservation.reservationId,
      customerId: reservation.customerId,
      ...(reservation.waitlist ? { waitlist: true } : {}),
    });
    return this.#tx.run(async (uow): Promise<DriveResult> => {
      const r = await uow.reservations.findForUpdate(reservation.reservationId);
      if (!r) return { kind: 'gone', outcome };
      if (r.status !== 'pending') return decided(r.props);
      const now = this.#clock.now();
      switch (outcome.kind) {
        case 'held':
          r.markHeld(outcome.bookName, now);
          await saveWithEvents(uow, r);
          return { kind: 'reserved', reservation: r.props };
        case 'waiting':
          // In the book's line; the answer carries the place book gave it.
          r.markWaiting(outcome.bookName, outcome.queueTicket, now);
          await saveWithEvents(uow, r);
          return { kind: 'reserved', reservation: { ...r.props, queuePosition: outcome.queuePosition } };
        case 'outOfStock':
          r.markOutOfStock(now, outcome.bookName);
          await saveWithEvents(uow, r);
          return { kind: 'outOfStock', reservation: r.props };
        case 'bookNotFound':
          // Bad input leaves nothing behind. Book recorded a voided hold for the reservation, so an
          // earlier attempt still queued there takes no copy even if a book with that id is
          // created before it runs.
          await uow.reservations.delete(r.id);
          return { kind: 'bookNotFound' };
        case 'tooManyHeld':
          // Refused before anything was held, like reservation's own limit: nothing stays behind,
          // and book's voided hold stops any later attempt for this reservation.
          await uow.reservations.delete(r.id);
          return { kind: 'tooManyHeld', held: outcome.held, limit: outcome.limit };
        case 'holdReleased':
          r.reject('the hold was released before it was confirmed', now);
          await saveWithEvents(uow, r);
          return { kind: 'unavailable', reservation: r.props };
        case 'unavailable':
          r.reject(`book service unavailable: ${outcome.reason}`, now);
          await saveWithEvents(uow, r);
          return { kind: 'unavailable', reservation: r.props };
      }
    });
  }
}
