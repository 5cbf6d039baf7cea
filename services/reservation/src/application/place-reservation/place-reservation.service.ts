import { DomainError } from '@bstore/platform/kernel';
import { Reservation } from '../../domain/reservation.ts';
import type { Clock, ReservationTransactions } from '../ports.ts';
import type { DriveResult, RequestHold } from './request-hold.ts';

export interface PlaceReservationCommand {
  bookId: number;
  customerId: string;
  preferredLibraryId?: number | null;
}

export interface PlacementLimits {
  /** Active reservations (ACTIVE_STATUSES) one customer may have; the next is refused (OWASP API6). */
  maxActivePerCustomer: number;
}

/**
 * A patron reserves a book. The reservation is stored `pending` first (its own transaction), so
 * a crash during the call to book leaves a row the recovery sweep finds; then the hold is
 * requested and its answer recorded. A patron at the limit of active reservations is refused
 * before anything is stored.
 */
export class PlaceReservation {
  readonly #tx: ReservationTransactions;
  readonly #requestHold: RequestHold;
  readonly #clock: Clock;
  readonly #limits: PlacementLimits;

  constructor(tx: ReservationTransactions, requestHold: RequestHold, clock: Clock, limits: PlacementLimits) {
    this.#tx = tx;
    this.#requestHold = requestHold;
    this.#clock = clock;
    this.#limits = limits;
  }

  async execute(cmd: PlaceReservationCommand): Promise<Exclude<DriveResult, { kind: 'gone' }> | { kind: 'bookCircuitOpen'; retryAfterMs: number }> {
    // Book is known to be failing (its circuit is open): refuse before storing anything (ADR 0013).
    const book = this.#requestHold.availability();
    if (!book.callable) return { kind: 'bookCircuitOpen', retryAfterMs: book.retryAfterMs };
    const pending = await this.#tx.run(async (uow) => {
      const active = await uow.reservations.countActiveAndLock(cmd.customerId);
      const limit = this.#limits.maxActivePerCustomer;
      if (active >= limit) {
        throw new DomainError(
          'TOO_MANY_ACTIVE_RESERVATIONS',
          `customer ${cmd.customerId} already has ${active} active reservations, the most allowed is ${limit}; cancel one or wait until one ends`,
          { limit, active },
        );
      }
      // Stored with its first attempt at the hold already counted (the call below): one INSERT,
      // not an INSERT and an UPDATE of the same row.
      const r = await uow.reservations.insert(Reservation.requestAttempted(cmd, this.#clock.now()));
      return r.props;
    });
    const result = await this.#requestHold.drive(pending);
    // Only this request created the row; a concurrent sweep could at most have decided it already.
    return result.kind === 'gone' ? { kind: 'bookNotFound' } : result;
  }
}
