import { describe, expect, it } from 'vitest';
import { RESERVATION_STATUSES, STATUS_RANK, createEnvelope, parseEvent, sourceOf, type EventType, type ReservationStatus } from '@bstore/contracts';
import { changeOf, isPageEvent, type PageEvent } from '../src/application/events.ts';
import {
  PAGE_EVENT_TYPES,
  advanceStatus,
  applyChange,
  compareTimelineEntries,
  mergePages,
  movedThroughWaiting,
  pageOf,
  queuePositionOf,
  serviceOf,
  timelineEntryOf,
  type PageChange,
  type ReservationPage,
} from '../src/domain/reservation-page.ts';
import { canSee } from '../src/domain/viewer.ts';

const t0 = Date.parse('2025-01-01T10:00:00.000Z');
const at = (seconds: number) => new Date(t0 + seconds * 1000);

const base = {
  reservationId: 7,
  bookId: 3,
  customerId: 'alice',
  bookName: null,
  libraryId: null,
  libraryName: null,
  pickupBy: null,
  dueAt: null,
  queueTicket: null,
  traceId: null,
};

const requested: PageChange = {
  ...base,
  bookName: 'Dune',
  status: 'bookReserveReq',
  eventId: '0001',
  eventType: 'ReservationRequested',
  source: 'bstore/reservation',
  occurredAt: at(0),
};
const accepted: PageChange = {
  ...base,
  libraryId: 2,
  libraryName: 'Central',
  status: 'bookReserved',
  eventId: '0002',
  eventType: 'ReservationAccepted',
  source: 'bstore/assignment',
  occurredAt: at(1),
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
};
const cancelRequested: PageChange = {
  ...base,
  status: 'bookCancel',
  eventId: '0003',
  eventType: 'ReservationCancelRequested',
  source: 'bstore/reservation',
  occurredAt: at(2),
};
const canceled: PageChange = {
  ...base,
  status: 'bookCanceled',
  eventId: '0004',
  eventType: 'ReservationCanceled',
  source: 'bstore/assignment',
  occurredAt: at(3),
};
const rejected: PageChange = {
  ...base,
  status: 'bookOutOfStock',
  eventId: '0005',
  eventType: 'ReservationRejected',
  source: 'bstore/reservation',
  occurredAt: at(0),
};

const applyAll = (changes: PageChange[]) => changes.reduce<ReservationPage | null>((page, c) => applyChange(page, c), null);

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('applyChange: each event on an empty page', () => {
  it('ReservationRequested creates the page with the book name, no library yet', () => {
    expect(applyChange(null, requested)).toEqual({
      reservationId: 7,
      bookId: 3,
      bookName: 'Dune',
      customerId: 'alice',
      status: 'bookReserveReq',
      libraryId: null,
      libraryName: null,
      pickupBy: null,
      dueAt: null,
      queueTicket: null,
      createdAt: at(0),
      updatedAt: at(0),
    });
  });

  it('ReservationRejected creates a page that shows the refusal', () => {
    expect(applyChange(null, rejected)).toMatchObject({ status: 'bookOutOfStock', bookName: null, libraryName: null });
  });

  it('ReservationAccepted creates the page with its library', () => {
    expect(applyChange(null, accepted)).toMatchObject({ status: 'bookReserved', libraryId: 2, libraryName: 'Central', bookName: null });
  });

  it('ReservationCancelRequested creates a bookCancel page', () => {
    expect(applyChange(null, cancelRequested)).toMatchObject({ status: 'bookCancel', createdAt: at(2), updatedAt: at(2) });
  });

  it('ReservationCanceled creates a bookCanceled page', () => {
    expect(applyChange(null, canceled)).toMatchObject({ status: 'bookCanceled', customerId: 'alice', bookId: 3 });
  });
});

describe('applyChange: in order', () => {
  it('the happy path ends bookCanceled and keeps everything it learned', () => {
    const { traceId: _t, ...pageBase } = base;
    expect(applyAll([requested, accepted, cancelRequested, canceled])).toEqual({
      ...pageBase,
      bookName: 'Dune',
      libraryId: 2,
      libraryName: 'Central',
      status: 'bookCanceled',
      createdAt: at(0),
      updatedAt: at(3),
    });
  });

  it('Requested then Accepted is bookReserved with book and library', () => {
    expect(applyAll([requested, accepted])).toMatchObject({ status: 'bookReserved', bookName: 'Dune', libraryName: 'Central' });
  });
});

