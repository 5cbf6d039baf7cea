import type { AppLogger as Logger } from '@bstore/platform/kernel';
import { saveWithEvents } from '../events.ts';
import type { Clock, ReservationTransactions } from '../ports.ts';

/**
 * The deadline sweep (ADR 0022): reservations awaiting pickup whose `pickupBy` has passed expire
 * (`bookExpired`), and their ReservationExpired makes book give the copy to the next waiting
 * reservation or back to stock. Each expiry is its own transaction under the reservation's row
 * lock, checked again there, so replicas sweeping at once, a restart in the middle, or a check-out
 * at the same moment expire a reservation at most once (and never one that was checked out).
 */
export class ExpireUncollected {
  readonly #tx: ReservationTransactions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #batchSize: number;
  readonly #pickupMs: number;

  constructor(tx: ReservationTransactions, clock: Clock, logger: Logger, options: { pickupMs: number; batchSize?: number }) {
    this.#tx = tx;
    this.#clock = clock;
    this.#logger = logger;
    this.#pickupMs = options.pickupMs;
    this.#batchSize = options.batchSize ?? 100;
  }

  /** Expires what is due now, a batch at a time; returns how many expired. */
  async execute(): Promise<number> {
    // Copies on the hold shelf from before deadlines existed (or accepted by such a version during a
    // rolling upgrade) get one, counted from their last change, so that none waits for ever.
    const dated = await this.#tx.run((uow) => uow.reservations.assignMissingDeadlines(this.#pickupMs));
    if (dated > 0) this.#logger.info({ reservations: dated }, 'pickup deadlines given to reservations awaiting pickup without one');
    let expired = 0;
    for (;;) {
      const now = this.#clock.now();
      const due = await this.#tx.run((uow) => uow.reservations.findUncollected(now, this.#batchSize));
      let moved = 0;
      for (const id of due) {
        const done = await this.#tx.run(async (uow) => {
          const r = await uow.reservations.findForUpdate(id);
          if (!r?.expire(this.#clock.now())) return false;
          await saveWithEvents(uow, r);
          return true;
        });
        if (done) {
          moved++;
          this.#logger.info({ reservationId: id }, 'reservation expired: not picked up by its deadline');
        }
      }
      expired += moved;
      // A full batch may have more behind it; a batch that moved nothing (others took it) ends the run.
      if (due.length < this.#batchSize || moved === 0) return expired;
    }
  }
}
