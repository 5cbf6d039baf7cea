import type { Clock, TransactionRunner } from '@bstore/platform/kernel';
import { noticeFor, noticeStillTrue } from '../domain/notice.ts';
import type { NotificationUnitOfWork } from './ports.ts';

/**
 * The reminder sweep: takes the reminders that are due and makes their notices, in one transaction
 * per batch, so a reminder taken is a notice made (or, when the reservation moved on meanwhile,
 * dropped), once whatever the number of replicas sweeping. Returns how many notices it made.
 */
export class SendDueReminders {
  readonly #transactions: TransactionRunner<NotificationUnitOfWork>;
  readonly #clock: Clock;
  readonly #batch: number;

  constructor(transactions: TransactionRunner<NotificationUnitOfWork>, clock: Clock, options: { batch?: number } = {}) {
    this.#transactions = transactions;
    this.#clock = clock;
    this.#batch = options.batch ?? 100;
  }

  async execute(): Promise<number> {
    let made = 0;
    for (;;) {
      const { claimed, added } = await this.#transactions.run(async (uow) => {
        const due = await uow.claimDueReminders(this.#clock.now(), this.#batch);
        let count = 0;
        for (const reminder of due) {
          const facts = await uow.findFacts(reminder.reservationId);
          if (facts && noticeStillTrue(reminder.kind, facts) && (await uow.addNotice(noticeFor(reminder.kind, facts)))) count++;
        }
        return { claimed: due.length, added: count };
      });
      made += added;
      if (claimed < this.#batch) return made;
    }
  }
}
