import { DomainError } from '@bstore/platform/kernel';
import { saveWithEvents } from '../events.ts';
import type { LendingPeriods } from '../../domain/reservation.ts';
import type { Clock, ReservationUnitOfWork } from '../ports.ts';

/**
 * What reservation does with the answers of the saga's other services: ReservationAccepted ->
 * `bookReserved` awaiting pickup until pickupBy, ReservationCanceled -> `bookCanceled`,
 * ReservationAssignmentFailed -> `rejected` (and book gets the copy back), CopyGranted (book gave a
 * freed copy to a waiting reservation) -> `bookReserveReq`. Runs in the event consumer's transaction.
 */
export class ApplyAssignmentOutcome {
  readonly #clock: Clock;
  readonly #periods: Pick<LendingPeriods, 'pickupMs'>;

  constructor(clock: Clock, periods: Pick<LendingPeriods, 'pickupMs'>) {
    this.#clock = clock;
    this.#periods = periods;
  }

  /**
   * `pickupBy` is the assignment's (the branch's hold shelf); an event of an assignment version that
   * did not send it counts the pickup period from the event's time.
   */
  async accepted(cmd: { reservationId: number; libraryId: number; libraryName: string; pickupBy?: string; occurredAt: Date }, uow: ReservationUnitOfWork): Promise<void> {
    const r = await this.#load(cmd.reservationId, uow);
    const pickupBy = cmd.pickupBy ? new Date(cmd.pickupBy) : new Date(cmd.occurredAt.getTime() + this.#periods.pickupMs);
    r.accept({ libraryId: cmd.libraryId, libraryName: cmd.libraryName, pickupBy }, this.#clock.now());
    await saveWithEvents(uow, r);
  }

  /** Book granted a freed copy to a waiting reservation: it goes on to a library like any new hold. */
  async granted(cmd: { reservationId: number; bookName: string; queueTicket: number }, uow: ReservationUnitOfWork): Promise<void> {
    const r = await this.#load(cmd.reservationId, uow);
    if (r.grant(cmd.bookName, cmd.queueTicket, this.#clock.now())) await saveWithEvents(uow, r);
  }

  async canceled(cmd: { reservationId: number }, uow: ReservationUnitOfWork): Promise<void> {
    const r = await this.#load(cmd.reservationId, uow);
    r.confirmCanceled(this.#clock.now());
    await saveWithEvents(uow, r);
  }

  async failed(cmd: { reservationId: number; reason: string }, uow: ReservationUnitOfWork): Promise<void> {
    const r = await this.#load(cmd.reservationId, uow);
    r.rejectUnassignable(`no library can serve it: ${cmd.reason}`.slice(0, 200), this.#clock.now());
    await saveWithEvents(uow, r);
  }

  async #load(reservationId: number, uow: ReservationUnitOfWork) {
    const r = await uow.reservations.findForUpdate(reservationId);
    if (!r) throw new DomainError('RESERVATION_NOT_FOUND', `reservation ${reservationId} does not exist`, { reservationId });
    return r;
  }
}
