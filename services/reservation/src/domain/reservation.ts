import { DomainError } from '@bstore/platform/kernel';

/**
 * The statuses of a reservation: the seed's five, bstore's `pending` and `rejected`, and the
 * library's life of a hold in the seed's style: `bookWaiting`, `bookLoaned`, `bookReturned`,
 * `bookExpired` (ADR 0022).
 */
export type ReservationStatus =
  | 'pending'
  | 'bookWaiting'
  | 'bookReserveReq'
  | 'bookOutOfStock'
  | 'rejected'
  | 'bookReserved'
  | 'bookCancel'
  | 'bookCanceled'
  | 'bookLoaned'
  | 'bookReturned'
  | 'bookExpired';

export interface ReservationProps {
  readonly reservationId: number;
  readonly bookId: number;
  readonly customerId: string;
  readonly preferredLibraryId: number | null;
  readonly status: ReservationStatus;
  readonly bookName: string | null;
  readonly libraryId: number | null;
  readonly libraryName: string | null;
  readonly rejectReason: string | null;
  /** How many times the hold step was driven (by the request, then by the recovery sweep). */
  readonly attempts: number;
  /** The Idempotency-Key the patron placed it with, if any (keys are per patron). */
  readonly idempotencyKey: string | null;
  /** The patron asked to wait in the book's line when no copy is available. */
  readonly waitlist: boolean;
  /** Its place in the book's line (book's order; smaller joined earlier), once it waited. */
  readonly queueTicket: number | null;
  /**
   * While `bookWaiting`: 1 + the reservations of the book waiting with a smaller ticket. Derived
   * when read (never stored); null otherwise.
   */
  readonly queuePosition: number | null;
  /** Until when the copy waits on the hold shelf (set when a library is assigned). */
  readonly pickupBy: Date | null;
  /** When the loan is due (set at check-out). */
  readonly dueAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export type NewReservation = Omit<ReservationProps, 'reservationId'>;

/** What a patron asks for when placing a reservation. */
export interface PlacementInput {
  bookId: number;
  customerId: string;
  preferredLibraryId?: number | null;
  idempotencyKey?: string | null;
  /** Join the book's waiting line when no copy is available (otherwise: bookOutOfStock). */
  waitlist?: boolean;
}

/** What happened to a reservation, recorded by the aggregate and published by the use case. */
export type ReservationEvent =
  | { type: 'ReservationRequested' }
  | { type: 'ReservationRejected'; status: 'bookOutOfStock' | 'rejected'; reason: string }
  | { type: 'ReservationCancelRequested' }
  | { type: 'ReservationWaitlisted' }
  | { type: 'ReservationCheckedOut' }
  | { type: 'ReservationReturned' }
  | { type: 'ReservationExpired' };

const CANCELLABLE: readonly ReservationStatus[] = ['bookWaiting', 'bookReserveReq', 'bookReserved'];

/**
 * The statuses in which a reservation holds, waits for, or is about to hold a copy for its patron:
 * what the limit on active reservations counts (anti-hoarding). `bookCancel` is not counted (the
 * patron has given the copy up; book counts it until it is back, ADR 0021), nor are loans and ended
 * reservations.
 */
export const ACTIVE_STATUSES: readonly ReservationStatus[] = ['pending', 'bookWaiting', 'bookReserveReq', 'bookReserved'];

/**
 * The statuses in which a reservation of a book stops the same patron from placing another of the
 * same book (one active reservation per patron per book): the active ones. A cancel (`bookCancel`)
 * does not stop a new one: book releases its copy as soon as it hears of the cancel, and counts it
 * against the patron's limit until then (ADR 0021), while waiting for assignment's confirmation
 * here would lock the patron out of the title for as long as assignment is down (ADR 0022).
 */
export const ONE_PER_BOOK_STATUSES: readonly ReservationStatus[] = ACTIVE_STATUSES;

/** How long a copy waits for pickup, and how long a loan lasts. */
export interface LendingPeriods {
  pickupMs: number;
  loanMs: number;
}

/**
 * A patron's reservation of one book and the state of its saga.
 *
 *   pending -> bookReserveReq -> bookReserved -> bookLoaned -> bookReturned
 *   pending -> bookWaiting -> bookReserveReq (a freed copy was granted to it)
 *   pending -> bookOutOfStock | rejected
 *   bookReserveReq -> rejected (no library branch can serve it)
 *   bookReserved -> bookExpired (not picked up by pickupBy)
 *   bookWaiting | bookReserveReq | bookReserved -> bookCancel -> bookCanceled
 *
 * Methods either make the change and record its event, or throw a DomainError. Event-driven
 * changes (accept, confirmCanceled) are idempotent, because events can arrive twice or late.
 */
export class Reservation {
  #props: ReservationProps;
  #events: ReservationEvent[] = [];

