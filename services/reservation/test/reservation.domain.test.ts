import { describe, expect, it } from 'vitest';
import { RESERVATION_STATUSES } from '@bstore/contracts';
import { DomainError } from '@bstore/platform/kernel';
import { Reservation, type ReservationStatus } from '../src/domain/reservation.ts';

const now = new Date('2026-01-01T00:00:00Z');
const later = new Date('2026-01-09T00:00:00Z');
const pickupBy = new Date('2026-01-08T00:00:00Z');
const periods = { pickupMs: 7 * 86_400_000, loanMs: 14 * 86_400_000 };
/** Every status, as the contracts list them. */
const STATUSES: readonly ReservationStatus[] = RESERVATION_STATUSES;

function inStatus(status: ReservationStatus): Reservation {
  const shelved = ['bookReserved', 'bookLoaned', 'bookReturned', 'bookExpired'].includes(status);
  return Reservation.restore({
    ...Reservation.request({ bookId: 1, customerId: 'alice' }, now),
    reservationId: 7,
    status,
    libraryId: shelved ? 1 : null,
    libraryName: shelved ? 'Gangnam' : null,
    pickupBy: shelved ? pickupBy : null,
    queueTicket: status === 'bookWaiting' ? 4 : null,
    dueAt: status === 'bookLoaned' || status === 'bookReturned' ? later : null,
  });
}

describe('a new reservation', () => {
  it('is pending with no attempt; placed, its first attempt at the hold is counted', () => {
    const fresh = Reservation.request({ bookId: 1, customerId: 'alice' }, now);
    expect(fresh).toMatchObject({ status: 'pending', attempts: 0, waitlist: false, createdAt: now, updatedAt: now });
    expect(Reservation.requestAttempted({ bookId: 1, customerId: 'alice' }, now)).toEqual({ ...fresh, attempts: 1 });
    expect(Reservation.request({ bookId: 1, customerId: 'alice', waitlist: true }, now).waitlist).toBe(true);
  });
});

type Action = { name: string; run: (r: Reservation) => void };
const ACTIONS: Action[] = [
  { name: 'markHeld', run: (r) => r.markHeld('Almond', now) },
  { name: 'markWaiting', run: (r) => r.markWaiting('Almond', 9, now) },
  { name: 'grant', run: (r) => void r.grant('Almond', 9, now) },
  { name: 'markOutOfStock', run: (r) => r.markOutOfStock(now) },
  { name: 'reject', run: (r) => r.reject('book unavailable', now) },
  { name: 'accept', run: (r) => r.accept({ libraryId: 2, libraryName: 'Jongno', pickupBy }, now) },
  { name: 'requestCancel', run: (r) => r.requestCancel(now) },
  { name: 'confirmCanceled', run: (r) => r.confirmCanceled(now) },
  { name: 'rejectUnassignable', run: (r) => r.rejectUnassignable('no library branch exists', now) },
  { name: 'checkOut', run: (r) => r.checkOut(now, periods) },
  { name: 'checkIn', run: (r) => r.checkIn(now) },
  { name: 'expire', run: (r) => void r.expire(later) },
];

/** Every status mapped to itself: what an ignored (idempotent) action leaves. */
const UNCHANGED = Object.fromEntries(STATUSES.map((s) => [s, s])) as Record<ReservationStatus, string>;
const ALL = (outcome: string) => Object.fromEntries(STATUSES.map((s) => [s, outcome])) as Record<ReservationStatus, string>;

