import type { Clock } from '@bstore/platform/kernel';
import { noticeStillTrue } from '../domain/notice.ts';
import type { NotificationUnitOfWork } from './ports.ts';
import { deadlineOf } from './record-reservation-event.ts';

/** Runs a unit of work in one transaction. */
export type RunInTransaction = <T>(work: (uow: NotificationUnitOfWork) => Promise<T>) => Promise<T>;

/**
 * The reminder sweep: takes the reminders that are due and makes their notices, in one transaction
 * per batch, so a reminder taken is a notice made (or, when the reservation moved on meanwhile,
 * dropped), once whatever the number of replicas sweeping. Returns how many notices it made.
 */
export class SendDueReminders {
  readonly #transaction: RunInTransaction;
  readonly #clock: Clock;
  readonly #batch: number;

  constructor(transaction: RunInTransaction, clock: Clock, options: { batch?: number } = {}) {
    this.#transaction = transaction;
    this.#clock = clock;
    this.#batch = options.batch ?? 100;
  }

  async execute(): Promise<number> {
    let made = 0;
    for (;;) {
      const { claimed, added } = await this.#transaction(async (uow) => {
        const due = await uow.claimDueReminders(this.#clock.now(), this.#batch);
        let count = 0;
        for (const reminder of due) {
          const facts = await uow.findFacts(reminder.reservationId);
          if (!facts || !noticeStillTrue(reminder.kind, facts)) continue;
          const notice = {
            customerId: facts.customerId,
            reservationId: facts.reservationId,
            kind: reminder.kind,
            bookId: facts.bookId,
            bookName: facts.bookName,
            libraryName: facts.libraryName,
            deadline: deadlineOf(reminder.kind, facts),
          };
          if (await uow.addNotice(notice)) count++;
        }
        return { claimed: due.length, added: count };
      });
      made += added;
      if (claimed < this.#batch) return made;
    }
  }
}
