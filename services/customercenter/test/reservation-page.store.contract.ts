import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReservationPageDetail, ReservationPageStore } from '../src/application/ports.ts';
import { applyChange, queuePositionOf, type PageChange, type ReservationPage } from '../src/domain/reservation-page.ts';

/** Runs work against a store as the projector would (with SQL, in a transaction of its own). */
export type StoreWriter = <T>(work: (store: ReservationPageStore) => Promise<T>) => Promise<T>;

/** One storage under test, with two clients of it: what two replicas of customercenter have. */
export interface StoreUnderTest {
  /** The first client's store, for reads. */
  store: ReservationPageStore;
  write: StoreWriter;
  /** The second client: its own connection (pool, or Redis connection) to the same storage. */
  writeFromOtherClient: StoreWriter;
  close(): Promise<void>;
}

const t0 = Date.parse('2025-03-01T09:00:00.000Z');
export const at = (seconds: number) => new Date(t0 + seconds * 1000);

let nextId = 1;

/** The W3C trace id of a reservation's n-th event: 32 lowercase hex, distinct per reservation, variant and event. */
export function traceIdFor(reservationId: number, n: number, variant = 0): string {
  return `${reservationId.toString(16).padStart(16, '0')}${variant.toString(16).padStart(15, '0')}${n}`;
}

/**
 * The four lifecycle changes of one reservation, one second apart from `start`. The two the saga
 * starts with carry a trace id; the cancel pair carries none (an event without a traceparent).
 */
export function lifecycle(reservationId: number, customerId = 'alice', start = 0, variant = 0): PageChange[] {
  const base = { reservationId, bookId: 11, customerId, bookName: null, libraryId: null, libraryName: null, pickupBy: null, dueAt: null, queueTicket: null, traceId: null };
  const id = (n: number) => `0194e0a0-0000-7000-8${String(variant).padStart(3, '0')}-${String(reservationId).padStart(8, '0')}000${n}`;
  const trace = (n: number) => traceIdFor(reservationId, n, variant);
  return [
    {
      ...base,
      bookName: 'Pachinko',
      status: 'bookReserveReq',
      eventId: id(1),
      eventType: 'ReservationRequested',
      source: 'bstore/reservation',
      occurredAt: at(start),
      traceId: trace(1),
    },
    {
      ...base,
      libraryId: 4,
      libraryName: 'Harbour',
      status: 'bookReserved',
      eventId: id(2),
      eventType: 'ReservationAccepted',
      source: 'bstore/assignment',
      occurredAt: at(start + 1),
      traceId: trace(2),
    },
    { ...base, status: 'bookCancel', eventId: id(3), eventType: 'ReservationCancelRequested', source: 'bstore/reservation', occurredAt: at(start + 2) },
    { ...base, status: 'bookCanceled', eventId: id(4), eventType: 'ReservationCanceled', source: 'bstore/assignment', occurredAt: at(start + 3) },
  ];
}

/** The changes of one reservation that waits in its book's line, each usable in one life (ADR 0022). */
export interface WaitingLife {
  waitlisted: PageChange;
  granted: PageChange;
  accepted: PageChange;
  checkedOut: PageChange;
  returned: PageChange;
  cancelRequested: PageChange;
  canceled: PageChange;
  expired: PageChange;
}

/**
 * The changes a reservation in a waiting line may go through, `start` seconds after t0: joined
 * the line with `queueTicket`, granted a copy, accepted (with a pickup deadline), checked out
 * (with a due date), returned; or cancelled while waiting; or expired after acceptance.
 */