  private constructor(props: ReservationProps) {
    this.#props = props;
  }

  /** A new reservation waits as `pending` until book answers the hold. */
  static request(input: PlacementInput, now: Date): NewReservation {
    return {
      bookId: input.bookId,
      customerId: input.customerId,
      preferredLibraryId: input.preferredLibraryId ?? null,
      status: 'pending',
      bookName: null,
      libraryId: null,
      libraryName: null,
      rejectReason: null,
      attempts: 0,
      idempotencyKey: input.idempotencyKey ?? null,
      waitlist: input.waitlist === true,
      queueTicket: null,
      queuePosition: null,
      pickupBy: null,
      dueAt: null,
      createdAt: now,
      updatedAt: now,
    };
  }

  /** `request`, with the first attempt at the hold counted: what placing it stores before calling book. */
  static requestAttempted(input: PlacementInput, now: Date): NewReservation {
    return { ...Reservation.request(input, now), attempts: 1 };
  }

  static restore(props: ReservationProps): Reservation {
    return new Reservation(props);
  }

  get props(): ReservationProps {
    return this.#props;
  }

  get id(): number {
    return this.#props.reservationId;
  }

  get status(): ReservationStatus {
    return this.#props.status;
  }

  isOwnedBy(customerId: string): boolean {
    return this.#props.customerId === customerId;
  }

  /** Drains the events recorded since the aggregate was loaded. */
  pullEvents(): ReservationEvent[] {
    const events = this.#events;
    this.#events = [];
    return events;
  }

  /** Counts one more drive of the hold step (the recovery sweep bounds them). */
  countAttempt(now: Date): void {
    this.#change({ attempts: this.#props.attempts + 1 }, now);
  }

  /** Book holds a copy: the reservation waits for a library. */
  markHeld(bookName: string, now: Date): void {
    this.#expect(['pending'], 'markHeld');
    this.#change({ status: 'bookReserveReq', bookName }, now);
    this.#events.push({ type: 'ReservationRequested' });
  }

  /**
   * No copy was free and the patron asked to wait: book put the reservation in the book's line with
   * the ticket given.
   */
  markWaiting(bookName: string, queueTicket: number, now: Date): void {
    this.#expect(['pending'], 'markWaiting');
    this.#change({ status: 'bookWaiting', bookName, queueTicket }, now);
    this.#events.push({ type: 'ReservationWaitlisted' });
  }

