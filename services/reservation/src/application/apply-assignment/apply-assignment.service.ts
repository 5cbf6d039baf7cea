import { DomainError } from '@bstore/platform/kernel';
import { saveWithEvents } from '../events.ts';
import type { Clock, ReservationUnitOfWork } from '../ports.ts';

/**
 * What reservation does with assignment's answers: ReservationAccepted -> `bookReserved`,
 * ReservationCanceled -> `bookCanceled`, ReservationAssignmentFailed -> `rejected` (and book gets
 * the copy back). Runs in the event consumer's transaction.
 */
export class ApplyAssignmentOutcome {
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  async accepted(cmd: { reservationId: number; libraryId: number; libraryName: string }, uow: ReservationUnitOfWork): Promise<void> {
    const r = await this.#load(cmd.reservationId, uow);
    r.accept({ libraryId: cmd.libraryId, libraryName: cmd.libraryName }, this.#clock.now());
    await saveWithEvents(uow, r);
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
