import { DomainError } from '@bstore/platform/kernel';
import { Reservation, type ReservationProps } from '../../domain/reservation.ts';
import type { Clock, HoldOutcome, IdempotencyClaim, ReservationTransactions } from '../ports.ts';
import { decided, type DriveResult, type RequestHold } from './request-hold.ts';

export interface PlaceReservationCommand {
  bookId: number;
  customerId: string;
  preferredLibraryId?: number | null;
  /** Join the book's waiting line when no copy is available (ADR 0022). */
  waitlist?: boolean;
  /** The request's claim on its Idempotency-Key, when it sent one. */
  idempotency?: IdempotencyClaim;
}

export interface PlacementLimits {
  /** Active reservations (ACTIVE_STATUSES) one customer may have; the next is refused (OWASP API6). */
  maxActivePerCustomer: number;
}

export type PlacementResult =
  | Exclude<DriveResult, { kind: 'gone' }>
  /** Book's circuit is open; `pendingReservationId`: the key's reservation waits `pending` for the sweep. */
  | { kind: 'bookCircuitOpen'; retryAfterMs: number; pendingReservationId?: number }
  /** Nothing is held for this request now (its reservation was refused and forgotten meanwhile, or its key taken over): retry. */
  | { kind: 'retry'; reason: 'withdrawn' | 'keyTakenOver' };

/** Thrown inside the placement's transaction to roll it back when the key was taken over. */
class KeyTakenOver extends Error {}

/**
 * The answer for a drive whose reservation was deleted meanwhile: by a concurrent drive that book
 * told "no such book" or "too many copies held" (book voided the hold, so nothing is held).
 */
function answerForGone(outcome: HoldOutcome): PlacementResult {
  if (outcome.kind === 'bookNotFound') return { kind: 'bookNotFound' };
  if (outcome.kind === 'tooManyHeld') return { kind: 'tooManyHeld', held: outcome.held, limit: outcome.limit };
  return { kind: 'retry', reason: 'withdrawn' };
}

/**
 * A patron reserves a book. The reservation is stored `pending` first (its own transaction, which
 * also names it on the request's Idempotency-Key), so a crash during the call to book leaves a row
 * the recovery sweep finds; then the hold is requested and its answer recorded. A patron at the
 * limit of active reservations is refused before anything is stored.
 *
 * A retry whose key already names a reservation answers from that reservation — driving its hold
 * again while it is still `pending` — and never places a second one. Only a reservation that ended
 * `rejected` (it holds nothing: book voids or releases its hold) lets the retry place a new one,
 * which the key then names instead (ADR 0015).
 */
export class PlaceReservation {
  readonly #tx: ReservationTransactions;
  readonly #requestHold: RequestHold;
  readonly #clock: Clock;
  readonly #limits: PlacementLimits;

  constructor(tx: ReservationTransactions, requestHold: RequestHold, clock: Clock, limits: PlacementLimits) {
    this.#tx = tx;
    this.#requestHold = requestHold;
    this.#clock = clock;
    this.#limits = limits;
  }

  async execute(cmd: PlaceReservationCommand): Promise<PlacementResult> {
    const earlier = cmd.idempotency?.reservationId;
    if (earlier != null) {
      const resumed = await this.#resume(earlier, cmd.customerId);
      if (resumed) return resumed;
    }
    // Book is known to be failing (its circuit is open): refuse before storing anything (ADR 0013).
    const book = this.#requestHold.availability();
    if (!book.callable) return { kind: 'bookCircuitOpen', retryAfterMs: book.retryAfterMs };
    const pending = await this.#storePending(cmd).catch((err: unknown) => {
      if (err instanceof KeyTakenOver) return null;
      throw err;
    });
    if (!pending) return { kind: 'retry', reason: 'keyTakenOver' };
    const result = await this.#requestHold.drive(pending);
    return result.kind === 'gone' ? answerForGone(result.outcome) : result;
  }

  /**
   * Stores the reservation `pending`, under the patron's limit of active reservations, and names it
   * on the request's key in the same transaction. Throws KeyTakenOver (rolling back) when a retry
   * took the key over meanwhile.
   */
  #storePending(cmd: PlaceReservationCommand): Promise<ReservationProps> {
    return this.#tx.run(async (uow) => {
      const active = await uow.reservations.countActiveAndLock(cmd.customerId);
      const limit = this.#limits.maxActivePerCustomer;
      if (active >= limit) {
        throw new DomainError(
          'TOO_MANY_ACTIVE_RESERVATIONS',
          `customer ${cmd.customerId} already has ${active} active reservations, the most allowed is ${limit}; cancel one or wait until one ends`,
          { limit, active },
        );
      }
      // One active reservation per patron per book (under the same lock as the count).
      const open = await uow.reservations.findOpenForBook(cmd.customerId, cmd.bookId);
      if (open) {
        throw new DomainError(
          'ACTIVE_RESERVATION_EXISTS',
          `you already have reservation ${open.reservationId} of book ${cmd.bookId} (${open.status}); one active reservation per book`,
          { reservationId: open.reservationId, bookId: cmd.bookId, reservationStatus: open.status },
        );
      }
      // Stored with its first attempt at the hold already counted (the call that follows): one
      // INSERT, not an INSERT and an UPDATE of the same row.
      const r = await uow.reservations.insert(
        Reservation.requestAttempted(
          {
            bookId: cmd.bookId,
            customerId: cmd.customerId,
            preferredLibraryId: cmd.preferredLibraryId ?? null,
            idempotencyKey: cmd.idempotency?.key ?? null,
            waitlist: cmd.waitlist === true,
          },
          this.#clock.now(),
        ),
      );
      // This request's key was taken over by a retry (its lock expired): roll back, that retry answers.
      if (cmd.idempotency && !(await uow.idempotencyKeys.bind(cmd.idempotency, r.id))) throw new KeyTakenOver();
      return r.props;
    });
  }

  /**
   * The answer of the reservation an earlier request with the same key created; null when there
   * is none to answer from (it was rejected, or refused and forgotten) and a new one may be placed.
   */
  async #resume(reservationId: number, customerId: string): Promise<PlacementResult | null> {
    // While book's circuit is open a drive would reject the reservation and give up its copy; like
    // the sweep, leave a pending one as it is and tell the client when to retry (ADR 0013).
    const book = this.#requestHold.availability();
    const claimed = await this.#tx.run(async (uow) => {
      const r = await uow.reservations.findForUpdate(reservationId);
      if (!r || !r.isOwnedBy(customerId) || r.status === 'rejected') return null;
      if (r.status !== 'pending') return { step: 'answer' as const, result: decided(r.props) };
      if (!book.callable) return { step: 'wait' as const, retryAfterMs: book.retryAfterMs, reservationId: r.id };
      // Still pending: its request died or its answer was lost. Drive the hold again (book's hold is
      // idempotent by reservation), counted like an attempt of the recovery sweep.
      r.countAttempt(this.#clock.now());
      await uow.reservations.save(r);
      return { step: 'drive' as const, pending: r.props };
    });
    if (!claimed) return null;
    if (claimed.step === 'answer') return claimed.result.kind === 'gone' ? null : claimed.result;
    if (claimed.step === 'wait') return { kind: 'bookCircuitOpen', retryAfterMs: claimed.retryAfterMs, pendingReservationId: claimed.reservationId };
    const result = await this.#requestHold.drive(claimed.pending);
    // Rejected now (book unavailable): answered as such; the retry after it places a new one.
    return result.kind === 'gone' ? answerForGone(result.outcome) : result;
  }
}
