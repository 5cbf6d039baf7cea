import { describe, expect, it } from 'vitest';
import { RESERVATION_STATUSES, type ReservationStatus } from '@bstore/contracts/statuses';
import { NOTICE_KINDS, mergeFacts, noticeStillTrue, reminderDueAt, remindersFor, type ReservationFacts } from '../src/domain/notice.ts';

const base: ReservationFacts = { reservationId: 1, customerId: 'ann', bookId: 2, status: 'bookReserveReq', bookName: null, libraryName: null, pickupBy: null, dueAt: null };
const at = (status: ReservationStatus, more: Partial<ReservationFacts> = {}): ReservationFacts => ({ ...base, status, ...more });

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('what the notification service knows of a reservation', () => {
  it('merges to the same facts in every order: the furthest status, every detail once known', () => {
    const events = [
      at('bookWaiting', { bookName: 'Pachinko' }),
      at('bookReserveReq'),
      at('bookReserved', { libraryName: 'Mapo', pickupBy: new Date('2026-12-10T00:00:00Z') }),
      at('bookLoaned', { dueAt: new Date('2026-12-24T00:00:00Z') }),
      at('bookReturned'),
    ];
    const results = permutations(events).map((order) => order.reduce<ReservationFacts | undefined>((known, e) => mergeFacts(known, e), undefined));
    for (const facts of results) {
      expect(facts).toEqual(at('bookReturned', { bookName: 'Pachinko', libraryName: 'Mapo', pickupBy: new Date('2026-12-10T00:00:00Z'), dueAt: new Date('2026-12-24T00:00:00Z') }));
    }
  });

  it('keeps the first of two statuses of equal rank (a cancel and a loan exclude each other)', () => {
    expect(mergeFacts(at('bookCancel'), at('bookLoaned')).status).toBe('bookCancel');
    expect(mergeFacts(at('bookLoaned'), at('bookCancel')).status).toBe('bookLoaned');
  });

  it('a notice is true only in the state it is about; "refused" covers both refusals', () => {
    const truths = Object.fromEntries(NOTICE_KINDS.map((kind) => [kind, RESERVATION_STATUSES.filter((status) => noticeStillTrue(kind, at(status)))]));
    expect(truths).toEqual({
      turnCame: ['bookReserveReq'],
      readyForPickup: ['bookReserved'],
      pickupTomorrow: ['bookReserved'],
      expired: ['bookExpired'],
      loanDueSoon: ['bookLoaned'],
      overdue: ['bookLoaned'],
      refused: ['bookOutOfStock', 'rejected'],
      cancelled: ['bookCanceled'],
    });
  });

  it('reminders: a day before the pickup deadline while on the hold shelf; two days before, and at, the due date while on loan; none otherwise', () => {
    const shelf = at('bookReserved', { pickupBy: new Date('2026-12-10T12:00:00Z') });
    expect(remindersFor(shelf)).toEqual(['pickupTomorrow']);
    expect(reminderDueAt('pickupTomorrow', shelf)).toEqual(new Date('2026-12-09T12:00:00Z'));
    const loan = at('bookLoaned', { dueAt: new Date('2026-12-24T12:00:00Z') });
    expect(remindersFor(loan)).toEqual(['loanDueSoon', 'overdue']);
    expect(reminderDueAt('loanDueSoon', loan)).toEqual(new Date('2026-12-22T12:00:00Z'));
    expect(reminderDueAt('overdue', loan)).toEqual(new Date('2026-12-24T12:00:00Z'));
    expect(reminderDueAt('pickupTomorrow', at('bookReserved'))).toBeNull();
    for (const status of RESERVATION_STATUSES.filter((s) => s !== 'bookReserved' && s !== 'bookLoaned')) expect(remindersFor(at(status)), status).toEqual([]);
  });
});
