import type { NoticeContent, ReminderKind, ReservationFacts } from '../domain/notice.ts';

/** A notice as a patron reads it. */
export interface Notice extends NoticeContent {
  noticeId: number;
  createdAt: Date;
  readAt: Date | null;
}

/** What the service keeps, in one transaction per event or per reminder. */
export interface NotificationUnitOfWork {
  /**
   * The facts known of `first`'s reservation, locked until the transaction ends, so that its events
   * are applied one at a time; when none are known, `first` is stored (and locked) as its facts and
   * the answer is undefined. Two first events at once: one stores, the other waits and reads it.
   */
  lockFacts(first: ReservationFacts): Promise<ReservationFacts | undefined>;
  /** Replaces the facts of a reservation this transaction locked. */
  saveFacts(facts: ReservationFacts): Promise<void>;
  /** Adds the notice unless one of its kind exists for its reservation; whether it was added. */
  addNotice(notice: NoticeContent): Promise<boolean>;
  /** Makes `wanted` the reservation's pending reminders: others are dropped, each is (re)scheduled at its time. */
  scheduleReminders(reservationId: number, wanted: readonly { kind: ReminderKind; dueAt: Date }[]): Promise<void>;
  /**
   * Takes up to `limit` reminders due at `now` away from the schedule, skipping those another
   * replica is taking: each is returned to exactly one caller.
   */
  claimDueReminders(now: Date, limit: number): Promise<{ reservationId: number; kind: ReminderKind }[]>;
  findFacts(reservationId: number): Promise<ReservationFacts | undefined>;
}

export interface NoticeQuery {
  customerId?: string;
  unreadOnly?: boolean;
  limit: number;
  offset: number;
}

/** The patrons' notices, read and marked read. */
export interface NoticeStore {
  list(query: NoticeQuery): Promise<{ items: Notice[]; total: number; unread: number }>;
  get(noticeId: number): Promise<Notice | undefined>;
  /** Marks one notice read (once: the first time stays); the notice after, or undefined when there is none. */
  markRead(noticeId: number, at: Date): Promise<Notice | undefined>;
  /** Marks every unread notice of the patron read; how many were. */
  markAllRead(customerId: string, at: Date): Promise<number>;
}
