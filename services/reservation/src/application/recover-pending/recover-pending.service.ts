import type { AppLogger as Logger } from '@bstore/platform/kernel';
import { saveWithEvents } from '../events.ts';
import type { RequestHold } from '../place-reservation/request-hold.ts';
import type { Clock, ReservationTransactions } from '../ports.ts';

export interface RecoverPendingOptions {
  /** A reservation pending for longer than this was abandoned by its request. */
  staleAfterMs: number;
  /** Drives of the hold step before the reservation is rejected (and any hold released). */
  maxAttempts: number;
  batchSize: number;
}

/**
 * The recovery sweep: re-drives reservations a crash or a lost answer left `pending`. After
 * `maxAttempts` it gives up and rejects them, which makes book release any copy they hold. While
 * calls to book are paused (its circuit is open) the sweep waits: it neither drives nor counts an
 * attempt, so an outage of book does not use up the reservations' attempts without a single call.
 */
export class RecoverPendingReservations {
  readonly #tx: ReservationTransactions;
  readonly #requestHold: RequestHold;
  readonly #clock: Clock;
  readonly #options: RecoverPendingOptions;
  readonly #logger: Logger;

  constructor(tx: ReservationTransactions, requestHold: RequestHold, clock: Clock, options: RecoverPendingOptions, logger: Logger) {
    this.#tx = tx;
    this.#requestHold = requestHold;
    this.#clock = clock;
    this.#options = options;
    this.#logger = logger;
  }

  /** Returns how many reservations were looked at. */
  async execute(): Promise<number> {
    const book = this.#requestHold.availability();
    if (!book.callable) {
      this.#logger.debug({ retryAfterMs: book.retryAfterMs }, 'calls to book are paused; the recovery sweep waits');
      return 0;
    }
    const before = new Date(this.#clock.now().getTime() - this.#options.staleAfterMs);
    const ids = await this.#tx.run((uow) => uow.reservations.findStalePending(before, this.#options.batchSize));
    for (const id of ids) {
      const claimed = await this.#tx.run(async (uow) => {
        const r = await uow.reservations.findForUpdate(id);
        // Under the row lock: another sweep (a replica, or the start-up run) may have just claimed it.
        if (!r || r.status !== 'pending' || r.props.updatedAt >= before) return null;
        if (r.props.attempts >= this.#options.maxAttempts) {
          r.reject(`no answer from book after ${r.props.attempts} attempts`, this.#clock.now());
          await saveWithEvents(uow, r);
          return null;
        }
        // Counting the attempt also moves updatedAt, so the next sweep waits staleAfterMs again.
        r.countAttempt(this.#clock.now());
        await uow.reservations.save(r);
        return r.props;
      });
      if (!claimed) continue;
      const result = await this.#requestHold.drive(claimed);
      this.#logger.info({ reservationId: id, attempt: claimed.attempts, result: result.kind }, 'recovered pending reservation');
    }
    return ids.length;
  }
}
