import { STATUS_RANK, type ReservationStatus } from '@bstore/contracts/statuses';

/**
 * What a patron is told, one kind per moment of a reservation's life (issue 20): their turn in the
 * waiting line came, the copy is ready for pickup, the pickup deadline is tomorrow, the hold
 * expired, the loan is due in two days, the loan is overdue, the reservation was refused, the
 * cancellation is complete.
 */
export const NOTICE_KINDS = ['turnCame', 'readyForPickup', 'pickupTomorrow', 'expired', 'loanDueSoon', 'overdue', 'refused', 'cancelled'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** The kinds that are reminders before a deadline: scheduled work, not an answer to an event. */
export const REMINDER_KINDS = ['pickupTomorrow', 'loanDueSoon', 'overdue'] as const satisfies readonly NoticeKind[];
export type ReminderKind = (typeof REMINDER_KINDS)[number];

/**
 * The statuses a reservation must still be in for a notice of this kind to be true when it is
 * made: a notice about a state is never made once the reservation has moved past it (no "ready
 * for pickup" after a cancel or an expiry, however the events interleave).
 */
export const NOTICE_STATE: Readonly<Record<NoticeKind, readonly ReservationStatus[]>> = {
  turnCame: ['bookReserveReq'],
  readyForPickup: ['bookReserved'],
  pickupTomorrow: ['bookReserved'],
  expired: ['bookExpired'],
  loanDueSoon: ['bookLoaned'],
  overdue: ['bookLoaned'],
  refused: ['bookOutOfStock', 'rejected'],
  cancelled: ['bookCanceled'],
};

/** How long before a deadline each reminder comes (the loan's overdue notice comes at the deadline). */
export const REMINDER_LEAD_MS: Readonly<Record<ReminderKind, number>> = {
  pickupTomorrow: 24 * 3600_000,
  loanDueSoon: 2 * 24 * 3600_000,
  overdue: 0,
};

/** What the notification service knows of one reservation, merged from its events in any order. */
export interface ReservationFacts {
  reservationId: number;
  customerId: string;
  bookId: number;
  status: ReservationStatus;
  bookName: string | null;
  libraryName: string | null;
  pickupBy: Date | null;
  dueAt: Date | null;
}

/**
 * Merges what an event says into the facts: the status moves only forward (the lifecycle's rank,
 * the same rule as the read model's), and a detail once known is kept unless the event brings a
 * newer one. `refused` statuses (`bookOutOfStock`, `rejected`) count as one.
 */
export function mergeFacts(known: ReservationFacts | undefined, event: ReservationFacts): ReservationFacts {
  if (!known) return event;
  const forward = STATUS_RANK[event.status] > STATUS_RANK[known.status];
  return {
    reservationId: known.reservationId,
    customerId: known.customerId,
    bookId: known.bookId,
    status: forward ? event.status : known.status,
    bookName: event.bookName ?? known.bookName,
    libraryName: event.libraryName ?? known.libraryName,
    pickupBy: event.pickupBy ?? known.pickupBy,
    dueAt: event.dueAt ?? known.dueAt,
  };
}

/** Whether a notice of `kind` is still true of a reservation with these facts. */
export function noticeStillTrue(kind: NoticeKind, facts: ReservationFacts): boolean {
  return NOTICE_STATE[kind].includes(facts.status);
}

/** What a notice of `kind` tells the patron of a reservation with these facts. */
export interface NoticeContent {
  customerId: string;
  reservationId: number;
  kind: NoticeKind;
  bookId: number;
  bookName: string | null;
  libraryName: string | null;
  /** The deadline the notice is about (pickup by, due back), when it has one. */
  deadline: Date | null;
}

export function noticeFor(kind: NoticeKind, facts: ReservationFacts): NoticeContent {
  return {
    customerId: facts.customerId,
    reservationId: facts.reservationId,
    kind,
    bookId: facts.bookId,
    bookName: facts.bookName,
    libraryName: facts.libraryName,
    deadline: deadlineOf(kind, facts),
  };
}

/** The deadline a notice of `kind` is about. */
function deadlineOf(kind: NoticeKind, facts: ReservationFacts): Date | null {
  switch (kind) {
    case 'readyForPickup':
    case 'pickupTomorrow':
    case 'expired':
      return facts.pickupBy;
    case 'loanDueSoon':
    case 'overdue':
      return facts.dueAt;
    default:
      return null;
  }
}

/** When a reminder is due for these facts, or null when it has no deadline to come before. */
export function reminderDueAt(kind: ReminderKind, facts: ReservationFacts): Date | null {
  const deadline = kind === 'pickupTomorrow' ? facts.pickupBy : facts.dueAt;
  return deadline ? new Date(deadline.getTime() - REMINDER_LEAD_MS[kind]) : null;
}

/** The reminders a reservation in this state waits for. */
export function remindersFor(facts: ReservationFacts): ReminderKind[] {
  if (facts.status === 'bookReserved') return ['pickupTomorrow'];
  if (facts.status === 'bookLoaned') return ['loanDueSoon', 'overdue'];
  return [];
}
