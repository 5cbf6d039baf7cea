import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { openServiceDatabase, type Database } from '@bstore/platform';
import { customercenterMigrations } from '../src/adapters/db/migrations.ts';
import { KyselyReservationPageStore } from '../src/adapters/db/reservation-page.store.ts';
import type { CustomerCenterTables } from '../src/adapters/db/schema.ts';
import type { ReservationPageStore } from '../src/application/ports.ts';
import { applyChange, type PageChange, type ReservationPage } from '../src/domain/reservation-page.ts';
import { testLogger } from '../../../test/support/harness.ts';

/**
 * What every ReservationPageStore must do, whatever holds it: a cluster-mode adapter adds itself
 * to `adapters` and runs the same checks. `write` runs work against a store as the projector would.
 */
interface StoreUnderTest {
  store: ReservationPageStore;
  write<T>(work: (store: ReservationPageStore) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const adapters: [string, () => Promise<StoreUnderTest>][] = [
  [
    'PGlite (Kysely)',
    async () => {
      const database: Database<CustomerCenterTables> = await openServiceDatabase<CustomerCenterTables>(
        { kind: 'pglite' },
        customercenterMigrations,
        testLogger(),
      );
      const db: Kysely<CustomerCenterTables> = database.db;
      return {
        store: new KyselyReservationPageStore(db),
        write: (work) => db.transaction().execute((trx) => work(new KyselyReservationPageStore(trx))),
        close: () => database.close(),
      };
    },
  ],
];

const t0 = Date.parse('2025-03-01T09:00:00.000Z');
const at = (seconds: number) => new Date(t0 + seconds * 1000);

let nextId = 1;
function lifecycle(reservationId: number, customerId = 'alice', start = 0): PageChange[] {
  const base = { reservationId, bookId: 11, customerId, bookName: null, libraryId: null, libraryName: null };
  const id = (n: number) => `0194e0a0-0000-7000-8000-${String(reservationId).padStart(8, '0')}000${n}`;
  return [
    { ...base, bookName: 'Pachinko', status: 'bookReserveReq', eventId: id(1), eventType: 'ReservationRequested', source: 'bstore/reservation', occurredAt: at(start) },
    { ...base, libraryId: 4, libraryName: 'Harbour', status: 'bookReserved', eventId: id(2), eventType: 'ReservationAccepted', source: 'bstore/assignment', occurredAt: at(start + 1) },
    { ...base, status: 'bookCancel', eventId: id(3), eventType: 'ReservationCancelRequested', source: 'bstore/reservation', occurredAt: at(start + 2) },
    { ...base, status: 'bookCanceled', eventId: id(4), eventType: 'ReservationCanceled', source: 'bstore/assignment', occurredAt: at(start + 3) },
  ];
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe.each(adapters)('ReservationPageStore on %s', (_name, open) => {
  let sut: StoreUnderTest;

  beforeAll(async () => {
    sut = await open();
  });

  afterAll(async () => {
    await sut.close();
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
      expect(detail).toMatchObject({ ...expected, status: 'bookCanceled', bookName: 'Pachinko', libraryName: 'Harbour' });
      expect(detail?.timeline.map((e) => e.eventType)).toEqual([
        'ReservationRequested',
        'ReservationAccepted',
        'ReservationCancelRequested',
        'ReservationCanceled',
      ]);
    }
  });

  it('records a timeline entry once per event id, and the page is unchanged by the repeat', async () => {
    const [requested, accepted] = lifecycle(nextId++);
    await sut.write((store) => store.applyChange(requested!));
    const first = await sut.write((store) => store.applyChange(accepted!));
    const again = await sut.write((store) => store.applyChange(accepted!));
    expect(again).toEqual(first);
    const timeline = await sut.store.timeline(requested!.reservationId);
    expect(timeline).toEqual([
      { eventId: requested!.eventId, eventType: 'ReservationRequested', status: 'bookReserveReq', service: 'reservation', occurredAt: at(0) },
      { eventId: accepted!.eventId, eventType: 'ReservationAccepted', status: 'bookReserved', service: 'assignment', occurredAt: at(1) },
    ]);
  });

  it('a change rolled back with its transaction leaves no trace', async () => {
    const [requested] = lifecycle(nextId++);
    await expect(
      sut.write(async (store) => {
        await store.applyChange(requested!);
        throw new Error('handler failed after the upsert');
      }),
    ).rejects.toThrow(/handler failed/);
    expect(await sut.store.get(requested!.reservationId)).toBeNull();
    expect(await sut.store.timeline(requested!.reservationId)).toEqual([]);
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

    const canceled = await sut.store.list({ customerId: customer, status: 'bookCanceled', limit: 10, offset: 0 });
    expect(canceled.items.map((p) => p.reservationId)).toEqual([ids[1], ids[0]]);
    expect(canceled.total).toBe(2);

    const second = await sut.store.list({ customerId: customer, limit: 1, offset: 1 });
    expect(second).toMatchObject({ total: 3, items: [{ reservationId: ids[1] }] });

    const nobody = await sut.store.list({ customerId: 'nobody', limit: 10, offset: 0 });
    expect(nobody).toEqual({ items: [], total: 0 });
  });

  it('an unknown reservation has no page and no timeline', async () => {
    expect(await sut.store.get(999_999)).toBeNull();
    expect(await sut.store.timeline(999_999)).toEqual([]);
  });
});