/** The whole transition table: the status each action leads to from each status, or the error code it raises. */
const TABLE: Record<string, Record<ReservationStatus, ReservationStatus | string>> = {
  markHeld: { ...ALL('INVALID_TRANSITION'), pending: 'bookReserveReq' },
  markWaiting: { ...ALL('INVALID_TRANSITION'), pending: 'bookWaiting' },
  // A grant moves a waiting (or not yet answered) reservation on; anything else ignores it (its release passes the copy on).
  grant: { ...UNCHANGED, pending: 'bookReserveReq', bookWaiting: 'bookReserveReq' },
  markOutOfStock: { ...ALL('INVALID_TRANSITION'), pending: 'bookOutOfStock' },
  reject: { ...ALL('INVALID_TRANSITION'), pending: 'rejected' },
  accept: {
    ...ALL('INVALID_TRANSITION'),
    bookReserveReq: 'bookReserved',
    bookReserved: 'bookReserved',
    bookCancel: 'bookCancel',
    bookCanceled: 'bookCanceled',
    bookLoaned: 'bookLoaned',
    bookReturned: 'bookReturned',
    bookExpired: 'bookExpired',
  },
  requestCancel: { ...ALL('RESERVATION_NOT_CANCELLABLE'), bookWaiting: 'bookCancel', bookReserveReq: 'bookCancel', bookReserved: 'bookCancel' },
  confirmCanceled: { ...ALL('INVALID_TRANSITION'), bookCancel: 'bookCanceled', bookCanceled: 'bookCanceled' },
  // A cancellation that overtook the failure completes through assignment's ReservationCanceled; a repeat is a no-op.
  rejectUnassignable: { ...ALL('INVALID_TRANSITION'), bookReserveReq: 'rejected', rejected: 'rejected', bookCancel: 'bookCancel', bookCanceled: 'bookCanceled' },
  checkOut: { ...ALL('RESERVATION_NOT_AWAITING_PICKUP'), bookReserved: 'bookLoaned' },
  checkIn: { ...ALL('RESERVATION_NOT_ON_LOAN'), bookLoaned: 'bookReturned' },
  // Only a copy awaiting pickup past its deadline expires; the sweep leaves everything else as it is.
  expire: { ...UNCHANGED, bookReserved: 'bookExpired' },
};

describe('Reservation transitions', () => {
  for (const action of ACTIONS) {
    for (const from of STATUSES) {
      const expected = TABLE[action.name]?.[from];
      const allowed = expected !== undefined && (STATUSES as string[]).includes(expected);
      it(`${action.name} from ${from} ${allowed ? `-> ${expected}` : `throws ${expected}`}`, () => {
        const r = inStatus(from);
        if (allowed) {
          action.run(r);
          expect(r.status).toBe(expected);
        } else {
          let error: unknown;
          try {
            action.run(r);
          } catch (err) {
            error = err;
          }
          expect(error).toBeInstanceOf(DomainError);
          expect((error as DomainError).code).toBe(expected);
          expect(r.status).toBe(from);
          expect(r.pullEvents()).toEqual([]);
        }
      });
    }
  }
});

