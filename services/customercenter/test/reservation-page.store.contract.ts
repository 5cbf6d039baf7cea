import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReservationPageStore } from '../src/application/ports.ts';
import { applyChange, type PageChange, type ReservationPage } from '../src/domain/reservation-page.ts';

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
  const base = { reservationId, bookId: 11, customerId, bookName: null, libraryId: null, libraryName: null, traceId: null };
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
        expect(detail).toEqual({ ...expected, timeline: expect.any(Array) });
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
      expect(detail).toEqual({ ...fold(changes), timeline: expect.any(Array) });
      expect(detail?.timeline.map((e) => e.eventId).sort()).toEqual(changes.map((c) => c.eventId).sort());
      const listed = await sut.store.list({ customerId: 'racer', limit: 10, offset: 0 });
      expect(listed).toMatchObject({ total: 1, items: [{ reservationId, status: 'bookCanceled', updatedAt: at(39) }] });
    });

    it('an unknown reservation has no page and no timeline', async () => {
      expect(await sut.store.get(999_999)).toBeNull();
      expect(await sut.store.timeline(999_999)).toEqual([]);
    });
  });
}
