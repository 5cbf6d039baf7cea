import { DomainError } from '@bstore/platform/kernel';
import type { LendingPeriods, Reservation, ReservationProps } from '../../domain/reservation.ts';
import { saveWithEvents } from '../events.ts';
import type { Clock, ReservationTransactions, Requester } from '../ports.ts';

/**
 * The librarian's desk: check a reservation's copy out to its patron (`bookReserved` ->
 * `bookLoaned`, due in the loan period) and check it back in (`bookLoaned` -> `bookReturned`). Staff
 * only. Each change and its event commit together under the reservation's row lock, so a check-out
 * and the deadline sweep's expiry of the same reservation cannot both happen: the second finds the
 * status the first left.
 */
export class LendAtDesk {
  readonly #tx: ReservationTransactions;
  readonly #clock: Clock;
  readonly #periods: LendingPeriods;

  constructor(tx: ReservationTransactions, clock: Clock, periods: LendingPeriods) {
    this.#tx = tx;
    this.#clock = clock;
    this.#periods = periods;
  }

  checkOut(cmd: { reservationId: number; requester: Requester }): Promise<ReservationProps> {
    return this.#change(cmd, (r, now) => r.checkOut(now, this.#periods));
  }

  checkIn(cmd: { reservationId: number; requester: Requester }): Promise<ReservationProps> {
    return this.#change(cmd, (r, now) => r.checkIn(now));
  }

  #change(
    cmd: { reservationId: number; requester: Requester },
    apply: (r: Reservation, now: Date) => void,
  ): Promise<ReservationProps> {
    if (cmd.requester.role !== 'staff') {
      throw new DomainError('STAFF_ONLY', 'only library staff check copies out and in', { reservationId: cmd.reservationId });
    }
    return this.#tx.run(async (uow) => {
      const r = await uow.reservations.findForUpdate(cmd.reservationId);
      if (!r) throw new DomainError('RESERVATION_NOT_FOUND', `reservation ${cmd.reservationId} does not exist`, { reservationId: cmd.reservationId });
      apply(r, this.#clock.now());
      await saveWithEvents(uow, r);
      return r.props;
    });
  }
}