describe('applyChange: out of order', () => {
  it('Accepted before Requested: bookReserved, and the late Requested still adds the book name', () => {
    const page = applyAll([accepted, requested]);
    expect(page).toMatchObject({ status: 'bookReserved', bookName: 'Dune', libraryId: 2, libraryName: 'Central', createdAt: at(0), updatedAt: at(1) });
    expect(page).toEqual(applyAll([requested, accepted]));
  });

  it('CancelRequested before Accepted: stays bookCancel but records the library', () => {
    const page = applyAll([requested, cancelRequested, accepted]);
    expect(page).toMatchObject({ status: 'bookCancel', libraryId: 2, libraryName: 'Central' });
  });

  it('Canceled before Accepted: stays bookCanceled but records the library', () => {
    const page = applyAll([requested, canceled, accepted]);
    expect(page).toMatchObject({ status: 'bookCanceled', libraryId: 2, libraryName: 'Central', updatedAt: at(3) });
  });

  it('Canceled before CancelRequested stays bookCanceled', () => {
    expect(applyAll([canceled, cancelRequested])?.status).toBe('bookCanceled');
  });

  it('every order of the four lifecycle events gives the same page', () => {
    const expected = applyAll([requested, accepted, cancelRequested, canceled]);
    const orders = permutations([requested, accepted, cancelRequested, canceled]);
    expect(orders).toHaveLength(24);
    for (const order of orders) expect(applyAll(order), order.map((c) => c.eventType).join(' > ')).toEqual(expected);
  });

  it('Rejected and Requested in either order: the refusal wins and the book name is kept', () => {
    const expected = { status: 'bookOutOfStock', bookName: 'Dune', createdAt: at(0), updatedAt: at(0) };
    expect(applyAll([requested, rejected])).toMatchObject(expected);
    expect(applyAll([rejected, requested])).toEqual(applyAll([requested, rejected]));
  });

  it('an event applied twice changes nothing', () => {
    const once = applyAll([requested, accepted]);
    expect(applyAll([requested, accepted, accepted, requested])).toEqual(once);
  });

  it('a null never replaces a known value', () => {
    const page = applyAll([requested, accepted]);
    const later = applyChange(page, cancelRequested);
    expect(later).toMatchObject({ bookName: 'Dune', libraryId: 2, libraryName: 'Central' });
  });

  it('refuses a change for another reservation', () => {
    const page = applyChange(null, requested);
    expect(() => applyChange(page, { ...accepted, reservationId: 8 })).toThrow(/reservation 8/);
  });
});

// The waiting line and the loan (ADR 0022): another reservation of the same patron and book.
const line = { ...base, reservationId: 8 };
const days = (n: number) => n * 86_400;
const waitlisted: PageChange = {
  ...line,
  bookName: 'Dune',
  queueTicket: 42,
  status: 'bookWaiting',
  eventId: '0101',
  eventType: 'ReservationWaitlisted',
  source: 'bstore/reservation',
  occurredAt: at(0),
};
const granted: PageChange = {
  ...line,
  bookName: 'Dune',
  queueTicket: 42,
  status: 'bookReserveReq',
  eventId: '0102',
  eventType: 'CopyGranted',
  source: 'bstore/book',
  occurredAt: at(days(2)),
};
const acceptedFromLine: PageChange = {
  ...line,
  libraryId: 2,
  libraryName: 'Central',
  pickupBy: at(days(2) + days(7)),
  status: 'bookReserved',
  eventId: '0103',
  eventType: 'ReservationAccepted',
  source: 'bstore/assignment',
  occurredAt: at(days(2) + 1),
};
const checkedOut: PageChange = {
  ...line,
  dueAt: at(days(4) + days(21)),
  status: 'bookLoaned',
  eventId: '0104',
  eventType: 'ReservationCheckedOut',
  source: 'bstore/reservation',
  occurredAt: at(days(4)),
};
const returned: PageChange = { ...line, status: 'bookReturned', eventId: '0105', eventType: 'ReservationReturned', source: 'bstore/reservation', occurredAt: at(days(20)) };
const cancelWaiting: PageChange = { ...line, status: 'bookCancel', eventId: '0106', eventType: 'ReservationCancelRequested', source: 'bstore/reservation', occurredAt: at(60) };
const canceledWaiting: PageChange = { ...line, status: 'bookCanceled', eventId: '0107', eventType: 'ReservationCanceled', source: 'bstore/assignment', occurredAt: at(61) };
const expired: PageChange = {
  ...line,
  pickupBy: at(days(2) + days(7)),
  status: 'bookExpired',
  eventId: '0108',
  eventType: 'ReservationExpired',
  source: 'bstore/reservation',
  occurredAt: at(days(9) + 5),
};