  /**
   * Book granted a freed copy to this waiting reservation (CopyGranted): it continues as any new
   * hold, waiting for a library. A grant may overtake the answer that put it in line (`pending`).
   * A reservation cancelled or rejected meanwhile ignores it (its release passes the copy on), and
   * one already past it ignores a duplicate. Returns whether it moved.
   */
  grant(bookName: string, queueTicket: number, now: Date): boolean {
    if (this.#props.status !== 'bookWaiting' && this.#props.status !== 'pending') return false;
    this.#change({ status: 'bookReserveReq', bookName, queueTicket }, now);
    this.#events.push({ type: 'ReservationRequested' });
    return true;
  }

  /** Book has no copy left. */
  markOutOfStock(now: Date, bookName: string | null = null): void {
    this.#expect(['pending'], 'markOutOfStock');
    const reason = 'no copy available';
    this.#change({ status: 'bookOutOfStock', rejectReason: reason, bookName: bookName ?? this.#props.bookName }, now);
    this.#events.push({ type: 'ReservationRejected', status: 'bookOutOfStock', reason });
  }

  /**
   * The hold could not be confirmed (book unreachable, too many attempts). The event asks book
   * to release any copy the unanswered request may have taken.
   */
  reject(reason: string, now: Date): void {
    this.#expect(['pending'], 'reject');
    this.#change({ status: 'rejected', rejectReason: reason }, now);
    this.#events.push({ type: 'ReservationRejected', status: 'rejected', reason });
  }

  /**
   * No library branch can serve the reservation (assignment found none): it is rejected, and its
   * ReservationRejected makes book give the copy back. A reservation already being cancelled is
   * left to its cancellation (assignment announces that too); anything later is a no-op, because
   * the event can arrive twice or late.
   */
  rejectUnassignable(reason: string, now: Date): void {
    if (this.#props.status !== 'bookReserveReq') {
      this.#expect(['bookCancel', 'bookCanceled', 'rejected'], 'rejectUnassignable');
      return;
    }
    this.#change({ status: 'rejected', rejectReason: reason }, now);
    this.#events.push({ type: 'ReservationRejected', status: 'rejected', reason });
  }

  /**
   * A library was assigned. After a cancel the library is still recorded (the read model records
   * it too, so both agree) but the status stays where the cancel put it.
   */
  accept(library: { libraryId: number; libraryName: string; pickupBy: Date }, now: Date): void {
    this.#expect(['bookReserveReq', 'bookReserved', 'bookCancel', 'bookCanceled', 'bookLoaned', 'bookReturned', 'bookExpired'], 'accept');
    if (this.#props.status === 'bookReserveReq') {
      this.#change({ status: 'bookReserved', libraryId: library.libraryId, libraryName: library.libraryName, pickupBy: library.pickupBy }, now);
      return;
    }
    if (this.#props.libraryId === library.libraryId && this.#props.pickupBy !== null) return;
    // Late (after a cancel) or repeated: the library and its deadline are recorded (as the read model
    // records them, whatever the order), the status stays.
    this.#change({ libraryId: library.libraryId, libraryName: library.libraryName, pickupBy: this.#props.pickupBy ?? library.pickupBy }, now);
  }

  /**
   * Staff check the copy out to the patron at the desk: only while it waits for pickup (even if its
   * deadline has passed and the sweep has not yet expired it: the patron is there). Due in the loan period.
   */
  checkOut(now: Date, periods: LendingPeriods): void {
    if (this.#props.status !== 'bookReserved') {
      throw new DomainError('RESERVATION_NOT_AWAITING_PICKUP', `reservation ${this.id} is ${this.#props.status}: only a reservation awaiting pickup (bookReserved) can be checked out`, {
        reservationId: this.id,
        reservationStatus: this.#props.status,
      });
    }
    this.#change({ status: 'bookLoaned', dueAt: new Date(now.getTime() + periods.loanMs) }, now);
    this.#events.push({ type: 'ReservationCheckedOut' });
  }

  /** Staff check the lent copy back in. */
  checkIn(now: Date): void {
    if (this.#props.status !== 'bookLoaned') {
      throw new DomainError('RESERVATION_NOT_ON_LOAN', `reservation ${this.id} is ${this.#props.status}: only a loan (bookLoaned) can be checked in`, {
        reservationId: this.id,
        reservationStatus: this.#props.status,
      });
    }
    this.#change({ status: 'bookReturned' }, now);
    this.#events.push({ type: 'ReservationReturned' });
  }

  /** Whether the pickup deadline has passed while the copy still waits. */
  isUncollected(now: Date): boolean {
    return this.#props.status === 'bookReserved' && this.#props.pickupBy !== null && this.#props.pickupBy <= now;
  }

  /** Not picked up by its deadline: the copy goes back (to the next in line). Returns whether it expired. */
  expire(now: Date): boolean {
    if (!this.isUncollected(now)) return false;
    this.#change({ status: 'bookExpired' }, now);
    this.#events.push({ type: 'ReservationExpired' });
    return true;
  }

  /** Whether a loan is overdue (no fines: only shown). */
  isOverdue(now: Date): boolean {
    return this.#props.status === 'bookLoaned' && this.#props.dueAt !== null && this.#props.dueAt < now;
  }

  /** The patron cancels: allowed while waiting in line or while a copy is held (before or after the library is assigned). */
  requestCancel(now: Date): void {
    if (!CANCELLABLE.includes(this.#props.status)) {
      throw new DomainError('RESERVATION_NOT_CANCELLABLE', `reservation ${this.id} is ${this.#props.status} and cannot be cancelled`, {
        reservationId: this.id,
        reservationStatus: this.#props.status,
      });
    }
    this.#change({ status: 'bookCancel' }, now);
    this.#events.push({ type: 'ReservationCancelRequested' });
  }

  /** The assignment is released and the copy is on its way back: the cancel is complete. */
  confirmCanceled(now: Date): void {
    this.#expect(['bookCancel', 'bookCanceled'], 'confirmCanceled');
    if (this.#props.status === 'bookCanceled') return;
    this.#change({ status: 'bookCanceled' }, now);
  }

  #expect(allowed: readonly ReservationStatus[], action: string): void {
    if (!allowed.includes(this.#props.status)) {
      throw new DomainError('INVALID_TRANSITION', `reservation ${this.id}: ${action} is not allowed from ${this.#props.status}`, {
        reservationId: this.id,
        reservationStatus: this.#props.status,
      });
    }
  }

  #change(patch: Partial<ReservationProps>, now: Date): void {
    this.#props = { ...this.#props, ...patch, updatedAt: now };
  }
}
