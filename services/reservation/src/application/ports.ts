import type { Clock, Outbox, TransactionRunner } from '@bstore/platform/kernel';
import type { NewReservation, Reservation, ReservationProps, ReservationStatus } from '../domain/reservation.ts';

export interface ReservationRepository {
  insert(reservation: NewReservation): Promise<Reservation>;
  find(reservationId: number): Promise<Reservation | null>;
  /** Loads and locks the row until the transaction ends. */
  findForUpdate(reservationId: number): Promise<Reservation | null>;
  save(reservation: Reservation): Promise<void>;
  delete(reservationId: number): Promise<void>;
  /** Reservations left `pending` since before `before`, oldest first. */
  findStalePending(before: Date, limit: number): Promise<number[]>;
  list(query: { customerId?: string; status?: ReservationStatus; limit: number; offset: number }): Promise<{ items: ReservationProps[]; total: number }>;
}

export interface ReservationUnitOfWork {
  readonly reservations: ReservationRepository;
  readonly outbox: Outbox;
}

export type ReservationTransactions = TransactionRunner<ReservationUnitOfWork>;

/** Book's answer to a hold request. Expected refusals are outcomes, not exceptions. */
export type HoldOutcome =
  | { kind: 'held'; bookName: string }
  | { kind: 'outOfStock'; bookName: string | null }
  | { kind: 'bookNotFound' }
  /** The hold was released before this request got to it (the reservation was given up). */
  | { kind: 'holdReleased' }
  /** No answer, or not one we understand: the copy may or may not have been taken. */
  | { kind: 'unavailable'; reason: string };

/**
 * The synchronous call to book.
 *
 * @example
 * const outcome = await book.hold({ bookId: 3, reservationId: 42, customerId: 'alice' });
 */
export interface BookClient {
  hold(request: { bookId: number; reservationId: number; customerId: string }): Promise<HoldOutcome>;
}

export type { Clock };

/** Who asks: a customer sees and cancels their own reservations, staff all of them. */
export interface Requester {
  customerId: string;
  role: 'customer' | 'staff';
}