describe('applyChange: the waiting line, the loan and the pickup deadline', () => {
  it.each<[string, PageChange, Partial<ReservationPage>]>([
    ['ReservationWaitlisted: bookWaiting, with the book name and the ticket', waitlisted, { status: 'bookWaiting', bookName: 'Dune', queueTicket: 42 }],
    ['CopyGranted: bookReserveReq, with the book name and the ticket', granted, { status: 'bookReserveReq', bookName: 'Dune', queueTicket: 42 }],
    ['ReservationAccepted: bookReserved, with the library and the pickup deadline', acceptedFromLine, { status: 'bookReserved', libraryId: 2, pickupBy: at(days(9)) }],
    ['ReservationCheckedOut: bookLoaned, with the due date', checkedOut, { status: 'bookLoaned', dueAt: at(days(25)), pickupBy: null }],
    ['ReservationReturned: bookReturned', returned, { status: 'bookReturned', dueAt: null }],
    ['ReservationExpired: bookExpired, with the deadline that passed', expired, { status: 'bookExpired', pickupBy: at(days(9)) }],
  ])('%s, on an empty page', (_name, change, expected) => {
    expect(applyChange(null, change)).toEqual({ ...pageOf(change), ...expected });
  });

  const loanHistory = [waitlisted, granted, acceptedFromLine, checkedOut, returned];

  it('waiting -> granted -> accepted -> checked out -> returned ends bookReturned, keeping every field it learned', () => {
    const { traceId: _t, ...pageBase } = line;
    expect(applyAll(loanHistory)).toEqual({
      ...pageBase,
      bookName: 'Dune',
      libraryId: 2,
      libraryName: 'Central',
      pickupBy: at(days(9)),
      dueAt: at(days(25)),
      queueTicket: 42,
      status: 'bookReturned',
      createdAt: at(0),
      updatedAt: at(days(20)),
    });
  });

  it('every order of those five events gives the same page, and a repeat changes nothing', () => {
    const expected = applyAll(loanHistory);
    const orders = permutations(loanHistory);
    expect(orders).toHaveLength(120);
    for (const order of orders) expect(applyAll(order), order.map((c) => c.eventType).join(' > ')).toEqual(expected);
    expect(applyAll([...loanHistory, granted, waitlisted, checkedOut])).toEqual(expected);
  });

  it('each step on the way shows the status it reached', () => {
    const statuses = loanHistory.map((_, i) => applyAll(loanHistory.slice(0, i + 1))?.status);
    expect(statuses).toEqual(['bookWaiting', 'bookReserveReq', 'bookReserved', 'bookLoaned', 'bookReturned']);
  });

  it('waiting -> cancelled ends bookCanceled, in every order, with the book and its ticket', () => {
    const history = [waitlisted, cancelWaiting, canceledWaiting];
    const expected = applyAll(history);
    expect(expected).toMatchObject({ status: 'bookCanceled', bookName: 'Dune', queueTicket: 42, pickupBy: null, dueAt: null, createdAt: at(0), updatedAt: at(61) });
    for (const order of permutations(history)) expect(applyAll(order)).toEqual(expected);
  });

  it('accepted -> expired ends bookExpired in either order, with the library and the pickup deadline', () => {
    const expected = applyAll([acceptedFromLine, expired]);
    expect(expected).toMatchObject({ status: 'bookExpired', libraryName: 'Central', pickupBy: at(days(9)), dueAt: null });
    expect(applyAll([expired, acceptedFromLine])).toEqual(expected);
  });

  it('the deadline of ReservationExpired fills in one that an older ReservationAccepted did not carry', () => {
    expect(applyAll([{ ...acceptedFromLine, pickupBy: null }, expired])?.pickupBy).toEqual(at(days(9)));
  });

  it('a late ReservationWaitlisted never moves a granted page back into the line', () => {
    expect(applyAll([granted, waitlisted])).toMatchObject({ status: 'bookReserveReq', queueTicket: 42 });
  });

  it('a cancel request never replaces bookLoaned, nor bookLoaned a cancel request (equal rank: the known one stays)', () => {
    expect(applyAll([checkedOut, cancelWaiting])?.status).toBe('bookLoaned');
    expect(applyAll([cancelWaiting, checkedOut])?.status).toBe('bookCancel');
  });
});

