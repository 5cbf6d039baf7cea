import type { Clock, Outbox, TransactionRunner } from '@bstore/platform/kernel';
import type { NewReservation, Reservation, ReservationProps, ReservationStatus } from '../domain/reservation.ts';

export interface ReservationRepository {
  insert(reservation: NewReservation): Promise<Reservation>;
  find(reservationId: number): Promise<Reservation | null>;
  /** Loads and locks the row until the transaction ends. */
  findForUpdate(reservationId: number): Promise<Reservation | null>;
  save(reservation: Reservation): Promise<void>;
  delete(reservationId: number): Promise<void>;
  /**
   * Counts the customer's active reservations (ACTIVE_STATUSES) and keeps any other placement by the
   * same customer waiting until this transaction ends, so a limit checked on the count holds under
   * concurrent requests.
   */
  countActiveAndLock(customerId: string): Promise<number>;
  /**
   * The patron's reservation of the book that stops another (ONE_PER_BOOK_STATUSES), if any. Call
   * after countActiveAndLock, whose lock makes the check and the insert one step.
   */
  findOpenForBook(customerId: string, bookId: number): Promise<{ reservationId: number; status: ReservationStatus } | null>;
  /**
   * Gives a pickup deadline (the last change + `pickupMs`) to reservations awaiting pickup without
   * one: those a version before deadlines existed accepted. Returns how many.
   */
  assignMissingDeadlines(pickupMs: number): Promise<number>;
  /** Reservations awaiting pickup whose deadline is `now` or earlier, earliest first. */
  findUncollected(now: Date, limit: number): Promise<number[]>;
  /** Reservations left `pending` since before `before`, oldest first. */
  findStalePending(before: Date, limit: number): Promise<number[]>;
  list(query: { customerId?: string; status?: ReservationStatus; libraryId?: number; limit: number; offset: number }): Promise<{ items: ReservationProps[]; total: number }>;
}

/**
 * A request's hold on its Idempotency-Key (ADR 0015): the key, the claim that makes this request
 * its owner, and the reservation the key already created, if any.
 */
export interface IdempotencyClaim {
  customerId: string;
  key: string;
  claimId: string;
  /** Set when an earlier request with this key stored a reservation: a retry answers from it. */
  reservationId: number | null;
}

/** The Idempotency-Key records, inside a transaction. */
export interface IdempotencyKeyRepository {
  /**
   * Names the reservation a claim created, in the transaction that stores it. False when the claim
   * is no longer the key's owner (another request took the key over): the caller must roll back.
   */
  bind(claim: IdempotencyClaim, reservationId: number): Promise<boolean>;
}

export interface ReservationUnitOfWork {
  readonly reservations: ReservationRepository;
  readonly idempotencyKeys: IdempotencyKeyRepository;
  readonly outbox: Outbox;
}

export type ReservationTransactions = TransactionRunner<ReservationUnitOfWork>;

/** Book's answer to a hold request. Expected refusals are outcomes, not exceptions. */
export type HoldOutcome =
  | { kind: 'held'; bookName: string }
  /** No copy was free and the request asked to wait: the reservation is in the book's line (ADR 0022). */
  | { kind: 'waiting'; bookName: string; queueTicket: number; queuePosition: number }
  | { kind: 'outOfStock'; bookName: string | null }
  | { kind: 'bookNotFound' }
  /** The hold was released before this request got to it (the reservation was given up). */
  | { kind: 'holdReleased' }
  /**
   * The patron already holds the most copies allowed, counting copies given up but not yet back
   * (ADR 0021). Book recorded the refusal: no later attempt takes a copy for this reservation.
   */
  | { kind: 'tooManyHeld'; held: number | null; limit: number | null }
  /** No answer, or not one we understand: the copy may or may not have been taken. */
  | { kind: 'unavailable'; reason: string };

/**
 * The synchronous call to book.
 *
 * @example
 * const outcome = await book.hold({ bookId: 3, reservationId: 42, customerId: 'alice' });
 */
export interface BookClient {
  hold(request: { bookId: number; reservationId: number; customerId: string; waitlist?: boolean }): Promise<HoldOutcome>;
  /**
   * Whether a call would go to book now, asked before anything is stored. A client with a circuit
   * breaker says no while the circuit is open (ADR 0013); a client without one may leave this out.
   */
  availability?(): BookAvailability;
}

/** A client's answer to "may I call book now?"; when not, how long until it may. */
export type BookAvailability = { callable: true } | { callable: false; retryAfterMs: number };

export type { Clock };

/** Who asks: a customer sees and cancels their own reservations, staff all of them. */
export interface Requester {
  customerId: string;
  role: 'customer' | 'staff';
}
