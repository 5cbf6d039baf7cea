import { Reservation } from '../../domain/reservation.ts';
import type { Clock, ReservationTransactions } from '../ports.ts';
import type { DriveResult, RequestHold } from './request-hold.ts';

export interface PlaceReservationCommand {
  bookId: number;
  customerId: string;
  preferredLibraryId?: number | null;
}

/**
 * A patron reserves a book. The reservation is stored `pending` first (its own transaction), so
 * a crash during the call to book leaves a row the recovery sweep finds; then the hold is
 * requested and its answer recorded.
 */
export class PlaceReservation {
  readonly #tx: ReservationTransactions;
  readonly #requestHold: RequestHold;
  readonly #clock: Clock;

  constructor(tx: ReservationTransactions, requestHold: RequestHold, clock: Clock) {
    this.#tx = tx;
    this.#requestHold = requestHold;
    this.#clock = clock;
  }

  async execute(cmd: PlaceReservationCommand): Promise<Exclude<DriveResult, { kind: 'gone' }>> {
    const pending = await this.#tx.run(async (uow) => {
      const r = await uow.reservations.insert(Reservation.request(cmd, this.#clock.now()));
      r.countAttempt(this.#clock.now());
      await uow.reservations.save(r);
      return r.props;
    });
    const result = await this.#requestHold.drive(pending);
    // Only this request created the row; a concurrent sweep could at most have decided it already.
    return result.kind === 'gone' ? { kind: 'bookNotFound' } : result;
  }
}
