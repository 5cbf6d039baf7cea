import { describe, expect, it } from 'vitest';
import { DomainError } from '@bstore/platform/kernel';
import { Reservation, type ReservationStatus } from '../src/domain/reservation.ts';

const now = new Date('2026-01-01T00:00:00Z');
const STATUSES: ReservationStatus[] = ['pending', 'bookReserveReq', 'bookOutOfStock', 'rejected', 'bookReserved', 'bookCancel', 'bookCanceled'];

function inStatus(status: ReservationStatus): Reservation {
  return Reservation.restore({
    ...Reservation.request({ bookId: 1, customerId: 'alice' }, now),
    reservationId: 7,
    status,
    libraryId: status === 'bookReserved' ? 1 : null,
    libraryName: status === 'bookReserved' ? 'Gangnam' : null,
  });
}

describe('a new reservation', () => {
  it('is pending with no attempt; placed, its first attempt at the hold is counted', () => {
    const fresh = Reservation.request({ bookId: 1, customerId: 'alice' }, now);
    expect(fresh).toMatchObject({ status: 'pending', attempts: 0, createdAt: now, updatedAt: now });
    expect(Reservation.requestAttempted({ bookId: 1, customerId: 'alice' }, now)).toEqual({ ...fresh, attempts: 1 });
  });
});

type Action = { name: string; run: (r: Reservation) => void };
const ACTIONS: Action[] = [
  { name: 'markHeld', run: (r) => r.markHeld('Almond', now) },
  { name: 'markOutOfStock', run: (r) => r.markOutOfStock(now) },
  { name: 'reject', run: (r) => r.reject('book unavailable', now) },
  { name: 'accept', run: (r) => r.accept({ libraryId: 2, libraryName: 'Jongno' }, now) },
  { name: 'requestCancel', run: (r) => r.requestCancel(now) },
  { name: 'confirmCanceled', run: (r) => r.confirmCanceled(now) },
  { name: 'rejectUnassignable', run: (r) => r.rejectUnassignable('no library branch exists', now) },
];

/** The whole transition table: the status each action leads to from each status, or the error code it raises. */
const TABLE: Record<string, Record<ReservationStatus, ReservationStatus | string>> = {
  markHeld: { pending: 'bookReserveReq', bookReserveReq: 'INVALID_TRANSITION', bookOutOfStock: 'INVALID_TRANSITION', rejected: 'INVALID_TRANSITION', bookReserved: 'INVALID_TRANSITION', bookCancel: 'INVALID_TRANSITION', bookCanceled: 'INVALID_TRANSITION' },
  markOutOfStock: { pending: 'bookOutOfStock', bookReserveReq: 'INVALID_TRANSITION', bookOutOfStock: 'INVALID_TRANSITION', rejected: 'INVALID_TRANSITION', bookReserved: 'INVALID_TRANSITION', bookCancel: 'INVALID_TRANSITION', bookCanceled: 'INVALID_TRANSITION' },
  reject: { pending: 'rejected', bookReserveReq: 'INVALID_TRANSITION', bookOutOfStock: 'INVALID_TRANSITION', rejected: 'INVALID_TRANSITION', bookReserved: 'INVALID_TRANSITION', bookCancel: 'INVALID_TRANSITION', bookCanceled: 'INVALID_TRANSITION' },
  accept: { pending: 'INVALID_TRANSITION', bookReserveReq: 'bookReserved', bookOutOfStock: 'INVALID_TRANSITION', rejected: 'INVALID_TRANSITION', bookReserved: 'bookReserved', bookCancel: 'bookCancel', bookCanceled: 'bookCanceled' },
  requestCancel: { pending: 'RESERVATION_NOT_CANCELLABLE', bookReserveReq: 'bookCancel', bookOutOfStock: 'RESERVATION_NOT_CANCELLABLE', rejected: 'RESERVATION_NOT_CANCELLABLE', bookReserved: 'bookCancel', bookCancel: 'RESERVATION_NOT_CANCELLABLE', bookCanceled: 'RESERVATION_NOT_CANCELLABLE' },
  confirmCanceled: { pending: 'INVALID_TRANSITION', bookReserveReq: 'INVALID_TRANSITION', bookOutOfStock: 'INVALID_TRANSITION', rejected: 'INVALID_TRANSITION', bookReserved: 'INVALID_TRANSITION', bookCancel: 'bookCanceled', bookCanceled: 'bookCanceled' },
  // A cancellation that overtook the failure completes through assignment's ReservationCanceled; a repeat is a no-op.
  rejectUnassignable: { pending: 'INVALID_TRANSITION', bookReserveReq: 'rejected', bookOutOfStock: 'INVALID_TRANSITION', rejected: 'rejected', bookReserved: 'INVALID_TRANSITION', bookCancel: 'bookCancel', bookCanceled: 'bookCanceled' },
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
    r.accept({ libraryId: 1, libraryName: 'Gangnam' }, now);
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
    r.accept({ libraryId: 3, libraryName: 'Mapo' }, now);
    expect(r.props).toMatchObject({ status: 'bookCancel', libraryId: 3, libraryName: 'Mapo' });
  });

  it('a refused cancel says why, with the current status', () => {
    const r = inStatus('bookCanceled');
    expect(() => r.requestCancel(now)).toThrowError(/bookCanceled and cannot be cancelled/);
  });
});
