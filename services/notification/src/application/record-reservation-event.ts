import type { Clock } from '@bstore/platform/kernel';
import { mergeFacts, noticeFor, noticeStillTrue, reminderDueAt, remindersFor, type NoticeKind, type ReservationFacts } from '../domain/notice.ts';
import type { NotificationUnitOfWork } from './ports.ts';

/** What one lifecycle event says of its reservation, and the notice it may bring. */
export interface ReservationEventFacts {
  facts: ReservationFacts;
  /** The notice this event tells the patron, if any (a check-out brings none: its reminders come later). */
  notice: NoticeKind | null;
}

/**
 * Applies one lifecycle event, in the consumer's transaction beside its inbox record: merges what
 * it says into the reservation's facts (whatever order the events arrive in), makes its notice
 * only if the reservation is still in the state the notice is about, and schedules the reminders
 * the reservation now waits for (dropping those it no longer does).
 */
export class RecordReservationEvent {
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  async execute(event: ReservationEventFacts, uow: NotificationUnitOfWork): Promise<void> {
    const known = await uow.lockFacts(event.facts);
    const facts = mergeFacts(known, event.facts);
    if (known) await uow.saveFacts(facts);
    if (event.notice && noticeStillTrue(event.notice, facts)) await uow.addNotice(noticeFor(event.notice, facts));
    const now = this.#clock.now().getTime();
    const wanted = remindersFor(facts)
      .map((kind) => ({ kind, dueAt: reminderDueAt(kind, facts) }))
      // A reminder whose time has passed already tells nothing the notice just made does not.
      .filter((r): r is { kind: typeof r.kind; dueAt: Date } => r.dueAt !== null && r.dueAt.getTime() > now);
    await uow.scheduleReminders(facts.reservationId, wanted);
  }
}
