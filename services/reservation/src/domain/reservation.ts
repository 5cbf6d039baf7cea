import { DomainError } from '@bstore/platform/kernel';

/** The statuses of a reservation: the seed's five and bstore's `pending` and `rejected`. */
export type ReservationStatus = 'pending' | 'bookReserveReq' | 'bookOutOfStock' | 'rejected' | 'bookReserved' | 'bookCancel' | 'bookCanceled';

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
}

/** What happened to a reservation, recorded by the aggregate and published by the use case. */
export type ReservationEvent =
  | { type: 'ReservationRequested' }
  | { type: 'ReservationRejected'; status: 'bookOutOfStock' | 'rejected'; reason: string }
  | { type: 'ReservationCancelRequested' };

const CANCELLABLE: readonly ReservationStatus[] = ['bookReserveReq', 'bookReserved'];

/**
 * The statuses in which a reservation holds, or is about to hold, a copy for its patron: what the
 * limit on active reservations counts (anti-hoarding). `bookCancel` is not counted: the patron has
 * given the copy up, and it returns without them.
 */
export const ACTIVE_STATUSES: readonly ReservationStatus[] = ['pending', 'bookReserveReq', 'bookReserved'];

/**
 * A patron's reservation of one book and the state of its saga.
 *
 *   pending -> bookReserveReq -> bookReserved
 *   pending -> bookOutOfStock | rejected
 *   bookReserveReq -> rejected (no library branch can serve it)
 *   bookReserveReq | bookReserved -> bookCancel -> bookCanceled
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
  accept(library: { libraryId: number; libraryName: string }, now: Date): void {
    this.#expect(['bookReserveReq', 'bookReserved', 'bookCancel', 'bookCanceled'], 'accept');
    const status = this.#props.status === 'bookReserveReq' ? 'bookReserved' : this.#props.status;
    if (status === this.#props.status && this.#props.libraryId === library.libraryId) return;
    this.#change({ status, libraryId: library.libraryId, libraryName: library.libraryName }, now);
  }

  /** The patron cancels: allowed while a copy is held (before or after the library is assigned). */
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