export function waitingLife(reservationId: number, options: { bookId: number; queueTicket: number; customerId?: string; start?: number }): WaitingLife {
  const { bookId, queueTicket, customerId = 'wendy', start = 0 } = options;
  const base = { reservationId, bookId, customerId, bookName: null, libraryId: null, libraryName: null, pickupBy: null, dueAt: null, queueTicket: null, traceId: null };
  const id = (n: number) => `0194e0a0-0000-7000-9000-${String(reservationId).padStart(8, '0')}00${String(n).padStart(2, '0')}`;
  const pickupBy = at(start + 10 + 7 * 86_400);
  return {
    waitlisted: { ...base, bookName: 'Kindred', queueTicket, status: 'bookWaiting', eventId: id(1), eventType: 'ReservationWaitlisted', source: 'bstore/reservation', occurredAt: at(start) },
    granted: { ...base, bookName: 'Kindred', queueTicket, status: 'bookReserveReq', eventId: id(2), eventType: 'CopyGranted', source: 'bstore/book', occurredAt: at(start + 10) },
    accepted: {
      ...base,
      libraryId: 4,
      libraryName: 'Harbour',
      pickupBy,
      status: 'bookReserved',
      eventId: id(3),
      eventType: 'ReservationAccepted',
      source: 'bstore/assignment',
      occurredAt: at(start + 11),
      traceId: traceIdFor(reservationId, 3, 9),
    },
    checkedOut: { ...base, dueAt: at(start + 100 + 21 * 86_400), status: 'bookLoaned', eventId: id(4), eventType: 'ReservationCheckedOut', source: 'bstore/reservation', occurredAt: at(start + 100) },
    returned: { ...base, status: 'bookReturned', eventId: id(5), eventType: 'ReservationReturned', source: 'bstore/reservation', occurredAt: at(start + 200) },
    cancelRequested: { ...base, status: 'bookCancel', eventId: id(6), eventType: 'ReservationCancelRequested', source: 'bstore/reservation', occurredAt: at(start + 5) },
    canceled: { ...base, status: 'bookCanceled', eventId: id(7), eventType: 'ReservationCanceled', source: 'bstore/assignment', occurredAt: at(start + 6) },
    expired: { ...base, pickupBy, status: 'bookExpired', eventId: id(8), eventType: 'ReservationExpired', source: 'bstore/reservation', occurredAt: at(start + 11 + 7 * 86_400 + 1) },
  };
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

const fold = (changes: PageChange[]) => changes.reduce<ReservationPage | null>(applyChange, null);

/**
 * What every ReservationPageStore must do, whatever holds it: the SQL adapter (PGlite and
 * PostgreSQL) and the Redis adapter run the same checks, against the domain's merge rule.
 */
export function describeReservationPageStoreContract(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`ReservationPageStore contract: ${name}`, () => {
    let sut: StoreUnderTest;

    beforeAll(async () => {
      sut = await open();
    });

    afterAll(async () => {
      await sut?.close();
    });

    it('agrees with the domain merge rule for every order of the lifecycle events', async () => {
      for (const order of permutations([0, 1, 2, 3])) {
        const changes = lifecycle(nextId++);
        const sequence = order.map((i) => changes[i]!);
        let expected: ReservationPage | null = null;
        for (const change of sequence) {
          expected = applyChange(expected, change);
          const stored = await sut.write((store) => store.applyChange(change));
          expect(stored, order.join(',')).toEqual(expected);
        }
        const detail = await sut.store.get(changes[0]!.reservationId);
        expect(detail).toEqual({ ...expected, queuePosition: null, timeline: expect.any(Array) });
        expect(detail).toMatchObject({ status: 'bookCanceled', bookName: 'Pachinko', libraryName: 'Harbour' });
        expect(detail?.timeline.map((e) => e.eventType)).toEqual([
          'ReservationRequested',
          'ReservationAccepted',
          'ReservationCancelRequested',
          'ReservationCanceled',
        ]);
      }
    });

    it('never replaces a terminal status by another of equal rank', async () => {
      const reservationId = nextId++;
      const [requested] = lifecycle(reservationId);
      const rejected: PageChange = { ...requested!, status: 'bookOutOfStock', eventId: `${requested!.eventId}-r`, eventType: 'ReservationRejected' };
      const canceled: PageChange = { ...lifecycle(reservationId)[3]!, occurredAt: at(5) };
      for (const change of [rejected, requested!, canceled]) await sut.write((store) => store.applyChange(change));
      expect(await sut.store.get(reservationId)).toMatchObject({ ...fold([rejected, requested!, canceled]), status: 'bookOutOfStock', bookName: 'Pachinko' });
    });

    it('records a timeline entry once per event id, and the page is unchanged by the repeat', async () => {
      const [requested, accepted] = lifecycle(nextId++);
      await sut.write((store) => store.applyChange(requested!));
      const first = await sut.write((store) => store.applyChange(accepted!));
      const again = await sut.write((store) => store.applyChange(accepted!));
      expect(again).toEqual(first);
      const timeline = await sut.store.timeline(requested!.reservationId);
      expect(timeline).toEqual([
        { eventId: requested!.eventId, eventType: 'ReservationRequested', status: 'bookReserveReq', service: 'reservation', occurredAt: at(0), traceId: requested!.traceId },
        { eventId: accepted!.eventId, eventType: 'ReservationAccepted', status: 'bookReserved', service: 'assignment', occurredAt: at(1), traceId: accepted!.traceId },
      ]);
    });

    it("keeps each entry's trace id, and null for an event that had none, in get, list and timeline", async () => {
      const customer = `tracer-${nextId}`;
      const changes = lifecycle(nextId++, customer);
      const reservationId = changes[0]!.reservationId;
      // Newest first, so the stored order is not simply the order written.
      for (const change of [...changes].reverse()) await sut.write((store) => store.applyChange(change));
      const expected = [traceIdFor(reservationId, 1), traceIdFor(reservationId, 2), null, null];
      expect(changes.map((c) => c.traceId)).toEqual(expected);

      const timeline = await sut.store.timeline(reservationId);
      expect(timeline.map((e) => [e.eventType, e.traceId])).toEqual([
        ['ReservationRequested', expected[0]],
        ['ReservationAccepted', expected[1]],
        ['ReservationCancelRequested', null],
        ['ReservationCanceled', null],
      ]);
      expect((await sut.store.get(reservationId))?.timeline).toEqual(timeline);
      const listed = await sut.store.list({ customerId: customer, limit: 10, offset: 0 });
      expect(listed.items[0]?.timeline).toEqual(timeline);
    });

    it('a repeated event keeps the trace id it was first recorded with', async () => {
      const [requested] = lifecycle(nextId++);
      await sut.write((store) => store.applyChange(requested!));
      await sut.write((store) => store.applyChange({ ...requested!, traceId: null }));
      expect((await sut.store.timeline(requested!.reservationId)).map((e) => e.traceId)).toEqual([requested!.traceId]);
    });

    it('orders the timeline by event time, then by event id, whatever the order of arrival', async () => {
      const reservationId = nextId++;
      const [requested, accepted, cancelRequested] = lifecycle(reservationId);
      // Two events at the same instant: the smaller id first.
      const sameTime: PageChange = { ...accepted!, eventId: `${accepted!.eventId.slice(0, -1)}0`, occurredAt: at(2) };
      for (const change of [cancelRequested!, sameTime, accepted!, requested!]) await sut.write((store) => store.applyChange(change));
      const timeline = await sut.store.timeline(reservationId);
      expect(timeline.map((e) => e.eventId)).toEqual([requested!.eventId, accepted!.eventId, sameTime.eventId, cancelRequested!.eventId]);
      expect((await sut.store.get(reservationId))?.timeline).toEqual(timeline);
    });

    it('lists newest first, filters by customer and status, and pages', async () => {
      const customer = `lister-${nextId}`;
      const ids = [nextId++, nextId++, nextId++];
      // Later reservations have later events; the last one is only requested.
      for (const [i, id] of ids.entries()) {
        const changes = lifecycle(id, customer, 100 + i * 10);
        for (const change of i === 2 ? changes.slice(0, 1) : changes) await sut.write((store) => store.applyChange(change));
      }
      const all = await sut.store.list({ customerId: customer, limit: 10, offset: 0 });
      expect(all.total).toBe(3);
      expect(all.items.map((p) => p.reservationId)).toEqual([ids[2], ids[1], ids[0]]);
      expect(all.items[1]?.timeline).toHaveLength(4);
      expect(all.items[1]).toEqual(await sut.store.get(ids[1]!));

      const canceled = await sut.store.list({ customerId: customer, status: 'bookCanceled', limit: 10, offset: 0 });
      expect(canceled.items.map((p) => p.reservationId)).toEqual([ids[1], ids[0]]);
      expect(canceled.total).toBe(2);

      const second = await sut.store.list({ customerId: customer, limit: 1, offset: 1 });
      expect(second).toMatchObject({ total: 3, items: [{ reservationId: ids[1] }] });
      expect(await sut.store.list({ customerId: customer, limit: 10, offset: 3 })).toEqual({ items: [], total: 3 });

      const nobody = await sut.store.list({ customerId: 'nobody', limit: 10, offset: 0 });
      expect(nobody).toEqual({ items: [], total: 0 });
    });

    it('breaks ties on updatedAt by reservationId, descending, also past nine digits', async () => {
      const customer = `ties-${nextId}`;
      const ids = [9, 10, 1_234_567_890].map((n) => 1_000_000 + nextId++ * 1000 + n);
      const big = 2_000_000_000 + nextId++;
      for (const id of [...ids, big]) await sut.write((store) => store.applyChange(lifecycle(id, customer, 500)[0]!));
      const list = await sut.store.list({ customerId: customer, limit: 10, offset: 0 });
      expect(list.items.map((p) => p.reservationId)).toEqual([big, ...ids].sort((a, b) => b - a));
    });

    it('moves a page between status filters as its status advances, with a correct total', async () => {
      const customer = `mover-${nextId}`;
      const id = nextId++;
      const [requested, accepted] = lifecycle(id, customer, 700);
      await sut.write((store) => store.applyChange(requested!));
      const inStatus = (status: 'bookReserveReq' | 'bookReserved') => sut.store.list({ customerId: customer, status, limit: 10, offset: 0 });
      expect(await inStatus('bookReserveReq')).toMatchObject({ total: 1, items: [{ reservationId: id }] });
      await sut.write((store) => store.applyChange(accepted!));
      expect(await inStatus('bookReserveReq')).toEqual({ items: [], total: 0 });
      expect(await inStatus('bookReserved')).toMatchObject({ total: 1, items: [{ reservationId: id, status: 'bookReserved' }] });
    });

    it('a status filter alone gives exactly the pages in that status, in list order', async () => {
      const everything = await sut.store.list({ limit: 1000, offset: 0 });
      expect(everything.total).toBe(everything.items.length);
      const updated = everything.items.map((p) => p.updatedAt.getTime());
      expect(updated).toEqual([...updated].sort((a, b) => b - a));
      for (const status of ['bookCanceled', 'bookReserveReq', 'bookOutOfStock'] as const) {
        const filtered = await sut.store.list({ status, limit: 1000, offset: 0 });
        const expected = everything.items.filter((p) => p.status === status).map((p) => p.reservationId);
        expect(filtered.items.map((p) => p.reservationId), status).toEqual(expected);
        expect(filtered.total, status).toBe(expected.length);
      }
    });

    it('loses nothing when two clients apply changes to one page at the same time', async () => {
      const reservationId = nextId++;
      // Ten copies of each lifecycle event, with their own ids and times.
      const changes = Array.from({ length: 10 }, (_, v) => lifecycle(reservationId, 'racer', v * 4, v + 1)).flat();
      const writers = [sut.write, sut.writeFromOtherClient];
      await Promise.all(changes.map((change, i) => writers[i % 2]!((store) => store.applyChange(change))));
      const detail = await sut.store.get(reservationId);
      expect(detail).toEqual({ ...fold(changes), queuePosition: null, timeline: expect.any(Array) });
      expect(detail?.timeline.map((e) => e.eventId).sort()).toEqual(changes.map((c) => c.eventId).sort());
      const listed = await sut.store.list({ customerId: 'racer', limit: 10, offset: 0 });
      expect(listed).toMatchObject({ total: 1, items: [{ reservationId, status: 'bookCanceled', updatedAt: at(39) }] });
    });

    /**
     * Applies every order of `history` (each to a reservation and book of its own), checking after
     * each change the page against the domain rule and, read back, its place in line; returns the
     * final detail of the last order.
     */
    async function everyOrder(history: (reservationId: number, bookId: number) => PageChange[]): Promise<ReservationPageDetail | null> {
      let last: ReservationPageDetail | null = null;
      const size = history(1, 1).length;
      for (const order of permutations([...Array(size).keys()])) {
        const reservationId = nextId++;
        const changes = history(reservationId, 100_000 + reservationId);
        let expected: ReservationPage | null = null;
        for (const change of order.map((i) => changes[i]!)) {
          expected = applyChange(expected, change);
          const stored = await sut.write((store) => store.applyChange(change));
          expect(stored, order.join(',')).toEqual(expected);
          const detail = await sut.store.get(reservationId);
          // Alone in its book's line: first while it waits.
          expect(detail, order.join(',')).toEqual({ ...expected, queuePosition: queuePositionOf(expected, [expected]), timeline: expect.any(Array) });
        }
        // Applying any of them again changes nothing.
        for (const change of changes) await sut.write((store) => store.applyChange(change));
        last = await sut.store.get(reservationId);
        expect(last).toEqual({ ...expected, queuePosition: null, timeline: expect.any(Array) });
        expect(last?.timeline.map((e) => e.eventId).sort()).toEqual(changes.map((c) => c.eventId).sort());
        expect(await sut.store.waitingLine({ bookId: 100_000 + reservationId, limit: 10 })).toEqual([]);
      }
      return last;
    }

    it('agrees with the domain rule for every order of waiting -> granted -> accepted -> checked out -> returned', async () => {
      const detail = await everyOrder((id, bookId) => {
        const life = waitingLife(id, { bookId, queueTicket: 7 });
        return [life.waitlisted, life.granted, life.accepted, life.checkedOut, life.returned];
      });
      expect(detail).toMatchObject({
        status: 'bookReturned',
        bookName: 'Kindred',
        libraryName: 'Harbour',
        pickupBy: at(10 + 7 * 86_400),
        dueAt: at(100 + 21 * 86_400),
        queueTicket: 7,
        queuePosition: null,
      });
      expect(detail?.timeline.map((e) => [e.eventType, e.status, e.service])).toEqual([
        ['ReservationWaitlisted', 'bookWaiting', 'reservation'],
        ['CopyGranted', 'bookReserveReq', 'book'],
        ['ReservationAccepted', 'bookReserved', 'assignment'],
        ['ReservationCheckedOut', 'bookLoaned', 'reservation'],
        ['ReservationReturned', 'bookReturned', 'reservation'],
      ]);
    });

    it('agrees with the domain rule for every order of waiting -> cancelled', async () => {
      const detail = await everyOrder((id, bookId) => {
        const life = waitingLife(id, { bookId, queueTicket: 3 });
        return [life.waitlisted, life.cancelRequested, life.canceled];
      });
      expect(detail).toMatchObject({ status: 'bookCanceled', bookName: 'Kindred', queueTicket: 3, pickupBy: null, dueAt: null });
      expect(detail?.timeline.map((e) => e.eventType)).toEqual(['ReservationWaitlisted', 'ReservationCancelRequested', 'ReservationCanceled']);
    });

    it('agrees with the domain rule for every order of accepted -> expired', async () => {
      const detail = await everyOrder((id, bookId) => {
        const life = waitingLife(id, { bookId, queueTicket: 1 });
        return [life.accepted, life.expired];
      });
      expect(detail).toMatchObject({ status: 'bookExpired', libraryName: 'Harbour', pickupBy: at(10 + 7 * 86_400), dueAt: null, queueTicket: null });
      expect(detail?.timeline.map((e) => [e.eventType, e.status])).toEqual([
        ['ReservationAccepted', 'bookReserved'],
        ['ReservationExpired', 'bookExpired'],
      ]);
    });

    it('lists the new statuses under their filters', async () => {
      const customer = `lifer-${nextId}`;
      const waiting = waitingLife(nextId++, { bookId: 200_000 + nextId, queueTicket: 1, customerId: customer, start: 900 });
      const loaned = waitingLife(nextId++, { bookId: 200_000 + nextId, queueTicket: 1, customerId: customer, start: 901 });
      await sut.write((store) => store.applyChange(waiting.waitlisted));
      for (const change of [loaned.checkedOut, loaned.granted]) await sut.write((store) => store.applyChange(change));
      const inStatus = (status: 'bookWaiting' | 'bookLoaned' | 'bookReserveReq') => sut.store.list({ customerId: customer, status, limit: 10, offset: 0 });
      expect(await inStatus('bookWaiting')).toMatchObject({ total: 1, items: [{ reservationId: waiting.waitlisted.reservationId, queuePosition: 1 }] });
      expect(await inStatus('bookLoaned')).toMatchObject({ total: 1, items: [{ reservationId: loaned.granted.reservationId, queuePosition: null, dueAt: loaned.checkedOut.dueAt }] });
      expect(await inStatus('bookReserveReq')).toEqual({ items: [], total: 0 });
    });

    describe('the place in line', () => {
      /** The pages of these reservations as the store shows them, and as the domain rule says they are. */
      async function positions(ids: number[], applied: PageChange[]): Promise<{ stored: (number | null)[]; expected: (number | null)[] }> {
        const pages = ids.map((id) => applied.filter((c) => c.reservationId === id).reduce<ReservationPage | null>(applyChange, null)!);
        const stored = await Promise.all(ids.map(async (id) => (await sut.store.get(id))?.queuePosition ?? null));
        return { stored, expected: pages.map((p) => queuePositionOf(p, pages)) };
      }

      it('three waiting of one book are 1, 2, 3; the first granted makes the others 1, 2; another book keeps its own line', async () => {
        const book = 300_000 + nextId;
        const otherBook = book + 1;
        const customer = `liner-${nextId}`;
        const [a, b, c, other] = [
          waitingLife(nextId++, { bookId: book, queueTicket: 10, customerId: customer, start: 1000 }),
          waitingLife(nextId++, { bookId: book, queueTicket: 11, customerId: customer, start: 1001 }),
          waitingLife(nextId++, { bookId: book, queueTicket: 12, customerId: customer, start: 1002 }),
          waitingLife(nextId++, { bookId: otherBook, queueTicket: 1, customerId: customer, start: 1003 }),
        ];
        const ids = [a, b, c, other].map((l) => l.waitlisted.reservationId);
        const applied: PageChange[] = [];
        const apply = async (change: PageChange) => {
          applied.push(change);
          await sut.write((store) => store.applyChange(change));
        };
        // Joined out of order: the line is by ticket, not by arrival.
        for (const life of [c, other, a, b]) await apply(life.waitlisted);
        expect(await positions(ids, applied)).toEqual({ stored: [1, 2, 3, 1], expected: [1, 2, 3, 1] });
        expect((await sut.store.waitingLine({ bookId: book, limit: 10 })).map((p) => [p.reservationId, p.queuePosition])).toEqual([
          [ids[0], 1],
          [ids[1], 2],
          [ids[2], 3],
        ]);
        const listed = await sut.store.list({ customerId: customer, status: 'bookWaiting', limit: 10, offset: 0 });
        expect(Object.fromEntries(listed.items.map((p) => [p.reservationId, p.queuePosition]))).toEqual({ [ids[0]!]: 1, [ids[1]!]: 2, [ids[2]!]: 3, [ids[3]!]: 1 });

        await apply(a.granted);
        expect(await positions(ids, applied)).toEqual({ stored: [null, 1, 2, 1], expected: [null, 1, 2, 1] });
        expect((await sut.store.waitingLine({ bookId: book, limit: 10 })).map((p) => p.reservationId)).toEqual([ids[1], ids[2]]);
        expect((await sut.store.waitingLine({ bookId: book, afterTicket: 11, limit: 10 })).map((p) => p.reservationId)).toEqual([ids[2]]);
        expect((await sut.store.waitingLine({ bookId: book, limit: 1 })).map((p) => p.reservationId)).toEqual([ids[1]]);
        expect((await sut.store.waitingLine({ bookId: otherBook, limit: 10 })).map((p) => [p.reservationId, p.queuePosition])).toEqual([[ids[3], 1]]);

        // Repeats and late events change nothing: the granted page does not come back into the line.
        for (const change of [a.waitlisted, b.waitlisted, a.granted]) await apply(change);
        expect(await positions(ids, applied)).toEqual({ stored: [null, 1, 2, 1], expected: [null, 1, 2, 1] });

        // A cancel request takes a page out of the line too.
        await apply(b.cancelRequested);
        expect(await positions(ids, applied)).toEqual({ stored: [null, null, 1, 1], expected: [null, null, 1, 1] });
        await apply(c.granted);
        expect(await positions(ids, applied)).toEqual({ stored: [null, null, null, 1], expected: [null, null, null, 1] });
        expect(await sut.store.waitingLine({ bookId: book, limit: 10 })).toEqual([]);
      });

      it('agrees with the domain rule when two clients add and take pages of one line at the same time', async () => {
        const book = 400_000 + nextId;
        const lives = Array.from({ length: 20 }, (_, i) => waitingLife(nextId++, { bookId: book, queueTicket: 100 + ((i * 7) % 20), customerId: 'crowd', start: 2000 + i }));
        const writers = [sut.write, sut.writeFromOtherClient];
        const changes = lives.flatMap((life, i) => (i % 3 === 0 ? [life.granted, life.waitlisted] : [life.waitlisted]));
        await Promise.all(changes.map((change, i) => writers[i % 2]!((store) => store.applyChange(change))));
        const ids = lives.map((l) => l.waitlisted.reservationId);
        const { stored, expected } = await positions(ids, changes);
        expect(stored).toEqual(expected);
        expect([...stored].filter((p) => p !== null).sort((x, y) => x - y)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
        const line = await sut.store.waitingLine({ bookId: book, limit: 100 });
        expect(line.map((p) => p.queuePosition)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
        expect(line.map((p) => p.queueTicket)).toEqual([...line.map((p) => p.queueTicket)].sort((x, y) => x! - y!));
      });
    });

    it('an unknown reservation has no page and no timeline', async () => {
      expect(await sut.store.get(999_999)).toBeNull();
      expect(await sut.store.timeline(999_999)).toEqual([]);
    });
  });
}
