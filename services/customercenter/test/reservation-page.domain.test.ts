import { describe, expect, it } from 'vitest';
import { RESERVATION_STATUSES, STATUS_RANK, type ReservationStatus } from '@bstore/contracts';
import {
  advanceStatus,
  applyChange,
  compareTimelineEntries,
  mergePages,
  pageOf,
  serviceOf,
  timelineEntryOf,
  type PageChange,
  type ReservationPage,
} from '../src/domain/reservation-page.ts';
import { canSee } from '../src/domain/viewer.ts';

const t0 = Date.parse('2025-01-01T10:00:00.000Z');
const at = (seconds: number) => new Date(t0 + seconds * 1000);

const base = { reservationId: 7, bookId: 3, customerId: 'alice', bookName: null, libraryId: null, libraryName: null, traceId: null };

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
