import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, parseEvent, sourceOf } from '@bstore/contracts';
import { openServiceDatabase, type Database } from '@bstore/platform';
import { customercenterMigrations } from '../src/adapters/db/migrations.ts';
import { KyselyReservationPageStore } from '../src/adapters/db/reservation-page.store.ts';
import type { CustomerCenterTables } from '../src/adapters/db/schema.ts';
import { InProcessPageUpdates } from '../src/adapters/live/in-process.page-updates.ts';
import type { PageEvent } from '../src/application/events.ts';
import { MeasureSagaStages } from '../src/application/measure-saga-stages/measure-saga-stages.service.ts';
import type { ReservationPageDetail, SagaStage } from '../src/application/ports.ts';
import { WatchReservationPages } from '../src/application/watch-reservation-pages/watch-reservation-pages.service.ts';
import { timelineEntryOf } from '../src/domain/reservation-page.ts';
import { testLogger } from '../../../test/support/harness.ts';
import { lifecycle, waitingLife } from './reservation-page.store.contract.ts';

let database: Database<CustomerCenterTables>;
let store: KyselyReservationPageStore;

beforeAll(async () => {
  database = await openServiceDatabase<CustomerCenterTables>({ kind: 'pglite' }, customercenterMigrations, testLogger());
  store = new KyselyReservationPageStore(database.db);
});

afterAll(async () => {
  await database?.close();
});

describe('WatchReservationPages: the live place in line', () => {
  const published: ReservationPageDetail[] = [];
  let watch: WatchReservationPages;

  beforeAll(() => {
    const updates = new InProcessPageUpdates(testLogger());
    updates.subscribe((page) => published.push(page));
    watch = new WatchReservationPages(store, updates, { lineLimit: 2 });
  });

  const book = 70;
  const lives = [1, 2, 3, 4, 5].map((n) => waitingLife(700 + n, { bookId: book, queueTicket: n, start: n }));
  const other = waitingLife(710, { bookId: book + 1, queueTicket: 1 });

  it('a page leaving the line announces itself, then the pages behind it, nearest first, at most lineLimit', async () => {
    for (const life of [...lives, other]) await store.applyChange(life.waitlisted);
    await store.applyChange(lives[0]!.granted);
    published.length = 0;
    await watch.announce(lives[0]!.granted.reservationId, lives[0]!.granted.eventId);
    expect(published.map((p) => [p.reservationId, p.status, p.queuePosition])).toEqual([
      [701, 'bookReserveReq', null],
      [702, 'bookWaiting', 1],
      [703, 'bookWaiting', 2],
    ]);
  });

  it('a page joining the line announces the pages behind its ticket only', async () => {
    const late = waitingLife(720, { bookId: book, queueTicket: 3, start: 9 });
    // Ticket 3 is shared with 703: equal tickets share a place, and only larger ones move.
    await store.applyChange(late.waitlisted);
    published.length = 0;
    await watch.announce(720, late.waitlisted.eventId);
    expect(published.map((p) => [p.reservationId, p.queuePosition])).toEqual([
      [720, 2],
      [704, 4],
      [705, 5],
    ]);
  });

  it('an event that moved nothing in or out of the line, or no event named, announces the page alone', async () => {
    await store.applyChange(lives[0]!.accepted);
    published.length = 0;
    await watch.announce(701, lives[0]!.accepted.eventId);
    await watch.announce(702);
    // Late: the page was granted already, so it never went back into the line.
    await store.applyChange({ ...lives[0]!.waitlisted, eventId: `${lives[0]!.waitlisted.eventId}-again` });
    await watch.announce(701, `${lives[0]!.waitlisted.eventId}-again`);
    expect(published.map((p) => p.reservationId)).toEqual([701, 702, 701]);
  });
});

describe('MeasureSagaStages on the longer lifecycle', () => {
  const observed: [SagaStage, number][] = [];
  const stages = () => new MeasureSagaStages(store, { observe: (stage, seconds) => observed.push([stage, seconds]) });

  const envelopeOf = (change: ReturnType<typeof waitingLife>['granted'], data: Record<string, unknown>): PageEvent =>
    parseEvent(
      createEnvelope({
        type: change.eventType,
        source: sourceOf(change.source.split('/')[1] as 'reservation'),
        subject: String(change.reservationId),
        time: change.occurredAt,
        data: { reservationId: change.reservationId, bookId: change.bookId, customerId: change.customerId, status: change.status, ...data },
      }),
    ) as PageEvent;

  it('the waiting line, the loan and the expiry open and end no stage; reserve and cancel keep their meaning', async () => {
    const life = waitingLife(800, { bookId: 80, queueTicket: 1 });
    const events = [
      envelopeOf(life.waitlisted, { bookName: 'Kindred', queueTicket: 1 }),
      envelopeOf(life.granted, { bookName: 'Kindred', queueTicket: 1, cause: 'released' }),
      envelopeOf(life.checkedOut, { libraryId: 4, dueAt: life.checkedOut.dueAt!.toISOString() }),
      envelopeOf(life.returned, { libraryId: 4 }),
      envelopeOf(life.expired, { libraryId: 4, pickupBy: life.expired.pickupBy!.toISOString() }),
    ];
    const [requested, accepted] = lifecycle(800);
    const timeline = [life.waitlisted, life.granted, life.checkedOut, life.returned, life.expired, requested!, accepted!].map(timelineEntryOf);
    for (const event of events) expect(await stages().projected(event, timeline), event.type).toBeUndefined();
    expect(observed).toEqual([]);
    const acceptedEvent = parseEvent(
      createEnvelope({
        type: 'ReservationAccepted',
        source: sourceOf('assignment'),
        subject: '800',
        time: accepted!.occurredAt,
        data: { reservationId: 800, bookId: 80, customerId: 'alice', assignmentId: 1, libraryId: 4, libraryName: 'Harbour', status: 'bookReserved' },
      }),
    ) as PageEvent;
    expect(await stages().projected(acceptedEvent, timeline)).toBe('reserve');
    expect(observed).toEqual([['reserve', 1]]);
  });
});
