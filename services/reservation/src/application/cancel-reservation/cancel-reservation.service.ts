import { DomainError } from '@bstore/platform/kernel';
import type { ReservationProps } from '../../domain/reservation.ts';
import { saveWithEvents } from '../events.ts';
import type { Clock, ReservationTransactions, Requester } from '../ports.ts';

/**
 * A patron (or staff) cancels a reservation. It moves to `bookCancel` at once; assignment then
 * releases the library, book restores the copy, and the reservation ends `bookCanceled`.
 */
export class CancelReservation {
  readonly #tx: ReservationTransactions;
  readonly #clock: Clock;

  constructor(tx: ReservationTransactions, clock: Clock) {
    this.#tx = tx;
    this.#clock = clock;
  }

  execute(cmd: { reservationId: number; requester: Requester }): Promise<ReservationProps> {
    return this.#tx.run(async (uow) => {
      const r = await uow.reservations.findForUpdate(cmd.reservationId);
      if (!r || (cmd.requester.role !== 'staff' && !r.isOwnedBy(cmd.requester.customerId))) {
        throw new DomainError('RESERVATION_NOT_FOUND', `reservation ${cmd.reservationId} does not exist`, { reservationId: cmd.reservationId });
      }
      r.requestCancel(this.#clock.now());
      await saveWithEvents(uow, r);
      return r.props;
    });
  }
}