describe('queuePositionOf', () => {
  const waiting = (reservationId: number, queueTicket: number, bookId = 3): ReservationPage =>
    applyChange(null, { ...waitlisted, reservationId, bookId, queueTicket, eventId: `w-${reservationId}` });
  const first = waiting(21, 5);
  const second = waiting(22, 9);
  const third = waiting(23, 17);
  const otherBook = waiting(24, 1, 4);

  it('counts the waiting pages of the same book with a smaller ticket: 1, 2, 3; another book has its own line', () => {
    const pages = [third, otherBook, first, second];
    expect([first, second, third, otherBook].map((p) => queuePositionOf(p, pages))).toEqual([1, 2, 3, 1]);
  });

  it('the first granted leaves the line: the others become 1 and 2, the other book is unaffected', () => {
    const grantedFirst = applyChange(first, { ...granted, reservationId: 21, queueTicket: 5 });
    const pages = [grantedFirst, second, third, otherBook];
    expect([grantedFirst, second, third, otherBook].map((p) => queuePositionOf(p, pages))).toEqual([null, 1, 2, 1]);
  });

  it('is null for a page in any status but bookWaiting', () => {
    const pages = RESERVATION_STATUSES.filter((s) => s !== 'bookWaiting').map((status) => ({ ...first, status }));
    for (const page of pages) expect(queuePositionOf(page, [...pages, second])).toBeNull();
  });
});

describe('movedThroughWaiting', () => {
  const entries = (...changes: PageChange[]) => changes.map(timelineEntryOf);

  it('is true for the event that brought the page into the line, or took it out', () => {
    expect(movedThroughWaiting(entries(waitlisted), waitlisted.eventId)).toBe(true);
    expect(movedThroughWaiting(entries(waitlisted, granted), granted.eventId)).toBe(true);
    expect(movedThroughWaiting(entries(waitlisted, cancelWaiting), cancelWaiting.eventId)).toBe(true);
  });

  it('is false for an event that did not change whether the page waits, whatever the arrival order', () => {
    // Granted arrived first: the late Waitlisted did not put the page in line.
    expect(movedThroughWaiting(entries(granted, waitlisted), waitlisted.eventId)).toBe(false);
    expect(movedThroughWaiting(entries(waitlisted, granted, acceptedFromLine), acceptedFromLine.eventId)).toBe(false);
    expect(movedThroughWaiting(entries(requested), requested.eventId)).toBe(false);
    expect(movedThroughWaiting(entries(waitlisted), 'not-in-the-timeline')).toBe(false);
  });
});

describe('changeOf: what each new event tells', () => {
  const data = { reservationId: 8, bookId: 3, customerId: 'alice' };
  const event = <T extends EventType>(type: T, source: Parameters<typeof sourceOf>[0], payload: Record<string, unknown>): PageEvent => {
    const parsed = parseEvent(createEnvelope({ type, source: sourceOf(source), subject: '8', time: at(0), data: { ...data, ...payload } }));
    if (!isPageEvent(parsed)) throw new Error(`${type} is not a page event`);
    return parsed;
  };

  it('reads every page event type it consumes', () => {
    expect(PAGE_EVENT_TYPES).toEqual(
      expect.arrayContaining(['ReservationWaitlisted', 'CopyGranted', 'ReservationCheckedOut', 'ReservationReturned', 'ReservationExpired']),
    );
  });

  it.each<[EventType, Parameters<typeof sourceOf>[0], Record<string, unknown>, Partial<PageChange>]>([
    ['ReservationWaitlisted', 'reservation', { bookName: 'Dune', queueTicket: 42, status: 'bookWaiting' }, { status: 'bookWaiting', bookName: 'Dune', queueTicket: 42 }],
    ['CopyGranted', 'book', { bookName: 'Dune', queueTicket: 42, cause: 'returned', status: 'bookReserveReq' }, { status: 'bookReserveReq', bookName: 'Dune', queueTicket: 42 }],
    [
      'ReservationAccepted',
      'assignment',
      { assignmentId: 1, libraryId: 2, libraryName: 'Central', status: 'bookReserved', pickupBy: '2025-01-08T10:00:00.000Z' },
      { status: 'bookReserved', libraryId: 2, libraryName: 'Central', pickupBy: new Date('2025-01-08T10:00:00.000Z') },
    ],
    ['ReservationAccepted', 'assignment', { assignmentId: 1, libraryId: 2, libraryName: 'Central', status: 'bookReserved' }, { libraryId: 2, libraryName: 'Central', pickupBy: null }],
    ['ReservationCheckedOut', 'reservation', { libraryId: 2, dueAt: '2025-01-29T10:00:00.000Z', status: 'bookLoaned' }, { status: 'bookLoaned', dueAt: new Date('2025-01-29T10:00:00.000Z'), libraryId: null }],
    ['ReservationReturned', 'reservation', { libraryId: null, status: 'bookReturned' }, { status: 'bookReturned' }],
    ['ReservationExpired', 'reservation', { libraryId: 2, pickupBy: '2025-01-08T10:00:00.000Z', status: 'bookExpired' }, { status: 'bookExpired', pickupBy: new Date('2025-01-08T10:00:00.000Z') }],
  ])('%s', (type, source, payload, expected) => {
    const e = event(type, source, payload);
    const nulls = { bookName: null, libraryId: null, libraryName: null, pickupBy: null, dueAt: null, queueTicket: null };
    expect(changeOf(e)).toEqual({ ...data, ...nulls, ...expected, status: payload.status, eventId: e.id, eventType: type, source: sourceOf(source), occurredAt: at(0), traceId: null });
  });
});