describe('Reservation events', () => {
  it('records ReservationRequested when held, with the book name', () => {
    const r = inStatus('pending');
    r.markHeld('Almond', now);
    expect(r.props.bookName).toBe('Almond');
    expect(r.pullEvents()).toEqual([{ type: 'ReservationRequested' }]);
    expect(r.pullEvents()).toEqual([]);
  });

  it('records ReservationRejected for out of stock and for rejection, so book releases any hold', () => {
    const a = inStatus('pending');
    a.markOutOfStock(now);
    expect(a.pullEvents()).toEqual([{ type: 'ReservationRejected', status: 'bookOutOfStock', reason: 'no copy available' }]);
    const b = inStatus('pending');
    b.reject('timeout', now);
    expect(b.pullEvents()).toEqual([{ type: 'ReservationRejected', status: 'rejected', reason: 'timeout' }]);
  });

  it('records ReservationCancelRequested on cancel; assignment outcomes record nothing', () => {
    const r = inStatus('bookReserveReq');
    r.accept({ libraryId: 1, libraryName: 'Gangnam', pickupBy }, now);
    expect(r.pullEvents()).toEqual([]);
    r.requestCancel(now);
    expect(r.pullEvents()).toEqual([{ type: 'ReservationCancelRequested' }]);
    r.confirmCanceled(now);
    expect(r.pullEvents()).toEqual([]);
  });

  it('records ReservationRejected when no library can serve it, so book gives the copy back; only once', () => {
    const r = inStatus('bookReserveReq');
    r.rejectUnassignable('no library can serve it', now);
    expect(r.props).toMatchObject({ status: 'rejected', rejectReason: 'no library can serve it' });
    expect(r.pullEvents()).toEqual([{ type: 'ReservationRejected', status: 'rejected', reason: 'no library can serve it' }]);
    r.rejectUnassignable('no library can serve it', now);
    expect(r.pullEvents()).toEqual([]);
    const cancelling = inStatus('bookCancel');
    cancelling.rejectUnassignable('no library can serve it', now);
    expect(cancelling.pullEvents()).toEqual([]);
  });

  it('an acceptance after a cancel records the library but keeps the cancel', () => {
    const r = inStatus('bookCancel');
    r.accept({ libraryId: 3, libraryName: 'Mapo', pickupBy }, now);
    expect(r.props).toMatchObject({ status: 'bookCancel', libraryId: 3, libraryName: 'Mapo', pickupBy });
  });

  it('a refused cancel says why, with the current status', () => {
    const r = inStatus('bookCanceled');
    expect(() => r.requestCancel(now)).toThrowError(/bookCanceled and cannot be cancelled/);
  });
});

describe('the life of a hold (ADR 0022)', () => {
  it('waits in line, is granted a copy (ReservationRequested, as any new hold), and gets its deadline from the assignment', () => {
    const r = inStatus('pending');
    r.markWaiting('Almond', 12, now);
    expect(r.props).toMatchObject({ status: 'bookWaiting', queueTicket: 12, bookName: 'Almond' });
    expect(r.pullEvents()).toEqual([{ type: 'ReservationWaitlisted' }]);
    expect(r.grant('Almond', 12, now)).toBe(true);
    expect(r.pullEvents()).toEqual([{ type: 'ReservationRequested' }]);
    expect(r.grant('Almond', 12, now)).toBe(false);
    expect(r.pullEvents()).toEqual([]);
    r.accept({ libraryId: 2, libraryName: 'Jongno', pickupBy }, now);
    expect(r.props).toMatchObject({ status: 'bookReserved', pickupBy, libraryId: 2 });
  });

  it('a grant to a cancelled reservation records nothing: book passes the copy on when the cancel reaches it', () => {
    const r = inStatus('bookCancel');
    expect(r.grant('Almond', 3, now)).toBe(false);
    expect(r.pullEvents()).toEqual([]);
  });

  it('checks out due in the loan period, checks in; each once, with its event', () => {
    const r = inStatus('bookReserved');
    r.checkOut(now, periods);
    expect(r.props).toMatchObject({ status: 'bookLoaned', dueAt: new Date(now.getTime() + periods.loanMs) });
    expect(r.pullEvents()).toEqual([{ type: 'ReservationCheckedOut' }]);
    expect(r.isOverdue(now)).toBe(false);
    expect(r.isOverdue(new Date(now.getTime() + periods.loanMs + 1))).toBe(true);
    r.checkIn(later);
    expect(r.pullEvents()).toEqual([{ type: 'ReservationReturned' }]);
    expect(() => r.checkIn(later)).toThrowError(/only a loan/);
  });

  it('expires only once its deadline has passed, and only while awaiting pickup', () => {
    const r = inStatus('bookReserved');
    expect(r.expire(new Date(pickupBy.getTime() - 1))).toBe(false);
    expect(r.status).toBe('bookReserved');
    expect(r.expire(pickupBy)).toBe(true);
    expect(r.pullEvents()).toEqual([{ type: 'ReservationExpired' }]);
    expect(r.expire(later)).toBe(false);
    // A check-out before the sweep wins: the loan never expires.
    const lent = inStatus('bookReserved');
    lent.checkOut(later, periods);
    expect(lent.expire(later)).toBe(false);
  });
});