describe('advanceStatus', () => {
  it('never moves a status backwards, for every pair of statuses', () => {
    for (const current of RESERVATION_STATUSES) {
      for (const next of RESERVATION_STATUSES) {
        const result = advanceStatus(current, next);
        expect(STATUS_RANK[result], `${current} + ${next}`).toBe(Math.max(STATUS_RANK[current], STATUS_RANK[next]));
        if (STATUS_RANK[next] <= STATUS_RANK[current]) expect(result).toBe(current);
      }
    }
  });

  it.each<[ReservationStatus, ReservationStatus, ReservationStatus]>([
    ['bookReserveReq', 'bookReserved', 'bookReserved'],
    ['bookReserved', 'bookReserveReq', 'bookReserved'],
    ['bookCancel', 'bookReserved', 'bookCancel'],
    ['bookCanceled', 'bookCancel', 'bookCanceled'],
    ['bookOutOfStock', 'bookReserveReq', 'bookOutOfStock'],
  ])('%s then %s gives %s', (current, next, expected) => {
    expect(advanceStatus(current, next)).toBe(expected);
  });
});

describe('mergePages', () => {
  it('is commutative on the lifecycle events', () => {
    const changes = [requested, accepted, cancelRequested, canceled];
    for (const a of changes) {
      for (const b of changes) {
        expect(mergePages(pageOf(a), pageOf(b))).toEqual(mergePages(pageOf(b), pageOf(a)));
      }
    }
  });

  it('is commutative on the events of one waiting, loaned and returned life, and of an expired one', () => {
    // Not mixed: statuses of equal rank exclude each other in one life (a loan or a cancel, one end).
    for (const changes of [
      [waitlisted, granted, acceptedFromLine, checkedOut, returned],
      [waitlisted, cancelWaiting, canceledWaiting],
      [granted, acceptedFromLine, expired],
    ]) {
      for (const a of changes) {
        for (const b of changes) {
          expect(mergePages(pageOf(a), pageOf(b))).toEqual(mergePages(pageOf(b), pageOf(a)));
        }
      }
    }
  });
});

describe('timeline', () => {
  it('an entry carries the status of its event, the emitting service and the trace id', () => {
    expect(timelineEntryOf(accepted)).toEqual({
      eventId: '0002',
      eventType: 'ReservationAccepted',
      status: 'bookReserved',
      service: 'assignment',
      occurredAt: at(1),
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    expect(timelineEntryOf(requested).traceId).toBeNull();
  });

  it('orders by time, then by event id', () => {
    const entries = [canceled, requested, { ...accepted, occurredAt: at(0), eventId: '0000' }, cancelRequested].map(timelineEntryOf);
    expect(entries.sort(compareTimelineEntries).map((e) => e.eventId)).toEqual(['0000', '0001', '0003', '0004']);
  });

  it('names the service by the last segment of the source', () => {
    expect(serviceOf('bstore/assignment')).toBe('assignment');
    expect(serviceOf('reservation')).toBe('reservation');
    expect(serviceOf('bstore/')).toBe('bstore/');
  });
});

describe('canSee', () => {
  const page = applyChange(null, requested);
  it('a customer sees only their own pages; staff see all', () => {
    expect(canSee({ customerId: 'alice', role: 'customer' }, page)).toBe(true);
    expect(canSee({ customerId: 'bob', role: 'customer' }, page)).toBe(false);
    expect(canSee({ customerId: 'librarian', role: 'staff' }, page)).toBe(true);
  });
});
